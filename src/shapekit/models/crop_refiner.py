"""Second stage of coarse-to-fine landmarks: a small network that looks at a fixed-size crop around each
coarse landmark (taken from the original pixels) and says where in the crop the landmark is.

The trunk is the first stages of an ImageNet MobileNetV2 (up to stride 8), cheap at 64 px and already
good at edges and corners. Two heads:

- ``heatmap``: integral regression (Sun et al. 2018) -- per-landmark logits at stride 4 of the crop,
  softmax over the crop, expected position (soft-argmax). The expectation is a convex combination of
  cell centres, so the result always lies inside the crop.
- ``offset``: direct regression of the position from the flattened stride-8 features, squashed by tanh
  into the crop.

Each crop is scored by all N landmark channels and the crop's own landmark is picked with an identity
mask (a multiply-and-sum rather than fancy indexing, so the ONNX export stays plain).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..heatmaps import from_heatmap, soft_argmax
from .encoders import Normalize, create_encoder, freeze

RefineHead = Literal["heatmap", "offset"]


def _conv_bn(cin: int, cout: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class CropRefiner(nn.Module):
    def __init__(self, num_landmarks: int, crop_size: int = 64, head: RefineHead = "heatmap",
                 encoder_weights="imagenet", freeze_stem: bool = False):
        super().__init__()
        if crop_size % 8:
            raise ValueError(f"crop size {crop_size} must be a multiple of 8")
        self.num_landmarks, self.crop_size, self.head_kind = num_landmarks, crop_size, head
        self.normalize = Normalize()
        features = create_encoder("mobilenet_v2", encoder_weights).features
        self.stem4 = nn.Sequential(*features[:4])  # stride 4, 24 channels
        self.stem8 = nn.Sequential(*features[4:7])  # stride 8, 32 channels
        if freeze_stem:
            freeze([self.stem4])
        if head == "heatmap":
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            self.fuse = nn.Sequential(_conv_bn(24 + 32, 48), _conv_bn(48, 48))
            self.head = nn.Conv2d(48, num_landmarks, 1)
            nn.init.zeros_(self.head.weight)  # start from a flat map: the refiner begins by not moving points
            nn.init.zeros_(self.head.bias)
        elif head == "offset":
            side = crop_size // 8
            self.reduce = _conv_bn(32, 16, 1)
            self.head = nn.Linear(16 * side * side, 2 * num_landmarks)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        else:
            raise ValueError(f"unknown refine head {head!r}")
        self.register_buffer("identity", torch.eye(num_landmarks), persistent=False)

    def forward(self, crops: torch.Tensor, with_maps: bool = False):
        """Crops (B, N, 3, S, S) in [0, 1], crop n centred on landmark n -> positions (B, N, 2) in crop pixels
        (and, with ``with_maps``, the heatmap head's probability maps (B, N, S/4, S/4), else None)."""
        batch, count, _, size, _ = crops.shape
        x = self.normalize(crops.reshape(batch * count, 3, size, size))
        f4 = self.stem4(x)
        f8 = self.stem8(f4)
        if self.head_kind == "heatmap":
            logits = self.head(self.fuse(torch.cat([f4, self.up(f8)], 1)))  # (B N, N, S/4, S/4)
            side = logits.shape[-1]
            logits = logits.float().view(batch, count, count, side * side)
            logits = (logits * self.identity[None, :, :, None]).sum(2)  # each crop's own landmark channel
            points, maps = soft_argmax(logits.view(batch, count, side, side))
            points = from_heatmap(points, size // side)
        else:
            maps = None
            out = self.head(self.reduce(f8).flatten(1)).float().view(batch, count, count, 2)
            out = (out * self.identity[None, :, :, None]).sum(2)
            points = torch.tanh(out) * (size / 2) + (size - 1) / 2
        points = points.clamp(-0.5, size - 0.5)
        return (points, maps) if with_maps else points
