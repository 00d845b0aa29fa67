"""Heatmap landmark detection (garment paper): U-Net on a pretrained encoder, one sigmoid heatmap per
landmark at 1/4 input resolution, cone targets + weighted L1 (or Gaussian + MSE), sub-pixel decoding."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

from ..heatmaps import decode_heatmaps, default_radius, from_heatmap, render_targets, to_heatmap
from ..losses import HEATMAP_LOSSES
from ..models import create_model
from ..plots import plot_heatmap_grid
from .base import register_task
from ._keypoints import KeypointOptions, KeypointTask


class HeatmapOptions(KeypointOptions):
    target: Literal["cone", "gaussian"] = Field("cone", description="cone (paper) or gaussian targets")
    loss: Literal["weighted_l1", "mse"] | None = Field(None, description="default: weighted_l1 for cones, mse for gaussians")
    radius: float | None = Field(None, gt=0, description="target radius in heatmap pixels; default size * 10/128")
    decoder_channels: tuple[int, int, int] = (128, 96, 64)


@register_task
class LandmarkTask(KeypointTask):
    name = "landmarks"
    Options = HeatmapOptions
    output_layer = ("head.weight", "head.bias")

    @property
    def heatmap_size(self) -> int:
        return self.input_shape[1] // 4

    @property
    def radius(self) -> float:
        return self.options.radius or default_radius(self.heatmap_size)

    def build_model(self, pretrained: bool = True):
        return create_model("heatmap_unet", num_landmarks=self.meta["num_landmarks"], encoder=self.config.encoder,
                            encoder_weights=self.config.encoder_weights if pretrained else None,
                            decoder_channels=self.options.decoder_channels)

    def compute_loss(self, raw, batch):
        height, width = raw.shape[-2:]
        stride = self.input_shape[1] // height
        targets = render_targets(to_heatmap(batch["points"], stride), batch["visible"], height, width, self.radius,
                                 self.options.target)
        loss_name = self.options.loss or ("weighted_l1" if self.options.target == "cone" else "mse")
        return HEATMAP_LOSSES[loss_name](torch.sigmoid(raw.float()), targets, batch["visible"])

    def decode(self, raw):
        stride = self.input_shape[1] // raw.shape[-2]
        points, confidence = decode_heatmaps(torch.sigmoid(raw.float()), self.radius)
        return from_heatmap(points, stride), confidence

    def extra_epoch_plots(self, raw, image, pred, true, out_dir: Path) -> None:
        heatmaps = torch.sigmoid(raw[0].float()).cpu().numpy()
        plot_heatmap_grid(image, heatmaps, pred, true, self.names, self.input_shape[1] // heatmaps.shape[-2],
                          out_dir / "heatmaps.png")
