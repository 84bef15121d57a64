"""An executor that runs trials in the test's own process and keeps the trials it ran, so a test
can check the journal logic (what runs, what is skipped) without a process pool."""
from __future__ import annotations

from nndl.executors import run_trial


class InlineExecutor:
    workers = 1

    def __init__(self):
        self.ran: list[dict] = []

    def imap_unordered(self, trials, data_dir):
        for t in trials:
            self.ran.append(t)
            yield run_trial(t, data_dir)

    def close(self):
        pass
