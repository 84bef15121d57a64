"""Fit ``nndl.segment.WEIGHTS``: a latent linear-chain CRF over the candidate segmentations.

    NNDL_DATA=../shared nice .venv/bin/python benchmarks/fit_segmenter.py [--numbers 1600] [--dev 600]

The numbers are written with MNIST *validation* digits (``nndl.data.marks.number``: 3-6 digits,
half of them with one touching pair) and read by the bundled reader; no test digit is used
(``bench_reading.py`` measures on those). Each number's units are chained into one lattice
(``nndl.segment.lattice``): a path through it is a segmentation, its score the sum over its pieces
of ``WEIGHTS · FEATURES``. The CRF makes P(segmentation) proportional to exp(score) and maximises,
over the training numbers, the log of the probability of the segmentations that read the right
digits (the cuts themselves are not labelled: any path giving the true string counts), minus
``l2/2 |w|²``. Gradient: E[features | right digits] - E[features], from forward-backward sums over
the lattice (compiled with Numba). Minimised by L-BFGS from the current weights; the L2 strength is
chosen on the dev numbers by exact-match rate (the best path, as ``read_ink`` decodes it).

It prints the exact-match rates of the current and the fitted weights on the dev numbers, and the
fitted weights to paste into ``nndl/segment.py`` if they read better.
"""
from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
from numba import njit
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from nndl.data import load_mnist  # noqa: E402
from nndl.data.images import ink_map  # noqa: E402
from nndl.data.marks import number  # noqa: E402
from nndl.models import load_default_model  # noqa: E402
from nndl.segment import FEATURES, TOO_WIDE_SCORE, WEIGHTS, lattice  # noqa: E402


