"""Losses, one small module per family."""

from .heatmap import HEATMAP_LOSSES, heatmap_mse_loss, weighted_l1_loss

__all__ = ["HEATMAP_LOSSES", "heatmap_mse_loss", "weighted_l1_loss"]
