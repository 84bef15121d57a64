# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 3: improving the way networks learn
#
# The book's chapter 3 with nndl: the learning slowdown of the quadratic cost and how cross-entropy
# removes it; overfitting on 1,000 images and L2 regularisation; dropout; the N(0, 1/n_in)
# initialisation; and the learning rate η with a schedule. Each section says what to look for in its
# plot, with the book's numbers beside ours (our full-size runs are in `docs/runs/reproduce`).
#
# `NNDL_NOTEBOOK_QUICK=1` runs everything small (fewer epochs, fewer evaluation images); unset, the
# sections run at the book's sizes (the overfitting runs: 400 epochs each, a few minutes).

# %%
import matplotlib.pyplot as plt
import numpy as np
from _common import QUICK, curve, rows, size

import nndl
from nndl.train import PlateauSchedule

training, validation, test = nndl.data.load_mnist()
test_small = (test[0][:size(1000, 10000)], test[1][:size(1000, 10000)])

# %% [markdown]
# ## The learning slowdown: one neuron, quadratic against cross-entropy
#
# The book's single sigmoid neuron learns to output 0 for the input 1, with η = 0.15. Starting from
# w = 2, b = 2 it is badly wrong and saturated (output 0.98). With the quadratic cost, ∂C/∂w = (a − y)
# σ′(z) x, and σ′(z) is tiny there, so learning starts very slowly; with cross-entropy ∂C/∂w = (a − y) x:
# the σ′ factor is gone, and the more wrong the neuron, the faster it learns.
#
# **What to look for:** from (2, 2) the quadratic cost stays flat for about the first 150 epochs; the
# cross-entropy cost falls at once. From (0.6, 0.9), not saturated, both learn at once.

# %%
def one_neuron(cost: str, w: float, b: float, epochs: int = 300) -> list[float]:
    net = nndl.Network([nndl.Dense(1, 1, "sigmoid")], cost=cost, seed=0, dtype=np.float64)
    net.set_weights([np.array([[w]]), np.array([b])])
    data = (np.array([[1.0]]), np.array([[0.0]]))        # input 1, target 0
    history = net.fit(data, epochs=epochs, mini_batch_size=1, eta=0.15, monitor_training_cost=True,
                      monitor_evaluation_accuracy=False)
    return history.training_cost

fig, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=False)
for ax, (w, b) in zip(axes, [(0.6, 0.9), (2.0, 2.0)]):
    for cost in ("quadratic", "cross-entropy"):
        ax.plot(one_neuron(cost, w, b), label=cost)
    ax.set_title(f"start w = {w}, b = {b}"); ax.set_xlabel("epoch"); ax.set_ylabel("cost"); ax.legend()
plt.show()
quadratic, cross = one_neuron("quadratic", 2.0, 2.0), one_neuron("cross-entropy", 2.0, 2.0)
print(f"from (2, 2), cost after 50 epochs: quadratic {quadratic[50]:.3f} (from {quadratic[0]:.3f}), "
      f"cross-entropy {cross[50]:.3f} (from {cross[0]:.3f})")
assert quadratic[0] - quadratic[50] < 0.1 * (cross[0] - cross[50])     # the slowdown

# %% [markdown]
# ## Overfitting, and L2 regularisation
#
# `[784, 30, 10]`, cross-entropy, η = 0.5, m = 10, trained on only the first 1,000 training images
# for 400 epochs. The training cost keeps falling, while the test accuracy stops improving around
# epoch 280: the network learns the peculiarities of its 1,000 images. With L2 (λ = 0.1) the weights are
# kept small and the test accuracy goes on rising.
#
# The book: **82.27%** without regularisation, **87.1%** with λ = 0.1. Ours at full size: 82.83% and
# 88.07% (best seeds, `docs/runs/reproduce/ch3-overfit*`). **What to look for:** in the left plot, the
# training cost of both runs falls; in the right plot, the gap between the grey (unregularised) and
# coloured (L2) test accuracy widens with the epochs.

