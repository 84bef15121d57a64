"""Model files: .npz arrays plus JSON, never pickle (training checkpoints: ``nndl.train.checkpoint``)."""
from .default import default_model_path, load_default_model
from .io import load, network_from_config, save

__all__ = ["default_model_path", "load", "load_default_model", "network_from_config", "save"]
