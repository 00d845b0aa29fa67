"""Fixed-size crops around points, sampled from original-resolution images (coarse-to-fine landmarks).

Crop pixel (i, j) of an S x S crop centred on c with ``step`` original pixels per crop pixel samples the
original image at c + step * (j + 0.5 - S/2, i + 0.5 - S/2), rotated by ``angle`` when one is given
(training augmentation). Coordinates follow the pixel-centre convention of :mod:`shapekit.heatmaps`.
torch's grid_sample does the bilinear sampling, so the same code runs in data loading, validation and
inference; outside the image the crop is zero (black, like the letterbox padding).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> float (3, H, W) in [0, 1]."""
    # np.require copies only read-only or non-contiguous arrays (torch warns on read-only ones).
    return torch.from_numpy(np.require(image, requirements=["C", "W"])).permute(2, 0, 1).float().div_(255.0)


def sample_crops(image: torch.Tensor, centres: torch.Tensor, step: torch.Tensor | float, size: int,
                 angle: torch.Tensor | None = None) -> torch.Tensor:
    """Crops (N, C, S, S) of ``image`` (C, H, W) around ``centres`` (N, 2), in original pixels."""
    count = centres.shape[0]
    height, width = image.shape[-2:]
    dtype, device = image.dtype, image.device
    centres = centres.to(dtype)
    step = torch.as_tensor(step, dtype=dtype, device=device).expand(count)
    offsets = torch.arange(size, dtype=dtype, device=device) + 0.5 - size / 2
    oy, ox = torch.meshgrid(offsets, offsets, indexing="ij")  # (S, S)
    ox, oy = ox[None] * step[:, None, None], oy[None] * step[:, None, None]
    if angle is not None:
        cos, sin = torch.cos(angle)[:, None, None].to(dtype), torch.sin(angle)[:, None, None].to(dtype)
        ox, oy = cos * ox - sin * oy, sin * ox + cos * oy
    x = centres[:, 0, None, None] + ox
    y = centres[:, 1, None, None] + oy
    # grid_sample's normalised coordinates with align_corners=False: pixel p sits at (2p + 1) / size - 1.
    grid = torch.stack([(2 * x + 1) / width - 1, (2 * y + 1) / height - 1], dim=-1)  # (N, S, S, 2)
    grid = grid.reshape(1, count * size, size, 2)
    crops = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return crops.view(image.shape[0], count, size, size).permute(1, 0, 2, 3)


def crop_to_image(points: torch.Tensor, centres: torch.Tensor, step: torch.Tensor | float, size: int) -> torch.Tensor:
    """Crop-pixel coordinates (..., 2) of unrotated crops -> original pixels."""
    step = torch.as_tensor(step, dtype=points.dtype, device=points.device)
    if step.dim():
        step = step[..., None]
    return centres.to(points.dtype) + step * (points + 0.5 - size / 2)


def image_to_crop(points: torch.Tensor, centres: torch.Tensor, step: torch.Tensor | float, size: int,
                  angle: torch.Tensor | None = None) -> torch.Tensor:
    """Original pixels (N, 2) -> crop-pixel coordinates of the crops :func:`sample_crops` draws."""
    step = torch.as_tensor(step, dtype=points.dtype, device=points.device)
    if step.dim():
        step = step[..., None]
    d = (points - centres.to(points.dtype)) / step
    if angle is not None:  # undo the rotation
        cos, sin = torch.cos(angle).to(points.dtype), torch.sin(angle).to(points.dtype)
        d = torch.stack([cos * d[:, 0] + sin * d[:, 1], -sin * d[:, 0] + cos * d[:, 1]], dim=-1)
    return d + size / 2 - 0.5
