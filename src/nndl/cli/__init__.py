"""The ``nndl`` command line: one module per subcommand, each with ``register(subparsers)``.

A subcommand module adds its parser and sets ``func`` to a function ``run(args) -> int``.
Errors from bad input (``NNDLError``, ``ValueError``, ``FileNotFoundError``) are printed as one
line, ``nndl: error: ...``, with exit status 2, never as a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Each name is a module in this package with register(subparsers).
COMMANDS = ["train", "evaluate", "reproduce", "lr-find", "plot", "data", "perceptron", "baseline", "rnn", "sweep",
            "ensemble", "predict", "read", "serve"]


class Parser(argparse.ArgumentParser):
    """Usage errors as one line that names the problem and where to get help."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="nndl",
        description="Neural Networks and Deep Learning, from scratch on NumPy.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    subparsers.required = True
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name.replace('-', '')}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        use_kernels(getattr(args, "kernels", None))
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("nndl: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, FloatingPointError, ImportError, OSError) as exc:
        print(f"nndl: error: {exc}", file=sys.stderr)
        return 2


def use_kernels(name: str | None) -> None:
    """--kernels for this process and the processes it starts (serve workers, local executors)."""
    if name:
        import os

        from ..nn import kernels

        os.environ["NNDL_KERNELS"] = kernels.use(name)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
