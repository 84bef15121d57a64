"""Model files and checkpoints: .npz arrays plus JSON, never pickle."""
from .io import load, load_checkpoint_into, network_from_config, save, save_checkpoint

__all__ = ["load", "load_checkpoint_into", "network_from_config", "save", "save_checkpoint"]
