"""The kernels layer: the reference kernels against direct loops, every fused kernel against the
reference (shapes, strides, odd sizes, m = 1, m not a multiple of a chunk, float32 and float64),
training on both paths, and how the kernels are chosen."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import nndl
from nndl.nn import kernels
from nndl.nn.kernels import numba_cpu, reference


@pytest.fixture(params=[reference, numba_cpu], ids=["numpy", "numba"])
def k(request):
    """Each test of a kernel's values runs on both kernel modules."""
    return request.param


# ----- both kernel modules against direct loops ----------------------------------------------------
def naive_conv(x, w, b, s):
    """z[i, j, y, x] = b_j + Σ_{c,l,m} w[j, c, l, m] x[i, c, s·y + l, s·x + m], by loops."""
    m, c, h, wd = x.shape
    n, _, kh, kw = w.shape
    ho, wo = (h - kh) // s + 1, (wd - kw) // s + 1
    z = np.zeros((m, n, ho, wo))
    for y in range(ho):
        for xx in range(wo):
            patch = x[:, :, y * s:y * s + kh, xx * s:xx * s + kw]       # (m, c, kh, kw)
            z[:, :, y, xx] = np.einsum("icab,jcab->ij", patch, w) + b
    return z


def naive_conv_grads(x, w, dz, s):
    """dx, dw, db of Σ z·dz by loops: each position adds its window's share."""
    _, _, kh, kw = w.shape
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for y in range(dz.shape[2]):
        for xx in range(dz.shape[3]):
            g = dz[:, :, y, xx]                                         # (m, n)
            patch = x[:, :, y * s:y * s + kh, xx * s:xx * s + kw]
            dw += np.einsum("ij,icab->jcab", g, patch)
            dx[:, :, y * s:y * s + kh, xx * s:xx * s + kw] += np.einsum("ij,jcab->icab", g, w)
    return dx, dw, dz.sum(axis=(0, 2, 3))


@pytest.mark.parametrize("c, stride, hw", [(1, 1, (9, 9)), (3, 1, (8, 7)), (1, 2, (9, 9)), (2, 2, (10, 8)),
                                           (4, 3, (11, 11))])
def test_conv_forward_and_backward_equal_direct_loops(k, rng, c, stride, hw):
    x = rng.standard_normal((3, c) + hw)
    w = rng.standard_normal((5, c, 3, 3))
    b = rng.standard_normal(5)
    z, cache = k.conv_forward(x, w, b, stride)
    assert z.shape == naive_conv(x, w, b, stride).shape
    np.testing.assert_allclose(z, naive_conv(x, w, b, stride), rtol=1e-12, atol=1e-12)
    dz = rng.standard_normal(z.shape)
    dx, dw, db = k.conv_backward(dz, cache)
    ref = naive_conv_grads(x, w, dz, stride)
    for got, want in zip((dx, dw, db), ref):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


def test_conv_without_bias_and_without_input_gradient(k, rng):
    x, w = rng.standard_normal((2, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3))
    z, cache = k.conv_forward(x, w, None)
    np.testing.assert_allclose(z, naive_conv(x, w, np.zeros(3), 1), atol=1e-12)
    dx, dw, db = k.conv_backward(np.ones(z.shape), cache, need_dx=False)
    assert dx is None and db is None
    np.testing.assert_allclose(dw, naive_conv_grads(x, w, np.ones(z.shape), 1)[1], atol=1e-11)


def test_conv_result_does_not_depend_on_memory_layout(k, rng):
    x = rng.standard_normal((2, 3, 7, 7))
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    channels_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    z1, _ = k.conv_forward(x, w, b)
    z2, _ = k.conv_forward(channels_last, w, b)
    np.testing.assert_array_equal(z1, z2)


