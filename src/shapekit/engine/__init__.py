"""Shared training and inference machinery."""

from .checkpoint import load_model, read_checkpoint
from .runtime import Runtime
from .trainer import resumable_config, train

__all__ = ["Runtime", "load_model", "read_checkpoint", "resumable_config", "train"]
