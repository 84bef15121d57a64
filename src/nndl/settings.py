"""Every training setting, once: its name, type, default, choices, help, and where it is a flag.

A *setting* is one knob of a training run (``sizes``, ``eta``, ``lmbda``, ``epochs`` ...). The rows
of ``SETTINGS`` are the single source for everything that handles settings:

* ``DEFAULTS``: the value of every setting a run does not give (``settings_from`` fills them in);
* the ``nndl train`` flags (``add_flags``), shared by ``sweep``, ``ensemble`` and ``lr-find``,
  and the few that ``nndl reproduce`` takes;
* the checks a recipe's ``[settings]`` table, a Python dict or a sweep's values get
  (``check_value``: the same parser and choices as the flag);
* the identity of a run (``canonical``, ``trial_id``, ``same_experiment``), which leaves out
  the *machine settings*: where and how fast a run computes, not what it computes.

Adding a setting is adding one row here (and using it where the run is built: ``nndl.experiment``).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from .errors import NNDLError


class SettingsError(NNDLError, ValueError):
    """A setting's name or value is wrong."""


# ----- value parsers: text → value, with a one-line message for anything else --------------------
def int_list(text: str) -> list[int]:
    """"784,30,10" → [784, 30, 10]."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 784,30,10, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def name_list(text: str) -> list[str]:
    """"training-cost, evaluation_accuracy" → ["training_cost", "evaluation_accuracy"]."""
    return [k.strip().replace("-", "_") for k in text.split(",") if k.strip()]


def _number(kind: type, description: str, accept: Callable[[Any], bool]) -> Callable[[str], Any]:
    """A parser: ``kind`` read from text, refused unless ``accept(value)`` (and finite)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {description}, got {text!r}") from None
        if not accept(value) or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"expected {description}, got {text}")
        return value

    parse.__name__ = description.replace(" ", "_")
    return parse


positive_int = _number(int, "a positive integer", lambda v: v >= 1)
non_negative_int = _number(int, "an integer >= 0", lambda v: v >= 0)
positive_float = _number(float, "a positive number", lambda v: v > 0)
non_negative_float = _number(float, "a number >= 0", lambda v: v >= 0)
open_fraction = _number(float, "a number between 0 and 1 (both excluded)", lambda v: 0 < v < 1)


# ----- the schema -------------------------------------------------------------------------------
TRAIN = ("train",)                   # a flag of nndl train (and of sweep, ensemble, lr-find)
TRAIN_AND_REPRODUCE = ("train", "reproduce")


@dataclass(frozen=True)
class Setting:
    """One row of the schema. ``parse`` reads the flag's text (None: no flag, set in recipes or
    Python only); ``choices`` is a tuple or a function returning one (to import nn lazily)."""

    name: str
    default: Any
    group: str = "training"
    parse: Callable[[str], Any] | None = None
    choices: tuple | Callable[[], tuple] | None = None
    help: str | None = None
    metavar: str | None = None
    commands: tuple[str, ...] = TRAIN
    is_list: bool = False            # the value is itself a list (several values in --grid: "/")
    machine: bool = False            # where/how fast a run computes, not what: free to change on resume
    sweepable: bool = True

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def allowed(self) -> tuple | None:
        return self.choices() if callable(self.choices) else self.choices


def _activations() -> tuple:
    from .nn.activations import ACTIVATIONS
    return tuple(ACTIVATIONS)


def _costs() -> tuple:
    from .nn.costs import COSTS
    return tuple(COSTS)


def _inits() -> tuple:
    from .nn.init import NETWORK_INITS
    return tuple(NETWORK_INITS)


def _optimizers() -> tuple:
    from .train.optimizers import OPTIMIZERS
    return (*OPTIMIZERS, *FULL_BATCH)


def _regularizations() -> tuple:
    from .train.optimizers import REGULARIZATIONS
    return tuple(r for r in REGULARIZATIONS if r != "none")


def _monitors() -> tuple:
    from .train.callbacks import MONITOR_KEYS
    return MONITOR_KEYS


FULL_BATCH = ("cg", "lbfgs")         # scipy's full-batch optimisers: epochs count their iterations
SCHEDULES = ("plateau", "step", "exponential", "one-cycle", "cosine")

