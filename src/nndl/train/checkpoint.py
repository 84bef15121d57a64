"""Training checkpoints: the whole state of a run, saved after an epoch and restored to resume it.

A checkpoint is a model file (``nndl.models.io``'s format: arrays in a .npz, JSON beside them,
never pickle) whose record also holds the trainer's state: the next epoch, both random generators'
states, the optimiser's settings and arrays (velocities, moments), each callback's state and the
run's settings (``train_config``). A resumed run therefore ends bit-identical to one that was
never interrupted. Files are written atomically: a crash mid-write leaves the previous one.
"""
from __future__ import annotations

import os

from ..errors import ModelFileError
from ..models.io import FORMAT, VERSION, network_arrays, open_archive, read_array, read_network, write_archive

FILENAME = "checkpoint.npz"


def checkpoint_path(path_or_dir: str) -> str:
    """The checkpoint file: ``path_or_dir/checkpoint.npz`` for a folder, else the path itself."""
    return os.path.join(path_or_dir, FILENAME) if os.path.isdir(path_or_dir) else os.fspath(path_or_dir)


def save_checkpoint(trainer, path: str, *, epoch: int) -> None:
    """Everything needed to resume: weights, optimiser state, RNG states, epoch, callback states."""
    net, opt = trainer.network, trainer.optimizer
    opt_config, opt_arrays = opt.state_dict()
    meta = {
        "format": FORMAT, "version": VERSION, "kind": "checkpoint",
        "network": net.config(), "metadata": {"epoch": epoch},
        "trainer": {
            "next_epoch": trainer.epoch,
            "rng": trainer.rng.bit_generator.state,
            "network_rng": net.rng.bit_generator.state,
            "optimizer": opt_config,
            "callbacks": [{"class": type(cb).__name__, "state": cb.state(), "arrays": sorted(cb.arrays())}
                          for cb in trainer.callbacks],
            "train_config": trainer.train_config,
            "stop_reason": trainer.stop_reason,      # set when a callback ended the run early
        },
    }
    arrays = network_arrays(net)
    arrays.update({f"optimizer/{k}": v for k, v in opt_arrays.items()})
    for i, cb in enumerate(trainer.callbacks):    # e.g. the best epoch's weights (BestWeights)
        arrays.update({f"callbacks/{i}/{k}": v for k, v in cb.arrays().items()})
    write_archive(path, meta, arrays)


def read_checkpoint_meta(path_or_dir: str) -> dict:
    """The JSON record of a checkpoint (its training config, epoch, ...), without its arrays."""
    zf, meta = open_archive(checkpoint_path(path_or_dir))
    zf.close()
    return meta


def restore(trainer, path_or_dir: str) -> None:
    """Put ``trainer`` (its network, RNGs, epoch and callbacks) in the checkpoint's state. The
    optimiser's state waits in ``trainer.optimizer_state`` until the trainer binds the optimiser to
    the training set (``Trainer.fit``), which it does once."""
    path = checkpoint_path(path_or_dir)
    zf, meta = open_archive(path)
    if meta.get("kind") != "checkpoint":
        zf.close()
        raise ModelFileError(f"{path} is a model file, not a training checkpoint")
    with zf:
        saved = read_network(zf, meta, path)
        net = trainer.network
        if saved.config()["layers"] != net.config()["layers"]:
            raise ModelFileError(f"{path} holds a different architecture than the network being trained")
        net.set_weights(saved.get_weights())
        keys = [k[len("optimizer/"):-len(".npy")] for k in zf.namelist() if k.startswith("optimizer/")]
        arrays = {k: read_array(zf, "optimizer/" + k, path) for k in keys}
        state = meta["trainer"]
        callback_arrays = [{k: read_array(zf, f"callbacks/{i}/{k}", path) for k in entry.get("arrays", [])}
                           for i, entry in enumerate(state["callbacks"])]
    trainer.optimizer_state = (state["optimizer"], arrays)
    trainer.rng.bit_generator.state = state["rng"]
    net.rng.bit_generator.state = state["network_rng"]
    trainer.epoch = int(state["next_epoch"])
    if state.get("stop_reason"):       # a run that ended early stays ended
        trainer.stop(state["stop_reason"])
    _restore_callbacks(trainer.callbacks, state["callbacks"], callback_arrays)


def _restore_callbacks(callbacks: list, saved: list[dict], arrays: list[dict]) -> None:
    """Each callback gets the saved state (and arrays) of the first unused one of its class."""
    by_class: dict[str, list[tuple[dict, dict]]] = {}
    for entry, its_arrays in zip(saved, arrays):
        by_class.setdefault(entry["class"], []).append((entry["state"], its_arrays))
    for cb in callbacks:
        states = by_class.get(type(cb).__name__)
        if states:
            state, its_arrays = states.pop(0)
            cb.load_state(state)
            if its_arrays:
                cb.load_arrays(its_arrays)


__all__ = ["FILENAME", "checkpoint_path", "read_checkpoint_meta", "restore", "save_checkpoint"]