def test_maxpool_and_l2pool_values(k, rng):
    x = rng.standard_normal((2, 3, 6, 4))
    blocks = x.reshape(2, 3, 3, 2, 2, 2)                               # (m, c, ho, p, wo, p)
    out, _ = k.maxpool_forward(x, 2)
    np.testing.assert_array_equal(out, blocks.max(axis=(3, 5)))
    out3, _ = k.maxpool_forward(rng.standard_normal((1, 2, 6, 6)), 3)
    assert out3.shape == (1, 2, 2, 2)
    l2, _ = k.l2pool_forward(x, 2, eps=0.0)
    np.testing.assert_allclose(l2, np.sqrt((blocks ** 2).sum(axis=(3, 5))), rtol=1e-12)


@pytest.mark.parametrize("p", [2, 3])
def test_maxpool_ties_send_the_gradient_to_one_unit(k, p):
    x = np.zeros((2, 3, 2 * p, 2 * p))                                  # every window is a p×p tie
    x[0, 0, 0, 1] = -1.0                                               # a window with a smaller unit
    out, cache = k.maxpool_forward(x, p)
    g = np.arange(1.0, out.size + 1).reshape(out.shape)
    dx = k.maxpool_backward(g, cache)
    windows = dx.reshape(2, 3, 2, p, 2, p)
    assert ((windows != 0).sum(axis=(3, 5)) == 1).all()                # exactly one winner per window
    np.testing.assert_array_equal(windows.sum(axis=(3, 5)), g)         # which gets the whole gradient
    assert dx[0, 0, 0, 0] == g[0, 0, 0, 0]                              # the first maximum in row-major order


def test_maxpool_tie_winner_is_first_in_column_major_order(k):
    x = np.zeros((1, 1, 2, 2))
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = 1.0                                # two maxima: (row 0, col 1) and (row 1, col 0)
    out, cache = k.maxpool_forward(x, 2)
    dx = k.maxpool_backward(np.ones(out.shape), cache)
    np.testing.assert_array_equal(dx[0, 0], [[0.0, 0.0], [1.0, 0.0]])  # the leftmost column wins
    z, cp_cache = k.convpool_forward(x, np.ones((1, 1, 1, 1)), np.zeros(1), 2)   # the same tie inside ConvPool
    np.testing.assert_array_equal(k.convpool_backward(np.ones(z.shape), cp_cache)[0], dx)


@pytest.mark.parametrize("p, shape", [(2, (2, 10, 8)), (3, (1, 8, 11))])
def test_convpool_functions_equal_conv_then_pool_plus_bias(k, rng, p, shape):
    x = rng.standard_normal((3,) + shape)
    w, b = rng.standard_normal((4, shape[0], 3, 3)), rng.standard_normal(4)
    z, cache = k.convpool_forward(x, w, b, p)
    conv, conv_cache = k.conv_forward(x, w, None)
    pooled, pool_cache = k.maxpool_forward(conv, p)
    np.testing.assert_allclose(z, pooled + b[None, :, None, None], rtol=1e-12, atol=1e-12)
    dz = rng.standard_normal(z.shape)
    dx, dw, db = k.convpool_backward(dz, cache)
    dx2, dw2, _ = k.conv_backward(k.maxpool_backward(dz, pool_cache), conv_cache)
    np.testing.assert_allclose(dx, dx2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dw, dw2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(db, dz.sum(axis=(0, 2, 3)), rtol=1e-12)
    assert k.convpool_backward(dz, cache, need_dx=False)[0] is None
    z_infer, no_cache = k.convpool_forward(x, w, b, p, train=False)   # inference: no winners kept
    np.testing.assert_array_equal(z_infer, z)
    assert no_cache is None



@pytest.mark.parametrize("make, message", [
    (lambda k: k.conv_forward(np.zeros((1, 2, 5, 5)), np.zeros((3, 1, 3, 3))), "2 channels"),
    (lambda k: k.conv_forward(np.zeros((2, 5, 5)), np.zeros((3, 1, 3, 3))), "(m, channels, height, width)"),
    (lambda k: k.conv_forward(np.zeros((1, 1, 5, 5)), np.zeros((3, 1, 3, 3)), None, 0), "stride must be"),
    (lambda k: k.maxpool_forward(np.zeros((1, 1, 5, 4)), 2), "divisible by 2"),
    (lambda k: k.l2pool_forward(np.zeros((1, 1, 6, 6)), 4), "divisible by 4"),
    (lambda k: k.convpool_forward(np.zeros((1, 1, 8, 8)), np.zeros((2, 1, 3, 3)), np.zeros(2), 4), "max-pooled 4x4"),
])
def test_bad_shapes_are_refused_clearly(k, make, message):
    with pytest.raises(ValueError) as info:
        make(k)
    assert message in str(info.value)


# ----- the fused kernels against the reference -------------------------------------------------------
def _close(got, want, dtype):
    """Equal within the rounding of ``dtype``, relative to the array's scale."""
    tol = 2e-5 if dtype == np.float32 else 1e-12
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * float(np.abs(want).max() or 1.0))


