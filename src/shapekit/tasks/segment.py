"""Segmentation (clothing paper): U-Net on a MobileNetV2 encoder, 0.5 Dice + 0.5 BCE for binary masks,
soft Dice + cross entropy for label maps; IoU, Dice and pixel accuracy in original pixels."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import cv2
import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.utils.data import Dataset

from ..engine.inference import ForwardFn, letterboxed_batches
from ..engine.runtime import Runtime
from ..errors import ShapekitError
from ..io.atomic import save_image, write_json
from ..io.images import read_image
from ..io.landmark_dataset import split_indices
from ..io.masks import MaskSet, load_mask_set, read_mask
from ..losses import DiceBCELoss, DiceCELoss
from ..metrics import binary_mask_scores, mask_confusion, summarize_segmentation
from ..models import create_model
from ..plots import plot_mask_grid
from ..progress import track
from ..transforms import AugmentOptions, Letterbox, mask_augmenter
from ..tta import TestTimeAugmentation
from .base import ASSETS, Task, read_inputs, register_task


class SegmentOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["auto", "binary", "multiclass"] = Field("auto", description="auto: masks/ binary, labels/ multiclass")
    dice_weight: float = Field(0.5, ge=0, le=1, description="loss = w Dice + (1 - w) BCE/CE")
    threshold: float = Field(0.5, gt=0, lt=1, description="probability cut for binary masks")
    decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)
    augment: AugmentOptions = Field(default_factory=lambda: AugmentOptions(rotate=10, scale=0.2, shift=0.08,
                                                                            shear=3, color=0.25, hflip=True))


class MaskSamples(Dataset):
    """Letterboxed images and masks cached in memory."""

    def __init__(self, data: MaskSet, shape: tuple[int, int], augment=None, description: str = "loading images"):
        self.augment = augment
        self.images, self.masks = [], []
        classes = None if data.mode == "binary" else data.num_classes
        for record in track(data.records, description):
            box = Letterbox.fit(record.width, record.height, *shape)
            image = read_image(record.image_path)
            mask = read_mask(record.mask_path, data.mode, classes)
            self.images.append(box.apply_image(image))
            self.masks.append(box.apply_image(mask.astype(np.uint8), 0, cv2.INTER_NEAREST))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, mask = self.images[index], self.masks[index]
        if self.augment is not None:
            result = self.augment(image=image, mask=mask)
            image, mask = result["image"], result["mask"]
        return {"image": torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0),
                "mask": torch.from_numpy(np.ascontiguousarray(mask)).long(), "index": torch.tensor(index)}


@register_task
class SegmentTask(Task):
    name = "segment"
    Options = SegmentOptions
    monitor = "val/iou"
    monitor_mode = "max"
    output_formats = ("png",)
    test_time_modes = ("off", "full")
    default_model: ClassVar[Path] = ASSETS / "clothing-segment.ckpt"

    @property
    def binary(self) -> bool:
        return self.meta.get("mode", "binary") == "binary"

    # --- training -------------------------------------------------------------------------------
    def setup(self):
        if self.config.input_size % 32:
            raise ShapekitError(f"--input-size {self.config.input_size}: must be a multiple of 32")
        data = load_mask_set(Path(self.config.data), None if self.options.mode == "auto" else self.options.mode)
        if self.config.val_fraction > 0 and len(data) >= 4:
            train_idx, val_idx = split_indices(len(data), max(1, round(len(data) * self.config.val_fraction)) / len(data),
                                               self.config.seed)
        else:
            train_idx, val_idx = list(range(len(data))), []
        self.meta.update({"mode": data.mode, "class_names": data.class_names, "num_classes": data.num_classes,
                          "input_shape": [self.config.input_size, self.config.input_size],
                          "train_ids": [data.records[i].id for i in train_idx],
                          "val_ids": [data.records[i].id for i in val_idx]})
        augment = mask_augmenter(self.options.augment) if self.options.augment.enabled else None
        train = MaskSamples(data.subset(train_idx), self.input_shape, augment, "loading training images")
        val = MaskSamples(data.subset(val_idx), self.input_shape, None, "loading validation images") if val_idx else None
        self._val_samples = val
        return train, val

    def default_epochs(self, n_train: int) -> int:
        return int(np.clip(round(15000 / max(1, n_train)), 10, 200))

    def build_model(self, pretrained: bool = True):
        return create_model("seg_unet", num_classes=self.meta["num_classes"], encoder=self.config.encoder,
                            encoder_weights=self.config.encoder_weights if pretrained else None,
                            decoder_channels=self.options.decoder_channels)

    def _loss(self, logits, mask):
        if self.binary:
            return DiceBCELoss(self.options.dice_weight)(logits, mask)
        return DiceCELoss(self.options.dice_weight)(logits, mask)

    def _labels(self, logits: torch.Tensor) -> torch.Tensor:
        if self.binary:
            return (torch.sigmoid(logits[:, 0].float()) > self.options.threshold).long()
        return logits.float().argmax(1)

    def training_step(self, model, batch):
        return self._loss(model(batch["image"]), batch["mask"]), {}

    def validation_step(self, model, batch):
        logits = model(batch["image"])
        pred, true = self._labels(logits), batch["mask"]
        classes = max(2, self.meta["num_classes"])
        index = (true * classes + pred).flatten(1)
        confusion = torch.zeros(len(pred), classes * classes, device=pred.device, dtype=torch.long)
        confusion.scatter_add_(1, index, torch.ones_like(index))
        return self._loss(logits, true), {"confusion": confusion}

    def validation_metrics(self, outputs):
        classes = max(2, self.meta["num_classes"])
        confusion = outputs["confusion"].view(-1, classes, classes).double()
        tp = torch.diagonal(confusion, dim1=1, dim2=2)
        union = confusion.sum(1) + confusion.sum(2) - tp
        if self.binary:
            per_image = torch.where(union[:, 1] > 0, tp[:, 1] / union[:, 1].clamp_min(1), torch.ones_like(tp[:, 1]))
            pooled = tp[:, 1].sum() / union[:, 1].sum().clamp_min(1)
        else:
            totals = confusion.sum(0)
            class_iou = torch.diagonal(totals) / (totals.sum(0) + totals.sum(1) - torch.diagonal(totals)).clamp_min(1)
            present = totals.sum(1) > 0
            per_image = class_iou[present]
            pooled = class_iou[present].mean()
        return {"val/iou": float(per_image.mean()), "val/iou_pooled": float(pooled)}

    def epoch_plots(self, model, out_dir, device):
        chosen = self.first_val_images(6, device)
        if chosen is None:
            return
        (picks, images), samples = chosen, self._val_samples
        pred = self._labels(model(images)).cpu().numpy()
        plot_mask_grid([samples.images[i] for i in picks], list(pred), [samples.masks[i] for i in picks],
                       Path(out_dir) / "val_masks.png", "Validation: prediction filled, truth outlined")

    # --- inference ------------------------------------------------------------------------------
    def infer_masks(self, model, images: list[np.ndarray], runtime: Runtime, batch_size: int = 8,
                    forward: ForwardFn | None = None, confidence: list[float] | None = None,
                    tta: bool = False) -> list[np.ndarray]:
        """Label maps at each image's own resolution (uint8: 0/1 for binary, class ids otherwise).

        With a ``confidence`` list, each image's mean probability of its chosen class is appended to it;
        ``tta`` averages the logits over test-time augmentation views."""
        masks = []
        for raw, boxes in letterboxed_batches(images, self.input_shape, model, runtime, batch_size, 0, forward,
                                              self.test_time_augmentation() if tta else None):
            probs = torch.sigmoid(raw) if self.binary else torch.softmax(raw, 1)
            for prob, box, image in zip(probs.numpy(), boxes, images[len(masks):]):
                height, width = image.shape[:2]
                inner = prob[:, box.pad_y:box.pad_y + round(height * box.sy), box.pad_x:box.pad_x + round(width * box.sx)]
                full = np.stack([cv2.resize(c, (width, height), interpolation=cv2.INTER_LINEAR) for c in inner])
                masks.append((full[0] > self.options.threshold).astype(np.uint8) if self.binary
                             else full.argmax(0).astype(np.uint8))
                if confidence is not None:
                    chosen = np.maximum(full[0], 1 - full[0]) if self.binary else full.max(0)
                    confidence.append(float(chosen.mean()))
        return masks

    def test_time_augmentation(self) -> TestTimeAugmentation:
        """Zooms, and a mirrored view when the model was trained with flips (masks have no left/right channels)."""
        augment = self.options.augment
        return TestTimeAugmentation(flip=augment.enabled and augment.hflip)

    def predict(self, model, inputs, out, runtime: Runtime | None = None, batch_size: int = 8, overlays: bool = True,
                forward=None, console=None, fmt: str = "png", tta: bool = False, **_):
        from ..plots import cutout, mask_overlay

        if fmt not in self.output_formats:
            raise ShapekitError(f"--format {fmt!r}: the segment task writes png masks")
        runtime = runtime or Runtime.create()
        out = Path(out)
        images, kept, failed = read_inputs(inputs, console)
        masks = self.infer_masks(model, images, runtime, batch_size, forward, tta=tta)
        scale = 255 if self.binary else 1
        for path, image, mask in track(list(zip(kept, images, masks)), "writing masks"):
            target = out / "masks" / f"{path.stem}.png"
            if target.resolve() == path.resolve():
                raise ShapekitError(f"{target}: refusing to overwrite an input file")
            save_image(target, mask * scale)
            if overlays:
                save_image(out / "overlays" / f"{path.stem}.png", mask_overlay(image, mask))
                save_image(out / "cutouts" / f"{path.stem}.png", cutout(image, mask > 0))
        coverage = [float(np.mean(m > 0)) for m in masks]
        return {"n_images": len(kept), "file": str(out / "masks"), "failed": failed, "masks": masks,
                "images": [str(p) for p in kept], "coverage": coverage}

    def evaluate(self, model, data, runtime: Runtime | None = None, batch_size: int = 8, out_dir: Path | None = None,
                 forward=None, tta: bool = False, **_):
        runtime = runtime or Runtime.create()
        dataset = load_mask_set(Path(data), self.meta.get("mode"))
        classes = None if self.binary else self.meta["num_classes"]
        if not self.binary and dataset.num_classes > self.meta["num_classes"]:
            raise ShapekitError(f"{data}: has {dataset.num_classes} classes, the model knows {self.meta['num_classes']}")
        images = [read_image(r.image_path) for r in track(dataset.records, "reading images")]
        truths = [read_mask(r.mask_path, dataset.mode, classes) for r in dataset.records]
        preds = self.infer_masks(model, images, runtime, batch_size, forward, tta=tta)
        if self.binary:
            per_image = [binary_mask_scores(p, t) for p, t in zip(preds, truths)]
            report = summarize_segmentation(per_image)
        else:
            confusion = sum(mask_confusion(p, t, classes) for p, t in zip(preds, truths))
            per_image = [binary_mask_scores(p > 0, t > 0) for p, t in zip(preds, truths)]  # foreground vs null
            report = summarize_segmentation(per_image, confusion, self.meta["class_names"])
        report["per_image_iou"] = {r.image_path.name: s["iou"] for r, s in zip(dataset.records, per_image)}
        report["data"] = str(data)
        if out_dir is not None:
            worst = np.argsort([s["iou"] for s in per_image])[:6]
            plot_mask_grid([images[i] for i in worst], [preds[i] for i in worst], [truths[i] for i in worst],
                           Path(out_dir) / "worst_images.png", "Lowest IoU: prediction filled, truth outlined",
                           [f"{dataset.records[i].image_path.name}: IoU {per_image[i]['iou']:.3f}" for i in worst])
            write_json(Path(out_dir) / "evaluation.json", report)
        return report

    def print_report(self, report, console) -> None:
        from rich.table import Table

        table = Table(title=f"{report['n_images']} images, {report['data']}")
        for col in ("IoU mean", "IoU pooled", "IoU median", "IoU min", "Dice mean", "pixel acc."):
            table.add_column(col, justify="right")
        table.add_row(*[f"{report[k]:.4f}" for k in ("iou_mean", "iou_pooled", "iou_median", "iou_min", "dice_mean",
                                                      "pixel_accuracy_mean")])
        console.print(table)
        if report.get("per_class_iou"):
            shown = [(k, v) for k, v in report["per_class_iou"].items() if v is not None]
            console.print(f"mIoU {report['miou']:.4f}: " + ", ".join(f"{k} {v:.3f}" for k, v in shown))

    # --- web app --------------------------------------------------------------------------------
    web_kind = "mask"

    def predict_image(self, model, image, runtime, forward: ForwardFn | None = None, tta: bool = False, **_):
        import base64
        import io

        from PIL import Image

        confidence: list[float] = []
        mask = self.infer_masks(model, [image], runtime, batch_size=1, forward=forward, confidence=confidence,
                                tta=tta)[0]
        buffer = io.BytesIO()
        Image.fromarray(mask).save(buffer, format="PNG")
        classes = list(self.meta.get("class_names") or ["background", "object"])
        return {"kind": self.web_kind, "mask_png": base64.b64encode(buffer.getvalue()).decode("ascii"),
                "classes": classes, "coverage": float(np.mean(mask > 0)), "score": confidence[0]}