S = Setting
SETTINGS: tuple[Setting, ...] = (
    # network
    S("sizes", [784, 30, 10], "network", int_list, help="layer sizes, e.g. 784,30,10", is_list=True),
    S("activation", "sigmoid", "network", str, _activations, "hidden (and output) neurons"),
    S("output_activation", None, "network", str, _activations, "output neurons, if different"),
    S("layers", None, "network"),    # a list of layer tables (conv nets, recipes only); overrides sizes
    S("cost", "quadratic", "network", str, _costs),
    S("init", "default", "network", str, _inits, "default: N(0,1/n_in) weights; large: chapter 1's N(0,1)"),
    S("output_encoding", "one-hot", "network", str, ("one-hot", "binary")),
    S("dropout", 0.0, "network", non_negative_float, help="dropout probability on hidden layers"),
    # training
    S("epochs", 30, "training", non_negative_int, commands=TRAIN_AND_REPRODUCE),
    S("mini_batch_size", 10, "training", positive_int, commands=TRAIN_AND_REPRODUCE),
    S("eta", 3.0, "training", positive_float, help="learning rate η"),
    S("lmbda", 0.0, "training", non_negative_float, help="regularisation parameter λ"),
    S("regularization", "l2", "training", str, _regularizations),
    S("optimizer", "sgd", "training", str, _optimizers,
      "cg and lbfgs are full-batch (scipy); --epochs then counts their iterations"),
    S("mu", 0.9, "training", non_negative_float, help="momentum coefficient μ"),
    S("max_norm", None, "training", positive_float, help="cap each unit's incoming weight norm"),
    S("clip_norm", None, "training", positive_float, help="clip each gradient to this global norm"),
    S("early_stopping", None, "training", positive_int, help="stop after N epochs without improvement",
      metavar="N"),
    S("schedule", None, "training", str, SCHEDULES),
    S("schedule_patience", 10, "training", positive_int),
    S("schedule_factor", 0.5, "training", positive_float),
    S("schedule_floor", 1 / 128, "training", positive_float),
    S("weight_average", None, "training", open_fraction, metavar="D",
      help="beyond the book: monitor and end with a moving average of the weights, decay D per mini-batch "
           "(e.g. 0.999)"),
    # data
    S("dataset", "mnist", "data", str, ("mnist", "fashion-mnist")),
    S("train_size", None, "data", positive_int, help="use only the first N training images",
      commands=TRAIN_AND_REPRODUCE),
    S("validation_size", None, "data", positive_int),
    S("digits", None, "data", int_list, help="train and evaluate on these digits only, e.g. 0,1", is_list=True),
    S("expand", None, "data", str, ("shift4", "reading"),
      "shift4: the book's 250,000 one-pixel-shifted images; reading: photos of paper and non-digits"),
    S("augment", False, "data"),     # random distortions, new each epoch (recipes and Python)
    S("distortion", "affine", "data", str, ("affine", "elastic"),
      "with augment: affine (rotation, skew, shift) or elastic (the same plus Simard's elastic field)"),
    S("evaluate_on", "test", "data", str, ("test", "validation"), "data monitored each epoch",
      sweepable=False),              # a sweep always selects on validation data
    S("monitor_every", None, "data", positive_int, metavar="N",
      help="the book's quick check: accuracy on a few validation images every N training images"),
    S("monitor_size", 100, "data", positive_int, metavar="K", help="validation images for --monitor-every"),
    S("monitor", ["evaluation_accuracy"], "data", name_list, _monitors, is_list=True,
      help="comma list of training_cost, training_accuracy, evaluation_cost, evaluation_accuracy"),
    # machine
    S("dtype", "float32", "machine", str, ("float32", "float64")),
    S("device", "cpu", "machine", str, ("cpu", "gpu"), "where to train (gpu: CuPy)",
      commands=TRAIN_AND_REPRODUCE, machine=True),
    S("threads", None, "machine", positive_int, machine=True, commands=TRAIN_AND_REPRODUCE,
      help="cores to use (default: all for the conv kernels; BLAS threads chosen by the work per batch)"),
    S("kernels", None, "machine", str, ("numba", "numpy"), machine=True, commands=TRAIN_AND_REPRODUCE,
      help="numba: fused compiled kernels (default; $NNDL_KERNELS); numpy: the readable reference"),
)
del S

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}
FLAG_SETTINGS: tuple[str, ...] = tuple(s.name for s in SETTINGS if s.parse is not None and "train" in s.commands)
MACHINE_SETTINGS: tuple[str, ...] = tuple(s.name for s in SETTINGS if s.machine)
LIST_SETTINGS: tuple[str, ...] = tuple(s.name for s in SETTINGS if s.is_list)
GROUPS = ("network", "training", "data", "machine")


