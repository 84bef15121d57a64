"""The character-level RNN: its loss gradient against finite differences, learning a text written
here (loss falls, samples stay in the vocabulary), generation, safe save/load, and the CLI."""
from __future__ import annotations

import argparse
import json
import math
import zipfile

import numpy as np
import pytest

import nndl
from nndl.charrnn import CharRNN, read_text
from nndl.cli import rnn as rnn_cli
from nndl.errors import DataFormatError, ModelFileError, TrainingDivergedError
from nndl.nn.gradcheck import numerical_gradient, relative_error


def phrase_text(n_sentences: int = 120, seed: int = 0) -> str:
    """A deterministic English-like text from a small grammar (written for these tests)."""
    rng = np.random.default_rng(seed)
    subjects = ["the cat", "a dog", "the old man", "my sister"]
    verbs = ["sees", "finds", "likes"]
    objects = ["the red ball", "a small box", "the garden"]
    return "".join(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}.\n".capitalize()
                   for _ in range(n_sentences))


@pytest.fixture(scope="module")
def trained():
    """A small model trained for a few seconds on the phrase text."""
    text = phrase_text()
    model = CharRNN.from_text(text, 48, seq_length=25, seed=0)
    before = model.evaluate(text)
    records = model.fit(text, epochs=12, batch_size=8, eta=0.01, clip_norm=5.0)
    return text, model, before, records


def test_loss_gradient_through_time_matches_finite_differences():
    model = CharRNN(list("abcd"), 6, seq_length=5, dtype="float64", seed=1)
    rng = np.random.default_rng(0)
    inputs, targets = rng.integers(0, 4, (3, 5)), rng.integers(0, 4, (3, 5))
    h0 = 0.5 * rng.standard_normal((3, 6))            # a state carried in from a previous chunk
    model.loss_and_grad(inputs, targets, h0)
    analytic = [p.grad.copy() for p in model.params]
    assert [p.name for p in model.params] == ["w_xh", "w_hh", "b", "w", "b"]
    for p, grad in zip(model.params, analytic):
        numeric = numerical_gradient(lambda: model.loss(inputs, targets, h0), p.value)
        assert relative_error(grad, numeric) < 1e-6, p.name


def test_loss_is_the_sum_over_steps_of_minus_log_p_averaged_over_the_batch():
    model = CharRNN(list("xyz"), 4, seq_length=3, dtype="float64", seed=2)
    inputs, targets = np.array([[0, 1, 2], [2, 2, 1]]), np.array([[1, 2, 0], [2, 1, 0]])
    p = model._forward(inputs, None, train=False).reshape(2, 3, 3)
    expected = -np.log(np.take_along_axis(p, targets[..., None], axis=2)).sum() / 2
    assert model.loss(inputs, targets) == pytest.approx(expected, rel=1e-12)
    assert model.loss(inputs, targets) == pytest.approx(3 * math.log(3), rel=0.2)   # near uniform at the start


def test_training_reduces_the_loss_and_samples_stay_in_the_vocabulary(trained):
    text, model, before, records = trained
    assert before == pytest.approx(math.log(model.vocab_size), rel=0.1)
    losses = [r["loss_per_char"] for r in records]
    assert losses[-1] < 0.35 * before, losses                 # from ~3.0 to below ~1.0 nats per char
    assert model.evaluate(text) < 0.35 * before
    sample = model.sample(300, start="The cat ", temperature=0.5, seed=1)
    assert sample.startswith("The cat ") and len(sample) == 308
    assert set(sample) <= set(model.vocab)
    words = set(text.replace(".", " ").split())
    generated = sample.replace(".", " ").split()
    assert sum(w in words for w in generated) >= 0.8 * len(generated)   # it spells the text's words


def test_sampling_is_seeded_and_temperature_sharpens(trained):
    _, model, _, _ = trained
    assert model.sample(80, start="A dog", seed=3) == model.sample(80, start="A dog", seed=3)
    assert model.sample(80, start="A dog", seed=3) != model.sample(80, start="A dog", seed=4)
    cold = model.sample(400, start="The ", temperature=0.2, seed=0)
    hot = model.sample(400, start="The ", temperature=3.0, seed=0)
    assert len(set(hot)) > len(set(cold))                     # a flatter softmax uses more characters
    one = model.sample(5, seed=0)                             # no start: one vocabulary character drawn
    assert len(one) == 6 and set(one) <= set(model.vocab)


def test_bad_input_is_refused(trained, tmp_path):
    _, model, _, _ = trained
    with pytest.raises(ValueError, match="not in the model's vocabulary"):
        model.sample(10, start="QZ#")
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        model.sample(10, start="The", temperature=0)
    with pytest.raises(ValueError, match="at least 2 distinct"):
        CharRNN(["a", "a"])
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    with pytest.raises(DataFormatError, match="not UTF-8"):
        read_text(str(tmp_path / "latin1.txt"))
    (tmp_path / "one.txt").write_text("aaaa")
    with pytest.raises(DataFormatError, match="at least 2 different characters"):
        read_text(str(tmp_path / "one.txt"))


