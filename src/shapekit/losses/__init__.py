"""Losses, one small module per family."""

from .heatmap import HEATMAP_LOSSES, heatmap_mse_loss, weighted_l1_loss
from .segmentation import DiceBCELoss, DiceCELoss

__all__ = ["DiceBCELoss", "DiceCELoss", "HEATMAP_LOSSES", "heatmap_mse_loss", "weighted_l1_loss"]
