"""Single-view mesh network (shoe paper): a U-Net on a pretrained encoder predicts a flow map at
texture size (the texture is the input image sampled through it), and a shape decoder predicts offsets
of the template's vertices: an MLP on the pooled bottleneck (the paper's design) plus, with aligned
features, a per-vertex MLP on the decoder features found where the vertex projects in the input view."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoderBlock
from torch import nn

from .encoders import Normalize, create_encoder


class MeshNet(nn.Module):
    def __init__(self, num_vertices: int, texture_size: tuple[int, int] = (64, 128), encoder: str = "mobilenet_v2",
                 encoder_weights="imagenet", decoder_channels: tuple[int, ...] = (128, 64, 48, 32),
                 hidden: int = 512, max_offset: float = 0.6, shape_features: str = "aligned",
                 input_camera=None, template_vertices=None, aligned_steps: int = 1):
        super().__init__()
        if shape_features not in ("pooled", "aligned"):
            raise ValueError(f"shape_features must be 'pooled' or 'aligned', not {shape_features!r}")
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
        # "aligned" adds a per-vertex offset read from the decoder's feature maps where the template vertex
        # projects in the input view (pixel-aligned features, as in Pixel2Mesh): pooled features alone lose
        # where the outline runs, and the vertices that form the outline depend on exactly that.
        # With aligned_steps > 1, each further step reads the features again where the deformed vertices now
        # project (the benchmark found no gain from a second step at its budget, so one is the default).
        self.vertex_heads = nn.ModuleList()
        if shape_features == "aligned":
            if input_camera is None or template_vertices is None:
                raise ValueError("aligned shape features need the template's vertices and the input view's camera")
            cam2world, yfov = input_camera
            self.register_buffer("input_cam2world", torch.as_tensor(cam2world, dtype=torch.float32), persistent=False)
            self.input_focal = 1.0 / math.tan(float(yfov) / 2)
            self.register_buffer("template_vertices", torch.as_tensor(template_vertices, dtype=torch.float32),
                                 persistent=False)
            for _ in range(aligned_steps):
                head = nn.Sequential(nn.Linear(sum(decoder_channels) + 3, 128), nn.ReLU(inplace=True),
                                     nn.Linear(128, 128), nn.ReLU(inplace=True), nn.Linear(128, 3))
                nn.init.zeros_(head[-1].weight)
                nn.init.zeros_(head[-1].bias)
                self.vertex_heads.append(head)
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

    def _input_view_grid(self, vertices: torch.Tensor) -> torch.Tensor:
        """(B, V, 3) world points -> grid_sample coordinates (B, 1, V, 2) in the input view (OpenGL camera)."""
        camera = (vertices - self.input_cam2world[:3, 3]) @ self.input_cam2world[:3, :3]
        depth = (-camera[..., 2]).clamp_min(1e-3)
        grid = torch.stack([camera[..., 0], -camera[..., 1]], -1) * (self.input_focal / depth[..., None])
        return grid[:, None]

    def _aligned_features(self, decoded: list[torch.Tensor], vertices: torch.Tensor) -> torch.Tensor:
        grid = self._input_view_grid(vertices)
        sampled = [F.grid_sample(f.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)[:, :, 0]
                   for f in decoded]  # each (B, C, V)
        return torch.cat([*sampled, vertices.transpose(1, 2)], 1).transpose(1, 2)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """[0, 1] RGB (B, 3, H, W) -> vertex offsets (B, V, 3), flow grid (B, Ht, Wt, 2) in [-1, 1] image
        coordinates, and the texture (B, Ht, Wt, 3) sampled from the input through the flow."""
        features = self.encoder(self.normalize(images))
        x, decoded = features[5], []
        for block, skip in zip(self.decoder, (features[4], features[3], features[2], features[1])):
            x = block(x, skip.shape[-2], skip.shape[-1], skip)
            decoded.append(x)
        flow = F.interpolate(self.flow_head(x), size=self.texture_size, mode="bilinear", align_corners=False)
        # Start as the identity lookup (the texture is the input image) and learn a residual.
        grid = (self.identity_grid + flow.permute(0, 2, 3, 1).float()).clamp(-1, 1)
        texture = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
        pooled = features[5].float().mean((2, 3))
        raw = self.shape_head(pooled).view(images.shape[0], -1, 3)
        offsets = self.max_offset * torch.tanh(raw)
        if len(self.vertex_heads):
            vertices = self.template_vertices.expand(images.shape[0], -1, -1)
            for head in self.vertex_heads:
                raw = raw + head(self._aligned_features(decoded, vertices))
                offsets = self.max_offset * torch.tanh(raw)
                vertices = self.template_vertices + offsets
        return {"offsets": offsets, "flow": grid, "texture": texture.permute(0, 2, 3, 1)}
