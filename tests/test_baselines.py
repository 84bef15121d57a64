"""The book's baselines (chapter 1): average darkness and the SVM, on real MNIST."""
import argparse
import json
import sys

import numpy as np
import pytest

from nndl.baselines import AverageDarkness, BaselineError, SVMBaseline, run_baseline
from nndl.errors import ShapeError


@pytest.fixture(scope="module")
def mnist():
    from nndl.data import load_mnist

    return load_mnist()


def test_average_darkness_by_hand():
    # Digit 0 images have darkness 1 and 3 (mean 2); digit 1 images 10 (mean 10).
    x = np.array([[1.0, 0.0], [1.0, 2.0], [4.0, 6.0]])
    y = np.array([0, 0, 1])
    model = AverageDarkness().fit(x, y)
    np.testing.assert_array_equal(model.digits, [0, 1])
    np.testing.assert_allclose(model.avg_darkness, [2.0, 10.0])
    # Darkness 5.9 is closer to 2 than to 10; 6.1 is closer to 10; 6 is a tie: the smaller digit.
    np.testing.assert_array_equal(model.predict([[5.9, 0.0], [0.0, 6.1], [3.0, 3.0]]), [0, 1, 0])
    assert model.accuracy((x, y)) == pytest.approx(1.0)


def test_average_darkness_reproduces_the_book_exactly(mnist):
    (x, y), _, (x_test, y_test) = mnist
    assert len(y) == 50_000
    model = AverageDarkness().fit(x, y)
    correct = int(np.sum(model.predict(x_test) == y_test))
    assert correct == 2225  # the book: "2,225 of the 10,000 test images"
    assert model.accuracy((x_test, y_test)) == pytest.approx(0.2225)
    # Ones are the lightest digit, zeros among the darkest: the rule the classifier relies on.
    assert model.avg_darkness.argmin() == 1 and model.avg_darkness[0] > model.avg_darkness[1] * 2


def test_run_baseline_base_dark(mnist):
    result = run_baseline("base-dark")
    assert result["id"] == "base-dark"
    assert (result["correct"], result["total"]) == (2225, 10_000)
    assert result["accuracy"] == pytest.approx(0.2225) == result["book_accuracy"]
    assert result["train_size"] == 50_000 and result["seconds"] >= 0


@pytest.fixture(scope="module")
def small_svm(mnist):
    (x, y), _, _ = mnist
    return SVMBaseline().fit(x[:3000], y[:3000])


def test_svm_learns_from_a_small_subset(mnist, small_svm):
    _, _, (x_test, y_test) = mnist
    # The book's settings (C = 1, gamma = 1/784 on k/256 pixels) on 3,000 training images: about 86%.
    assert small_svm.accuracy((x_test[:1000], y_test[:1000])) >= 0.85


def test_svm_parallel_prediction_matches_serial(mnist, small_svm):
    _, _, (x_test, _) = mnist
    serial = small_svm.predict(x_test[:400])
    small_svm.n_jobs = 2
    try:
        parallel = small_svm.predict(x_test[:400])
    finally:
        small_svm.n_jobs = 1
    np.testing.assert_array_equal(parallel, serial)


def test_svm_uses_the_books_kernel_width_by_default(small_svm):
    # scikit-learn's 2015 default 1/n_features, on the book's k/256 pixels rather than our k/255.
    assert small_svm.gamma == "book"
    assert small_svm.svc.gamma == pytest.approx((255 / 256) ** 2 / 784)
    assert small_svm.svc.C == 1.0 and small_svm.svc.kernel == "rbf"
    assert SVMBaseline(gamma="auto").svc.gamma == "auto"
    assert SVMBaseline(gamma="scale").svc.gamma == "scale"


def test_run_baseline_svm_with_train_size(mnist):
    result = run_baseline("base-svm", train_size=500)
    assert result["train_size"] == 500 and result["total"] == 10_000
    assert 0.65 < result["accuracy"] < 0.95
    assert result["correct"] == round(result["accuracy"] * 10_000)


def test_svm_without_scikit_learn_says_which_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.svm", None)  # import of sklearn.svm now fails
    with pytest.raises(ImportError, match=r"pip install -e '\.\[svm\]'"):
        SVMBaseline()


def test_bad_requests_are_refused_with_clear_messages():
    with pytest.raises(BaselineError, match="unknown baseline 'base-knn'.*base-dark"):
        run_baseline("base-knn")
    with pytest.raises(ValueError, match="train_size must be an integer from 1 to 50000"):
        run_baseline("base-dark", train_size=0)
    with pytest.raises(BaselineError, match="not fitted"):
        AverageDarkness().predict(np.zeros((2, 784)))
    with pytest.raises(ShapeError, match="one-hot"):
        AverageDarkness().fit(np.zeros((2, 784)), np.zeros((2, 10), dtype=int))
    with pytest.raises(ShapeError, match=r"\(m, n_pixels\)"):
        AverageDarkness().fit(np.zeros((2, 28, 28)), np.zeros(2, dtype=int))


def _cli(argv):
    from nndl.cli import baseline

    parser = argparse.ArgumentParser(prog="nndl")
    sub = parser.add_subparsers(dest="command")
    baseline.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_baseline_prints_the_accuracy(mnist, capsys):
    assert _cli(["baseline", "base-dark"]) == 0
    out = capsys.readouterr().out
    assert "2225 / 10000" in out and "22.25%" in out
    assert _cli(["baseline", "base-dark", "--json", "--train-size", "1000"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["train_size"] == 1000 and result["total"] == 10_000
    with pytest.raises(ValueError, match="--gamma applies only to base-svm"):
        _cli(["baseline", "base-dark", "--gamma", "scale"])
    with pytest.raises(ValueError, match="positive number; got '-1'"):
        _cli(["baseline", "base-svm", "--gamma=-1"])
