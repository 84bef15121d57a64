"""MNIST / Fashion-MNIST loading, lookup order, download from mirrors, verification, one_hot, subset."""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import nndl.data as data
from nndl.data import (
    DataFormatError,
    DataNotFoundError,
    fetch,
    find_dataset_dir,
    info,
    load_fashion_mnist,
    load_mnist,
    one_hot,
    subset,
    verify,
)

from .conftest import MNIST_NAMES

# From /work/shared/mnist/README.md.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# --- the real MNIST -------------------------------------------------------------------------


def test_load_mnist_shapes_dtypes_ranges(mnist_dir):
    training, validation, test = load_mnist()
    for (x, y), n in zip((training, validation, test), (50000, 10000, 10000)):
        assert x.shape == (n, 784) and x.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int64
        assert x.min() == 0.0 and x.max() == 1.0
        assert set(np.unique(y)) == set(range(10))
        # Every pixel is exactly a byte value / 255.
        k = np.rint(x[:2000] * 255)
        np.testing.assert_allclose(x[:2000], k / np.float32(255), rtol=0, atol=1e-7)
    train_and_validation = np.bincount(training[1], minlength=10) + np.bincount(validation[1], minlength=10)
    assert train_and_validation.tolist() == TRAIN_COUNTS
    assert np.bincount(test[1]).tolist() == TEST_COUNTS
    # Well-known first labels of the training and test files.
    assert training[1][:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]
    assert test[1][:5].tolist() == [7, 2, 1, 0, 4]


def test_split_is_the_books(mnist_dir):
    raw = data.load_raw("mnist")
    training, validation, _ = load_mnist()
    np.testing.assert_array_equal(training[1], raw["train_labels"][:50000])
    np.testing.assert_array_equal(validation[1], raw["train_labels"][50000:])
    np.testing.assert_array_equal(np.rint(validation[0][:100] * 255), raw["train_images"][50000:50100].reshape(100, -1))


def test_validation_size_and_dtype(tmp_path, tiny):
    arrays = tiny(tmp_path / "m", n_train=60)
    (x0, y0), (xv, yv), _ = load_mnist(tmp_path / "m", validation_size=0, download=False)
    assert x0.shape == (60, 784) and xv.shape == (0, 784) and yv.shape == (0,)
    (x5, _), (xv5, yv5), _ = load_mnist(tmp_path / "m", validation_size=15, dtype=np.float64, download=False)
    assert x5.shape == (45, 784) and xv5.shape == (15, 784) and x5.dtype == np.float64
    np.testing.assert_array_equal(yv5, arrays["train_labels"][45:])
    np.testing.assert_allclose(x5, x0[:45], atol=1e-7)
    with pytest.raises(ValueError, match="float"):
        load_mnist(tmp_path / "m", dtype=np.int32)
    with pytest.raises(ValueError, match="validation_size"):
        load_mnist(tmp_path / "m", validation_size=60)
    with pytest.raises(ValueError, match="validation_size"):
        load_mnist(tmp_path / "m", validation_size=-1)


def test_cached_and_read_only(mnist_dir):
    a = load_mnist()
    b = load_mnist(str(mnist_dir))
    assert a[0][0] is b[0][0], "repeated loads of the same files are served from the in-process cache"
    x, y = a[0]
    with pytest.raises(ValueError):
        x[0, 0] = 5.0
    with pytest.raises(ValueError):
        y[0] = 3
    batch = x[np.array([3, 1, 2])]  # what mini-batching does: a writable copy
    batch[:] = 0
    assert x[1].max() > 0


def test_info_and_verify_real(mnist_dir):
    d = info("mnist")
    assert d["found"] and Path(d["dir"]) == mnist_dir
    assert d["train_count"] == 60000 and d["test_count"] == 10000 and d["image_shape"] == [28, 28]
    assert d["train_class_counts"] == TRAIN_COUNTS and d["test_class_counts"] == TEST_COUNTS
    results = verify("mnist")
    assert len(results) == 4 and all(ok for _, ok, _ in results), results


# --- lookup and format checks on tiny hand-made data sets ----------------------------------


def test_lookup_order_env_then_cache(isolated_env, tmp_path, tiny):
    cache = Path(os.environ["NNDL_CACHE"]) / "mnist"
    tiny(cache, seed=1)
    assert find_dataset_dir("mnist") == cache.resolve()
    arrays = tiny(isolated_env / "mnist", seed=2, gz=False)  # raw files work too
    assert find_dataset_dir("mnist") == (isolated_env / "mnist").resolve()
    training, validation, test = load_mnist(validation_size=20)
    assert training[0].shape == (100, 784) and validation[0].shape == (20, 784) and test[0].shape == (30, 784)
    np.testing.assert_array_equal(np.rint(test[0] * 255).astype(np.uint8), arrays["test_images"].reshape(30, -1))
    np.testing.assert_array_equal(training[1], arrays["train_labels"][:100])
    # An incomplete folder is skipped.
    os.remove(isolated_env / "mnist" / MNIST_NAMES["test_labels"])
    assert find_dataset_dir("mnist") == cache.resolve()


