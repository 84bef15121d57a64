"""The book's experiments as recipes, and one function that runs any set of training settings.

A recipe is a small TOML file in this folder: an ``id``, a ``description``, the book's result
(``book``, as a fraction, and ``metric``: which accuracy the book reports for that row) and a
``[settings]`` table with the same names as the ``nndl train`` flags (``sizes``, ``eta``, ...).
``run(settings, seed=...)`` is the single training entry point used by ``nndl train``,
``nndl reproduce`` and ``nndl sweep``: it loads the data, builds the network, trains and returns a
JSON-safe result.

Reporting rules, as in the book: ``metric = "test"`` rows report the best test accuracy over the
epochs (chapters 1 and 3 monitor the test set); ``metric = "validation"`` rows report the best
validation accuracy; ``metric = "test-at-best-validation"`` rows (chapter 6) report the test
accuracy at the epoch of best validation accuracy.
"""
from __future__ import annotations

import copy
import os
import sys
import time
from importlib import resources
from typing import Any

from ..errors import NNDLError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

METRICS = ("test", "validation", "test-at-best-validation")

DEFAULTS: dict[str, Any] = {
    "sizes": [784, 30, 10],
    "activation": "sigmoid",
    "output_activation": None,
    "layers": None,              # a list of layer tables (conv nets); overrides sizes
    "cost": "quadratic",
    "init": "default",
    "output_encoding": "one-hot",
    "epochs": 30,
    "mini_batch_size": 10,
    "eta": 3.0,
    "lmbda": 0.0,
    "regularization": "l2",
    "optimizer": "sgd",
    "mu": 0.9,
    "dropout": 0.0,              # dropout before each hidden Dense layer's output (MLPs from sizes)
    "train_size": None,
    "validation_size": None,
    "digits": None,
    "expand": None,              # "shift4": the book's 250,000 shifted images
    "augment": False,            # random affine distortions, new each epoch
    "evaluate_on": "test",       # the evaluation data monitored each epoch: test or validation
    "monitor": ["evaluation_accuracy"],
    "early_stopping": None,      # patience in epochs
    "schedule": None,            # "plateau", "step", "exponential"
    "schedule_patience": 10,
    "schedule_factor": 0.5,
    "schedule_floor": 1 / 128,
    "max_norm": None,
    "clip_norm": None,           # rescale each mini-batch gradient to this global norm (RNNs)
    "monitor_every": None,       # the book's heuristic: accuracy on a few validation images
    "monitor_size": 100,         #   every `monitor_every` training images
    "dataset": "mnist",
    "dtype": "float32",
    "device": "cpu",
    "threads": None,
    "kernels": None,             # numba or numpy (None: $NNDL_KERNELS, else numba); the run records its choice
}

# Where and how fast a run computes, not what it computes: a run may resume on another machine
# with other values, and a finished run counts as the same experiment whatever they were.
MACHINE_SETTINGS = ("device", "threads", "kernels")


def same_experiment(a: dict, b: dict, *, ignore: tuple[str, ...] = ()) -> bool:
    """Whether two runs' settings compute the same thing: the machine settings aside, and the
    settings named in ``ignore``; names nndl does not know are dropped, as ``run`` drops them."""
    from ..executors import canonical

    left_out = (*MACHINE_SETTINGS, *ignore)

    def key(settings: dict) -> Any:
        known = settings_from({k: v for k, v in settings.items() if k in DEFAULTS})
        return canonical({k: v for k, v in known.items() if k not in left_out})

    return key(a) == key(b)


class RecipeError(NNDLError, ValueError):
    """A recipe id or setting is wrong, or a run folder holds another run."""


def recipe_ids() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir() if p.name.endswith(".toml"))


def load_recipe(recipe_id: str) -> dict:
    """The recipe ``recipe_id`` as a dict with ``settings`` completed from DEFAULTS."""
    if recipe_id not in recipe_ids():
        raise RecipeError(f"unknown recipe {recipe_id!r}; `nndl reproduce --list` shows them: {', '.join(recipe_ids())}")
    recipe = tomllib.loads(resources.files(__name__).joinpath(recipe_id + ".toml").read_text())
    recipe["settings"] = settings_from(recipe.get("settings", {}))
    recipe.setdefault("metric", "test")
    if recipe["metric"] not in METRICS:
        raise RecipeError(f"recipe {recipe_id}: metric must be one of {METRICS}")
    return recipe


def settings_from(overrides: dict) -> dict:
    """DEFAULTS updated with ``overrides``; unknown names are refused."""
    unknown = sorted(set(overrides) - set(DEFAULTS))
    if unknown:
        raise RecipeError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
    settings = copy.deepcopy(DEFAULTS)
    settings.update(copy.deepcopy(overrides))
    return settings


