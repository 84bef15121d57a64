"""The GPU path: the same layers, networks and CLI on CuPy (``--device gpu``).

Every layer's forward and backward on the GPU equal the CPU's, which tests/nn checks against
finite differences and direct loops; Conv2D and the pools are also gradient-checked on the GPU
itself. A training run on the GPU follows the CPU's trajectory step for step, a conv net learns
there, and the CLI trains, checkpoints, resumes and saves a model that the CPU reads back.
Run with ``NNDL_TEST_GPU=1 pytest tests/gpu`` on a machine with CuPy and a CUDA GPU.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import nndl
from nndl.ensemble import Ensemble
from nndl.nn.conv import Conv2D, ConvPool, L2Pool, MaxPool
from nndl.nn.gradcheck import check_layer
from nndl.nn.layers import Dense, Dropout, Flatten
from nndl.nn.recurrent import RNN

# name: (layer factory, per-sample input shape)
LAYERS = {
    "dense-sigmoid": (lambda: Dense(12, 7, "sigmoid"), (12,)),
    "dense-relu": (lambda: Dense(12, 7, "relu"), (12,)),
    "dense-softmax": (lambda: Dense(12, 7, "softmax"), (12,)),
    "dropout": (lambda: Dropout(0.5), (12,)),
    "flatten": (lambda: Flatten(), (2, 3, 4)),
    "conv-stride1-3ch": (lambda: Conv2D(4, 3, activation="relu"), (3, 8, 7)),
    "conv-stride2-2ch": (lambda: Conv2D(5, 3, stride=2, activation="tanh"), (2, 9, 9)),
    "maxpool": (lambda: MaxPool(2), (3, 8, 6)),
    "l2pool": (lambda: L2Pool(3), (2, 9, 6)),
    "convpool": (lambda: ConvPool(4, 3, pool=2, activation="sigmoid"), (2, 10, 8)),
    "rnn": (lambda: RNN(6, return_sequences=True), (5, 4)),
}


def built(name: str, seed: int = 0):
    make, shape = LAYERS[name]
    layer = make()
    layer.build(shape, np.random.default_rng(seed), np.float64, "default")
    return layer, shape


def on_gpu(layer, cupy):
    for p in layer.params:
        p.value = cupy.asarray(p.value)
    return layer


@pytest.mark.parametrize("name", list(LAYERS))
def test_each_layer_computes_on_the_gpu_what_it_computes_on_the_cpu(cupy, name):
    cpu, shape = built(name)
    gpu, _ = built(name)                      # same seed: same weights and dropout masks
    on_gpu(gpu, cupy)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6,) + shape)
    out = cpu.forward(x, train=True)
    out_gpu = gpu.forward(cupy.asarray(x), train=True)
    assert isinstance(out_gpu, cupy.ndarray) and out_gpu.dtype == np.float64
    np.testing.assert_allclose(out_gpu.get(), out, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx, dx_gpu = cpu.backward(dout), gpu.backward(cupy.asarray(dout))
    np.testing.assert_allclose(dx_gpu.get(), dx, rtol=1e-10, atol=1e-12)
    for p, p_gpu in zip(cpu.params, gpu.params):
        assert isinstance(p_gpu.grad, cupy.ndarray), p.name
        np.testing.assert_allclose(p_gpu.grad.get(), p.grad, rtol=1e-10, atol=1e-12, err_msg=p.name)


@pytest.mark.parametrize("name", ["conv-stride1-3ch", "conv-stride2-2ch", "maxpool", "l2pool", "convpool"])
def test_conv_and_pool_gradients_on_the_gpu_match_finite_differences(cupy, name):
    layer, shape = built(name)
    on_gpu(layer, cupy)
    x = cupy.asarray(np.random.default_rng(2).standard_normal((2,) + shape))
    errors = check_layer(layer, x)
    assert set(errors) == {p.name for p in layer.params} | {"input"}
    assert max(errors.values()) < 1e-6, errors


def test_float32_stays_float32_on_the_gpu(cupy):
    layer = ConvPool(4, 3, pool=2, activation="relu")
    layer.build((2, 10, 8), np.random.default_rng(0), np.float32, "default")
    on_gpu(layer, cupy)
    out = layer.forward(cupy.ones((3, 2, 10, 8), dtype=cupy.float32), train=True)
    dx = layer.backward(cupy.ones(out.shape, dtype=cupy.float32))
    assert out.dtype == dx.dtype == layer.w.grad.dtype == np.float32


def conv_net(dtype, dropout: float = 0.0):
    hidden = [nndl.Dense(640, 100, "relu")] + ([Dropout(dropout)] if dropout else [])
    return nndl.Network([ConvPool(20, 5, pool=2, activation="relu", input_shape=(1, 28, 28)),
                         ConvPool(40, 5, pool=2, activation="relu"), *hidden,
                         nndl.Dense(100, 10, "softmax")], cost="log-likelihood", seed=0, dtype=dtype)


def test_training_on_the_gpu_follows_the_cpu_step_for_step(cupy, mnist):
    """The book's conv net with dropout and L2, 40 mini-batches of real MNIST in float64: the
    GPU's weights stay within rounding of the CPU's (same initial weights, shuffles and masks)."""
    (x, y), _, _ = mnist
    cpu, gpu = conv_net(np.float64, dropout=0.5), conv_net(np.float64, dropout=0.5).to_device("gpu")
    assert all(isinstance(p.value, cupy.ndarray) for p in gpu.params)
    for net in (cpu, gpu):
        net.fit((x[:400], y[:400]), epochs=1, mini_batch_size=10, eta=0.03, lmbda=0.1,
                monitor_evaluation_accuracy=False, seed=5)
    moved = [np.abs(w - w0).max() for w, w0 in zip(cpu.get_weights(), conv_net(np.float64).get_weights())]
    assert min(moved) > 1e-4                   # the weights really moved ...
    for w, w_gpu in zip(cpu.get_weights(), gpu.get_weights()):
        np.testing.assert_allclose(w_gpu, w, rtol=1e-7, atol=1e-9)   # ... and the same way on both


def test_conv_net_learns_on_the_gpu_and_reads_the_same_on_the_cpu(cupy, mnist):
    """5,000 images, 2 epochs, float32 on the GPU: at least 95% of the 10,000 test images, and the
    network moved back to the CPU gives the same predictions."""
    (x, y), _, test = mnist
    net = conv_net(np.float32).to_device("gpu")
    net.fit((x[:5000], y[:5000]), epochs=2, mini_batch_size=10, eta=0.1, monitor_evaluation_accuracy=False)
    accuracy = net.accuracy(test)
    assert accuracy >= 0.95
    predictions = net.predict(test[0])
    assert isinstance(predictions, np.ndarray)                   # results come back to the host
    net.to_device("cpu")
    assert np.mean(net.predict(test[0]) == predictions) >= 0.999  # float32 rounding may flip one or two
    assert abs(net.accuracy(test) - accuracy) <= 0.001


def nndl_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nndl", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=600)


def test_cli_trains_on_the_gpu_resumes_and_saves_a_model_the_cpu_loads(cupy, mnist, tmp_path):
    ckpt, metrics, model = tmp_path / "ckpt", tmp_path / "m.jsonl", tmp_path / "net.npz"
    common = ["train", "--recipe", "ch6-relu", "--device", "gpu", "--train-size", "3000", "--seed", "0",
              "--checkpoint", str(ckpt), "--metrics", str(metrics), "--save", str(model)]
    first = nndl_cli(*common, "--epochs", "1")
    assert first.returncode == 0, first.stderr
    second = nndl_cli(*common, "--epochs", "2")                  # resumes from the checkpoint
    assert second.returncode == 0, second.stderr
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1]
    net = nndl.load(str(model))
    assert net.device == "cpu"
    _, validation, test = mnist
    last = rows[-1]
    assert last["evaluation_accuracy"] >= 0.9
    # the GPU's measurement of the saved weights, repeated on the CPU
    assert abs(net.accuracy(validation) - last["evaluation_accuracy"]) <= 0.001
    assert abs(net.accuracy(test) - last["test_accuracy"]) <= 0.001


def dense_net(device: str, **kwargs):
    net = nndl.Network([nndl.Dense(784, 30, "sigmoid"), Dropout(0.2), nndl.Dense(30, 10, "softmax")],
                       cost="log-likelihood", seed=3, dtype=np.float64, **kwargs)
    return net.to_device(device)


@pytest.mark.parametrize("optimizer, settings", [
    ("sgd", {"lmbda": 5.0}), ("sgd", {"lmbda": 5.0, "regularization": "l1"}),
    ("momentum", {"mu": 0.9, "max_norm": 2.0}), ("nesterov", {"mu": 0.5, "clip_norm": 1.0}),
    ("rmsprop", {}), ("adam", {"lmbda": 1.0})])
def test_every_optimizer_updates_the_same_on_both_devices(cupy, mnist, optimizer, settings):
    (x, y), _, _ = mnist
    eta = 0.001 if optimizer in ("rmsprop", "adam") else 0.1
    nets = [dense_net(device) for device in ("cpu", "gpu")]
    for net in nets:
        net.fit((x[:300], y[:300]), epochs=2, mini_batch_size=10, eta=eta, optimizer=optimizer,
                monitor_evaluation_accuracy=False, **settings)
    for w, w_gpu in zip(*(net.get_weights() for net in nets)):
        np.testing.assert_allclose(w_gpu, w, rtol=1e-8, atol=1e-10)


def test_recurrent_net_trains_the_same_on_both_devices(cupy, mnist):
    """MNIST rows as 28 steps of 28 pixels (the RNN chapter's sequence model)."""
    (x, y), _, _ = mnist
    nets = [nndl.Network([RNN(16, input_shape=(28, 28)), nndl.Dense(16, 10, "softmax")],
                         cost="log-likelihood", seed=0, dtype=np.float64).to_device(device)
            for device in ("cpu", "gpu")]
    for net in nets:
        net.fit((x[:200], y[:200]), epochs=1, mini_batch_size=20, eta=0.1, clip_norm=5.0,
                monitor_evaluation_accuracy=False)
    for w, w_gpu in zip(*(net.get_weights() for net in nets)):
        np.testing.assert_allclose(w_gpu, w, rtol=1e-8, atol=1e-10)


def test_full_batch_lbfgs_keeps_the_weights_on_the_gpu(cupy, mnist):
    from nndl.train.fullbatch import fit_full_batch

    (x, y), _, _ = mnist
    nets = [dense_net(device) for device in ("cpu", "gpu")]
    for net in nets:
        fit_full_batch(net, (x[:200], y[:200]), method="lbfgs", iterations=10, lmbda=1.0)
    assert all(isinstance(p.value, cupy.ndarray) for p in nets[1].params)
    for w, w_gpu in zip(*(net.get_weights() for net in nets)):
        np.testing.assert_allclose(w_gpu, w, rtol=1e-5, atol=1e-7)


def test_checkpoint_written_on_the_gpu_resumes_to_the_uninterrupted_run(cupy, mnist, tmp_path):
    """Momentum's velocities and the shuffle state travel through the checkpoint file: one epoch,
    a resume and a second epoch end where two epochs in one go end."""
    (x, y), _, _ = mnist
    data = (x[:300], y[:300])
    straight, split = dense_net("gpu"), dense_net("gpu")
    settings = dict(mini_batch_size=10, eta=0.1, optimizer="momentum", mu=0.9, monitor_evaluation_accuracy=False)
    straight.fit(data, epochs=2, **settings)
    split.fit(data, epochs=1, checkpoint=str(tmp_path / "ckpt"), **settings)
    resumed = dense_net("gpu")
    resumed.fit(data, epochs=2, resume=str(tmp_path / "ckpt"), **settings)
    for w, w_again in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(w_again, w, rtol=1e-12, atol=1e-14)


def test_ensemble_of_gpu_networks_votes_like_its_cpu_copies(cupy, mnist):
    (x, y), _, test = mnist
    members = []
    for seed in range(3):
        net = nndl.Network([nndl.Dense(784, 30, "sigmoid"), nndl.Dense(30, 10, "softmax")],
                           cost="log-likelihood", seed=seed).to_device("gpu")
        net.fit((x[:2000], y[:2000]), epochs=1, mini_batch_size=10, eta=0.5, monitor_evaluation_accuracy=False)
        members.append(net)
    on_gpu = Ensemble(members).predict(test[0][:2000])
    for net in members:
        net.to_device("cpu")
    on_cpu = Ensemble(members).predict(test[0][:2000])
    assert np.mean(on_gpu == on_cpu) >= 0.999
    assert np.mean(on_gpu == test[1][:2000]) >= 0.8
