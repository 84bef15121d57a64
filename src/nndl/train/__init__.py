"""Training: optimisers, callbacks and the loop (chapters 1 and 3)."""
from .averaging import WeightAverage
from .callbacks import (
                        BatchMonitor,
                        BestWeights,
                        Callback,
                        Checkpoint,
                        CycleSchedule,
                        EarlyStopping,
                        ExponentialSchedule,
                        MetricsLog,
                        Monitor,
                        PlateauSchedule,
                        PrintProgress,
                        ProgressBar,
                        StepSchedule,
)
from .optimizers import OPTIMIZERS, SGD, Adam, Momentum, Nesterov, Optimizer, RMSProp, make_optimizer
from .trainer import History, Trainer, fit

__all__ = ["Adam", "BatchMonitor", "BestWeights", "Callback", "Checkpoint", "CycleSchedule", "EarlyStopping",
           "ExponentialSchedule", "History", "WeightAverage",
           "MetricsLog", "Momentum", "Monitor", "Nesterov", "OPTIMIZERS", "Optimizer", "PlateauSchedule",
           "PrintProgress", "ProgressBar", "RMSProp", "SGD", "StepSchedule", "Trainer", "fit", "make_optimizer"]
