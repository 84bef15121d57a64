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
# # Recurrent networks: sequential MNIST and a character model
#
# Beyond the book's chapters (it only mentions recurrent networks in chapter 6): a vanilla RNN,
# hₜ = tanh(xₜ·w_xh + hₜ₋₁·w_hh + b), trained by backpropagation through time.
#
# 1. **Sequential MNIST**: the RNN reads a digit's 28 rows one per time step and classifies it from its
#    last state. Our recipe `rnn-seq-mnist` (128 hidden, Adam η = 0.001, gradients clipped to norm 1,
#    m = 64, 10 epochs) reaches **96.82%** on the test set (`docs/rnn_seq_mnist.jsonl`); there is no book
#    number for it.
# 2. **A character model**: the RNN reads text one character at a time and predicts the next; sampled,
#    it writes text in the style of what it read.
#
# `NNDL_NOTEBOOK_QUICK=1`: 10,000 images and 2 epochs, and 10 passes over six sonnets; unset: the recipe's
# 10 epochs on 50,000 images (about a minute an epoch here) and 30 passes.

# %%
import matplotlib.pyplot as plt
import numpy as np
from _common import QUICK, ROOT, curve, rows, size

import nndl
from nndl.charrnn import CharRNN, read_text
from nndl.nn.recurrent import RNN

training, validation, test = nndl.data.load_mnist()
n_train, epochs = size(10000, 50000), size(2, 10)
training = (training[0][:n_train], training[1][:n_train])
test = (test[0][:size(2000, 10000)], test[1][:size(2000, 10000)])

# %% [markdown]
# ## Sequential MNIST
#
# Each image (784 pixels) is read as 28 steps of 28 pixels: `RNN(128, input_shape=(28, 28))`.
# **What to look for:** the accuracy climbs well above chance within the first epoch, more slowly than a
# conv net's (the RNN must carry what it saw in the top rows through up to 27 steps of tanh); the grey
# curve is our full run of the recipe.

# %%
net = nndl.Network([RNN(size(64, 128), input_shape=(28, 28)), nndl.Dense(size(64, 128), 10, "softmax")],
                   cost="log-likelihood", seed=0)
history = net.fit(training, epochs=epochs, mini_batch_size=64, eta=0.001, optimizer="adam", clip_norm=1.0,
                  evaluation_data=test, threads=1, verbose=True)
ours = max(history.evaluation_accuracy)
print(f"this run {100 * ours:.2f}% ({n_train:,} images, {epochs} epoch(s)); the recipe at full size: 96.82%")
assert ours > 0.5                                       # chance is 10%

full = rows(ROOT / "docs" / "rnn_seq_mnist.jsonl")
plt.plot(*curve(full, "evaluation_accuracy"), color="0.6", label="our full run (docs/rnn_seq_mnist.jsonl)")
plt.plot(*curve(history.records, "evaluation_accuracy"), "o-", label="this run" + (" (quick)" if QUICK else ""))
plt.xlabel("epoch"); plt.ylabel("test accuracy"); plt.legend(); plt.show()

# %% [markdown]
# ### What the state remembers
#
# The hidden state after each row, for one digit: 28 steps × hidden units. **What to look for:** the
# state changes most while the rows with ink are read, and settles once the blank rows at the bottom come.

# %%
rnn = net.layers[0]
seq = RNN(rnn.n_hidden, input_shape=(28, 28), return_sequences=True)
seq.build((28, 28), np.random.default_rng(0), net.dtype, "orthogonal")
for mine, theirs in zip(seq.params, rnn.params):
    mine.value[...] = theirs.value                     # the trained weights, all states returned
states = seq.forward(net.prepare_input(test[0][:1]))[0]      # (28, n_hidden)
fig, (img, st) = plt.subplots(1, 2, figsize=(9, 3), gridspec_kw={"width_ratios": [1, 3]})
img.imshow(test[0][0].reshape(28, 28), cmap="gray_r"); img.set_title(f"digit {test[1][0]}"); img.axis("off")
st.imshow(states.T, aspect="auto", cmap="coolwarm", vmin=-1, vmax=1); st.set_xlabel("row read (time step)")
st.set_ylabel("hidden unit"); plt.show()
change = np.abs(np.diff(states, axis=0)).mean(axis=1)
print("mean change of the state per step:", change.round(3))

# %% [markdown]
# ## A character-level model
#
# `CharRNN` reads six of Shakespeare's sonnets (`examples/sonnets.txt`, 3,690 characters) in chunks of
# 50 characters, by truncated backpropagation through time with Adam. The loss is in nats per character:
# ln V for a uniform guess over the V distinct characters. Our longer run on 155,625 characters is in
# `docs/charrnn_loss.jsonl` and `docs/charrnn_sample.txt`.
#
# **What to look for:** the loss falls from about ln V; the samples go from random characters (quick
# size) to word-like groups, spaces and line breaks, then to real words with more passes and more text.

# %%
text = read_text(str(ROOT / "examples" / "sonnets.txt"))
model = CharRNN.from_text(text, n_hidden=size(64, 128), seq_length=50, seed=0)
records = model.fit(text, epochs=size(10, 30), batch_size=8, eta=0.002)
losses = [r["loss_per_char"] for r in records]
print(f"V = {model.vocab_size}, ln V = {np.log(model.vocab_size):.2f} nats; loss per character by epoch:",
      [round(v, 3) for v in losses])
assert losses[-1] < np.log(model.vocab_size)

plt.plot(losses, "o-", label="this run"); plt.axhline(np.log(model.vocab_size), color="k", ls=":", label="ln V")
longer = [r for r in rows(ROOT / "docs" / "charrnn_loss.jsonl") if r["type"] == "epoch"]
plt.plot([r["epoch"] for r in longer], [r["loss_per_char"] for r in longer], color="0.6", label="longer run (docs)")
plt.xlabel("epoch"); plt.ylabel("loss per character (nats)"); plt.legend(); plt.show()

# %%
for temperature in (0.5, 1.0):
    print(f"--- temperature {temperature}:")
    print(model.sample(200, start="Shall I ", temperature=temperature, seed=0))
