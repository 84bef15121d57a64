"""Model files and checkpoints: .npz arrays plus JSON, never pickle."""
from .default import default_model_path, load_default_model
from .io import load, load_checkpoint_into, network_from_config, save, save_checkpoint

__all__ = ["default_model_path", "load", "load_default_model", "load_checkpoint_into", "network_from_config", "save", "save_checkpoint"]
