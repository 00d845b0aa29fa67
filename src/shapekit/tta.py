"""Test-time augmentation for tasks whose network output is a map aligned with its input (landmark
heatmaps, segmentation logits): run the network on transformed copies of the input, warp each output back
into the frame of the original input, and average.

Views: the input itself, a horizontal flip (only for models trained with flips; a flipped view swaps
left/right channels, e.g. landmark pairs, before averaging) and small zooms about the canvas centre.
Input and output maps share normalised coordinates (pixel-centre convention, ``align_corners=False``),
so one affine matrix per view serves both, whatever the output's stride. Where a zoomed view does not
cover the output (its borders after zooming in), that view is left out of the average.

Two-stage landmark models also vote in their second stage: each landmark's refiner crop is taken again with
its centre shifted by ``crop_shifts`` (in coarse heatmap cells) and the refined points are averaged. The
refiner only sees a crop, so a shifted crop is another look at the same pixels (bench/landmarks.py:
averaging five crops, centred and one cell up/down/left/right, lowered the held-out error on drosophila wings
and mollusc shells, where the zoom views alone did not; neutral on lizard toepads).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .errors import ShapekitError

DEFAULT_SCALES = (0.9, 1.1)
# The refiner's crop centres: centred, and one coarse heatmap cell right, left, down and up.
CROSS_SHIFTS = ((0.0, 0.0), (1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0))
# What a user picks (CLI flags, web app, HTTP API): nothing, the refiner's crop votes alone, or every view.
TEST_TIME_MODES = ("off", "votes", "full")


def flip_permutation(count: int, pairs: Sequence[Sequence[int]] | None) -> list[int]:
    """Channel order after a horizontal flip: channel i takes channel j for each left/right pair (i, j)."""
    order = list(range(count))
    for i, j in pairs or []:
        order[i], order[j] = j, i
    return order


def _warp(maps: torch.Tensor, flip: bool, scale: float) -> torch.Tensor:
    """maps sampled at (x * f / s, y / s) in normalised coordinates: flip (f = -1) and zoom by ``scale``."""
    theta = torch.tensor([[(-1.0 if flip else 1.0) / scale, 0.0, 0.0], [0.0, 1.0 / scale, 0.0]],
                         dtype=maps.dtype, device=maps.device).expand(maps.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(maps.shape), align_corners=False)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@dataclass(frozen=True)
class TestTimeAugmentation:
    """``flip``: add a horizontally flipped view, whose output channels are re-ordered by ``flip_order``;
    ``scales``: zoom factors of extra views (1 is always included); ``crop_shifts``: crop-centre shifts (dx, dy)
    in coarse heatmap cells whose refined points are averaged (two-stage landmark models; empty: one centred
    crop)."""

    __test__ = False  # not a pytest test class despite its name

    flip: bool = False
    scales: tuple[float, ...] = DEFAULT_SCALES
    flip_order: list[int] | None = field(default=None)
    crop_shifts: tuple[tuple[float, float], ...] = ()

    def crop_votes_only(self) -> "TestTimeAugmentation":
        """The refiner's shifted crops without the whole-image views (``--crop-votes``)."""
        return replace(self, flip=False, scales=())

    @property
    def views(self) -> list[tuple[bool, float]]:
        views = [(False, 1.0)] + [(False, float(s)) for s in self.scales if s != 1.0]
        return views + [(True, 1.0)] if self.flip else views

    def __call__(self, run: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor) -> torch.Tensor:
        """Average of ``run`` (input batch (B, C, H, W) -> output maps (B, K, h, w)) over the views."""
        total = weight = None
        for flip, scale in self.views:
            if not flip and scale == 1.0:
                out = run(images).float()
                mask = torch.ones_like(out[:, :1])
            else:
                # The view is the input sampled at A g; its output maps back through A^-1 (same f, 1/s inverted).
                out = run(_warp(images, flip, scale)).float()
                ones = torch.ones_like(out[:, :1])
                back = 1.0 / scale
                mask = _warp(ones, flip, back)
                out = _warp(out, flip, back)
                if flip and self.flip_order is not None:
                    out = out[:, self.flip_order]
            total = out * mask if total is None else total + out * mask
            weight = mask if weight is None else weight + mask
        return total / weight.clamp_min(1e-6)


def test_time_views(task, mode: str) -> "bool | TestTimeAugmentation":
    """``mode`` (one of :data:`TEST_TIME_MODES`) -> the ``tta`` argument of a task's inference: False, True
    (all the task's views) or the crop votes alone; a one-line error for a task or model without them."""
    if mode not in TEST_TIME_MODES:
        raise ShapekitError(f"test-time views {mode!r}: expected one of {', '.join(TEST_TIME_MODES)}")
    if mode == "off":
        return False
    views = task.test_time_augmentation()
    if mode == "full":
        return True
    if not views.crop_shifts:
        raise ShapekitError("crop votes: this model has no refinement stage to vote with (landmarks models "
                            "trained with --opt refine=true, the default, have one)")
    return views.crop_votes_only()
