"""One training run from a dict of settings: the engine under ``nndl train``, ``reproduce``, ``sweep``
and ``ensemble``.

``run(settings, seed)`` reads top-down: check the settings (``nndl.settings``), load the data the
settings name, build the network, make the callbacks, train (``nndl.train.fit``, or scipy's
full-batch CG / L-BFGS), and summarise the history by the book's reporting rules. It returns a
JSON-safe result. ``checkpoint_of_this_run`` is the check that a run folder holds this very run
(same settings and seed), so the same command run again after a crash goes on where it stopped
and never overwrites another run.

Reporting rules, as in the book: when the test set is monitored (chapters 1 and 3) the result has
the best test accuracy over the epochs; when the validation set is (``evaluate_on =
"validation"``, chapter 6), the best validation accuracy and the test accuracy at that epoch, and
the network ends with (and ``save`` writes) the weights of that epoch, so the saved network is the
one the result reports.
Full-batch runs (CG, L-BFGS) count scipy iterations: ``epochs`` asks for them, ``epochs_run`` says
how many ran, and the best "epoch" is the iteration of the best record.

``NNDL_DOCS_QUICK=1`` (the smoke test of the documentation, docs/GUIDE.md) makes every run tiny:
at most 2 epochs on the first 1,000 training, validation and test images, said once on stderr.
The settings keep the values asked for, so a quick run is the same run, cut short.
"""
from __future__ import annotations

import functools
import os
import sys
import time
from typing import Any

from .errors import RecipeError
from .settings import FULL_BATCH, known, same_experiment

DOCS_QUICK = "NNDL_DOCS_QUICK"
QUICK_EPOCHS = 2
QUICK_IMAGES = 1000
_quick_said = False


def docs_quick() -> bool:
    """True when ``NNDL_DOCS_QUICK`` is set (to anything but ``0``): runs are cut to a smoke test."""
    global _quick_said
    if os.environ.get(DOCS_QUICK, "") in ("", "0"):
        return False
    if not _quick_said:
        _quick_said = True
        print(f"nndl: {DOCS_QUICK} is set: at most {QUICK_EPOCHS} epochs on the first {QUICK_IMAGES:,} training, "
              f"validation and test images (the docs' smoke test; unset it for real runs)", file=sys.stderr, flush=True)
    return True


def quick_train_size(train_size: int | None) -> int | None:
    """The training-set size a run uses: ``train_size``, or at most QUICK_IMAGES under NNDL_DOCS_QUICK."""
    return min(int(train_size or QUICK_IMAGES), QUICK_IMAGES) if docs_quick() else train_size


def run_epochs(settings: dict) -> int:
    """The epochs (full-batch: iterations) a run trains: the settings', or fewer under NNDL_DOCS_QUICK."""
    epochs = int(settings["epochs"])
    return min(epochs, QUICK_EPOCHS) if docs_quick() else epochs


# ----- data -------------------------------------------------------------------------------------
def load_data(settings: dict, data_dir: str | None = None):
    """(training, validation, test) for the settings: subsets, digits, expansion applied."""
    from . import data

    loader = {"mnist": data.load_mnist, "fashion-mnist": data.load_fashion_mnist}[settings["dataset"]]
    training, validation, test = loader(data_dir)
    digits = settings["digits"]
    if digits is not None:
        training, validation, test = (data.subset(d, digits=digits) for d in (training, validation, test))
    quick = docs_quick()
    train_size = quick_train_size(settings["train_size"])
    if train_size:
        training = data.subset(training, size=int(train_size))
    if settings["expand"] == "shift4":
        training = data.shift4(*training)
    elif settings["expand"] == "reading":       # photos of paper and non-digits (class 10), cached
        from .data.reading_set import load_reading_set

        training = load_reading_set(*training, dtype=training[0].dtype)
    if settings["validation_size"]:
        validation = data.subset(validation, size=int(settings["validation_size"]))
    if quick:
        validation, test = (data.subset(d, size=min(QUICK_IMAGES, len(d[1]))) for d in (validation, test))
    return training, validation, test


# ----- network ----------------------------------------------------------------------------------
def build_network(settings: dict, seed: int | None = None):
    """The Network the settings describe: ``layers`` tables (as in a model file), or Dense layers
    from ``sizes`` (``Network.from_sizes``)."""
    from .models.io import network_from_config
    from .nn import Network

    common = {"init": settings["init"], "dtype": settings["dtype"], "output_encoding": settings["output_encoding"],
              "n_classes": 10 if settings["output_encoding"] == "binary" else None}   # bits stand for 10 digits
    if settings["layers"]:
        return network_from_config({"layers": settings["layers"], "cost": settings["cost"], **common}, "settings",
                                   seed=seed)
    sizes = [int(s) for s in settings["sizes"]]
    if len(sizes) < 2 or min(sizes) < 1:
        raise RecipeError(f"sizes must be at least two positive layer sizes, got {settings['sizes']}")
    return Network.from_sizes(sizes, settings["activation"], settings["output_activation"], settings["cost"],
                              dropout=settings["dropout"], seed=seed, **common)