def test_a_huge_eta_stops_training_with_training_diverged_error(tmp_path, capsys):
    """η = 1e38 overflows float32 within Adam's first two steps: nndl's own error (a FloatingPointError,
    as before), saying where it happened and what to try; the CLI prints it on one line. (η = 1e30 diverged
    too, but only through rounding near tanh's saturation, at a step that differed between CPUs.)"""
    text = phrase_text(20)
    model = CharRNN.from_text(text, 16, seq_length=10, seed=0)
    with np.errstate(all="ignore"), pytest.raises(
            TrainingDivergedError, match=r"diverged at epoch 0, iteration \d+: the loss per character became nan\. "
                                         r"The learning rate eta=1e\+38 .* smaller eta, or a smaller clip_norm"):
        model.fit(text, epochs=1, batch_size=4, eta=1e38, clip_norm=5.0)
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match=r"gradient clipping \(clip_norm=5\)"):
        CharRNN.from_text(text, 16, seq_length=10, seed=0).fit(text, epochs=1, batch_size=4, eta=1e38, clip_norm=None)
    textfile = tmp_path / "phrases.txt"
    textfile.write_text(text, encoding="utf-8")
    with np.errstate(all="ignore"):
        assert rnn_cli.main(["train", str(textfile), "--hidden", "16", "--seq-length", "10", "--eta", "1e38",
                             "--sample-chars", "0"]) == 2
    assert "nndl: error: training diverged at epoch" in capsys.readouterr().err


def test_save_load_round_trip_and_safe_format(trained, tmp_path):
    text, model, _, records = trained
    path = tmp_path / "char.npz"
    model.save(str(path), note="test")
    loaded = CharRNN.load(str(path))
    assert loaded.vocab == model.vocab and loaded.n_hidden == model.n_hidden
    assert loaded.history == model.history and loaded.metadata["note"] == "test"
    for a, b in zip(loaded.params, model.params):
        np.testing.assert_array_equal(a.value, b.value)
    assert loaded.sample(100, start="My ", seed=5) == model.sample(100, start="My ", seed=5)
    # Plain arrays only: every member loads with allow_pickle=False, the vocabulary is JSON.
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["__nndl__"].tobytes().decode("utf-8"))
        assert all(z[k].dtype != object for k in z.files)
    assert meta["kind"] == "charrnn" and meta["charrnn"]["vocab"] == model.vocab
    # A network file is refused with a pointer to nndl.load; a damaged file with a clear message.
    net = nndl.Network([nndl.Dense(4, 2)], seed=0)
    net.save(str(tmp_path / "net.npz"))
    with pytest.raises(ModelFileError, match="not a character RNN"):
        CharRNN.load(str(tmp_path / "net.npz"))
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(tmp_path / "bad.npz", "w") as zout:
        for item in zin.infolist():
            if item.filename != "rnn/w_hh.npy":
                zout.writestr(item, zin.read(item.filename))
    with pytest.raises(ModelFileError, match="missing the array 'rnn/w_hh'"):
        CharRNN.load(str(tmp_path / "bad.npz"))


def test_carried_state_makes_chunks_equal_one_long_sequence():
    """Truncated BPTT's forward pass: reading a text in chunks with the state carried gives the
    same loss as reading it in one piece."""
    model = CharRNN(list("abc"), 5, seq_length=4, dtype="float64", seed=0)
    ids = np.random.default_rng(1).integers(0, 3, (2, 13))
    whole = model.loss(ids[:, :12], ids[:, 1:])
    first = model.loss(ids[:, :4], ids[:, 1:5])
    rest = model.loss(ids[:, 4:12], ids[:, 5:13], h0=model.rnn.h_last)
    assert first + rest == pytest.approx(whole, rel=1e-12)


def test_cli_train_and_sample(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="nndl")
    rnn_cli.register(parser.add_subparsers(dest="command"))
    textfile = tmp_path / "phrases.txt"
    textfile.write_text(phrase_text(80, seed=1), encoding="utf-8")
    model_path, metrics = tmp_path / "m.npz", tmp_path / "loss.jsonl"
    args = parser.parse_args(["rnn", "train", str(textfile), "--hidden", "32", "--seq-length", "20", "--epochs", "3",
                              "--batch-size", "8", "--eta", "0.01", "--validation", "0.1", "--log-every", "2",
                              "--sample-chars", "30", "--save", str(model_path), "--metrics", str(metrics),
                              "--plot", str(tmp_path / "loss.png")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "Epoch 2: loss" in out and "validation" in out and f"saved to {model_path}" in out
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    epochs = [r for r in records if r["type"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [0, 1, 2]
    assert epochs[-1]["loss_per_char"] < epochs[0]["loss_per_char"]
    assert any(r["type"] == "iteration" for r in records)
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert rnn_cli.main(["sample", str(model_path), "--n", "40", "--start", "The ", "--seed", "1"]) == 0
    sample = capsys.readouterr().out.rstrip("\n")
    assert sample.startswith("The ") and len(sample) == 44
    assert rnn_cli.main(["sample", str(tmp_path / "missing.npz")]) == 2
    assert "no model file" in capsys.readouterr().err
    assert rnn_cli.main(["train", str(textfile), "--eta", "-1"]) == 2
    assert "--eta must be positive" in capsys.readouterr().err


def test_cli_seq_mnist_small(tmp_path, capsys):
    path = tmp_path / "seq.npz"
    assert rnn_cli.main(["seq-mnist", "--hidden", "32", "--epochs", "2", "--train-size", "1000", "--batch-size", "10",
                         "--eta", "0.002", "--save", str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["epochs"] == 2 and result["train_size"] == 1000
    assert result["test_accuracy"] > 0.35, result            # 52.6% measured; chance is 10%
    net = nndl.load(str(path))
    assert net.layers[0].kind == "rnn" and net.metadata["settings"]["layers"][0]["n_hidden"] == 32
    assert result["final_test_accuracy"] == net.accuracy(nndl.data.load_mnist()[2])   # the saved net: the last epoch