# ----- data -------------------------------------------------------------------------------------
def load_data(settings: dict, data_dir: str | None = None):
    """(training, validation, test) for the settings: subsets, digits, expansion applied."""
    from .. import data

    loader = {"mnist": data.load_mnist, "fashion-mnist": data.load_fashion_mnist}.get(settings["dataset"])
    if loader is None:
        raise RecipeError(f"unknown dataset {settings['dataset']!r}; choose mnist or fashion-mnist")
    training, validation, test = loader(data_dir)
    digits = settings["digits"]
    if digits is not None:
        training, validation, test = (data.subset(d, digits=digits) for d in (training, validation, test))
    if settings["expand"]:
        if settings["expand"] != "shift4":
            raise RecipeError(f"unknown expansion {settings['expand']!r}; the book's is 'shift4'")
        training = data.shift4(*training)
    if settings["train_size"]:
        training = data.subset(training, size=int(settings["train_size"]) * (5 if settings["expand"] else 1))
    if settings["validation_size"]:
        validation = data.subset(validation, size=int(settings["validation_size"]))
    return training, validation, test


# ----- network ----------------------------------------------------------------------------------
def build_network(settings: dict, seed: int | None = None):
    """The Network the settings describe (``layers`` tables, or Dense layers from ``sizes``)."""
    from ..models.io import network_from_config
    from ..nn import Dense, Dropout, Network

    if settings["layers"]:
        config = {"layers": settings["layers"], "cost": settings["cost"], "init": settings["init"],
                  "dtype": settings["dtype"], "output_encoding": settings["output_encoding"],
                  "n_classes": _n_classes(settings)}
        return network_from_config(config, "settings", seed=seed)
    sizes = [int(s) for s in settings["sizes"]]
    if len(sizes) < 2 or min(sizes) < 1:
        raise RecipeError(f"sizes must be at least two positive layer sizes, got {settings['sizes']}")
    acts = [settings["activation"]] * (len(sizes) - 2) + [settings["output_activation"] or settings["activation"]]
    layers: list = []
    for i, (n_in, n_out, act) in enumerate(zip(sizes[:-1], sizes[1:], acts)):
        layers.append(Dense(n_in, n_out, act))
        if settings["dropout"] and i < len(sizes) - 2:
            layers.append(Dropout(settings["dropout"]))
    return Network(layers, settings["cost"], seed=seed, init=settings["init"], dtype=settings["dtype"],
                   output_encoding=settings["output_encoding"], n_classes=_n_classes(settings))


def _n_classes(settings: dict) -> int | None:
    """Binary outputs need telling how many classes the bits stand for (the ten digits)."""
    return 10 if settings["output_encoding"] == "binary" else None


def _callbacks(settings: dict, validation) -> list:
    from ..train import BatchMonitor, EarlyStopping, ExponentialSchedule, PlateauSchedule, StepSchedule

    cbs: list = []
    if settings["monitor_every"]:
        cbs.append(BatchMonitor(validation, every=int(settings["monitor_every"]), size=int(settings["monitor_size"])))
    if settings["early_stopping"]:
        cbs.append(EarlyStopping(patience=int(settings["early_stopping"])))
    schedule = settings["schedule"]
    if schedule == "plateau":
        cbs.append(PlateauSchedule(settings["schedule_patience"], settings["schedule_factor"], settings["schedule_floor"]))
    elif schedule == "step":
        cbs.append(StepSchedule(settings["schedule_patience"], settings["schedule_factor"]))
    elif schedule == "exponential":
        cbs.append(ExponentialSchedule(settings["schedule_factor"]))
    elif schedule:
        raise RecipeError(f"unknown schedule {schedule!r}; choose plateau, step or exponential")
    return cbs


def _monitor_flags(settings: dict) -> dict:
    from ..train.callbacks import MONITOR_KEYS

    wanted = set(settings["monitor"] or [])
    unknown = wanted - set(MONITOR_KEYS)
    if unknown:
        raise RecipeError(f"unknown monitor(s) {', '.join(sorted(unknown))}; choose from {', '.join(MONITOR_KEYS)}")
    return {f"monitor_{k}": k in wanted for k in MONITOR_KEYS}


def _optimizer_kwargs(settings: dict) -> dict:
    kwargs: dict = {"lmbda": settings["lmbda"], "regularization": settings["regularization"],
                    "max_norm": settings["max_norm"], "clip_norm": settings["clip_norm"]}
    if settings["optimizer"] in ("momentum", "nesterov"):
        kwargs["mu"] = settings["mu"]
    return kwargs