# ----- training ---------------------------------------------------------------------------------
def make_callbacks(settings: dict, validation) -> list:
    """The callbacks the settings ask for: a moving average of the weights, the book's quick monitor,
    early stopping, a schedule, and when the validation set is monitored, the best validation epoch's
    weights kept to end with."""
    from .train import (
        BatchMonitor,
        BestWeights,
        CycleSchedule,
        EarlyStopping,
        ExponentialSchedule,
        PlateauSchedule,
        StepSchedule,
        WeightAverage,
    )

    callbacks: list = []
    if settings["weight_average"]:
        callbacks.append(WeightAverage(settings["weight_average"]))
    keeps_best = settings["evaluate_on"] == "validation"    # the network saved is the one the result reports
    if keeps_best:
        callbacks.append(BestWeights())
    if settings["monitor_every"]:
        callbacks.append(BatchMonitor(validation, every=int(settings["monitor_every"]),
                                      size=int(settings["monitor_size"])))
    if settings["early_stopping"]:
        # With BestWeights there, one copy of the best weights is enough.
        callbacks.append(EarlyStopping(patience=int(settings["early_stopping"]), restore_best_weights=not keeps_best))
    patience, factor = settings["schedule_patience"], settings["schedule_factor"]
    schedule = {"plateau": lambda: PlateauSchedule(patience, factor, settings["schedule_floor"]),
                "step": lambda: StepSchedule(patience, factor),
                "exponential": lambda: ExponentialSchedule(factor),
                "one-cycle": lambda: CycleSchedule(warmup=0.25),      # beyond the book: per mini-batch
                "cosine": lambda: CycleSchedule(warmup=0.0)}.get(settings["schedule"])
    if schedule is not None:
        callbacks.append(schedule())
    return callbacks


def fit_arguments(settings: dict) -> dict:
    """The keyword arguments of ``nndl.train.fit`` that come straight from settings."""
    from .train.callbacks import MONITOR_KEYS

    wanted = set(settings["monitor"] or [])
    kwargs: dict[str, Any] = {f"monitor_{k}": k in wanted for k in MONITOR_KEYS}
    kwargs.update(optimizer=settings["optimizer"], lmbda=settings["lmbda"], regularization=settings["regularization"],
                  max_norm=settings["max_norm"], clip_norm=settings["clip_norm"], threads=settings["threads"])
    if settings["optimizer"] in ("momentum", "nesterov"):
        kwargs["mu"] = settings["mu"]
    return kwargs


def run(settings: dict, seed: int = 0, *, data_dir: str | None = None, verbose: bool = False,
        progress: bool | None = None, metrics: str | None = None, checkpoint: str | None = None,
        resume: str | None = None, save: str | None = None, data=None) -> dict:
    """Train one network as ``settings`` say; return a JSON-safe result with the history.

    ``result["best_validation_accuracy"]`` and ``result["test_accuracy_at_best_validation"]``
    are filled when the validation set is monitored (``evaluate_on = "validation"``)."""
    from . import backend
    from .nn import kernels
    from .train.checkpoint import read_checkpoint_meta
    from .train.trainer import fit

    settings = known(settings)
    backend.set_device(settings["device"])
    settings["kernels"] = kernels.use(settings["kernels"])
    training, validation, test = data if data is not None else load_data(settings, data_dir)
    net = build_network(settings, seed)
    on_validation = settings["evaluate_on"] == "validation"
    evaluation = validation if on_validation else test
    start = time.perf_counter()
    if settings["optimizer"] in FULL_BATCH:
        history = _fit_full_batch(net, settings, training, evaluation, verbose)
        return summarize(history, settings, seed, time.perf_counter() - start, net)
    # A resumed run also counts the training time of the epochs done before the resume (read now:
    # the run writes new checkpoints over this one).
    before = read_checkpoint_meta(resume)["trainer"]["next_epoch"] if resume else 0
    augment = distortion(settings)
    history = fit(net, training, run_epochs(settings), settings["mini_batch_size"], settings["eta"],
                  evaluation_data=evaluation, test_data=test if on_validation else None,
                  callbacks=make_callbacks(settings, validation), seed=seed, verbose=verbose, progress=progress,
                  metrics=metrics, checkpoint=checkpoint, resume=resume, augment=augment,
                  train_config={"settings": settings, "seed": seed}, **fit_arguments(settings))
    seconds = time.perf_counter() - start + sum(r.get("seconds") or 0.0 for r in history.records[:before])
    if save:
        net.save(save, settings=settings, seed=seed)
    return summarize(history, settings, seed, seconds, net)


