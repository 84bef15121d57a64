"""Time to accuracy: seconds of training until the validation accuracy first reaches 98%, 99%, 99.5%,
for nndl and for the same recipe in PyTorch CPU, side by side in one run.

    nice .venv/bin/python benchmarks/bench_time_to_accuracy.py [--recipe fast-99] [--threads 2] [--no-torch]

The recipe's network (its ``layers`` table), mini-batch size, optimiser (SGD or momentum), learning
rate, schedule (one-cycle or none), epochs and on-the-fly distortions (``augment``: nndl's function,
for both) are used by both; each epoch's training time is summed (evaluation is not counted), the
validation set is measured after each epoch, and the test set is reported for the network each run
ends with: nndl's at its best validation epoch (as the recipes report), PyTorch's last (issue 17:
`fast-99` must reach >= 99.0% test accuracy in <= 30 s of training, `fast-995` >= 99.5% in <= 10
minutes). PyTorch runs with ``torch.set_num_threads(threads)``.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import nndl  # noqa: E402
from nndl.data import augment as random_distortion  # noqa: E402
from nndl.experiment import load_data, run  # noqa: E402
from nndl.recipes import load_recipe  # noqa: E402

LEVELS = (0.98, 0.99, 0.995)


def seconds_to(records: list[dict], key: str = "evaluation_accuracy") -> dict[float, float | None]:
    """Cumulative training seconds at the first epoch whose ``key`` reaches each level."""
    out: dict[float, float | None] = {level: None for level in LEVELS}
    total = 0.0
    for r in records:
        total += r["seconds"]
        for level in LEVELS:
            if out[level] is None and (r.get(key) or 0) >= level:
                out[level] = round(total, 1)
    return out


def nndl_run(settings: dict, threads: int) -> dict:
    result = run({**settings, "threads": threads}, 0)
    history = result["history"]
    return {"to": seconds_to(history), "seconds": round(result["training_seconds"], 1),
            "test": result.get("test_accuracy_at_best_validation", history[-1].get("test_accuracy")),
            "validation": result.get("best_validation_accuracy", history[-1].get("evaluation_accuracy"))}


def torch_model(layers: list[dict]):
    import torch.nn as tnn

    act = {"relu": tnn.ReLU, "sigmoid": tnn.Sigmoid, "tanh": tnn.Tanh}
    mods, flat, channels = [], False, 1
    for spec in layers:
        kind = spec["kind"]
        if kind == "convpool":
            mods += [tnn.Conv2d(channels, spec["n_maps"], spec["k"]), act[spec["activation"]](),
                     tnn.MaxPool2d(spec["pool"])]
            channels = spec["n_maps"]
        elif kind == "dropout":
            mods.append(tnn.Dropout(spec["p"]))
        elif kind == "dense":
            if not flat:
                mods.append(tnn.Flatten())
                flat = True
            mods.append(tnn.Linear(spec["n_in"], spec["n_out"]))
            if spec["activation"] != "softmax":
                mods.append(act[spec["activation"]]())
        else:
            raise ValueError(f"bench_time_to_accuracy: no PyTorch twin for layer kind {kind!r}")
    for m in mods:                                  # He initialisation, biases 0, as the recipes' init = "he"
        if isinstance(m, (tnn.Conv2d, tnn.Linear)):
            tnn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            tnn.init.zeros_(m.bias)
    return tnn.Sequential(*mods)


def torch_run(settings: dict, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    training, validation, test = load_data(settings)
    as_t = lambda d: (torch.from_numpy(np.array(d[0])).reshape(-1, 1, 28, 28), torch.from_numpy(np.array(d[1])))  # noqa
    (x, y), (xv, yv), (xt, yt) = as_t(training), as_t(validation), as_t(test)
    model = torch_model(settings["layers"])
    m, epochs, eta = settings["mini_batch_size"], settings["epochs"], settings["eta"]
    momentum = settings["mu"] if settings["optimizer"] in ("momentum", "nesterov") else 0.0
    # lmbda as nndl's l2 (λ/n per step on w) is weight decay λ/n on the mean-gradient scale.
    decay = settings["lmbda"] / len(x) * (m if settings["regularization"] == "l2-ch6" else 1)
    opt = torch.optim.SGD(model.parameters(), lr=eta, momentum=momentum,
                          nesterov=settings["optimizer"] == "nesterov", weight_decay=decay)
    steps = epochs * math.ceil(len(x) / m)
    sched = (torch.optim.lr_scheduler.OneCycleLR(opt, eta, total_steps=steps, pct_start=0.25, div_factor=10,
                                                 final_div_factor=100, anneal_strategy="cos",
                                                 cycle_momentum=False)
             if settings["schedule"] == "one-cycle" else None)
    loss_fn = torch.nn.CrossEntropyLoss()
    records = []

    def accuracy(xe, ye) -> float:
        model.eval()
        with torch.no_grad():
            return float((model(xe).argmax(1) == ye).float().mean())

    rng = np.random.default_rng(0)
    for epoch in range(epochs):
        model.train()
        start = time.perf_counter()
        perm = torch.randperm(len(x))
        xe, ye = x, y
        if settings["augment"]:     # the same distortions as nndl's, drawn each epoch, timed with it
            xe, ye = torch.from_numpy(random_distortion(x[perm].numpy(), rng)), y[perm]
            perm = torch.arange(len(x))
        for k in range(0, len(x), m):
            idx = perm[k:k + m]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xe[idx]), ye[idx]).backward()
            opt.step()
            if sched is not None:
                sched.step()
        records.append({"seconds": time.perf_counter() - start, "evaluation_accuracy": accuracy(xv, yv)})
    return {"to": seconds_to(records), "seconds": round(sum(r["seconds"] for r in records), 1),
            "test": accuracy(xt, yt), "validation": records[-1]["evaluation_accuracy"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", action="append", default=None, help="recipe id (repeat; default fast-99)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--no-torch", action="store_true", help="nndl only")
    args = p.parse_args()
    try:
        import torch
        have_torch = not args.no_torch
        version = torch.__version__
    except ImportError:
        have_torch, version = False, "not installed (pip install -e '.[bench]')"
    print(f"bench_time_to_accuracy: {args.threads} threads, nndl {nndl.__version__}, numpy {np.__version__}, "
          f"torch {version}; load average {os.getloadavg()[0]:.2f}")
    print("| recipe | library | s to 98% val | s to 99% val | s to 99.5% val | training s | validation | test |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for rid in args.recipe or ["fast-99"]:
        settings = load_recipe(rid)["settings"]
        runs = {"nndl": nndl_run(settings, args.threads)}
        if have_torch:
            runs["PyTorch"] = torch_run(settings, args.threads)
        for name, r in runs.items():
            to = " | ".join("—" if r["to"][lv] is None else f"{r['to'][lv]}" for lv in LEVELS)
            print(f"| {rid} | {name} | {to} | {r['seconds']} | {100 * r['validation']:.2f}% | "
                  f"{100 * r['test']:.2f}% |", flush=True)


if __name__ == "__main__":
    main()
