"""Single-view mesh network (shoe paper): a U-Net on a pretrained encoder predicts a flow map at
texture size (the texture is the input image sampled through it), and a shape decoder from the
bottleneck predicts offsets of the template's vertices."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoderBlock
from torch import nn

from .encoders import Normalize, create_encoder


class MeshNet(nn.Module):
    def __init__(self, num_vertices: int, texture_size: tuple[int, int] = (64, 128), encoder: str = "mobilenet_v2",
                 encoder_weights="imagenet", decoder_channels: tuple[int, ...] = (128, 64, 48, 32),
                 hidden: int = 512, max_offset: float = 0.6):
        super().__init__()
        self.texture_size = tuple(texture_size)  # (height, width)
        self.max_offset = max_offset
        self.normalize = Normalize()
        self.encoder = create_encoder(encoder, encoder_weights)
        channels = self.encoder.out_channels  # strides 1, 2, 4, 8, 16, 32
        skips = (channels[4], channels[3], channels[2], channels[1])
        blocks, in_channels = [], channels[5]
        for skip, out in zip(skips, decoder_channels):
            blocks.append(UnetDecoderBlock(in_channels, skip, out))
            in_channels = out
        self.decoder = nn.ModuleList(blocks)
        self.flow_head = nn.Conv2d(in_channels, 2, kernel_size=3, padding=1)
        nn.init.zeros_(self.flow_head.weight)
        nn.init.zeros_(self.flow_head.bias)
        self.shape_head = nn.Sequential(nn.Linear(channels[5], hidden), nn.ReLU(inplace=True),
                                        nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                                        nn.Linear(hidden, num_vertices * 3))
        nn.init.zeros_(self.shape_head[-1].weight)  # start from the template itself
        nn.init.zeros_(self.shape_head[-1].bias)
        self.register_buffer("identity_grid", self._identity(self.texture_size), persistent=False)

    @staticmethod
    def _identity(size: tuple[int, int]) -> torch.Tensor:
        ys = torch.linspace(-1, 1, size[0])
        xs = torch.linspace(-1, 1, size[1])
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack([grid_x, grid_y], -1)[None]

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """[0, 1] RGB (B, 3, H, W) -> vertex offsets (B, V, 3), flow grid (B, Ht, Wt, 2) in [-1, 1] image
        coordinates, and the texture (B, Ht, Wt, 3) sampled from the input through the flow."""
        features = self.encoder(self.normalize(images))
        x = features[5]
        for block, skip in zip(self.decoder, (features[4], features[3], features[2], features[1])):
            x = block(x, skip.shape[-2], skip.shape[-1], skip)
        flow = F.interpolate(self.flow_head(x), size=self.texture_size, mode="bilinear", align_corners=False)
        # Start as the identity lookup (the texture is the input image) and learn a residual.
        grid = (self.identity_grid + flow.permute(0, 2, 3, 1).float()).clamp(-1, 1)
        texture = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
        pooled = features[5].float().mean((2, 3))
        offsets = self.max_offset * torch.tanh(self.shape_head(pooled).view(len(images), -1, 3))
        return {"offsets": offsets, "flow": grid, "texture": texture.permute(0, 2, 3, 1)}
