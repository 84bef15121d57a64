"""Error analysis: confusion matrix, per-class accuracy and the misclassified digits of a real net."""
import json

import numpy as np
import pytest

import nndl
from nndl.analysis import (
    confusion_matrix,
    error_report,
    misclassified,
    most_confused,
    per_class_accuracy,
    report_from_predictions,
)
from nndl.errors import ShapeError


@pytest.fixture(scope="module")
def trained():
    """A [784, 30, 10] cross-entropy net trained briefly on 2,000 MNIST images, and 2,000 test images."""
    training, _, test = nndl.data.load_mnist()
    net = nndl.Network([nndl.Dense(784, 30, "sigmoid"), nndl.Dense(30, 10, "sigmoid")], cost="cross-entropy", seed=1)
    net.fit((training[0][:2000], training[1][:2000]), epochs=3, mini_batch_size=10, eta=0.5)
    return net, (test[0][:2000], test[1][:2000])


def test_confusion_matrix_by_hand():
    y_true = [0, 0, 1, 2, 2, 2]
    y_pred = [0, 1, 1, 2, 0, 2]
    m = confusion_matrix(y_true, y_pred, n_classes=3)
    # Rows are true classes, columns predictions: one 0 taken for a 1, one 2 taken for a 0.
    np.testing.assert_array_equal(m, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert m.dtype == np.int64
    # One-hot rows give the same matrix as labels.
    np.testing.assert_array_equal(confusion_matrix(np.eye(3)[y_true], y_pred, n_classes=3), m)


def test_confusion_matrix_matches_counting_one_by_one():
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 10, 5000), rng.integers(0, 10, 5000)
    expected = np.zeros((10, 10), dtype=np.int64)
    np.add.at(expected, (t, p), 1)  # an independent, unbuffered count of every (true, predicted) pair
    np.testing.assert_array_equal(confusion_matrix(t, p), expected)


def test_confusion_matrix_refuses_bad_labels():
    with pytest.raises(ShapeError, match="3 labels but y_pred has 2"):
        confusion_matrix([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match=r"y_pred must be in 0..2, got values from 0 to 3.*n_classes="):
        confusion_matrix([0, 1, 2], [0, 1, 3], n_classes=3)
    with pytest.raises(ValueError, match="fractional"):
        confusion_matrix([0.0, 1.5], [0, 1])
    with pytest.raises(ValueError, match="n_classes must be a positive integer"):
        confusion_matrix([0], [0], n_classes=0)


def test_per_class_accuracy_by_hand():
    acc = per_class_accuracy([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], n_classes=4)
    np.testing.assert_allclose(acc[:3], [0.5, 1.0, 2 / 3])
    assert np.isnan(acc[3])  # no 3s at all: undefined, not 0% and not 100%


def test_most_confused_orders_off_diagonal_cells():
    m = np.array([[50, 3, 0], [7, 40, 3], [0, 1, 60]])
    assert most_confused(m, top=3) == [{"true": 1, "predicted": 0, "count": 7},
                                       {"true": 0, "predicted": 1, "count": 3},
                                       {"true": 1, "predicted": 2, "count": 3}]
    assert most_confused(np.diag([5, 5])) == []


def test_misclassified_on_a_trained_net(trained):
    net, (x, y) = trained
    accuracy = net.accuracy((x, y))
    assert accuracy > 0.8  # the net has learned, so its errors are a minority worth looking at
    indices, predicted, probabilities = misclassified(net, (x, y))
    np.testing.assert_array_equal(indices, np.flatnonzero(net.predict(x) != y))
    assert len(indices) == round((1 - accuracy) * len(y))
    assert np.all(predicted != y[indices])
    np.testing.assert_array_equal(predicted, net.predict(x[indices]))
    assert probabilities.shape == (len(indices), 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(probabilities.argmax(axis=1), predicted)  # one-hot outputs: argmax is the answer


def test_misclassified_when_every_example_is_right(trained):
    net, (x, y) = trained
    right = np.flatnonzero(net.predict(x) == y)
    indices, predicted, probabilities = misclassified(net, (x[right], y[right]))
    assert indices.shape == predicted.shape == (0,) and probabilities.shape == (0, 10)


def test_error_report_agrees_with_the_network(trained):
    net, (x, y) = trained
    report = error_report(net, (x, y))
    json.dumps(report)  # JSON-safe: nndl evaluate --json prints it
    m = np.array(report["confusion_matrix"])
    assert m.shape == (10, 10) and m.sum() == report["total"] == len(y)
    assert np.trace(m) == report["correct"] and report["errors"] == len(y) - report["correct"]
    assert report["accuracy"] == pytest.approx(net.accuracy((x, y)))
    np.testing.assert_array_equal(report["class_counts"], np.bincount(y, minlength=10))
    np.testing.assert_allclose(report["per_class_accuracy"], per_class_accuracy(y, net.predict(x)))
    counts = [c["count"] for c in report["most_confused"]]
    assert counts == sorted(counts, reverse=True) and all(c["true"] != c["predicted"] for c in report["most_confused"])


def test_report_from_predictions_handles_absent_classes_and_names():
    report = report_from_predictions([0, 0, 1], [0, 1, 1], n_classes=3, class_names=["a", "b", "c"])
    assert report["per_class_accuracy"] == [0.5, 1.0, None]  # None, not NaN, so json.dumps works
    assert report["class_names"] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="2 names for 3 classes"):
        report_from_predictions([0], [0], n_classes=3, class_names=["a", "b"])


def test_error_report_refuses_bad_data(trained):
    net, (x, y) = trained
    with pytest.raises(ValueError, match="empty"):
        error_report(net, (x[:0], y[:0]))
    with pytest.raises(ShapeError, match="10 inputs but 9 labels"):
        error_report(net, (x[:10], y[:9]))
    with pytest.raises(ValueError, match=r"\(x, y\) pair"):
        misclassified(net, x[:10])