def run(settings: dict, seed: int = 0, *, data_dir: str | None = None, verbose: bool = False,
        progress: bool | None = None, metrics: str | None = None, checkpoint: str | None = None,
        resume: str | None = None, save: str | None = None, data=None) -> dict:
    """Train one network as ``settings`` say; return a JSON-safe result with the history.

    ``result["best_validation_accuracy"]`` and ``result["test_accuracy_at_best_validation"]``
    are filled when the validation set is monitored (``evaluate_on = "validation"``)."""
    from .. import backend
    from ..models.io import read_checkpoint_meta
    from ..nn import kernels
    from ..train.trainer import fit

    settings = settings_from({k: v for k, v in settings.items() if k in DEFAULTS})
    if settings["evaluate_on"] not in ("test", "validation"):
        raise RecipeError(f"evaluate_on must be test or validation, got {settings['evaluate_on']!r}")
    backend.set_device(settings["device"])
    settings["kernels"] = kernels.use(settings["kernels"])
    training, validation, test = data if data is not None else load_data(settings, data_dir)
    net = build_network(settings, seed)
    on_validation = settings["evaluate_on"] == "validation"
    augment = None
    if settings["augment"]:
        from ..data import augment as augment_fn
        augment = augment_fn
    start = time.perf_counter()
    if settings["optimizer"] in FULL_BATCH:
        history = _fit_full_batch(net, settings, training, validation if on_validation else test, verbose)
        return summarize(history, settings, seed, time.perf_counter() - start, net)
    # A resumed run also counts the training time of the epochs done before the resume (read now:
    # the run writes new checkpoints over this one).
    before = read_checkpoint_meta(resume)["trainer"]["next_epoch"] if resume else 0
    history = fit(net, training, settings["epochs"], settings["mini_batch_size"], settings["eta"],
                  optimizer=settings["optimizer"], evaluation_data=validation if on_validation else test,
                  test_data=test if on_validation else None, callbacks=_callbacks(settings, validation),
                  seed=seed, verbose=verbose, progress=progress, metrics=metrics, checkpoint=checkpoint,
                  resume=resume, augment=augment, threads=settings["threads"],
                  train_config={"settings": settings, "seed": seed}, **_monitor_flags(settings),
                  **_optimizer_kwargs(settings))
    seconds = time.perf_counter() - start + sum(r.get("seconds") or 0.0 for r in history.records[:before])
    if save:
        net.save(save, settings=settings, seed=seed)
    return summarize(history, settings, seed, seconds, net)


FULL_BATCH = ("cg", "lbfgs")


def _fit_full_batch(net, settings: dict, training, evaluation, verbose: bool):
    """CG or L-BFGS on the whole training set; ``epochs`` counts scipy iterations."""
    from ..train.fullbatch import fit_full_batch

    def show(rec: dict) -> None:
        if verbose:
            print(f"Iteration {rec['iteration']}: cost {rec['training_cost']:.4f}, "
                  f"accuracy {rec.get('evaluation_accuracy', float('nan')):.2%}, {rec['seconds']:.1f} s", flush=True)

    return fit_full_batch(net, training, method=settings["optimizer"], iterations=int(settings["epochs"]),
                          lmbda=settings["lmbda"], evaluation_data=evaluation, on_record=show)


def summarize(history, settings: dict, seed: int, seconds: float, net=None) -> dict:
    """Best-epoch numbers from a History, by the book's reporting rules. ``seconds``: the run's wall
    time (for a resumed run, plus the training time of the epochs before the resume)."""
    records = history.records
    result: dict[str, Any] = {"seed": seed, "epochs_run": len(records), "seconds": round(seconds, 2),
                              "history": records}
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


def checkpointed_run(folder: str) -> tuple[dict, int, dict]:
    """(settings, seed, trainer state) of the run checkpointed in ``folder``, as ``run`` wrote them;
    a RecipeError for a checkpoint written without its settings (by ``Network.fit``)."""
    from ..models.io import read_checkpoint_meta

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
    from ..models.io import checkpoint_path

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


def measured(result: dict, metric: str) -> float | None:
    """The number a recipe's ``metric`` names, from a ``run`` result."""
    key = {"test": "best_test_accuracy", "validation": "best_validation_accuracy",
           "test-at-best-validation": "test_accuracy_at_best_validation"}[metric]
    return result.get(key)


def default_data_dir() -> str | None:
    return os.environ.get("NNDL_DATA")


__all__ = ["DEFAULTS", "MACHINE_SETTINGS", "METRICS", "RecipeError", "build_network", "checkpoint_of_this_run",
           "checkpointed_run", "same_experiment", "load_data", "load_recipe", "measured",
           "recipe_ids", "run", "settings_from", "summarize"]