def test_data_dir_may_hold_the_files_or_a_dataset_folder(tmp_path, tiny, mnist_dir):
    arrays = tiny(tmp_path / "parent" / "mnist", n_train=30, n_test=5)
    assert find_dataset_dir("mnist", tmp_path / "parent") == (tmp_path / "parent" / "mnist").resolve()
    assert find_dataset_dir("mnist", tmp_path / "parent" / "mnist") == (tmp_path / "parent" / "mnist").resolve()
    _, _, test = load_mnist(tmp_path / "parent", validation_size=10, download=False)
    np.testing.assert_array_equal(test[1], arrays["test_labels"])
    assert find_dataset_dir("mnist", mnist_dir.parent) == mnist_dir  # e.g. --data-dir /work/shared
    assert find_dataset_dir("mnist", tmp_path) is None


def test_not_found_without_download(isolated_env):
    with pytest.raises(DataNotFoundError) as exc:
        load_mnist(download=False)
    msg = str(exc.value)
    assert str(isolated_env / "mnist") in msg and "nndl data fetch" in msg
    assert isinstance(exc.value, FileNotFoundError)
    assert info("mnist")["found"] is False


def test_image_label_count_mismatch(tmp_path, tiny):
    tiny(tmp_path / "m", n_train=50, n_train_labels=49)
    with pytest.raises(DataFormatError, match="50 images.*49 labels") as exc:
        load_mnist(tmp_path / "m", validation_size=10, download=False)
    assert "train-images-idx3-ubyte" in str(exc.value) and "train-labels-idx1-ubyte" in str(exc.value)


def test_wrong_image_size_and_label_range(tmp_path, tiny):
    tiny(tmp_path / "small", side=27)
    with pytest.raises(DataFormatError, match="27x27.*expected 28x28"):
        load_mnist(tmp_path / "small", validation_size=10, download=False)
    tiny(tmp_path / "labels", max_label=10)
    with pytest.raises(DataFormatError, match="label 10"):
        load_mnist(tmp_path / "labels", validation_size=10, download=False)


def test_damaged_file_named_in_error(tmp_path, tiny):
    tiny(tmp_path / "d")
    gz = tmp_path / "d" / (MNIST_NAMES["test_images"] + ".gz")
    gz.write_bytes(gz.read_bytes()[:200])
    with pytest.raises(DataFormatError) as exc:
        load_mnist(tmp_path / "d", validation_size=10, download=False)
    assert str(gz) in str(exc.value)


def test_fashion_mnist_same_contract(tmp_path, tiny):
    arrays = tiny(tmp_path / "fashion", seed=3)
    training, validation, test = load_fashion_mnist(tmp_path / "fashion", validation_size=20, download=False)
    assert training[0].shape == (100, 784) and training[0].dtype == np.float32 and training[1].dtype == np.int64
    np.testing.assert_array_equal(validation[1], arrays["train_labels"][100:])
    assert len(data.DATASETS["fashion-mnist"].class_names) == 10


def test_verify_reports_each_file(tmp_path, tiny):
    tiny(tmp_path / "v")
    results = verify("mnist", tmp_path / "v")  # random images: the hashes cannot match
    assert [ok for _, ok, _ in results] == [False] * 4
    assert all("mismatch" in message for _, _, message in results)
    os.remove(tmp_path / "v" / (MNIST_NAMES["train_labels"] + ".gz"))
    results = verify("mnist", tmp_path / "v")
    assert "missing" in results[1][2]


# --- download from mirrors ------------------------------------------------------------------


def _prefill(dest: Path, mnist_dir: Path, roles=("train_images", "train_labels", "test_images")) -> None:
    """Copy some real files into ``dest`` so a fetch only has to download the rest (fast tests)."""
    dest.mkdir(parents=True, exist_ok=True)
    for role, path in data.sources.dataset_files("mnist", mnist_dir).items():
        if role in roles:
            shutil.copy(path, dest / path.name)


def _same_files(a: Path, b: Path) -> bool:
    names = sorted(os.listdir(a))
    return names == sorted(os.listdir(b)) and all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


