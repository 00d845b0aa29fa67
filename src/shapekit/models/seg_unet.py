"""Segmentation U-Net (segmentation_models_pytorch) on an encoder from shapekit's offline factory."""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch
from torch import nn

from .encoders import Normalize, _spec, create_encoder


class SegmentationUNet(nn.Module):
    def __init__(self, num_classes: int = 1, encoder: str = "mobilenet_v2", encoder_weights="imagenet",
                 decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)):
        super().__init__()
        self.normalize = Normalize()
        self.net = smp.Unet(encoder_name=_spec(encoder).smp_name, encoder_weights=None, classes=num_classes,
                            decoder_channels=tuple(decoder_channels))
        # smp would download ImageNet weights itself; swap in the same encoder with offline-resolved weights.
        self.net.encoder = create_encoder(encoder, encoder_weights)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] RGB (B, 3, H, W), H and W multiples of 32 -> logits (B, C, H, W)."""
        return self.net(self.normalize(images))
