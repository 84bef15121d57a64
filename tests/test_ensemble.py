"""Ensembles (chapter 6's plurality vote): the vote, and members trained in parallel, saved,
resumed, and reported through `nndl ensemble` and `nndl reproduce`'s ensemble runner."""
import argparse
import json
import os

import numpy as np
import pytest

import nndl
from nndl.ensemble import Ensemble, member_trials, train_ensemble
from nndl.executors import run_trial
from nndl.files import read_jsonl
from nndl.recipes import load_recipe
from nndl.recipes.reproduce import finished_run, reproduce, run_ensemble
from nndl.settings import settings_from
from tests.inline_executor import InlineExecutor

SMALL = {"sizes": [784, 10, 10], "train_size": 500, "epochs": 1, "validation_size": 1000}


class FixedNet:
    """A member whose predictions are given: enough to specify the vote exactly."""

    def __init__(self, labels, proba, n_classes=3):
        self.labels, self.proba, self.n_classes = np.array(labels), np.array(proba, dtype=float), n_classes

    def predict(self, x):
        return self.labels

    def predict_proba(self, x):
        return self.proba


def test_plurality_vote_with_ties_broken_by_summed_probabilities():
    p = [[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]]
    a = FixedNet([0, 2], p)
    b = FixedNet([0, 1], [[0.5, 0.4, 0.1], [0.1, 0.5, 0.4]])
    c = FixedNet([1, 1], [[0.4, 0.5, 0.1], [0.2, 0.3, 0.5]])
    x = np.zeros((2, 4))
    np.testing.assert_array_equal(Ensemble([a, b, c]).votes(x), [[2, 1, 0], [0, 2, 1]])
    np.testing.assert_array_equal(Ensemble([a, b, c]).predict(x), [0, 1])          # plurality
    # Sample 1 ties 1-1 between classes 2 (a) and 1 (b); summed probabilities: class 1 0.7, class 2 1.1.
    np.testing.assert_array_equal(Ensemble([a, b]).predict(x), [0, 2])
    np.testing.assert_array_equal(Ensemble([b, a]).predict(x), [0, 2])             # order does not matter
    assert Ensemble([a, b, c]).accuracy((x, [0, 2])) == 0.5
    with pytest.raises(ValueError, match="at least one"):
        Ensemble([])
    with pytest.raises(ValueError, match="number of classes"):
        Ensemble([a, FixedNet([0, 1], p, n_classes=10)])


