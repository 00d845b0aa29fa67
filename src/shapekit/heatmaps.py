"""Heatmap targets and sub-pixel decoding.

Coordinates use the pixel-centre convention everywhere: pixel k of a row covers [k - 0.5, k + 0.5]
and has its centre at k. A heatmap of stride s therefore maps input coordinate x to
u = (x + 0.5) / s - 0.5.
"""

from __future__ import annotations

from typing import Literal

import torch

TargetKind = Literal["cone", "gaussian"]


def to_heatmap(points: torch.Tensor, stride: int) -> torch.Tensor:
    return (points + 0.5) / stride - 0.5


def from_heatmap(points: torch.Tensor, stride: int) -> torch.Tensor:
    return (points + 0.5) * stride - 0.5


def default_radius(heatmap_size: int) -> float:
    """The garment paper uses r = 10 on 128 x 128 heatmaps; keep that proportion."""
    return max(2.0, heatmap_size * 10.0 / 128.0)


def render_targets(points: torch.Tensor, visible: torch.Tensor, height: int, width: int, radius: float,
                   kind: TargetKind = "cone") -> torch.Tensor:
    """Target heatmaps (B, N, H, W) for heatmap-space points (B, N, 2).

    ``cone``: the paper's linear cone, 1 at the landmark falling to 0 at distance ``radius``.
    ``gaussian``: exp(-d^2 / 2 sigma^2) with sigma = radius / 3, cut to 0 beyond ``radius``.
    Invisible landmarks get an all-zero map (and are masked out of the loss).
    """
    ys = torch.arange(height, device=points.device, dtype=points.dtype).view(1, 1, height, 1)
    xs = torch.arange(width, device=points.device, dtype=points.dtype).view(1, 1, 1, width)
    dx = xs - points[..., 0, None, None]
    dy = ys - points[..., 1, None, None]
    dist2 = dx * dx + dy * dy
    if kind == "cone":
        target = (1.0 - dist2.sqrt() / radius).clamp_min(0.0)
    elif kind == "gaussian":
        sigma = radius / 3.0
        target = torch.exp(-dist2 / (2 * sigma * sigma)) * (dist2 < radius * radius)
    else:
        raise ValueError(f"unknown target kind {kind!r}")
    return target * visible[..., None, None].to(target.dtype)


def soft_argmax(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Integral regression (Sun et al. 2018): softmax of logits (B, N, H, W) over each map, and the expected
    position (B, N, 2) in map pixels. The expectation is a convex combination of pixel centres, so it always
    lies inside the map, and unlike the argmax it is differentiable."""
    height, width = logits.shape[-2:]
    # A softmax over both map axes written out: no reshape, which an ONNX export fed an empty batch cannot resolve.
    logits = logits.float()
    weights = (logits - logits.amax(dim=(-2, -1), keepdim=True)).exp()
    prob = weights / weights.sum(dim=(-2, -1), keepdim=True)
    xs = torch.arange(width, device=logits.device, dtype=prob.dtype)
    ys = torch.arange(height, device=logits.device, dtype=prob.dtype)
    points = torch.stack([(prob.sum(2) * xs).sum(-1), (prob.sum(3) * ys).sum(-1)], -1)
    return points, prob


def gaussian_divergence(prob: torch.Tensor, points: torch.Tensor, visible: torch.Tensor,
                        sigma: float = 1.0) -> torch.Tensor:
    """KL divergence (B, N) of normalised maps (B, N, H, W) from a normalised Gaussian of std ``sigma`` map
    pixels at ``points`` (B, N, 2), map pixels. A small multiple of it next to a position loss makes the maps
    peaked, which the position loss alone reaches slowly (DSNT, Nibali et al. 2018)."""
    height, width = prob.shape[-2:]
    target = render_targets(points.float(), visible, height, width, 3.0 * sigma, "gaussian")
    target = target / target.flatten(2).sum(-1).clamp_min(1e-6)[..., None, None]
    return (target * (target.clamp_min(1e-8).log() - prob.float().clamp_min(1e-8).log())).flatten(2).sum(-1)


def decode_heatmaps(heatmaps: torch.Tensor, radius: float, floor: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-pixel landmark positions from probability heatmaps (B, N, H, W).

    The argmax fixes the peak; the position is then refined to the weighted centroid of the heatmap
    within ``radius`` of the peak (values below ``floor`` x peak ignored, so background noise does not
    pull it). For the symmetric cone or Gaussian targets the centroid is the true centre, so this
    recovers the fraction of a heatmap pixel that a plain argmax loses.

    Returns points (B, N, 2) in heatmap pixels and the peak value (B, N) as a confidence.
    """
    batch, count, height, width = heatmaps.shape
    flat = heatmaps.float().flatten(2)
    peak, index = flat.max(dim=-1)
    peak_y = torch.div(index, width, rounding_mode="floor")
    peak_x = index - peak_y * width

    r = max(1, int(round(radius)))
    offsets = torch.arange(-r, r + 1, device=heatmaps.device)
    oy, ox = torch.meshgrid(offsets, offsets, indexing="ij")
    inside_disk = (oy * oy + ox * ox) <= r * r
    oy, ox = oy[inside_disk], ox[inside_disk]
    ys = peak_y[..., None] + oy  # (B, N, K)
    xs = peak_x[..., None] + ox
    valid = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
    gathered = flat.gather(-1, (ys.clamp(0, height - 1) * width + xs.clamp(0, width - 1)))
    weights = (gathered - floor * peak[..., None]).clamp_min(0.0) * valid
    total = weights.sum(-1).clamp_min(1e-12)
    x = (weights * xs).sum(-1) / total
    y = (weights * ys).sum(-1) / total
    return torch.stack([x, y], dim=-1), peak
