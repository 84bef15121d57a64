"""``nndl serve [--model M] [--host 127.0.0.1] [--port 8000] [--workers N] [--runs DIR]``: the web app.

Opens a page with a drawing canvas that shows the network's reading live, and a JSON API
(``/api/predict``, ``/api/read``, ``/api/health``; schema at ``/openapi.json``, docs at ``/docs``).
``--runs DIR`` adds the page's Runs tab: the training runs under DIR (metrics files of ``nndl train
--metrics`` and ``nndl reproduce --out``), their curves drawn live as they train (``/api/runs``;
read-only, see ``nndl.web.runs``).
``--workers N`` serves from N processes on one port (one per core to use: a process computes on
one core at a time). See ``nndl.web.workers``. Needs ``pip install -e '.[web]'`` in the checkout. Also runnable as
``python -m nndl.cli.serve`` with the same arguments.
"""
from __future__ import annotations

import argparse
import os
import sys

from .common import add_kernels_flag, positive_float, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="the web app: draw digits, see the network read them")
    add_arguments(p)
    add_kernels_flag(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, metavar="M", help="a saved network (.npz); default: the bundled model")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.add_argument("--workers", type=positive_int, default=1, metavar="N",
                   help="server processes (default 1); N > 1 uses N cores: each loads the model, "
                        "the kernel spreads the connections over them (Linux)")
    p.add_argument("--blas-threads", type=positive_int, default=1, metavar="N",
                   help="BLAS threads (default 1: one digit is a tiny matrix product)")
    p.add_argument("--runs", default=None, metavar="DIR",
                   help="show the training runs under DIR in the page's Runs tab, live (read-only)")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a host name the server answers to besides its address's (repeatable); others get 400")
    p.add_argument("--request-timeout", type=positive_float, default=20.0, metavar="S",
                   help="seconds a client has to send a whole request before it is dropped (default 20)")


def run(args: argparse.Namespace) -> int:
    """Load the model (refusing a bad one before binding the port), then serve until interrupted."""
    from ..models.default import load_model, model_label
    from ..web.workers import check_port_free, run_server, run_workers

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    net = load_model(args.model)  # load (and validate) before binding the port
    if args.runs is not None and not os.path.isdir(args.runs):
        raise FileNotFoundError(f"--runs {args.runs}: no such folder")
    if args.port:
        check_port_free(args.host, args.port)   # a port in use is said before "serving ... on"
    processes = f" in {args.workers} processes" if args.workers > 1 else ""
    runs = f", runs of {os.path.abspath(args.runs)}" if args.runs else ""
    print(f"nndl: serving {model_label(args.model)}{runs} on http://{args.host}:{args.port}/{processes} "
          "(Ctrl-C to stop)", file=sys.stderr, flush=True)
    options = dict(host=args.host, port=args.port, model_name=model_label(args.model),
                   blas_threads=args.blas_threads, log_level=args.log_level, allowed_hosts=tuple(args.allowed_host),
                   request_timeout=args.request_timeout, runs_dir=args.runs)
    if args.workers > 1:
        run_workers(args.model, args.workers, **options)  # each worker loads the model from the file
    else:
        run_server(net, **options)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m nndl.cli.serve``: the same command without the ``nndl`` dispatcher."""
    parser = argparse.ArgumentParser(prog="nndl serve", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError, ImportError, OSError) as exc:
        print(f"nndl: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
