"""``nndl rnn seq-mnist|train|sample``: recurrent networks (the notes' recurrent section).

- ``seq-mnist``: many-to-one. A vanilla RNN reads each MNIST image as 28 rows of 28 pixels and a
  softmax layer classifies its last state; Adam with gradient clipping. It runs the recipe
  ``rnn-seq-mnist`` with these flags over its settings, through the same code as
  ``nndl reproduce rnn-seq-mnist``, and reports by the same rule, the recipe's metric: the best test
  accuracy over the epochs (as chapters 1 and 3 report theirs), with its epoch and the last epoch's.
- ``train TEXTFILE``: many-to-many. A character-level language model on a UTF-8 text, trained by
  truncated backpropagation through time; loss per epoch (and every few iterations) to
  ``--metrics`` as JSON lines; ``--save`` writes the model.
- ``sample MODEL``: one-to-many. Generate text from a saved character model.

Also runnable without the top-level dispatcher: ``python -m nndl.cli.rnn seq-mnist ...``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

from .common import non_negative_int


def register(subparsers) -> None:
    parser = subparsers.add_parser("rnn", help="recurrent networks: sequential MNIST and a character-level RNN",
                                   description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="rnn_command", metavar="{seq-mnist,train,sample}")
    sub.required = True

    p = sub.add_parser("seq-mnist", help="classify MNIST images read row by row (28 steps of 28 pixels)")
    p.add_argument("--hidden", type=int, default=128, help="hidden units (default 128)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the recipe's, 10)")
    p.add_argument("--train-size", type=int, default=None, metavar="N",
                   help="train on the first N of the 50,000 training images (default: all)")
    p.add_argument("--batch-size", type=int, default=64, metavar="M", help="mini-batch size (default 64)")
    p.add_argument("--eta", type=float, default=0.001, help="Adam learning rate (default 0.001)")
    p.add_argument("--clip", type=float, default=1.0,
                   help="clip the gradient's global norm to this (default 1.0; 0: off)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="initialisation and shuffling seed (default 0)")
    p.add_argument("--save", default=None, metavar="PATH", help="save the trained network (.npz)")
    p.add_argument("--metrics", default=None, metavar="PATH", help="per-epoch JSON lines")
    p.add_argument("--data-dir", default=None, help="folder holding the MNIST IDX files (default: looked up)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run_seq_mnist)

    p = sub.add_parser("train", help="train a character-level language model on a UTF-8 text file")
    p.add_argument("textfile", help="UTF-8 text to learn (its characters become the vocabulary)")
    p.add_argument("--hidden", type=int, default=128, help="hidden units (default 128)")
    p.add_argument("--seq-length", type=int, default=50, help="characters per BPTT chunk (default 50)")
    p.add_argument("--epochs", type=int, default=10, help="passes over the text (default 10)")
    p.add_argument("--batch-size", type=int, default=32, metavar="M", help="parallel text streams (default 32)")
    p.add_argument("--eta", type=float, default=0.002, help="Adam learning rate (default 0.002)")
    p.add_argument("--clip", type=float, default=5.0,
                   help="clip the gradient's global norm to this (default 5; 0: off)")
    p.add_argument("--validation", type=float, default=0.0, metavar="FRACTION",
                   help="hold out this last fraction of the text to measure validation loss (default 0)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="initialisation seed (default 0)")
    p.add_argument("--save", default=None, metavar="PATH", help="save the model (.npz)")
    p.add_argument("--metrics", default=None, metavar="PATH", help="loss log as JSON lines")
    p.add_argument("--plot", default=None, metavar="PNG", help="plot the loss curve to this PNG (needs matplotlib)")
    p.add_argument("--log-every", type=int, default=10, metavar="K",
                   help="log the loss every K iterations (default 10)")
    p.add_argument("--sample-chars", type=int, default=200, metavar="N",
                   help="print N sampled characters after each epoch (default 200; 0: none)")
    p.set_defaults(func=run_train)

    p = sub.add_parser("sample", help="generate text from a saved character model")
    p.add_argument("model", help="a model saved by 'nndl rnn train --save'")
    p.add_argument("--n", type=int, default=500, help="characters to generate (default 500)")
    p.add_argument("--start", default="The ", help="start string that primes the state (default 'The ')")
    p.add_argument("--temperature", type=float, default=0.8, help="softmax temperature (default 0.8)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="sampling seed (default 0)")
    p.set_defaults(func=run_sample)


def _positive(name: str, value, *, allow_zero: bool = False) -> None:
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise ValueError(f"--{name} must be {'>= 0' if allow_zero else 'positive'}, got {value}")


def run_seq_mnist(args: argparse.Namespace) -> int:
    from ..experiment import run as run_settings
    from ..recipes import load_recipe, measured
    from ..settings import settings_from

    for name in ("hidden", "epochs", "train_size", "batch_size", "eta"):
        _positive(name.replace("_", "-"), getattr(args, name), allow_zero=name == "epochs")
    _positive("clip", args.clip, allow_zero=True)
    recipe = load_recipe("rnn-seq-mnist")
    rnn, dense = recipe["settings"]["layers"]
    given = {"layers": [{**rnn, "n_hidden": args.hidden}, {**dense, "n_in": args.hidden}],
             "train_size": args.train_size, "mini_batch_size": args.batch_size, "eta": args.eta,
             "clip_norm": args.clip or None}
    if args.epochs is not None:
        given["epochs"] = args.epochs
    settings = settings_from({**recipe["settings"], **given})
    result = run_settings(settings, args.seed, data_dir=args.data_dir, verbose=not args.json, metrics=args.metrics,
                          save=args.save)
    accuracy = measured(result, recipe["metric"])        # the best test accuracy over the epochs
    summary = {"id": "rnn-seq-mnist", "hidden": args.hidden, "epochs": result["epochs_run"],
               "train_size": args.train_size, "batch_size": args.batch_size, "eta": args.eta, "clip": args.clip,
               "seed": args.seed, "rule": "best test accuracy over the epochs (the recipe's metric, test)",
               "test_accuracy": accuracy, "best_epoch": result.get("best_test_epoch"),
               "final_test_accuracy": result.get("final_evaluation_accuracy"), "seconds": result["seconds"]}
    if args.json:
        print(json.dumps(summary))
    elif accuracy is None:
        print(f"rnn-seq-mnist: no epoch trained ({args.hidden} hidden, --epochs {result['epochs_run']})")
    else:
        print(f"rnn-seq-mnist: {100 * accuracy:.2f}% on the test images at epoch {summary['best_epoch']}, the best "
              f"(last epoch {100 * summary['final_test_accuracy']:.2f}%; {args.hidden} hidden, "
              f"{result['epochs_run']} epochs, {result['seconds']:.0f} s)")
    return 0


class _JsonLines:
    """Append records to a JSON-lines file, flushed per line (so a crash keeps what was logged)."""

    def __init__(self, path: str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.f = open(path, "w")

    def __call__(self, record: dict) -> None:
        self.f.write(json.dumps(record) + "\n")
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def run_train(args: argparse.Namespace) -> int:
    from ..charrnn import CharRNN, read_text

    for name in ("hidden", "seq_length", "batch_size", "eta", "log_every"):
        _positive(name.replace("_", "-"), getattr(args, name))
    _positive("epochs", args.epochs, allow_zero=True)
    _positive("clip", args.clip, allow_zero=True)
    if not 0 <= args.validation < 1:
        raise ValueError(f"--validation must be a fraction in [0, 1), got {args.validation}")
    text = read_text(args.textfile)
    cut = len(text) - int(len(text) * args.validation)
    train_text, valid_text = text[:cut], text[cut:] or None
    model = CharRNN.from_text(text, args.hidden, seq_length=args.seq_length, seed=args.seed)
    print(f"{args.textfile}: {len(text):,} characters, vocabulary of {model.vocab_size}; "
          f"uniform guessing costs ln {model.vocab_size} = {math.log(model.vocab_size):.3f} nats/char")
    log = _JsonLines(args.metrics) if args.metrics else None
    records: list[dict] = []

    def report(record: dict) -> None:
        records.append(record)
        if log:
            log(record)
        if record["type"] == "epoch":
            extra = (f", validation {record['validation_loss_per_char']:.4f}"
                     if "validation_loss_per_char" in record else "")
            print(f"Epoch {record['epoch']}: loss {record['loss_per_char']:.4f} nats/char{extra} "
                  f"({record['seconds']:.1f} s)", flush=True)
            if args.sample_chars:
                print("  " + model.sample(args.sample_chars, start=text[0], temperature=0.8,
                                          seed=record["epoch"]).replace("\n", "\n  "), flush=True)

    try:
        model.fit(train_text, epochs=args.epochs, batch_size=args.batch_size, eta=args.eta,
                  clip_norm=args.clip or None, validation_text=valid_text, callback=report, log_every=args.log_every)
    finally:
        if log:
            log.close()
    if args.save:
        model.save(args.save, textfile=os.path.basename(args.textfile), eta=args.eta, clip=args.clip,
                   batch_size=args.batch_size, seed=args.seed)
        print(f"saved to {args.save}")
    if args.plot and records:
        from ..plots import plot_loss

        plot_loss(records, args.plot, vocab_size=model.vocab_size)
        print(f"loss curve plotted to {args.plot}")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    from ..charrnn import CharRNN

    _positive("n", args.n, allow_zero=True)
    model = CharRNN.load(args.model)
    print(model.sample(args.n, start=args.start, temperature=args.temperature, seed=args.seed))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m nndl.cli.rnn ...``: this command alone, with the dispatcher's error handling."""
    parser = argparse.ArgumentParser(prog="nndl")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["rnn", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FloatingPointError, ImportError, OSError) as exc:
        print(f"nndl: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
