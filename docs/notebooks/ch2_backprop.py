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
# # Chapter 2: backpropagation, the four equations next to the code
#
# On a tiny network, `[3, 4, 2]` sigmoid neurons with the quadratic cost, we compute each of the
# book's four equations by hand with NumPy, and compare with what nndl's `Network.backprop` leaves
# in each parameter's `.grad`; then we check the gradients against finite differences.
#
# One convention to keep in mind: nndl's rows are samples, so a layer computes z = a·w + b with `w`
# of shape `(n_in, n_out)`: it is the book's wᵀ. The book's w·a becomes our a·w, and the book's
# (wˡ⁺¹)ᵀδˡ⁺¹ becomes our δˡ⁺¹·(wˡ⁺¹)ᵀ. Where each equation lives: `docs/ARCHITECTURE.md`.
#
# This notebook has no large computation: it is the same with or without `NNDL_NOTEBOOK_QUICK`.

# %%
import matplotlib.pyplot as plt
import numpy as np
from _common import size

import nndl
from nndl.nn.gradcheck import check_layer, numerical_gradient

rng = np.random.default_rng(0)
net = nndl.Network([nndl.Dense(3, 4, "sigmoid"), nndl.Dense(4, 2, "sigmoid")], cost="quadratic", seed=0,
                   dtype=np.float64)
hidden, out = net.layers
x = rng.standard_normal((1, 3))             # one input, a row: (m, n_in) with m = 1
y = np.array([[1.0, 0.0]])                  # its target: (m, n_out)

def sigma(z):
    return 1 / (1 + np.exp(-z))

def sigma_prime(z):
    return sigma(z) * (1 - sigma(z))

# %% [markdown]
# ## The forward pass: z = a·w + b, a = σ(z)

# %%
z1 = x @ hidden.w.value + hidden.b.value     # (1, 4)
a1 = sigma(z1)
z2 = a1 @ out.w.value + out.b.value          # (1, 2)
a2 = sigma(z2)
np.testing.assert_allclose(net.forward(x), a2)
print("output a^L =", a2.round(4), "  cost C = ½‖a − y‖² =", float(0.5 * ((a2 - y) ** 2).sum()).__round__(4))

# %% [markdown]
# ## BP1: δᴸ = ∇ₐC ⊙ σ′(zᴸ)
#
# For the quadratic cost ∇ₐC = aᴸ − y. In nndl this is `Cost.delta` (`nn/costs.py`), which multiplies
# by σ′ through the activation's `backward`. **What to look for:** the same two numbers twice.

# %%
delta2 = (a2 - y) * sigma_prime(z2)           # BP1, (1, 2)
net.forward(x, train=True)                    # keeps z and a in each layer
print("by hand:", delta2, "\nnndl:   ", net.cost.delta(out.z, out.a, y, out.activation))
np.testing.assert_allclose(net.cost.delta(out.z, out.a, y, out.activation), delta2)

# %% [markdown]
# ## BP2: δˡ = ((wˡ⁺¹)ᵀ δˡ⁺¹) ⊙ σ′(zˡ)
#
# The error moves one layer back through the weights, then through σ′. In nndl the layer above passes
# δ·wᵀ down (`Dense.backward_delta`) and the layer below applies ⊙σ′(z) (`Activation.backward`).

# %%
delta1 = (delta2 @ out.w.value.T) * sigma_prime(z1)     # BP2, (1, 4)
print("δ¹ =", delta1.round(5))

# %% [markdown]
# ## BP3 and BP4: ∂C/∂b = δ, ∂C/∂w = a_in δ
#
# `Network.backprop` runs the forward pass, BP1 at the output, then every layer's `backward` in
# reverse, and fills `.grad` of every parameter (for the *mean* cost over the mini-batch: it divides by
# m once; here m = 1). **What to look for:** all four comparisons pass.

# %%
net.backprop(x, y)
np.testing.assert_allclose(out.b.grad, delta2[0])            # BP3 at the output
np.testing.assert_allclose(out.w.grad, a1.T @ delta2)        # BP4: (4, 2) = a¹ᵀ δ²
np.testing.assert_allclose(hidden.b.grad, delta1[0])         # BP3, one layer down
np.testing.assert_allclose(hidden.w.grad, x.T @ delta1)      # BP4: (3, 4) = xᵀ δ¹
print("BP1-BP4 by hand = nndl's gradients")

# %% [markdown]
# ## A gradient check: finite differences
#
# ∂C/∂w ≈ (C(w + ε) − C(w − ε)) / 2ε for every weight, compared with backprop. The relative error
# should be around 1e-8 or smaller in float64; a bug in any equation makes it of order 1.

