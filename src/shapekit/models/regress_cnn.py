"""Coordinate-regression networks for morphometric landmarks (beetle paper).

``LandmarkCNN`` is the paper's compact network: three conv - max-pool - dropout blocks
(32 filters 3x3, 64 filters 2x2, 128 filters 2x2; dropout 0.1 / 0.2 / 0.3) and fully connected
1000 - dropout 0.5 - 1000 - 2N. ``EncoderRegressor`` puts the same fully connected head on a pretrained
encoder from the factory. Both output coordinates normalised to [-1, 1] across the input.
"""

from __future__ import annotations

import torch
from torch import nn

from .encoders import Normalize, create_encoder


def _regression_head(in_features: int, num_landmarks: int, hidden: int = 1000) -> nn.Sequential:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, 2 * num_landmarks),
    )


class LandmarkCNN(nn.Module):
    def __init__(self, num_landmarks: int, width: int = 256, height: int = 192, in_channels: int = 1,
                 hidden: int = 1000):
        super().__init__()
        self.in_channels = in_channels

        def block(cin, cout, kernel, drop):
            return [nn.Conv2d(cin, cout, kernel), nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Dropout(drop)]

        self.features = nn.Sequential(*block(in_channels, 32, 3, 0.1), *block(32, 64, 2, 0.2), *block(64, 128, 2, 0.3))
        with torch.no_grad():
            flat = self.features(torch.zeros(1, in_channels, height, width)).numel()
        self.head = _regression_head(flat, num_landmarks, hidden)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] RGB (B, 3, H, W) -> (B, N, 2) coordinates in [-1, 1]."""
        if self.in_channels == 1:
            images = images.mean(1, keepdim=True)  # the paper works on gray images
        out = self.head(self.features(images - 0.5))
        return out.view(out.shape[0], -1, 2)  # shape[0], not len(): the ONNX tracer keeps it a dynamic batch


class EncoderRegressor(nn.Module):
    def __init__(self, num_landmarks: int, encoder: str = "mobilenet_v2", encoder_weights="imagenet",
                 hidden: int = 1000):
        super().__init__()
        self.normalize = Normalize()
        self.encoder = create_encoder(encoder, encoder_weights)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = _regression_head(self.encoder.out_channels[-1], num_landmarks, hidden)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.head(self.pool(self.encoder(self.normalize(images))[-1]))
        return out.view(out.shape[0], -1, 2)  # shape[0], not len(): the ONNX tracer keeps it a dynamic batch