def test_fetch_into_empty_data_dir(isolated_env, mirror_dir, serve, monkeypatch, capsys):
    """With nothing on disk, the files come from the mirror in $NNDL_MNIST_MIRRORS into $NNDL_DATA/mnist."""
    monkeypatch.setenv("NNDL_MNIST_MIRRORS", serve(mirror_dir))
    assert find_dataset_dir("mnist") is None
    folder = fetch("mnist")
    assert folder == (isolated_env / "mnist").resolve() == find_dataset_dir("mnist")
    assert _same_files(folder, mirror_dir)
    assert "downloading http://127.0.0.1" in capsys.readouterr().err


def test_load_downloads_when_missing(isolated_env, tmp_path, tiny, serve, monkeypatch):
    """load_mnist() with nothing on disk fetches, verifies and loads (a tiny data set stands in for
    MNIST here, with its own hashes, to keep the test fast)."""
    arrays = tiny(tmp_path / "tiny_mirror", n_train=40, n_test=10)
    spec = data.DATASETS["mnist"]
    files = {role: (base, hashlib.sha256(gzip.decompress((tmp_path / "tiny_mirror" / f"{base}.gz").read_bytes()))
                    .hexdigest(), size) for role, (base, _, size) in spec.files.items()}
    monkeypatch.setitem(data.DATASETS, "mnist", dataclasses.replace(spec, files=files))
    monkeypatch.setenv("NNDL_MNIST_MIRRORS", serve(tmp_path / "tiny_mirror"))
    training, validation, test = load_mnist(validation_size=10)
    assert _same_files(isolated_env / "mnist", tmp_path / "tiny_mirror")
    assert training[0].shape == (30, 784) and validation[0].shape == (10, 784)
    np.testing.assert_array_equal(test[1], arrays["test_labels"])
    # With data_dir, downloads go to data_dir/mnist (data_dir itself if it is named mnist).
    load_mnist(tmp_path / "fresh", validation_size=10)
    assert _same_files(tmp_path / "fresh" / "mnist", tmp_path / "tiny_mirror")
    load_mnist(tmp_path / "other" / "mnist", validation_size=10)
    assert _same_files(tmp_path / "other" / "mnist", tmp_path / "tiny_mirror")


def test_fetch_refuses_corrupted_file(isolated_env, mnist_dir, tmp_path, serve):
    bad_mirror = tmp_path / "bad_mirror"
    bad_mirror.mkdir()
    base = MNIST_NAMES["test_labels"]
    content = bytearray(gzip.decompress((mnist_dir / f"{base}.gz").read_bytes()))
    content[5000] ^= 0x01  # one label byte flipped, re-gzipped: a valid IDX file, the wrong content
    (bad_mirror / f"{base}.gz").write_bytes(gzip.compress(bytes(content)))
    dest = tmp_path / "dest"
    _prefill(dest, mnist_dir)
    before = sorted(os.listdir(dest))
    url = serve(bad_mirror)
    with pytest.raises(DataNotFoundError) as exc:
        fetch("mnist", mirrors=[url], dest=dest, progress=False)
    msg = str(exc.value)
    assert f"{url}{base}.gz" in msg and "SHA-256" in msg and "by hand" in msg
    assert sorted(os.listdir(dest)) == before, "no corrupted file and no temporary file may remain"


def test_fetch_falls_through_dead_mirror(isolated_env, mnist_dir, mirror_dir, tmp_path, serve, dead_url, capsys):
    dest = tmp_path / "dest"
    _prefill(dest, mnist_dir)
    folder = fetch("mnist", mirrors=[dead_url, serve(mirror_dir)], dest=dest)
    assert folder == dest.resolve() and _same_files(dest, mirror_dir)
    err = capsys.readouterr().err
    assert f"failed: {dead_url}" in err and "cannot connect" in err


def test_fetch_all_mirrors_fail(isolated_env, mnist_dir, tmp_path, serve, dead_url):
    empty = tmp_path / "empty_mirror"
    empty.mkdir()
    dest = tmp_path / "dest"
    _prefill(dest, mnist_dir)
    url = serve(empty)
    with pytest.raises(DataNotFoundError) as exc:
        fetch("mnist", mirrors=f"{dead_url},{url}", dest=dest, progress=False)
    msg = str(exc.value)
    base = MNIST_NAMES["test_labels"]
    assert f"{dead_url}{base}.gz: cannot connect" in msg
    assert f"{url}{base}.gz: HTTP 404" in msg
    assert str(dest) in msg and f"{base}.gz" in msg
    assert not any(name.endswith(".part") for name in os.listdir(dest))