# ----- flags ------------------------------------------------------------------------------------
def add_flags(parser: argparse.ArgumentParser, command: str = "train") -> None:
    """A flag for each setting ``command`` exposes, in argument groups; every default is None, so
    that a flag not given leaves the recipe's (or DEFAULTS') value."""
    for group in GROUPS:
        rows = [s for s in SETTINGS if s.parse is not None and command in s.commands and s.group == group]
        if not rows:
            continue
        g = parser.add_argument_group(group) if command == "train" else parser
        for s in rows:
            kwargs: dict[str, Any] = {"help": s.help, "metavar": s.metavar}
            choices = s.allowed()
            if choices is not None and not s.is_list:
                kwargs["choices"] = list(choices)
                kwargs.pop("metavar")
            g.add_argument(s.flag, type=s.parse, default=None, **{k: v for k, v in kwargs.items() if v is not None})


def given_flags(args: argparse.Namespace, command: str = "train") -> dict[str, Any]:
    """The settings given as flags (not None) in parsed ``args``."""
    names = FLAG_SETTINGS if command == "train" else [s.name for s in SETTINGS if command in s.commands]
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def format_value(value: Any) -> str:
    """A setting's value as flag text: lists comma-joined, floats as repr."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def parse_value(name: str, text: str) -> Any:
    """``text`` read and checked exactly as ``nndl train --<name> <text>`` would."""
    row = _row(name)
    if row.parse is None:
        raise SettingsError(f"{name} has no flag; set it in a recipe or from Python")
    try:
        value = row.parse(text)
    except argparse.ArgumentTypeError as exc:
        raise SettingsError(f"bad value {text!r} for {name}: {exc}") from None
    _check_choices(row, value)
    return value


# ----- checking and completing a dict of settings -----------------------------------------------
def _row(name: str) -> Setting:
    if name not in BY_NAME:
        raise SettingsError(f"unknown setting {name!r}; known: {', '.join(BY_NAME)}")
    return BY_NAME[name]


def _check_choices(row: Setting, value: Any) -> None:
    choices = row.allowed()
    if choices is None or value is None:
        return
    for v in (value if row.is_list else [value]):
        if v not in choices:
            raise SettingsError(f"unknown {row.name} {v!r}; choose from {', '.join(map(str, choices))}")


def check_value(name: str, value: Any) -> None:
    """Refuse a value the setting's flag would refuse (a recipe's, a dict's, a sweep's)."""
    row = _row(name)
    if value is None or row.parse is None or row.parse is str:
        _check_choices(row, value)
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, str, list, tuple)):
        raise SettingsError(f"bad value {value!r} for {name}")
    parse_value(name, format_value(canonical(value)) if not isinstance(value, str) else value)


def settings_from(overrides: dict) -> dict:
    """DEFAULTS updated with ``overrides``, each value checked; unknown names are refused."""
    unknown = sorted(set(overrides) - set(DEFAULTS))
    if unknown:
        raise SettingsError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
    for name, value in overrides.items():
        check_value(name, value)
    settings = copy.deepcopy(DEFAULTS)
    settings.update(copy.deepcopy(overrides))
    return settings


def known(settings: dict) -> dict:
    """``settings`` completed from DEFAULTS, names nndl does not know dropped (older runs' files)."""
    return settings_from({k: v for k, v in settings.items() if k in DEFAULTS})


# ----- identity ---------------------------------------------------------------------------------
def canonical(value: Any) -> Any:
    """JSON-ready form where 5 and 5.0 are the same number (TOML ints vs flag floats)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def trial_id(settings: dict, seed: int) -> str:
    """A stable id for (settings, seed): the same training run always gets the same id."""
    text = json.dumps({"settings": canonical(settings), "seed": int(seed)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def same_experiment(a: dict, b: dict, *, ignore: Iterable[str] = ()) -> bool:
    """Whether two runs' settings compute the same thing: the machine settings aside, and the
    settings named in ``ignore``; names nndl does not know are dropped."""
    left_out = (*MACHINE_SETTINGS, *ignore)

    def key(settings: dict) -> Any:
        return canonical({k: v for k, v in known(settings).items() if k not in left_out})

    return key(a) == key(b)


__all__ = ["DEFAULTS", "FLAG_SETTINGS", "FULL_BATCH", "LIST_SETTINGS", "MACHINE_SETTINGS", "SETTINGS", "Setting",
           "SettingsError", "add_flags", "canonical", "check_value", "format_value", "given_flags", "int_list",
           "known", "non_negative_float", "non_negative_int", "parse_value", "positive_float", "positive_int",
           "same_experiment", "settings_from", "trial_id"]