def _forward_and_backward_equal(rng, dtype, case, name: str):
    """Random x, w, b for ``case`` = (m, c, h, w, n_maps, k, stride or pool); the fused kernel
    ``name`` ("conv" or "convpool") agrees with the reference forward and backward. Returns x, w, b."""
    m, c, h, w_, n_maps, ksize, s_or_p = case
    x = rng.standard_normal((m, c, h, w_)).astype(dtype)
    w, b = rng.standard_normal((n_maps, c, ksize, ksize)).astype(dtype), rng.standard_normal(n_maps).astype(dtype)
    z_ref, c_ref = getattr(reference, f"{name}_forward")(x, w, b, s_or_p)
    z, cache = getattr(numba_cpu, f"{name}_forward")(x, w, b, s_or_p)
    _close(z, z_ref, dtype)
    _backward_equal(rng, f"{name}_backward", z, cache, c_ref, dtype)
    return x, w, b


def _backward_equal(rng, name: str, z, cache, c_ref, dtype) -> None:
    """The fused and the reference backward ``name`` agree on a random δ, with and without ∂C/∂x."""
    dz = rng.standard_normal(z.shape).astype(dtype)
    for need_dx in (True, False):
        got_all = getattr(numba_cpu, name)(dz, cache, need_dx)
        for got, want in zip(got_all, getattr(reference, name)(dz, c_ref, need_dx)):
            assert (got is None) == (want is None)
            if want is not None:
                _close(got, want, dtype)


# (m, c, h, w, n_maps, k, stride): 1 and several channels, strides 1 and 2, odd sizes, m = 1, and
# m that is not a multiple of the fused kernels' chunk of images (3 for the second conv layer).
CONV_CASES = [(1, 1, 28, 28, 20, 5, 1), (7, 20, 12, 12, 40, 5, 1), (5, 3, 11, 9, 4, 3, 2), (2, 2, 10, 10, 3, 3, 2),
              (13, 1, 9, 7, 2, 3, 1), (1, 4, 7, 7, 6, 1, 1)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES)
def test_fused_conv_equals_reference(rng, dtype, case):
    _forward_and_backward_equal(rng, dtype, case, "conv")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [(1, 1, 28, 28, 20, 5, 2), (7, 20, 12, 12, 40, 5, 2), (10, 20, 12, 12, 40, 5, 2),
                                  (4, 3, 11, 8, 5, 3, 3), (3, 2, 9, 9, 4, 2, 2), (1, 1, 4, 4, 1, 1, 4)])
def test_fused_convpool_equals_reference(rng, dtype, case):
    x, w, b = _forward_and_backward_equal(rng, dtype, case, "convpool")
    assert numba_cpu.convpool_forward(x, w, b, case[-1], train=False)[1] is None   # inference: no cache


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, p", [((1, 1, 4, 4), 2), ((3, 20, 24, 24), 2), ((5, 3, 9, 6), 3), ((2, 2, 5, 5), 5)])
def test_fused_pooling_equals_reference(rng, dtype, shape, p):
    x = rng.standard_normal(shape).astype(dtype)
    for name in ("maxpool", "l2pool"):
        out_ref, c_ref = getattr(reference, f"{name}_forward")(x, p)
        out, cache = getattr(numba_cpu, f"{name}_forward")(x, p)
        _close(out, out_ref, dtype)
        g = rng.standard_normal(out.shape).astype(dtype)
        _close(getattr(numba_cpu, f"{name}_backward")(g, cache), getattr(reference, f"{name}_backward")(g, c_ref),
               dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "identity", "softmax"])
