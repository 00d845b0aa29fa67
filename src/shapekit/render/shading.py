"""Colour for soft fragments: UV texture sampling, vertex colours, Lambertian shading."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .rasterizer import Fragments


def sample_texture(texture: torch.Tensor, index: torch.Tensor, uv: torch.Tensor, wrap_u: bool = True) -> torch.Tensor:
    """Bilinear lookup of (T, H, W, C) textures at (P, 2) UVs in [0, 1] (v = 0 at the top row), one texture
    per pair (``index``). Hand-written because grid_sample needs an equal number of samples per texture;
    pairs here are ragged. ``wrap_u`` wraps horizontally, for seamless spherical/cylindrical unwraps."""
    count, height, width, channels = texture.shape
    x = uv[:, 0] * width - 0.5
    y = uv[:, 1] * height - 0.5
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    x0, y0 = x0.long(), y0.long()
    flat = texture.reshape(count * height * width, channels)

    def tap(xi, yi):
        xi = torch.remainder(xi, width) if wrap_u else xi.clamp(0, width - 1)
        yi = yi.clamp(0, height - 1)
        return flat[(index * height + yi) * width + xi]

    top = tap(x0, y0) * (1 - fx)[:, None] + tap(x0 + 1, y0) * fx[:, None]
    bottom = tap(x0, y0 + 1) * (1 - fx)[:, None] + tap(x0 + 1, y0 + 1) * fx[:, None]
    return top * (1 - fy)[:, None] + bottom * fy[:, None]


def interpolate_face_attributes(fragments: Fragments, attributes: torch.Tensor) -> torch.Tensor:
    """Per-pair values from per-face-corner attributes (B * F, 3, C) and the pairs' barycentrics."""
    return (fragments.bary[..., None] * attributes[fragments.face]).sum(1)


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted vertex normals (B, V, 3)."""
    corners = verts[:, faces]  # (B, F, 3, 3)
    face_normals = torch.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0], dim=-1)
    normals = torch.zeros_like(verts)
    for k in range(3):
        normals = normals.index_add(1, faces[:, k], face_normals)
    return F.normalize(normals, dim=-1, eps=1e-12)


def lambert(normals: torch.Tensor, light_dir: torch.Tensor, ambient: float = 0.35, diffuse: float = 0.65) -> torch.Tensor:
    """Two-sided Lambertian factor for (P, 3) normals and (P, 3) unit directions towards the light."""
    return ambient + diffuse * (normals * light_dir).sum(-1).abs()