def distortion(settings: dict):
    """The function drawing each epoch's random distortions (``nndl.data.augment``), or None."""
    from .data import augment
    from .data.expand import ELASTIC_ALPHA, ELASTIC_SIGMA

    if not settings["augment"]:
        return None
    if settings["distortion"] == "elastic":  # Simard et al. 2003's field on top of the affine one
        return functools.partial(augment, elastic_alpha=ELASTIC_ALPHA, elastic_sigma=ELASTIC_SIGMA)
    return augment


def _fit_full_batch(net, settings: dict, training, evaluation, verbose: bool):
    """CG or L-BFGS on the whole training set; ``epochs`` counts scipy iterations."""
    from .train.fullbatch import fit_full_batch

    def show(rec: dict) -> None:
        if verbose:
            print(f"Iteration {rec['iteration']}: cost {rec['training_cost']:.4f}, "
                  f"accuracy {rec.get('evaluation_accuracy', float('nan')):.2%}, {rec['seconds']:.1f} s", flush=True)

    return fit_full_batch(net, training, method=settings["optimizer"], iterations=run_epochs(settings),
                          lmbda=settings["lmbda"], evaluation_data=evaluation, on_record=show)


def summarize(history, settings: dict, seed: int, seconds: float, net=None) -> dict:
    """Best-epoch numbers from a History, by the book's reporting rules. ``seconds``: the run's wall
    time (for a resumed run, plus the training time of the epochs before the resume)."""
    records = history.records
    full_batch = getattr(history, "result", None)       # CG / L-BFGS: records every few iterations
    epochs_run = full_batch["iterations"] if full_batch else len(records)
    result: dict[str, Any] = {"seed": seed, "epochs_run": epochs_run, "seconds": round(seconds, 2),
                              "history": records}
    if not full_batch:          # the epochs' training time alone, without monitoring (time to accuracy)
        result["training_seconds"] = round(sum(r.get("seconds") or 0.0 for r in records), 2)
    best = history.best("evaluation_accuracy")
    if best is not None:
        key = "validation" if settings["evaluate_on"] == "validation" else "test"
        result[f"best_{key}_accuracy"] = best["evaluation_accuracy"]
        result[f"best_{key}_epoch"] = best["epoch"]
        if key == "validation" and best.get("test_accuracy") is not None:
            result["test_accuracy_at_best_validation"] = best["test_accuracy"]
        result["final_evaluation_accuracy"] = records[-1].get("evaluation_accuracy")
    if net is not None:
        result["network"] = repr(net)
    return result


# ----- which run a folder holds -----------------------------------------------------------------
def checkpointed_run(folder: str) -> tuple[dict, int, dict]:
    """(settings, seed, trainer state) of the run checkpointed in ``folder``, as ``run`` wrote them;
    a RecipeError for a checkpoint written without its settings (by ``Network.fit``)."""
    from .train.checkpoint import read_checkpoint_meta

    trainer = read_checkpoint_meta(folder).get("trainer", {})
    saved = trainer.get("train_config") or {}
    if not isinstance(saved.get("settings"), dict):
        raise RecipeError(f"{folder} holds a checkpoint written without its training settings (by Network.fit); "
                          f"resume it from Python with fit(..., resume={folder!r}), or use another folder")
    return dict(saved["settings"]), saved.get("seed"), trainer


def checkpoint_of_this_run(folder: str, settings: dict, seed: int) -> str | None:
    """``folder`` if it holds a checkpoint of this very run (same seed, same settings but for the
    machine settings and a number of epochs not below the epochs done), so that the same command
    run again after a crash goes on where it stopped; None if it holds none. Any other checkpoint
    is refused with a RecipeError saying why, and is never overwritten."""
    from .train.checkpoint import checkpoint_path

    if not os.path.exists(checkpoint_path(folder)):
        return None
    saved_settings, saved_seed, trainer = checkpointed_run(folder)
    if saved_seed != seed or not same_experiment(saved_settings, settings, ignore=("epochs",)):
        raise RecipeError(f"{folder} holds the checkpoint of another run (other settings or seed); "
                          f"continue that run with `nndl train --resume {folder}`, or use another folder")
    if trainer.get("stop_reason"):
        raise RecipeError(f"the run in {folder} already ended ({trainer['stop_reason']}); its network is the "
                          f"one saved when it ended. To train again, use another folder")
    done = int(trainer.get("next_epoch", 0))
    if done > int(settings["epochs"]):
        raise RecipeError(f"the run in {folder} has already trained {done} epochs, more than the {settings['epochs']} "
                          f"asked for; give at least {done} epochs, or use another folder")
    return folder


__all__ = ["build_network", "checkpoint_of_this_run", "checkpointed_run", "docs_quick", "fit_arguments", "load_data",
           "make_callbacks", "quick_train_size", "run", "run_epochs", "summarize"]