def test_cli_trains_members_in_parallel_saves_them_and_reports_the_vote(tmp_path, capsys):
    from nndl.cli import ensemble as ensemble_cli

    parser = argparse.ArgumentParser()
    ensemble_cli.register(parser.add_subparsers())
    # The folder nndl reproduce would use for seed 0 of a recipe "test-ensemble" (checked below).
    out = str(tmp_path / "test-ensemble" / "seed0")
    args = parser.parse_args(["ensemble", "--recipe", "ch3-ce-30", "--epochs", "1", "--train-size", "500",
                              "--members", "3", "--workers", "2", "--out", out, "--quiet"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    report = json.load(open(os.path.join(out, "ensemble.json")))
    assert report["executed"] == 3 and [m["seed"] for m in report["members"]] == [0, 1, 2]
    assert report["settings"]["cost"] == "cross-entropy" and report["settings"]["epochs"] == 1
    nets = [nndl.load(os.path.join(out, f"member{k}.npz")) for k in range(3)]
    _, _, test = nndl.data.load_mnist()
    for m, net in zip(report["members"], nets):
        assert m["test_accuracy"] == net.accuracy(test) and 0.3 < m["test_accuracy"] < 1.0
        assert m["errors"] == round((1 - m["test_accuracy"]) * len(test[1]))
        assert f"member {m['member']} (seed {m['seed']}): test accuracy {100 * m['test_accuracy']:.2f}%" in printed
    assert not np.array_equal(nets[0].get_weights()[0], nets[1].get_weights()[0])       # different seeds
    assert report["vote_accuracy"] == Ensemble(nets).accuracy(test)
    assert f"plurality vote of 3: test accuracy {100 * report['vote_accuracy']:.2f}%" in printed
    averaged = np.mean([net.predict_proba(test[0]) for net in nets], axis=0).argmax(axis=1) == test[1]
    assert report["averaged_accuracy"] == averaged.mean() and report["averaged_errors"] == (~averaged).sum()
    assert f"averaged probabilities of 3: test accuracy {100 * averaged.mean():.2f}%" in printed

    # nndl reproduce's runner for kind = "ensemble": seed 0 uses member seeds 0..2, as the CLI did, with
    # the same settings (recipe + overrides), so it finds all three members finished and trains nothing.
    recipe = {"id": "test-ensemble", "kind": "ensemble", "members": "ch3-ce-30", "n_members": 3}
    overrides = {"epochs": 1, "train_size": 500}
    res = run_ensemble(recipe, seed=0, out=str(tmp_path), overrides=overrides, data_dir=None, verbose=False)
    assert res["measured"] == report["vote_accuracy"] and res["epochs_run"] == 1 and res["seconds"] > 0
    assert res["member_accuracies"] == [m["test_accuracy"] for m in report["members"]]
    assert json.load(open(os.path.join(out, "ensemble.json")))["executed"] == 0

    # A member whose file is gone is trained again, and only that one, with the same seed and result.
    os.remove(os.path.join(out, "member1.npz"))
    inline = InlineExecutor()
    again = train_ensemble(report["settings"], 3, out=out, executor=inline)
    assert [t["seed"] for t in inline.ran] == [1] and again["skipped"] == 2
    assert again["vote_accuracy"] == report["vote_accuracy"]
    assert len(read_jsonl(os.path.join(out, "members.jsonl"))) == 4


def test_member_trials_have_distinct_ids_paths_and_checkpoints(tmp_path):
    trials = member_trials(settings_from(SMALL), 3, str(tmp_path), first_seed=10)
    assert [t["seed"] for t in trials] == [10, 11, 12] and len({t["id"] for t in trials}) == 3
    assert [os.path.basename(t["save"]) for t in trials] == ["member0.npz", "member1.npz", "member2.npz"]
    assert all(os.path.isabs(t["save"]) and t["id"] in t["checkpoint"] for t in trials)
    with pytest.raises(ValueError, match="at least 1 member"):
        member_trials(settings_from(SMALL), 0, str(tmp_path))


def test_a_member_cut_off_mid_training_resumes_from_its_checkpoint_and_ends_identical(tmp_path):
    from nndl.experiment import run

    settings = settings_from({**SMALL, "epochs": 2, "eta": 3.0})
    whole = run_trial(member_trials(settings, 1, str(tmp_path / "whole"))[0], None)
    trial = member_trials(settings, 1, str(tmp_path / "cut"))[0]
    # The same member killed after its first epoch: its checkpoint holds epoch 0 of the same run.
    run({**settings, "epochs": 1}, trial["seed"], checkpoint=trial["checkpoint"])
    resumed = run_trial(trial, None)
    assert resumed["epochs_run"] == 2
    a, b = nndl.load(whole["save"]), nndl.load(resumed["save"])
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    # And the checkpoint really is where it continues from: one left by another seed's first epoch
    # gives different final weights than training from scratch would.
    other = member_trials(settings, 1, str(tmp_path / "other"))[0]
    run({**settings, "epochs": 1}, 7, checkpoint=other["checkpoint"])
    continued = nndl.load(run_trial(other, None)["save"])
    assert not np.array_equal(continued.get_weights()[0], a.get_weights()[0])


def test_reproduce_runner_and_cli_refuse_what_is_not_an_ensemble_of_networks(tmp_path):
    from nndl.cli import ensemble as ensemble_cli

    with pytest.raises(ValueError, match="members"):
        run_ensemble({"id": "x"}, seed=0, out=str(tmp_path), overrides={}, data_dir=None, verbose=False)
    parser = argparse.ArgumentParser()
    ensemble_cli.register(parser.add_subparsers())
    for argv, message in ([["--recipe", "base-svm", "--members", "2"], "kind 'baseline'"],
                          [["--recipe", "ch3-ce-30"], "--members N"]):
        args = parser.parse_args(["ensemble", *argv, "--out", str(tmp_path)])
        with pytest.raises(ValueError, match=message):
            args.func(args)


def test_reproduce_runner_uses_the_member_recipes_finished_runs_and_trains_only_the_rest(tmp_path):
    out = str(tmp_path)
    overrides = {"epochs": 1, "train_size": 500}
    reproduce(["ch3-ce-30"], seeds=2, out=out, overrides=overrides, verbose=False)     # rows of their own
    own = [os.path.join(out, "ch3-ce-30", f"seed{k}.npz") for k in range(2)]

    recipe = {"id": "test-ensemble", "kind": "ensemble", "members": "ch3-ce-30", "n_members": 3}
    res = run_ensemble(recipe, seed=0, out=out, overrides=overrides, data_dir=None, verbose=False)
    report = json.load(open(os.path.join(out, "test-ensemble", "seed0", "ensemble.json")))
    assert report["reused"] == 2 and report["executed"] == 1                  # only seed 2 was trained
    assert [m["path"] for m in report["members"][:2]] == [os.path.abspath(p) for p in own]
    assert [m["seed"] for m in report["members"]] == [0, 1, 2]
    _, _, test = nndl.data.load_mnist()
    nets = [nndl.load(m["path"]) for m in report["members"]]
    assert res["measured"] == Ensemble(nets).accuracy(test)

    # Other settings (here η) never reuse a run: seed 0 is trained again for the new settings.
    other = {**overrides, "eta": 0.1}
    run_ensemble({**recipe, "id": "test-ensemble-eta", "n_members": 1}, seed=0, out=out, overrides=other,
                       data_dir=None, verbose=False)
    report = json.load(open(os.path.join(out, "test-ensemble-eta", "seed0", "ensemble.json")))
    assert report["reused"] == 0 and report["executed"] == 1

    # A damaged finished run is not used either.
    with open(own[0], "r+b") as f:
        f.truncate(100)
    settings = settings_from({**load_recipe("ch3-ce-30")["settings"], **overrides})
    assert finished_run(out, "ch3-ce-30", 0, settings) is None
    assert finished_run(out, "ch3-ce-30", 1, settings)["save"] == os.path.abspath(own[1])
    assert finished_run(out, "ch3-ce-30", 1, {**settings, "epochs": 2}) is None
    # Where it ran is not what it computed: a run trained on another device or thread count counts.
    assert finished_run(out, "ch3-ce-30", 1, {**settings, "device": "gpu", "threads": 2})["save"] == \
        os.path.abspath(own[1])


def test_evaluate_ensemble_reads_members_stored_in_float16_and_reports_vote_and_averaged_probabilities(
        tmp_path, capsys):
    from nndl.cli import main

    (x, y), _, test = nndl.data.load_mnist()
    paths = []
    for seed in range(3):
        net = nndl.Network([nndl.Dense(784, 20, "relu"), nndl.Dense(20, 10, "softmax")], cost="log-likelihood",
                           init="he", seed=seed)
        net.fit((x[:1000], y[:1000]), epochs=1, mini_batch_size=20, eta=0.1)
        paths.append(str(tmp_path / f"member{seed}.npz"))
        net.save(paths[-1], stored_dtype="float16")
    assert main(["evaluate", "--ensemble", *paths, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    nets = [nndl.load(p) for p in paths]                       # as stored: float16 rounded
    assert report["accuracy"] == Ensemble(nets).accuracy(test) > 0.7
    averaged = np.mean([n.predict_proba(test[0]) for n in nets], axis=0).argmax(axis=1) == test[1]
    assert report["averaged_accuracy"] == averaged.mean()
    assert [m["accuracy"] for m in report["members"]] == [n.accuracy(test) for n in nets]
    assert main(["evaluate", "--ensemble", *paths]) == 0
    assert f"averaged probabilities: {averaged.mean():.2%}" in capsys.readouterr().out