def test_fetch_replaces_damaged_local_copy(isolated_env, mnist_dir, mirror_dir, tmp_path, serve):
    dest = tmp_path / "dest"
    _prefill(dest, mnist_dir)
    base = MNIST_NAMES["test_labels"]
    (dest / f"{base}.gz").write_bytes(b"\x1f\x8b garbage")  # damaged local copy
    raw_mirror = tmp_path / "raw_mirror"  # serves the uncompressed content under the .gz name
    raw_mirror.mkdir()
    content = gzip.decompress((mirror_dir / f"{base}.gz").read_bytes())
    (raw_mirror / f"{base}.gz").write_bytes(content)
    fetch("mnist", mirrors=[serve(raw_mirror)], dest=dest, progress=False)
    assert not (dest / f"{base}.gz").exists(), "the damaged copy is removed"
    assert (dest / base).read_bytes() == content, "raw content is stored under the raw name"
    assert all(ok for _, ok, _ in verify("mnist", dest))


def test_mirrors_argument_validation():
    with pytest.raises(ValueError, match="NNDL_MNIST_MIRRORS"):
        fetch("mnist", mirrors=[" ", ""], progress=False)
    with pytest.raises(ValueError, match="unknown data set"):
        fetch("cifar", progress=False)


# --- targets and subsets --------------------------------------------------------------------


def test_one_hot():
    y = np.array([3, 0, 9, 3])
    t = one_hot(y)
    assert t.shape == (4, 10) and t.dtype == np.float32
    np.testing.assert_array_equal(t.argmax(axis=1), y)
    np.testing.assert_array_equal(t.sum(axis=1), 1)
    assert one_hot(np.array([1, 0]), n_classes=2, dtype=np.float64).tolist() == [[0.0, 1.0], [1.0, 0.0]]
    assert one_hot(np.array([], dtype=np.int64)).shape == (0, 10)
    with pytest.raises(ValueError, match="0..9"):
        one_hot(np.array([1, 10]))
    with pytest.raises(ValueError, match="0..9"):
        one_hot(np.array([-1, 2]))
    with pytest.raises(ValueError, match="1-D"):
        one_hot(np.zeros((2, 2), dtype=int))
    with pytest.raises(ValueError, match="integers"):
        one_hot(np.array([0.5]))


def test_subset_digits_and_size(mnist_dir):
    training, _, _ = load_mnist()
    x, y = subset(training, digits=(0, 1))
    assert set(np.unique(y)) == {0, 1}
    assert len(y) == int(np.sum(training[1] < 2))
    assert x.shape == (len(y), 784)
    xs, ys = subset(training, digits=[1, 0], size=1000)
    np.testing.assert_array_equal(ys, y[:1000])
    np.testing.assert_array_equal(xs, x[:1000])
    x1, y1 = subset(training, size=10)
    np.testing.assert_array_equal(y1, training[1][:10])
    with pytest.raises(ValueError, match="only"):
        subset(training, digits=[7], size=10**6)
    with pytest.raises(ValueError, match="empty"):
        subset(training, digits=[])
    with pytest.raises(ValueError, match="positive"):
        subset(training, size=0)


def test_a_trickling_mirror_is_left_at_the_deadline(isolated_env, mnist_dir, tmp_path, trickle_url):
    """Per-read timeouts never fire on a server sending 2 bytes at a time; the overall deadline does
    (before: fetch ran for as long as the server did)."""
    import time

    dest = tmp_path / "dest"
    _prefill(dest, mnist_dir)
    start = time.monotonic()
    with pytest.raises(DataNotFoundError) as exc:
        fetch("mnist", mirrors=trickle_url, dest=dest, progress=False, timeout=5, deadline=1.0)
    assert time.monotonic() - start < 10
    assert "not finished after 1 s" in str(exc.value) and "--deadline" in str(exc.value)
    assert not any(name.endswith(".part") for name in os.listdir(dest))


def test_sigterm_during_a_fetch_leaves_no_partial_file(isolated_env, mnist_dir, tmp_path, trickle_url):
    import signal
    import subprocess
    import sys
    import time

    dest = tmp_path / "dest"
    _prefill(dest, mnist_dir)
    code = "import sys; from nndl.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, "data", "fetch", "--mirror", trickle_url, "--dest", str(dest)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not any(name.endswith(".part") for name in os.listdir(dest)) and time.monotonic() < deadline:
        time.sleep(0.1)                                   # until the download has begun
    assert any(name.endswith(".part") for name in os.listdir(dest))
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    assert not any(name.endswith(".part") for name in os.listdir(dest))


def test_digits_that_are_not_labels_are_named():
    from nndl.data import subset

    x, y = np.zeros((20, 4)), np.arange(20) % 10
    with pytest.raises(ValueError, match=r"digits \[11\] is not a label of this data set \(its labels: 0..9\)"):
        subset((x, y), digits=[11], size=5)
