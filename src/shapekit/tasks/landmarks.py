"""Heatmap landmark detection (garment paper): U-Net on a pretrained encoder, one sigmoid heatmap per
landmark at 1/4 input resolution, cone targets + weighted L1 (or Gaussian + MSE), sub-pixel decoding.

Coarse-to-fine (on by default, ``--opt refine=false`` to skip: at the default ~20-minute budget it beat a
coarse model given the same minutes on every benchmark dataset, see README): one heatmap cell of a 256-px input is
12 original pixels on a 768-px photo, so a second stage (models/crop_refiner.py) looks at a fixed-size
crop of the *original* pixels around each coarse landmark and places it inside that crop. It is trained
jointly with the coarse network, on crops centred on jittered true positions (the jitter stands in for
the coarse error), and is part of the checkpoint and of the ONNX export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from ..crops import crop_to_image, image_tensor, image_to_crop, sample_crops
from ..errors import ShapekitError
from ..heatmaps import decode_heatmaps, default_radius, from_heatmap, gaussian_divergence, render_targets, to_heatmap
from ..losses import HEATMAP_LOSSES
from ..models import create_model
from ..plots import plot_heatmap_grid
from ..transforms import invert_letterbox_points
from ..tta import CROSS_SHIFTS, TestTimeAugmentation, flip_permutation
from .base import register_task
from ._keypoints import KeypointOptions, KeypointTask


class HeatmapOptions(KeypointOptions):
    target: Literal["cone", "gaussian"] = Field("cone", description="cone (paper) or gaussian targets")
    loss: Literal["weighted_l1", "mse"] | None = Field(None, description="default: weighted_l1 for cones, mse for gaussians")
    radius: float | None = Field(None, gt=0, description="target radius in heatmap pixels; default size * 10/128")
    decoder_channels: tuple[int, int, int] = (128, 96, 64)
    refine: bool = Field(True, description="second stage on original-pixel crops around each coarse landmark "
                                                "(false: whole-image heatmaps only; see the benchmark in the README)")
    refine_head: Literal["heatmap", "offset"] = Field(
        "heatmap", description="heatmap + soft-argmax (integral regression) or direct offset regression")
    refine_crop: int = Field(48, ge=16, multiple_of=8, description="crop side, pixels fed to the refiner")
    refine_cells: float = Field(6.0, gt=1, description="crop side in coarse heatmap cells (sets the crop's scale)")
    refine_jitter: float = Field(0.75, ge=0, description="training crop-centre jitter, std in coarse heatmap cells")
    refine_passes: int = Field(1, ge=1, le=4, description="refiner passes at inference, each crop re-centred on "
                                                         "the previous pass's point")
    refine_zoom: float = Field(1.0, ge=0.25, le=1.0, description="each later pass's crop span relative to the pass "
                                                                "before (0.5: twice the resolution); training "
                                                                "crops come at both scales")
    freeze_stem: bool = Field(True, description="keep the pretrained encoder's stride-2 and -4 layers (and the "
                                                "refiner's) fixed: 1.3-1.5x faster training steps, same accuracy")


@register_task
class LandmarkTask(KeypointTask):
    name = "landmarks"
    Options = HeatmapOptions
    output_layer = ("head.weight", "head.bias")
    test_time_modes = ("off", "votes", "full")  # crop votes need a refiner; test_time_views says so otherwise

    @property
    def heatmap_size(self) -> int:
        """The heatmaps' long side (they are 1/4 of the input); sets the default target radius."""
        return max(self.input_shape) // 4

    @property
    def radius(self) -> float:
        return self.options.radius or default_radius(self.heatmap_size)

    @property
    def refinement(self) -> dict | None:
        """The second stage's settings as trained ({crop, cells, head}), None for a coarse-only model."""
        return self.meta.get("refine")

    def setup(self):
        # Recorded before the datasets are built: the training crops depend on it; old checkpoints lack it.
        self.meta["refine"] = ({"crop": self.options.refine_crop, "cells": self.options.refine_cells,
                                "head": self.options.refine_head} if self.options.refine else None)
        return super().setup()

    def default_epochs(self, n_train: int) -> int:
        epochs = super().default_epochs(n_train)
        if self.refinement:
            # Each landmark's crop adds about 1.8 % to a training sample's cost with the refiner's stem fixed
            # (measured on 2 CPU cores in bf16: 9 crops 54 ms against 330 ms for the U-Net, batch of 8; it was
            # 4.5 % while the stem trained); fewer epochs keep the default run near 20 minutes.
            epochs = int(max(15, round(epochs / (1 + 0.018 * self.meta["num_landmarks"]))))
        return epochs

    def build_model(self, pretrained: bool = True):
        refine = self.refinement or {}
        return create_model("heatmap_unet", num_landmarks=self.meta["num_landmarks"], encoder=self.config.encoder,
                            encoder_weights=self.config.encoder_weights if pretrained else None,
                            decoder_channels=self.options.decoder_channels, refine_crop=refine.get("crop"),
                            refine_head=refine.get("head", "heatmap"),
                            freeze_stem=self.options.freeze_stem and str(self.config.encoder_weights).lower() != "none")

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

    # --- coarse-to-fine -------------------------------------------------------------------------
    def crop_step(self, letterboxes) -> torch.Tensor:
        """Original pixels per crop pixel for each image (B,), from its letterbox params (B, 4): the crop spans
        ``cells`` coarse heatmap cells whatever the photo's size."""
        refine = self.refinement
        letterboxes = torch.as_tensor(np.asarray(letterboxes, dtype=np.float32))
        scale = (letterboxes[:, 0] + letterboxes[:, 1]) / 2  # input pixels per original pixel
        stride = 4  # input pixels per heatmap cell
        return refine["cells"] * stride / (refine["crop"] * scale)

    def refine_in_crops(self, run, images: list, centres: torch.Tensor, letterboxes, shifts=(),
                        zoom: float = 1.0) -> torch.Tensor:
        """Refined points (B, N, 2) in original pixels: crops of each original image around ``centres``
        (B, N, 2), ``run`` (crops (B, N, 3, S, S) -> crop-pixel points (B, N, 2)), mapped back. ``shifts``
        (K, 2), in coarse heatmap cells: one crop per shifted centre, all in one ``run`` call, refined points
        averaged (test-time voting; empty: the centred crop alone). ``zoom``: the crops' span relative to the
        trained one (shifts scale with it)."""
        size = self.refinement["crop"]
        steps = self.crop_step(letterboxes) * zoom
        offsets = torch.tensor(shifts or [(0.0, 0.0)], dtype=torch.float32)  # (K, 2) cells
        cell = steps * size / self.refinement["cells"]  # one coarse cell in original pixels, per image
        voted = centres.float().cpu()[None] + offsets[:, None, None, :] * cell[None, :, None, None]  # (K, B, N, 2)
        tensors = [image if torch.is_tensor(image) else image_tensor(image) for image in images]
        crops = torch.stack([sample_crops(tensor, centre, step, size)
                             for shifted in voted for tensor, centre, step in zip(tensors, shifted, steps)])
        local = run(crops).float().cpu().view(voted.shape)
        return crop_to_image(local, voted, steps[None, :, None], size).mean(0)

    def refine_points(self, model, forward, images, points, letterboxes, runtime, shifts=()):
        if not self.refinement:
            return points
        if forward is not None:
            refine = getattr(forward, "refine", None)
            if refine is None:
                raise ShapekitError("this ONNX model was exported without its refinement stage; export it again")

            def run(crops):
                return torch.from_numpy(np.asarray(refine(crops.numpy())))
        else:
            def run(crops):
                with torch.inference_mode(), runtime.autocast():
                    return model.refine(crops.to(runtime.device))
        refined = self.refine_repeatedly(run, images, torch.from_numpy(points), letterboxes, shifts)
        return refined.double().numpy()

    def refine_repeatedly(self, run, images: list, centres: torch.Tensor, letterboxes, shifts=()) -> torch.Tensor:
        """``refine_in_crops`` repeated ``refine_passes`` times, each pass's crops centred on the last pass's
        points and ``refine_zoom`` times the span of the pass before: a crop centred closer to the landmark
        leaves it context on every side, and a finer one resolves it in more crop pixels."""
        for k in range(self.options.refine_passes):
            centres = self.refine_in_crops(run, images, centres, letterboxes, shifts, self.options.refine_zoom ** k)
        return centres

    def sample_settings(self, training: bool):
        if not self.refinement:
            return {}
        return {"keep_originals": True, "extra": self._training_crops if training else None}

    def _training_crops(self, samples, index: int) -> dict:
        """Crops around jittered true positions (the jitter stands in for the coarse error), with small random
        rotation, zoom and brightness/contrast changes; targets in crop pixels."""
        refine, augment = self.refinement, self.options.augment
        size = refine["crop"]
        truth = torch.from_numpy(samples.originals[index]).float()
        visible = ~torch.isnan(truth).any(1)
        truth = torch.nan_to_num(truth)
        count = len(truth)
        step = float(self.crop_step(samples.letterboxes[index][None])[0])
        # With a zoom, half of the crops are a later pass's: finer, and off-centre by the same number of crop
        # pixels (a later pass starts from a point the pass before already refined).
        zoom = self.options.refine_zoom
        finer = torch.where(torch.rand(count, 1) < 0.5, zoom, 1.0) if zoom < 1 else torch.ones(count, 1)
        cell = step * size / refine["cells"]  # one coarse heatmap cell in original pixels
        limit = 0.35 * size * step * finer
        jitter = (torch.randn(count, 2) * self.options.refine_jitter * cell * finer).clamp(-limit, limit)
        angle = scale = None
        if augment.enabled:
            angle = torch.empty(count).uniform_(-augment.rotate, augment.rotate) * (np.pi / 180)
            scale = torch.empty(count).uniform_(1 - augment.scale, 1 + augment.scale)
        steps = step * finer[:, 0] * (scale if scale is not None else torch.ones(count))
        centres = truth + jitter
        crops = sample_crops(image_tensor(samples.original_images[index]), centres, steps, size, angle)
        if augment.enabled:
            contrast = 1 + torch.empty(count, 1, 1, 1).uniform_(-augment.color, augment.color)
            brightness = torch.empty(count, 1, 1, 1).uniform_(-augment.color, augment.color) * 0.5
            crops = ((crops - 0.5) * contrast + 0.5 + brightness).clamp(0, 1)
        targets = image_to_crop(truth, centres, steps, size, angle)
        return {"crops": crops, "crop_points": targets, "crop_valid": visible}

    def training_step(self, model, batch):
        loss = self.compute_loss(model(batch["image"]), batch)
        if "crops" not in batch:
            return loss, {}
        predicted, maps = model.refiner(batch["crops"], with_maps=True)
        valid = batch["crop_valid"].float()
        size = self.refinement["crop"]
        # Integral regression: L1 on the soft-argmax position (in crop sizes, so it does not depend on S).
        error = (predicted.float() - batch["crop_points"]).abs().sum(-1) / size
        if maps is not None:
            # Plus a small divergence from a Gaussian at the true position (as in DSNT): it makes the maps
            # peaked, which the position loss alone converges to slowly on a few dozen images.
            side = maps.shape[-1]
            divergence = gaussian_divergence(maps, to_heatmap(batch["crop_points"].float(), size // side),
                                             batch["crop_valid"])
            error = error + 0.1 * divergence
        refine_loss = (error * valid).sum() / valid.sum().clamp_min(1)
        return loss + refine_loss, {"refine_loss": refine_loss.detach()}

    def validation_step(self, model, batch):
        raw = model(batch["image"])
        loss = self.compute_loss(raw, batch)
        points, _ = self.decode(raw)
        coarse = invert_letterbox_points(points.float(), batch["letterbox"])
        outputs = {"long_side": batch["long_side"]}
        final = coarse
        samples = getattr(self, "_val_samples", None)
        if self.refinement and samples is not None and samples.original_images:
            images = [samples.original_images[int(i)] for i in batch["index"]]
            device = batch["image"].device
            final = self.refine_repeatedly(lambda crops: model.refine(crops.to(device)), images, coarse.detach(),
                                           batch["letterbox"].cpu())
            final = final.to(coarse.device)
            outputs["coarse_errors"] = torch.linalg.norm(coarse - batch["points_orig"], dim=-1)
        outputs["errors"] = torch.linalg.norm(final - batch["points_orig"], dim=-1)
        return loss, outputs

    def validation_metrics(self, outputs):
        metrics = super().validation_metrics(outputs)
        if "coarse_errors" in outputs:
            pct = outputs["coarse_errors"].numpy() / outputs["long_side"].numpy()[:, None] * 100
            metrics["val/coarse_error_pct"] = float(np.nanmean(pct))
        return metrics

    # --- test-time augmentation -------------------------------------------------------------------
    def test_time_augmentation(self) -> TestTimeAugmentation:
        """Zooms always; a flipped view only for models trained with flips (declared left/right pairs),
        since a model that never saw a mirrored specimen has no business judging one; shifted refiner crops
        for two-stage models."""
        pairs = self.meta.get("flip_pairs") or []
        augment = self.options.augment
        flipped = bool(pairs) and augment.enabled and augment.hflip
        return TestTimeAugmentation(flip=flipped, flip_order=flip_permutation(self.meta["num_landmarks"], pairs),
                                    crop_shifts=CROSS_SHIFTS if self.refinement else ())