def collect(net, x, y, n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` numbers as one edge list: per edge its source and target node, digit and feature row
    (-1: too wide); per number its first edge, node count and label (CSR-style offsets)."""
    rng = np.random.default_rng(seed)
    src, dst, digit, rows, feats = [], [], [], [], []
    edge_at, nodes, label_at, labels = [0], [], [0], []
    for t in range(n):
        idx = rng.choice(len(x), size=int(rng.integers(3, 7)), replace=False)
        ink = number(x[idx], rng, touching=t % 2 == 1)
        offset = 0
        for unit in lattice(net, ink_map(np.uint8(255 * (1 - ink)))):
            for (i, j), f in sorted(unit.features.items(), key=lambda e: e[0][1]):  # by target: topological
                src.append(offset + i), dst.append(offset + j), digit.append(unit.read[(i, j)][0])
                rows.append(-1 if f is None else len(feats))
                if f is not None:
                    feats.append(f)
            offset += len(unit.cuts) - 1            # a unit's last cut is the next unit's first, so the
        # number's edges stay sorted by target, as the forward pass needs
        edge_at.append(len(src)), nodes.append(offset + 1)
        labels += [int(d) for d in y[idx]]
        label_at.append(len(labels))
    i64 = lambda a: np.asarray(a, np.int64)  # noqa: E731
    return {"src": i64(src), "dst": i64(dst), "digit": i64(digit), "row": i64(rows),
            "features": np.asarray(feats, np.float64).reshape(-1, len(FEATURES)), "edge_at": i64(edge_at),
            "nodes": i64(nodes), "label_at": i64(label_at), "labels": i64(labels)}


@njit
def _logadd(a, b):
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    m = max(a, b)
    return m + np.log(np.exp(a - m) + np.exp(b - m))


@njit
def _crf(score, src, dst, digit, edge_at, nodes, label_at, labels, grad_score):
    """Sum over numbers of -log P(right digits); grad_score[e] gets d(that)/d(score[e]). Numbers
    with no path reading their digits are skipped; returns (loss, numbers used)."""
    loss, used = 0.0, 0
    for t in range(len(nodes)):
        e0, e1, n = edge_at[t], edge_at[t + 1], nodes[t]
        lab = labels[label_at[t]:label_at[t + 1]]
        L = len(lab)
        alpha, beta = np.full(n, -np.inf), np.full(n, -np.inf)
        ga, gb = np.full((n, L + 1), -np.inf), np.full((n, L + 1), -np.inf)
        alpha[0], beta[n - 1], ga[0, 0], gb[n - 1, L] = 0.0, 0.0, 0.0, 0.0
        for e in range(e0, e1):                        # forward, edges by target
            i, j, s = src[e], dst[e], score[e]
            alpha[j] = _logadd(alpha[j], alpha[i] + s)
            for p in range(L):
                if lab[p] == digit[e]:
                    ga[j, p + 1] = _logadd(ga[j, p + 1], ga[i, p] + s)
        for e in range(e1 - 1, e0 - 1, -1):            # backward, the same edges reversed
            i, j, s = src[e], dst[e], score[e]
            beta[i] = _logadd(beta[i], s + beta[j])
            for p in range(L):
                if lab[p] == digit[e]:
                    gb[i, p] = _logadd(gb[i, p], s + gb[j, p + 1])
        z_all, z_good = alpha[n - 1], ga[n - 1, L]
        if z_good == -np.inf:
            continue
        used += 1
        loss += z_all - z_good
        for e in range(e0, e1):
            i, j, s = src[e], dst[e], score[e]
            good = 0.0
            for p in range(L):
                if lab[p] == digit[e]:
                    good += np.exp(ga[i, p] + s + gb[j, p + 1] - z_good)
            grad_score[e] += np.exp(alpha[i] + s + beta[j] - z_all) - good
    return loss, used


@njit
def _exact(score, src, dst, digit, edge_at, nodes, label_at, labels):
    """How many numbers the best path reads exactly (pieces by right end, first best kept, as
    ``segment._best_split``)."""
    right = 0
    for t in range(len(nodes)):
        e0, e1, n = edge_at[t], edge_at[t + 1], nodes[t]
        best, back = np.full(n, -np.inf), np.full(n, -1)
        best[0] = 0.0
        for e in range(e0, e1):
            if best[src[e]] + score[e] > best[dst[e]]:
                best[dst[e]], back[dst[e]] = best[src[e]] + score[e], e
        read, j = [], n - 1
        while j > 0:
            read.append(digit[back[j]])
            j = src[back[j]]
        lab = labels[label_at[t]:label_at[t + 1]]
        if len(read) == len(lab):
            ok = True
            for k in range(len(lab)):
                ok = ok and read[len(read) - 1 - k] == lab[k]
            right += ok
    return right


def cached(folder: str | None, name: str, make) -> dict[str, np.ndarray]:
    """``make()``, kept in folder/name.npz (written atomically) when a folder is given."""
    if folder is None:
        return make()
    path = Path(folder) / f"{name}.npz"
    if path.exists():
        with np.load(path) as f:
            return dict(f)
    data = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **data)
    tmp.replace(path)
    return data


def scores(data: dict, w: np.ndarray) -> np.ndarray:
    s = np.full(len(data["src"]), TOO_WIDE_SCORE)
    ok = data["row"] >= 0
    s[ok] = data["features"][data["row"][ok]] @ w
    return s


def exact_rate(data: dict, w: np.ndarray) -> float:
    keys = ("src", "dst", "digit", "edge_at", "nodes", "label_at", "labels")
    return _exact(scores(data, w), *(data[k] for k in keys)) / len(data["nodes"])


def fit(data: dict, w0: np.ndarray, l2: float) -> np.ndarray:
    keys = ("src", "dst", "digit", "edge_at", "nodes", "label_at", "labels")
    ok = data["row"] >= 0

    def objective(w):
        grad_score = np.zeros(len(data["src"]))
        loss, used = _crf(scores(data, w), *(data[k] for k in keys), grad_score)
        grad = data["features"][data["row"][ok]].T @ grad_score[ok]
        return loss / used + 0.5 * l2 * w @ w, grad / used + l2 * w

    return minimize(objective, w0, jac=True, method="L-BFGS-B", options={"maxiter": 300}).x


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--numbers", type=int, default=1600, help="training numbers (half with a touching pair)")
    p.add_argument("--dev", type=int, default=600, help="dev numbers, for the L2 strength and the report")
    p.add_argument("--l2", type=float, nargs="+", default=[0.0, 1e-5, 3e-5, 1e-4, 3e-4])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", help="an .npz folder keeping the lattices, so a second fit skips the reading")
    args = p.parse_args()
    net = load_default_model()
    _, (x, y), _ = load_mnist()                          # validation digits only
    start = time.perf_counter()
    train, dev = (cached(args.cache, f"{part}-{n}-{args.seed}", lambda: collect(net, x, y, n, [args.seed, k]))
                  for part, n, k in (("train", args.numbers, 1), ("dev", args.dev, 2)))
    print(f"lattices of {args.numbers} + {args.dev} numbers ({len(train['src'])} + {len(dev['src'])} pieces) "
          f"in {time.perf_counter() - start:.0f} s", flush=True)
    print(f"current weights: dev exact {100 * exact_rate(dev, WEIGHTS):.2f}%, "
          f"train {100 * exact_rate(train, WEIGHTS):.2f}%")
    best = (exact_rate(dev, WEIGHTS), None, WEIGHTS)
    for l2 in args.l2:
        w = fit(train, WEIGHTS.astype(np.float64), l2)
        rate = exact_rate(dev, w)
        print(f"l2 {l2:g}: dev exact {100 * rate:.2f}%, train {100 * exact_rate(train, w):.2f}%", flush=True)
        if rate > best[0]:
            best = (rate, l2, w)
    if best[1] is None:
        print("no fit reads the dev numbers better than the current weights")
        return
    text = ", ".join(f"{v:.3f}" for v in best[2])
    print(f"best: l2 {best[1]:g}, dev exact {100 * best[0]:.2f}%\nWEIGHTS = np.array([")
    print("\n".join(textwrap.wrap(text, 104, initial_indent="    ", subsequent_indent="    ")) + "])")


if __name__ == "__main__":
    main()
