"""Coordinate-regression landmarks (beetle paper): a compact CNN (or a pretrained encoder with the same
head) regresses all coordinates, normalised to [-1, 1]; RMSE loss; channel shift/split augmentation."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from ..models import create_model
from ..transforms import ChannelAugment
from ._keypoints import KeypointOptions, KeypointTask
from .base import register_task


class RegressOptions(KeypointOptions):
    backbone: Literal["paper", "encoder"] = Field("paper", description="paper: the beetle paper's CNN; encoder: "
                                                                         "the same head on --encoder (pretrained)")
    channels: Literal["gray", "rgb"] = Field("gray", description="input of the paper's CNN")
    channel_augment: bool = Field(True, description="add a constant to one channel / use one channel as gray")
    channel_shift: float = Field(20.0, ge=0, description="largest constant added to a channel")
    hidden: int = Field(1000, ge=8, description="width of the two fully connected layers")


@register_task
class RegressTask(KeypointTask):
    name = "regress"
    Options = RegressOptions
    default_lr = 1e-3
    output_rows_per_landmark = 2
    output_layer = ("head.6.weight", "head.6.bias")  # the last Linear of the regression head

    def choose_input_shape(self, data):
        shape = self.explicit_input_shape()
        if shape:
            return shape
        # The paper's 256 x 192, turned upright when most images are portrait.
        portrait = np.median([r.height for r in data.records]) > np.median([r.width for r in data.records])
        return (192, 256) if portrait else (256, 192)

    def pixel_augment(self):
        if not self.options.channel_augment:
            return None
        return ChannelAugment(self.options.channel_shift)

    def default_epochs(self, n_train: int) -> int:
        # Regression from scratch needs many passes (the paper ran 5000 epochs); ~40k samples.
        return int(np.clip(round(40000 / max(1, n_train)), 30, 400))

    def build_model(self, pretrained: bool = True):
        count = self.meta["num_landmarks"]
        if self.options.backbone == "paper":
            width, height = self.input_shape
            return create_model("landmark_cnn", num_landmarks=count, width=width, height=height,
                                in_channels=1 if self.options.channels == "gray" else 3, hidden=self.options.hidden)
        return create_model("encoder_regressor", num_landmarks=count, encoder=self.config.encoder,
                            encoder_weights=self.config.encoder_weights if pretrained else None, hidden=self.options.hidden)

    def _scale(self, like: torch.Tensor) -> torch.Tensor:
        width, height = self.input_shape
        return torch.tensor([width - 1, height - 1], dtype=torch.float32, device=like.device)

    def compute_loss(self, raw, batch):
        """RMSE between predicted and true coordinates in [-1, 1], over visible landmarks."""
        target = batch["points"] / self._scale(raw) * 2 - 1
        squared = (raw.float() - target).pow(2).sum(-1)
        visible = batch["visible"].float()
        return torch.sqrt((squared * visible).sum() / (2 * visible.sum()).clamp_min(1.0) + 1e-12)

    def decode(self, raw):
        points = (raw.float() + 1) / 2 * self._scale(raw)
        return points, torch.ones(raw.shape[:2], device=raw.device)
