"""Heatmap losses."""

from __future__ import annotations

import torch


def weighted_l1_loss(pred: torch.Tensor, target: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """The garment paper's loss: per heatmap, 0.5 * mean |H - G| over the target disk (G > 0) plus
    0.5 * mean |H - G| over the background, averaged over landmarks. Probabilities in, [0, 1] out.

    Landmarks that are not visible (missing, or pushed out of frame by augmentation) are left out.
    """
    error = (pred.float() - target).abs()
    foreground = (target > 0).float()
    background = 1.0 - foreground
    fg_mean = (error * foreground).sum((-2, -1)) / foreground.sum((-2, -1)).clamp_min(1.0)
    bg_mean = (error * background).sum((-2, -1)) / background.sum((-2, -1)).clamp_min(1.0)
    per_landmark = 0.5 * fg_mean + 0.5 * bg_mean
    weight = visible.float()
    return (per_landmark * weight).sum() / weight.sum().clamp_min(1.0)


def heatmap_mse_loss(pred: torch.Tensor, target: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """Plain mean squared error on heatmaps (the Gaussian-target alternative), visible landmarks only."""
    per_landmark = (pred.float() - target).pow(2).mean((-2, -1))
    weight = visible.float()
    return (per_landmark * weight).sum() / weight.sum().clamp_min(1.0)


HEATMAP_LOSSES = {"weighted_l1": weighted_l1_loss, "mse": heatmap_mse_loss}
