"""experiment.run: one network trained as its settings say, and the numbers it reports; and
reproduce's bookkeeping of finished and interrupted runs."""
import json
import os
import time

import pytest

from nndl.experiment import load_data, run
from nndl.recipes import RecipeError
from nndl.recipes.reproduce import reproduce
from nndl.settings import settings_from

SMALL = {"sizes": [784, 10, 10], "train_size": 5000, "validation_size": 1000, "eta": 3.0}


def test_a_resumed_run_counts_every_epoch_of_training_time_once(tmp_path):
    settings = settings_from({**SMALL, "epochs": 2})
    data = load_data(settings)                 # given to run, so its wall time is training and monitoring
    run({**settings, "epochs": 1}, 0, checkpoint=str(tmp_path), data=data)    # cut off after epoch 0
    start = time.perf_counter()
    resumed = run(settings, 0, checkpoint=str(tmp_path), resume=str(tmp_path), data=data)
    wall = time.perf_counter() - start
    epoch0, epoch1 = (r["seconds"] for r in resumed["history"])
    # Epoch 0 (trained before the resume) counts once, epoch 1 is inside this call's wall time.
    assert epoch0 + epoch1 - 0.01 <= resumed["seconds"] <= epoch0 + wall + 0.01


def test_on_validation_the_saved_network_is_the_best_validation_epochs(tmp_path):
    import nndl

    settings = settings_from({**SMALL, "train_size": 2000, "epochs": 5, "evaluate_on": "validation"})
    training, validation, test = data = load_data(settings)
    result = run(settings, 0, save=str(tmp_path / "net.npz"), data=data)
    assert result["best_validation_epoch"] < 4          # this run's last epoch is not its best
    saved = nndl.load(str(tmp_path / "net.npz"))
    assert saved.accuracy(validation) == result["best_validation_accuracy"]
    assert saved.accuracy(test) == result["test_accuracy_at_best_validation"]
    assert saved.accuracy(validation) > result["final_evaluation_accuracy"]


def test_reproduce_resumes_its_own_runs_and_refuses_to_mix_in_runs_of_other_settings(tmp_path):
    out, small = str(tmp_path), {"epochs": 1, "train_size": 500}
    reproduce(["ch3-ce-30"], out=out, overrides=small, verbose=False)
    # A finished run is never reported for other settings (here fewer training images).
    with pytest.raises(RecipeError, match="finished run of ch3-ce-30 with other settings"):
        reproduce(["ch3-ce-30"], out=out, overrides={**small, "train_size": 400}, verbose=False)

    # Cut off after epoch 0 (its result and model not yet written): the checkpoint is resumed for
    # the same settings with more epochs, and refused for other ones.
    base = os.path.join(out, "ch3-ce-30", "seed0")
    os.remove(base + ".json")
    os.remove(base + ".npz")
    with pytest.raises(RecipeError, match="holds the checkpoint of another run"):
        reproduce(["ch3-ce-30"], out=out, overrides={**small, "eta": 0.1}, verbose=False)
    (row,) = reproduce(["ch3-ce-30"], out=out, overrides={**small, "epochs": 2}, verbose=False)
    assert [json.loads(line)["epoch"] for line in open(base + ".jsonl")] == [0, 1]
    assert json.load(open(base + ".json"))["epochs_run"] == 2 and row["epochs"] == 2


def test_the_elastic_distortion_setting_keeps_labels_and_ink_and_a_cut_off_run_resumes_identically(tmp_path):
    import numpy as np

    from nndl.experiment import distortion

    settings = settings_from({**SMALL, "train_size": 500, "epochs": 2, "augment": True, "distortion": "elastic",
                             "monitor": ["evaluation_cost"]})
    assert distortion({**settings, "augment": False}) is None
    (x, y), _, _ = data = load_data(settings)
    elastic, affine = distortion(settings), distortion({**settings, "distortion": "affine"})
    a, b = elastic(x, np.random.default_rng(3)), affine(x, np.random.default_rng(3))
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1 and not np.array_equal(a, b)
    np.testing.assert_array_equal(a, elastic(x, np.random.default_rng(3)))       # seeded
    ink = lambda images: images.reshape(len(images), -1).sum(axis=1)
    assert np.median(np.abs(ink(a) - ink(x)) / ink(x)) < 0.2                         # the digit stays a digit
    whole = run(settings, 0, data=data)
    run({**settings, "epochs": 1}, 0, checkpoint=str(tmp_path), data=data)            # cut off after epoch 0
    resumed = run(settings, 0, checkpoint=str(tmp_path), resume=str(tmp_path), data=data)
    assert [r["evaluation_cost"] for r in resumed["history"]] == [r["evaluation_cost"] for r in whole["history"]]
    with pytest.raises(Exception, match="distortion"):
        settings_from({**SMALL, "distortion": "wavy"})