@pytest.mark.parametrize("m, n_in, n_out", [(1, 5, 3), (10, 784, 30), (100, 784, 30), (37, 640, 1000)])
def test_fused_dense_equals_reference(rng, dtype, activation, m, n_in, n_out):
    """Small and large products (one part, and one part per thread), every activation."""
    act = nndl.nn.get_activation(activation)
    a_in = rng.standard_normal((m, n_in)).astype(dtype)
    w, b = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype), rng.standard_normal(n_out).astype(dtype)
    for got, want in zip(numba_cpu.dense_forward(a_in, w, b, act), reference.dense_forward(a_in, w, b, act)):
        _close(got, want, dtype)
    delta = rng.standard_normal((m, n_out)).astype(dtype)
    for need_dx in (True, False):
        for got, want in zip(numba_cpu.dense_backward(delta, a_in, w, need_dx),
                             reference.dense_backward(delta, a_in, w, need_dx)):
            assert (got is None) == (want is None)
            if want is not None:
                _close(got, want, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shrink, l1", [(1.0, 0.0), (1.0 - 3e-5, 0.0), (1.0, 3e-5)])
@pytest.mark.parametrize("shape", [(640, 1000), (7,)])
def test_fused_sgd_step_equals_reference_exactly(rng, dtype, shrink, l1, shape):
    """The same roundings in one pass: bit for bit the reference's w → shrink·w − l1·sgn(w) − η·g."""
    value, grad = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    want, fused = value.copy(), value.copy()
    reference.sgd_step(want, grad.copy(), 0.03, shrink, l1)
    numba_cpu.sgd_step(fused, grad.copy(), 0.03, shrink, l1)
    np.testing.assert_array_equal(fused, want)
    assert not np.array_equal(want, value)


def test_fused_kernels_take_any_memory_layout(rng):
    """A (m, c, h, w) array that is a transposed view, or not contiguous at all, gives the same result."""
    x = rng.standard_normal((4, 3, 10, 10))
    w, b = rng.standard_normal((5, 3, 3, 3)), rng.standard_normal(5)
    want = reference.conv_forward(x, w, b)[0]
    channels_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    strided = np.zeros((4, 3, 20, 10))
    strided[:, :, ::2] = x
    for given in (x, channels_last, strided[:, :, ::2]):
        np.testing.assert_allclose(numba_cpu.conv_forward(given, w, b)[0], want, rtol=1e-12, atol=1e-12)


def ch6_relu(seed: int = 0):
    """The book's ch6-relu network, from ConvPool layers as the recipes build it."""
    return nndl.Network([nndl.ConvPool(20, 5, pool=2, activation="relu", input_shape=(1, 28, 28)),
                         nndl.ConvPool(40, 5, pool=2, activation="relu"),
                         nndl.Dense(640, 100, "relu"), nndl.Dense(100, 10, "softmax")],
                        cost="log-likelihood", seed=seed)


def test_200_sgd_steps_of_ch6_relu_give_the_same_weights_on_both_paths(mnist):
    """The same training, on real MNIST, with each kernel path: weights equal within 1e-4 relative."""
    (x, y), _, _ = mnist
    weights = {}
    before = kernels.active()
    try:
        for name in ("numpy", "numba"):
            kernels.use(name)
            net = ch6_relu()
            net.fit((x[:2000], y[:2000]), epochs=1, mini_batch_size=10, eta=0.1, lmbda=0.1,
                    monitor_evaluation_accuracy=False)
            weights[name] = net.get_weights()
    finally:
        kernels.use(before)
    start = ch6_relu().get_weights()
    for w_ref, w_fused, w0 in zip(weights["numpy"], weights["numba"], start):
        assert not np.array_equal(w_ref, w0)                              # 200 steps moved every array
        scale = float(np.abs(w_ref).max())
        np.testing.assert_allclose(w_fused, w_ref, rtol=1e-4, atol=1e-4 * scale)


# ----- choosing the kernels ---------------------------------------------------------------------------
def test_the_choice_is_made_once_per_process_and_reported(monkeypatch):
    before = kernels.active()
    try:
        assert kernels.use("numpy") == "numpy" and kernels.module() is reference
        assert kernels.use("numba") == "numba" and kernels.module() is numba_cpu
        monkeypatch.setenv("NNDL_KERNELS", "numpy")
        assert kernels.use() == "numpy" and kernels.active() == "numpy"
        monkeypatch.setenv("NNDL_KERNELS", "fast")
        with pytest.raises(ValueError, match="NNDL_KERNELS must be one of numba, numpy, got 'fast'"):
            kernels.use()
        with pytest.raises(ValueError, match="kernels must be one of numba, numpy"):
            kernels.use("cuda")
    finally:
        kernels.use(before)


def test_arrays_that_are_not_numpy_take_the_reference():
    """CuPy arrays (the GPU path) always go through the reference, whose operations CuPy shares."""
    before = kernels.active()
    kernels.use("numba")
    assert kernels.for_array(np.zeros(2)) is numba_cpu
    kernels.use(before)
    assert kernels.for_array(object()) is reference


def test_without_numba_the_reference_runs_with_a_one_line_notice(tmp_path):
    """Numba made unimportable: nndl says so on one line and trains with the NumPy kernels."""
    blocker = tmp_path / "numba.py"
    blocker.write_text("raise ImportError('numba is blocked for this test')\n")
    code = ("import numpy as np, nndl; from nndl.nn import kernels; print(kernels.active()); "
            "net = nndl.Network([nndl.ConvPool(2, 3, input_shape=(1, 8, 8)), nndl.Dense(18, 2)], seed=0); "
            "x = np.random.default_rng(0).random((4, 64)); print(net.feedforward(x).shape)")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["numpy", "(4,", "2)"]
    notice = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(notice) == 1 and "Numba is not available" in notice[0] and "NumPy reference kernels" in notice[0]


def test_prepare_compiles_what_the_network_uses_once_and_says_so(monkeypatch):
    said = []
    before = kernels.active()
    conv_net = nndl.Network([nndl.ConvPool(2, 3, input_shape=(1, 8, 8)), nndl.Dense(18, 2)], seed=0, dtype="float64")
    mlp = nndl.Network([nndl.Dense(784, 100), nndl.Dense(100, 10)], seed=0, dtype="float32")
    wide = nndl.Network([nndl.Dense(1000, 1000), nndl.Dense(1000, 10)], seed=0, dtype="float32")
    try:
        kernels.use("numba")
        monkeypatch.setattr(kernels, "_warm", set())
        monkeypatch.setattr(numba_cpu, "compiled", lambda uses: False)     # as in a fresh install
        kernels.prepare(conv_net, said.append)
        assert said and said[0].startswith("compiling kernels, once")
        said.clear()
        assert kernels.prepare(conv_net, said.append) == 0.0 and not said   # the second time: nothing
        assert kernels.prepare(mlp, said.append) == 0.0 and not said        # small Dense layers: NumPy's own
        assert kernels.plan_threads(mlp, None) is None                      # BLAS keeps its own policy
        kernels.prepare(wide, said.append)                                  # a 1000 x 1000 layer: its kernels
        assert said and kernels.prepare(wide, said.append) == 0.0
        said.clear()
        assert kernels.plan_threads(wide, None) == 1
        assert kernels.plan_threads(conv_net, None) == 1                    # the kernels take the cores
        kernels.use("numpy")
        assert kernels.prepare(conv_net, said.append) == 0.0 and not said
        assert kernels.plan_threads(conv_net, 2) is None                    # BLAS keeps its own policy
    finally:
        kernels.use(before)
        numba_cpu.set_threads(None)