# %%
small = (training[0][:1000], training[1][:1000])
epochs = size(30, 400)
runs = {}
for lmbda in (0.0, 0.1):
    net = nndl.Network([nndl.Dense(784, 30, "sigmoid"), nndl.Dense(30, 10, "sigmoid")], cost="cross-entropy", seed=0)
    runs[lmbda] = net.fit(small, epochs=epochs, mini_batch_size=10, eta=0.5, lmbda=lmbda, evaluation_data=test_small,
                          monitor_training_cost=True).records
for lmbda, book in ((0.0, 0.8227), (0.1, 0.871)):
    print(f"λ = {lmbda}: book {100 * book:.2f}%   this run {100 * max(curve(runs[lmbda], 'evaluation_accuracy')[1]):.2f}% "
          f"({epochs} epochs)")

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
full = {0.0: rows("reproduce/ch3-overfit/seed0.jsonl"), 0.1: rows("reproduce/ch3-overfit-l2/seed0.jsonl")}
for lmbda, colour in ((0.0, "0.5"), (0.1, "C0")):
    left.plot(*curve(runs[lmbda], "training_cost"), color=colour, label=f"λ = {lmbda}, this run")
    left.plot(*curve(full[lmbda], "training_cost"), color=colour, ls=":", label=f"λ = {lmbda}, full run")
    right.plot(*curve(runs[lmbda], "evaluation_accuracy"), color=colour, label=f"λ = {lmbda}, this run")
    right.plot(*curve(full[lmbda], "evaluation_accuracy"), color=colour, ls=":", label=f"λ = {lmbda}, full run")
right.axhline(0.8227, color="0.5", lw=0.8, ls="--"); right.axhline(0.871, color="C0", lw=0.8, ls="--")
left.set_title("training cost"); right.set_title("test accuracy (dashed: the book)")
for ax in (left, right):
    ax.set_xlabel("epoch"); ax.legend(fontsize=7)
plt.show()
assert runs[0.0][-1]["training_cost"] < runs[0.0][0]["training_cost"]

# %% [markdown]
# ## Dropout
#
# Dropout drops each hidden unit with probability p = 0.5 on every mini-batch, so the network cannot
# rely on any one unit: like training many networks and averaging them. nndl's `Dropout(0.5)` scales the
# kept units by 2 in training (inverted dropout); `Dropout(0.5, inverted=False)` is the book's
# convention. Both compute the same function at test time.
#
# **What to look for:** on 1,000 training images, the network without dropout fits its training set
# almost perfectly and the test accuracy lags far behind; with dropout the training accuracy is lower
# and the gap smaller. (The book's dropout result, 99.60% with conv layers and expanded data, is in
# `ch6_deep.py`.)

# %%
gaps = {}
for name, layers in (("no dropout", [nndl.Dense(784, 100, "relu"), nndl.Dense(100, 10, "softmax")]),
                     ("dropout 0.5", [nndl.Dense(784, 100, "relu"), nndl.Dropout(0.5), nndl.Dense(100, 10, "softmax")])):
    net = nndl.Network(layers, cost="log-likelihood", seed=0)
    h = net.fit(small, epochs=size(15, 60), mini_batch_size=10, eta=0.05, evaluation_data=test_small,
                monitor_training_accuracy=True).records
    gaps[name] = (h[-1]["training_accuracy"], h[-1]["evaluation_accuracy"])
    plt.plot(*curve(h, "training_accuracy"), ls="--", label=f"{name}: training")
    plt.plot(*curve(h, "evaluation_accuracy"), label=f"{name}: test")
plt.xlabel("epoch"); plt.ylabel("accuracy"); plt.legend(fontsize=8); plt.show()
for name, (train_acc, test_acc) in gaps.items():
    print(f"{name:12s} training {100 * train_acc:.1f}%  test {100 * test_acc:.1f}%  gap {100 * (train_acc - test_acc):.1f}")

