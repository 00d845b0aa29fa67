"""Segmentation losses: 0.5 Dice + 0.5 BCE for binary masks (the clothing paper), soft Dice + cross
entropy for label maps. Built on segmentation_models_pytorch's loss implementations."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.losses import DiceLoss


class DiceBCELoss(torch.nn.Module):
    def __init__(self, dice_weight: float = 0.5):
        super().__init__()
        self.dice = DiceLoss(mode="binary", from_logits=True)
        self.dice_weight = dice_weight

    def forward(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """logits (B, 1, H, W), mask (B, H, W) of 0/1."""
        target = mask.float().unsqueeze(1)
        logits = logits.float()
        bce = F.binary_cross_entropy_with_logits(logits, target)
        return self.dice_weight * self.dice(logits, target) + (1 - self.dice_weight) * bce


class DiceCELoss(torch.nn.Module):
    def __init__(self, dice_weight: float = 0.5, ignore_index: int | None = None):
        super().__init__()
        self.dice = DiceLoss(mode="multiclass", from_logits=True, ignore_index=ignore_index)
        self.dice_weight = dice_weight
        self.ignore_index = -100 if ignore_index is None else ignore_index

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """logits (B, C, H, W), labels (B, H, W) of class ids."""
        logits = logits.float()
        labels = labels.long()
        ce = F.cross_entropy(logits, labels, ignore_index=self.ignore_index)
        return self.dice_weight * self.dice(logits, labels) + (1 - self.dice_weight) * ce