# %%
def cost():
    return float(net.cost.fn(net.forward(x), y))

for p in net.params:
    numeric = numerical_gradient(cost, p.value)
    net.backprop(x, y)
    err = np.abs(p.grad - numeric).max() / max(np.abs(p.grad).max(), np.abs(numeric).max())
    print(f"{p.name} {p.value.shape}: relative error {err:.1e}")
    assert err < 1e-6

# %% [markdown]
# The same check on single layers for every activation (`check_layer`, as the tests do), with a random
# upstream gradient. **What to look for:** every relative error is tiny.

# %%
for activation in ("sigmoid", "tanh", "relu", "softmax"):
    layer = nndl.Dense(5, 3, activation)
    layer.build((5,), np.random.default_rng(1), np.float64, "default")
    errors = check_layer(layer, np.random.default_rng(2).standard_normal((4, 5)))
    print(f"{activation:8s}", {k: f"{v:.1e}" for k, v in errors.items()})
    assert max(errors.values()) < 1e-6

# %% [markdown]
# ## The mini-batch at once
#
# The book's `network.py` runs backprop once per example and sums. nndl does the whole mini-batch as
# matrix products. **What to look for:** the batched gradient equals the mean of per-example ones,
# and it is much faster.

# %%
import time

m = size(100, 1000)
xb, yb = rng.standard_normal((m, 3)), np.eye(2)[rng.integers(0, 2, m)]
net.backprop(xb, yb)
batched = [p.grad.copy() for p in net.params]
start = time.perf_counter()
mean = [np.zeros_like(g) for g in batched]
for i in range(m):
    net.backprop(xb[i:i + 1], yb[i:i + 1])
    for acc, p in zip(mean, net.params):
        acc += p.grad / m
per_example = time.perf_counter() - start
start = time.perf_counter()
net.backprop(xb, yb)
once = time.perf_counter() - start
for g, h in zip(batched, mean):
    np.testing.assert_allclose(g, h, rtol=1e-10, atol=1e-12)
print(f"{m} examples: one at a time {1e3 * per_example:.1f} ms, as one batch {1e3 * once:.2f} ms")

# %% [markdown]
# ## Why the output error matters: σ′ near saturation
#
# BP1 multiplies by σ′(zᴸ), at most 1/4 and tiny when the neuron saturates. **What to look for:** the
# curve: a neuron that is badly wrong (z far from 0) learns slowly with the quadratic cost. Chapter 3's
# cross-entropy cost removes that factor (`ch3_improving.py`).

# %%
zs = np.linspace(-8, 8, 400)
fig, ax = plt.subplots(figsize=(6, 2.8))
ax.plot(zs, sigma_prime(zs)); ax.set_xlabel("z"); ax.set_ylabel("σ′(z)"); plt.show()

# %% [markdown]
# ## Why backpropagation: the book's count of forward passes
#
# The book's argument for backpropagation: the finite-difference gradient above needs one extra
# forward pass per weight, a million passes for a million weights, while backpropagation gets every
# partial derivative from one forward and one backward pass, "roughly the same as two forward passes".
# For the book's `[784, 30, 10]` network that is 23,860 weights and biases. **What to look for:**
# the ratio of the two times measured here is in the thousands, as the count says it must be.

# %%
big = nndl.Network([nndl.Dense(784, 30, "sigmoid"), nndl.Dense(30, 10, "sigmoid")], cost="quadratic", seed=0,
                   dtype=np.float64)
xs, ys = rng.random((10, 784)), np.eye(10)[rng.integers(0, 10, 10)]
start = time.perf_counter()
big.backprop(xs, ys)
backprop_seconds = time.perf_counter() - start
w = big.layers[0].w.value
k = size(200, 2000)                     # time the finite differences on k weights, then scale up
start = time.perf_counter()
for i in range(k):
    old = w.flat[i]
    w.flat[i] = old + 1e-6
    big.cost.fn(big.forward(xs), ys)
    w.flat[i] = old - 1e-6
    big.cost.fn(big.forward(xs), ys)
    w.flat[i] = old
finite_seconds = (time.perf_counter() - start) / k * big.n_params
print(f"{big.n_params:,} parameters: finite differences ≈ {finite_seconds:.2f} s, backprop {1e3 * backprop_seconds:.2f} ms, "
      f"{finite_seconds / backprop_seconds:,.0f} times longer")
assert big.n_params == 23860 and finite_seconds > 100 * backprop_seconds