# %% [markdown]
# ## Initialisation: N(0, 1) against N(0, 1/n_in)
#
# With N(0, 1) weights, z = Σ w x + b of a hidden neuron has a standard deviation of about
# √(number of active inputs) — 22 for 500 active pixels in the book's example — so σ(z) saturates and
# learning is slow. With N(0, 1/n_in) (nndl's `default`, the book's `default_weight_initializer`) z is
# of order 1.
#
# **What to look for:** the histograms (the wide one saturates σ); and the learning curves: the
# default initialisation starts higher and gets there sooner. The book: both end near 96% after 30
# epochs of `[784, 30, 10]` with λ = 5, the new one much faster.

# %%
x = training[0][:size(5000, 50000)], training[1][:size(5000, 50000)]
fig, (hist, learn) = plt.subplots(1, 2, figsize=(10, 3))
for init in ("large", "default"):
    net = nndl.Network([nndl.Dense(784, 30, "sigmoid"), nndl.Dense(30, 10, "sigmoid")], cost="cross-entropy",
                       seed=0, init=init)
    z = x[0][:500] @ net.layers[0].w.value + net.layers[0].b.value
    hist.hist(z.ravel(), bins=60, alpha=0.6, label=f"{init}: std {z.std():.1f}")
    h = net.fit(x, epochs=size(3, 30), mini_batch_size=10, eta=0.1, lmbda=5.0, evaluation_data=test_small).records
    learn.plot(*curve(h, "evaluation_accuracy"), "o-", label=init)
hist.set_title("hidden z before training"); hist.legend()
learn.set_title("test accuracy"); learn.set_xlabel("epoch"); learn.legend()
plt.show()

# %% [markdown]
# ## The learning rate η, and a schedule
#
# The book's figure: the training cost over the first epochs for η = 0.025, 0.25 and 2.5. Too small and
# it falls slowly; too large and it oscillates or climbs. A schedule starts large and halves η each
# time the validation accuracy has not improved for a while (`PlateauSchedule`, the book's
# suggestion: stop when η has fallen to 1/128 of its start).
#
# **What to look for:** η = 0.25 falls fastest and smoothly; η = 2.5 jumps about above it; in the last
# plot η steps down by halves.

# %%
x = training[0][:size(2000, 50000)], training[1][:size(2000, 50000)]
for eta in (0.025, 0.25, 2.5):
    net = nndl.Network([nndl.Dense(784, 30, "sigmoid"), nndl.Dense(30, 10, "sigmoid")], cost="cross-entropy", seed=0)
    h = net.fit(x, epochs=size(6, 30), mini_batch_size=10, eta=eta, lmbda=5.0, monitor_training_cost=True,
                monitor_evaluation_accuracy=False).records
    plt.plot(*curve(h, "training_cost"), label=f"η = {eta}")
plt.xlabel("epoch"); plt.ylabel("training cost"); plt.legend(); plt.show()

net = nndl.Network([nndl.Dense(784, 30, "sigmoid"), nndl.Dense(30, 10, "sigmoid")], cost="cross-entropy", seed=0)
val = (validation[0][:size(500, 10000)], validation[1][:size(500, 10000)])
h = net.fit(x, epochs=size(12, 60), mini_batch_size=10, eta=0.5, lmbda=5.0, evaluation_data=val,
            callbacks=[PlateauSchedule(patience=size(1, 5), factor=0.5)]).records
fig, (acc, eta_ax) = plt.subplots(1, 2, figsize=(10, 3))
acc.plot(*curve(h, "evaluation_accuracy")); acc.set_title("validation accuracy")
eta_ax.plot(*curve(h, "eta"), drawstyle="steps-post"); eta_ax.set_title("η (PlateauSchedule)")
for ax in (acc, eta_ax):
    ax.set_xlabel("epoch")
plt.show()
print("η over the epochs:", [r["eta"] for r in h])
assert h[-1]["eta"] <= h[0]["eta"]
if QUICK:
    print("quick sizes: the curves are short; unset NNDL_NOTEBOOK_QUICK for the book's")
