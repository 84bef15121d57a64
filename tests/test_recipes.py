"""recipes.run: one network trained as its settings say, and the numbers it reports."""
import time

from nndl.recipes import load_data, run, settings_from

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
