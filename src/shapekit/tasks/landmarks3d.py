"""3D face landmarks: Bulat & Tzimiropoulos' two-stage cascade (3DFAW 2016) on a CPU-sized network.

Detection subnetwork (binary disk targets, sigmoid cross-entropy) -> regression hourglass (Gaussian
heatmaps, L2) -> depth subnetwork (RGB crop + N heatmaps in, N relative depths out, L2, fed ground-truth or
predicted heatmaps at random). Training follows the paper's schedule: detection first, then regression with
the detection network frozen, then everything jointly; the depth network trains throughout (on
ground-truth heatmaps while the regression network is not trained yet).

Faces are cropped by a square box around the face: at training from the ground-truth landmarks (enlarged,
jittered), at prediction from a face detector (MTCNN or dlib) or a user-given box, refined once by
re-cropping around the first prediction. 2D-only datasets train only the 2D stages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch.utils.data import Dataset

from ..engine.inference import ForwardFn, network_runner
from ..engine.runtime import Runtime
from ..errors import ShapekitError
from ..face_detect import DETECTORS, detect_faces, parse_box
from ..heatmaps import decode_heatmaps, from_heatmap, render_targets, to_heatmap
from ..io.atomic import atomic_open, save_image, write_json, write_text
from ..io.faces import IBUG68_FLIP_PAIRS, FaceSet, load_face_set
from ..io.images import read_image
from ..io.landmark_dataset import split_indices
from ..metrics import (axis_errors, box_size, by_yaw, ced_curve, centre_depth, cvgtce, gte, nme_per_image)
from ..models import create_model
from ..plots import draw_landmarks, plot_ced, plot_landmarks_3d, plot_overlay_grid
from ..progress import track
from .base import ASSETS, Task, json_number, json_values, read_inputs, register_task

Z_SCALE = 10.0  # depth targets: relative z as a fraction of the crop side, x10 so they are of order 1
PAPER_DISK_RADIUS = 7.0  # px at the paper's 220 px face crops
PAPER_CROP = 220.0
NO_FACE = "no face found in the image (give --box x0,y0,x1,y1 if there is one)"


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    regress_from: float = Field(0.25, ge=0, le=1, description="fraction of the epochs after which the regression "
                                                              "stage starts (detection frozen)")
    joint_from: float = Field(0.5, ge=0, le=1, description="fraction of the epochs after which all train jointly")
    depth_gt_heatmaps: float = Field(0.5, ge=0, le=1, description="share of samples whose depth input is the "
                                                                  "ground-truth heatmaps (rest: predicted)")


class Landmarks3DOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enlarge: float = Field(0.25, ge=0, le=1, description="crop side = (1 + enlarge) x the longer box side")
    sigma: float = Field(1.5, gt=0, description="Gaussian regression targets, heatmap pixels")
    disk_radius: float | None = Field(None, gt=0, description="detection disk radius in heatmap pixels; "
                                                              "default: the paper's 7 px at 220 px")
    detection_weight: float = Field(1.0, ge=0)
    regression_weight: float = Field(1.0, ge=0)
    depth_weight: float = Field(1.0, ge=0)
    schedule: Schedule = Field(default_factory=Schedule)
    detection_width: int = Field(64, ge=8)
    regression_width: int = Field(64, ge=8)
    hourglass_depth: int = Field(3, ge=1, le=4)
    freeze_stem: bool = Field(True, description="keep the encoder's stride-2/4 ImageNet blocks fixed (CPU time)")
    # augmentation
    rotate: float = Field(30.0, ge=0, description="max in-plane rotation, degrees")
    scale: float = Field(0.15, ge=0, description="max relative zoom of the crop")
    shift: float = Field(0.08, ge=0, description="max box-centre jitter, fraction of the crop side")
    hflip: bool = True
    color: float = Field(0.3, ge=0)
    gray: float = Field(0.1, ge=0, le=1, description="probability of a grayscale training crop")
    refine: int = Field(1, ge=0, le=3, description="re-crops around the prediction for detector / user boxes")
    flip_test: bool = Field(True, description="also predict on the mirrored crop and average (2x inference; "
                                               "held-out NME 3.50 % instead of 3.95 %)")


# --- geometry ------------------------------------------------------------------------------------------

def landmark_box(points: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) of the x, y of (N, 2+) points."""
    xy = np.asarray(points, float)[:, :2]
    return np.concatenate([np.nanmin(xy, 0), np.nanmax(xy, 0)])


def crop_square(box, enlarge: float) -> tuple[np.ndarray, float]:
    """Centre and side of the square crop around a box."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2]), max(x1 - x0, y1 - y0) * (1 + enlarge)


def crop_matrix(centre: np.ndarray, side: float, size: int, angle: float = 0.0) -> np.ndarray:
    """2x3 affine from image pixels to crop pixels: the square (centre, side), rotated by ``angle`` degrees,
    onto a size x size crop (pixel centres: the square's centre lands on (size - 1) / 2)."""
    scale = size / side
    theta = np.deg2rad(angle)
    linear = scale * np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    return np.hstack([linear, ((size - 1) / 2 - linear @ centre)[:, None]])


def apply_affine(matrix: np.ndarray, xy: np.ndarray) -> np.ndarray:
    return xy @ matrix[:, :2].T + matrix[:, 2]


def invert_affine(matrix: np.ndarray, xy: np.ndarray) -> np.ndarray:
    return (xy - matrix[:, 2]) @ np.linalg.inv(matrix[:, :2]).T


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(0, 0, 0))


def _rgb(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 3 else np.repeat(image[..., None], 3, 2)


# --- data ----------------------------------------------------------------------------------------------

def mirror_order(count: int = 68) -> np.ndarray:
    """Index of each landmark's mirror partner (itself on the mid-line)."""
    from ..tta import flip_permutation

    return np.asarray(flip_permutation(count, IBUG68_FLIP_PAIRS))


class FaceCrops(Dataset):
    """Square face crops around the ground-truth landmarks; augmented (jitter, zoom, rotation, flip,
    colour, gray) when ``train``. Images are decoded per sample: 1440 full images would not stay small."""

    def __init__(self, data: FaceSet, size: int, options: Landmarks3DOptions, train: bool):
        self.records, self.size, self.options, self.train = data.records, size, options, train
        self.order = mirror_order()
        self.colour = A.Compose([A.ColorJitter(brightness=options.color, contrast=options.color,
                                               saturation=options.color, hue=min(0.5, options.color * 0.1), p=0.8),
                                 A.ToGray(p=options.gray)]) if train else None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record, opt, size = self.records[index], self.options, self.size
        image = _rgb(read_image(record.image_path))
        points = record.points
        truth_box = landmark_box(points)
        centre, side = crop_square(truth_box, opt.enlarge)
        angle, flip = 0.0, False
        if self.train:  # numpy's global generator: Lightning seeds it per data-loader worker
            side *= float(np.exp(np.random.uniform(-opt.scale, opt.scale)))
            centre = centre + np.random.uniform(-opt.shift, opt.shift, 2) * side
            angle = float(np.random.uniform(-opt.rotate, opt.rotate))
            flip = opt.hflip and np.random.random() < 0.5
        matrix = crop_matrix(centre, side, size, angle)
        crop = warp(image, matrix, size)
        xy = apply_affine(matrix, points[:, :2])
        has_depth = points.shape[1] == 3
        depth = (points[:, 2] - points[:, 2].mean()) / side * Z_SCALE if has_depth else np.zeros(len(points))
        if flip:
            crop = np.ascontiguousarray(crop[:, ::-1])
            xy[:, 0] = size - 1 - xy[:, 0]
            xy, depth = xy[self.order], depth[self.order]
        if self.colour is not None:
            crop = self.colour(image=crop)["image"]
        visible = (xy >= -0.5).all(1) & (xy <= size - 0.5).all(1)
        norm = float(box_size(points[None])[0]) * size / side  # sqrt(box area) in crop pixels
        return {
            "image": torch.from_numpy(crop).permute(2, 0, 1).float().div_(255.0),
            "points": torch.from_numpy(xy.astype(np.float32)),
            "visible": torch.from_numpy(visible),
            "depth": torch.from_numpy(depth.astype(np.float32)),
            "has_depth": torch.tensor(has_depth),
            "norm": torch.tensor(norm, dtype=torch.float32),
            "index": torch.tensor(index),
        }


def shape_priors(data: FaceSet) -> dict[str, list]:
    """Mean training shape in box coordinates (constant baseline) and mean relative depth per landmark
    as a fraction of the box size (depth baseline)."""
    boxes = np.stack([landmark_box(r.points) for r in data.records])
    xy = np.stack([r.points[:, :2] for r in data.records])
    unit = (xy - boxes[:, None, :2]) / (boxes[:, None, 2:] - boxes[:, None, :2])
    priors = {"mean_shape_in_box": np.nanmean(unit, 0).tolist()}
    if data.has_depth:
        points = centre_depth(np.stack([r.points for r in data.records]))
        priors["mean_depth_over_box"] = np.nanmean(points[..., 2] / box_size(points)[:, None], 0).tolist()
    return priors


# --- the task -----------------------------------------------------------------------------------------

@register_task
class Landmarks3DTask(Task):
    name = "landmarks3d"
    Options = Landmarks3DOptions
    monitor = "val/nme_pct"
    output_formats = ("json",)
    default_model = ASSETS / "face-landmarks3d.ckpt"
    web_kind = "landmarks3d"
    onnx_outputs = ("output", "depth")  # regression heatmaps, per-landmark depths
    int8_export = False  # the cascade sees face crops, not the letterboxed whole images int8 calibration feeds

    def __init__(self, config, meta=None):
        super().__init__(config, meta)
        self.stage = 3  # inference and un-scheduled use: the full cascade

    @property
    def names(self) -> list[str]:
        return list(self.meta["landmark_names"])

    @property
    def size(self) -> int:
        return self.input_shape[1]

    @property
    def disk_radius(self) -> float:
        return self.options.disk_radius or PAPER_DISK_RADIUS * self.size / PAPER_CROP / 4

    def setup(self):
        if self.config.input_size % 32:
            raise ShapekitError(f"--input-size {self.config.input_size}: must be a multiple of 32")
        data = load_face_set(Path(self.config.data))
        n_val = max(1, round(len(data) * self.config.val_fraction)) if self.config.val_fraction > 0 else 0
        if n_val and len(data) >= 4:
            train_idx, val_idx = split_indices(len(data), n_val / len(data), self.config.seed)
        else:
            train_idx, val_idx = list(range(len(data))), []
        train_data = data.subset(train_idx)
        self.meta.update({
            "landmark_names": data.names, "num_landmarks": len(data.names), "flip_pairs": IBUG68_FLIP_PAIRS,
            "input_shape": [self.config.input_size] * 2, "has_depth": data.has_depth,
            "train_ids": [data.records[i].image_path.name for i in train_idx],
            "val_ids": [data.records[i].image_path.name for i in val_idx], **shape_priors(train_data),
        })
        train = FaceCrops(train_data, self.size, self.options, train=True)
        val = FaceCrops(data.subset(val_idx), self.size, self.options, train=False) if val_idx else None
        self._val_samples = val
        return train, val

    def build_model(self, pretrained: bool = True):
        opt = self.options
        model = create_model("face3d_cascade", num_landmarks=self.meta["num_landmarks"], encoder=self.config.encoder,
                             encoder_weights=self.config.encoder_weights if pretrained else None,
                             detection_width=opt.detection_width, regression_width=opt.regression_width,
                             hourglass_depth=opt.hourglass_depth)
        if opt.freeze_stem:
            model.detection.freeze_stem()
        return model

    def default_epochs(self, n_train: int) -> int:
        return int(np.clip(round(20000 / max(1, n_train)), 10, 200))

    def set_epoch(self, epoch: int, max_epochs: int) -> None:
        """The paper's schedule: 1 detection, 2 regression (detection frozen), 3 joint."""
        schedule, total = self.options.schedule, max(1, max_epochs or 1)
        self.stage = 1 if epoch < schedule.regress_from * total else 2 if epoch < schedule.joint_from * total else 3

    # --- losses ---------------------------------------------------------------------------------------
    def _targets(self, batch, height: int, width: int, kind: str, radius: float) -> torch.Tensor:
        return render_targets(to_heatmap(batch["points"].float(), self.size // height), batch["visible"],
                              height, width, radius, kind)

    def _losses(self, model, batch, train: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor], Any]:
        opt, images, stage = self.options, batch["image"], self.stage if train else 3
        if stage == 2:
            with torch.no_grad():
                logits, features = model.detection(images)
        else:
            logits, features = model.detection(images)
        height, width = logits.shape[-2:]
        visible = batch["visible"].float()
        gaussian = self._targets(batch, height, width, "gaussian", 3 * opt.sigma)
        total, logs, heatmaps = torch.zeros((), device=images.device), {}, None
        if stage != 2:
            disks = (self._targets(batch, height, width, "cone", self.disk_radius) > 0).float()
            bce = F.binary_cross_entropy_with_logits(logits.float(), disks, reduction="none").mean((-2, -1))
            logs["detection"] = (bce * visible).sum() / visible.sum().clamp_min(1)
            total = total + opt.detection_weight * logs["detection"]
        if stage >= 2:
            heatmaps = model.regression(logits, features)
            # L2 summed over each map (a per-pixel mean would be ~1e-3 and vanish beside the other losses)
            l2 = (heatmaps.float() - gaussian).pow(2).sum((-2, -1))
            logs["regression"] = (l2 * visible).sum() / visible.sum().clamp_min(1)
            total = total + opt.regression_weight * logs["regression"]
        has_depth = batch["has_depth"]
        if has_depth.any():
            depth_input = gaussian
            if heatmaps is not None:
                predicted = heatmaps.detach().float().clamp(0, 1)
                use_gt = torch.rand(len(images), device=images.device) < (opt.schedule.depth_gt_heatmaps if train else 0)
                depth_input = torch.where(use_gt[:, None, None, None], gaussian, predicted)
            depth = model.depth(images, depth_input).float()
            weight = has_depth.float()[:, None].expand_as(depth)
            logs["depth"] = ((depth - batch["depth"]).pow(2) * weight).sum() / weight.sum().clamp_min(1)
            total = total + opt.depth_weight * logs["depth"]
            logs["_depth"] = depth
        return total, logs, heatmaps

    def training_step(self, model, batch):
        loss, logs, _ = self._losses(model, batch, train=True)
        return loss, {k: v.detach() for k, v in logs.items() if not k.startswith("_")}

    def validation_step(self, model, batch):
        loss, logs, heatmaps = self._losses(model, batch, train=False)
        points, _ = self.decode(heatmaps)
        errors = torch.linalg.norm(points - batch["points"].float(), dim=-1).mean(-1)
        out = {"nme": errors / batch["norm"]}
        if "_depth" in logs:
            box_over_side = batch["norm"] / self.size
            z_error = (logs["_depth"] - batch["depth"]).abs().mean(-1) / Z_SCALE / box_over_side
            out["z_error"] = torch.where(batch["has_depth"], z_error, torch.nan)
        return loss, out

    def validation_metrics(self, outputs):
        metrics = {"val/nme_pct": float(outputs["nme"].mean()) * 100}
        if "z_error" in outputs and torch.isfinite(outputs["z_error"]).any():
            metrics["val/z_error_pct"] = float(torch.nanmean(outputs["z_error"])) * 100
        return metrics

    def decode(self, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Regression heatmaps -> crop-pixel points (B, N, 2) and peak confidences (B, N)."""
        stride = self.size // heatmaps.shape[-1]
        points, peak = decode_heatmaps(heatmaps.float().clamp_min(0), max(1.0, 2 * self.options.sigma))
        return from_heatmap(points, stride), peak.clamp(0, 1)

    def epoch_plots(self, model, out_dir, device):
        samples = self._val_samples
        if not samples:
            return
        items = [samples[i] for i in range(min(6, len(samples)))]
        with torch.no_grad():
            heatmaps, _ = model(torch.stack([s["image"] for s in items]).to(device))
        points = self.decode(heatmaps)[0].cpu().numpy()
        views = [(s["image"].permute(1, 2, 0).numpy() * 255).astype(np.uint8) for s in items]
        plot_overlay_grid(views, list(points), [s["points"].numpy() for s in items],
                          [f"NME {np.linalg.norm(p - s['points'].numpy(), axis=-1).mean() / float(s['norm']) * 100:.2f} %"
                           for p, s in zip(points, items)], Path(out_dir) / "val_overlays.png",
                          "Validation crops: green = true, red = predicted")

    # --- inference ------------------------------------------------------------------------------------
    def infer_faces(self, model, images: list[np.ndarray], boxes: list[list], runtime: Runtime,
                    batch_size: int = 16, refine: int = 0, forward: ForwardFn | None = None) -> list[list[dict]]:
        """For each image, for each of its boxes: {"points": (N, 3) original pixels, z relative (larger =
        closer, zero mean), "confidence": (N,)}. With ``refine``, each face is re-cropped around its
        prediction that many times (detector boxes follow other conventions than the landmark box).
        ``forward`` (an onnxruntime session) runs instead of ``model`` when given."""
        jobs = [(i, np.asarray(box, float)) for i, image_boxes in enumerate(boxes) for box in image_boxes]
        results: list[dict] = []
        if jobs:
            network = network_runner(model, runtime, forward)
            current = [box for _, box in jobs]
            for _ in range(refine + 1):
                results = self._run_crops(network, [images[i] for i, _ in jobs], current, batch_size)
                current = [landmark_box(r["points"]) for r in results]
        out: list[list[dict]] = [[] for _ in images]
        for (i, _), result in zip(jobs, results):
            out[i].append(result)
        return out

    def _run_crops(self, network, images, boxes, batch_size) -> list[dict]:
        size, results = self.size, []
        for start in range(0, len(images), batch_size):
            crops, frames = [], []
            for image, box in zip(images[start:start + batch_size], boxes[start:start + batch_size]):
                centre, side = crop_square(box, self.options.enlarge)
                matrix = crop_matrix(centre, side, size)
                crops.append(warp(_rgb(image), matrix, size))
                frames.append((matrix, side))
            tensor = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div_(255.0)
            heatmaps, depth = network(tensor)
            if self.options.flip_test:
                # Mirror test-time augmentation: the flipped crop's maps, flipped back and re-labelled
                # left <-> right, averaged in (heatmap column j mirrors to W - 1 - j, as crop x to S - 1 - x).
                mirrored, mirrored_depth = network(tensor.flip(-1).contiguous())
                order = torch.as_tensor(mirror_order(heatmaps.shape[1]))
                heatmaps = (heatmaps + mirrored.flip(-1)[:, order]) / 2
                depth = (depth + mirrored_depth[:, order]) / 2
            points, conf = self.decode(heatmaps)
            depth = depth.numpy()
            for k, (matrix, side) in enumerate(frames):
                xy = invert_affine(matrix, points[k].double().numpy())
                z = depth[k] / Z_SCALE * side if self.meta.get("has_depth", True) else np.full(len(xy), np.nan)
                results.append({"points": np.column_stack([xy, z - np.nanmean(z) if np.isfinite(z).any() else z]),
                                "confidence": conf[k].numpy()})
        return results

    def find_faces(self, image: np.ndarray, detector: str = "mtcnn", box=None) -> list[dict]:
        if box is not None:
            return [{"box": parse_box(box) if isinstance(box, str) else [float(v) for v in box], "score": None}]
        return detect_faces(_rgb(image), detector)

    def predict(self, model, inputs, out, runtime: Runtime | None = None, batch_size: int = 16, overlays: bool = True,
                detector: str = "mtcnn", box=None, console=None, forward: ForwardFn | None = None, **_):
        runtime = runtime or Runtime.create()
        out = Path(out)
        images, kept, failed = read_inputs(inputs, console)
        found = [self.find_faces(image, detector, box) for image in track(images, "finding faces")]
        faces = self.infer_faces(model, images, [[f["box"] for f in fs] for fs in found], runtime, batch_size,
                                 self.options.refine, forward)
        for target in (out / "landmarks3d.json", out / "landmarks3d.csv"):
            if any(target.resolve() == p.resolve() for p in kept):
                raise ShapekitError(f"{target}: refusing to overwrite an input file")
        records, rows = [], ["image,face,landmark,name,x,y,z,confidence,box_x0,box_y0,box_x1,box_y1"]
        for path, image, detections, results in zip(kept, images, found, faces):
            entry = {"image": path.name, "width": image.shape[1], "height": image.shape[0], "faces": []}
            for k, (det, res) in enumerate(zip(detections, results)):
                face = {"box": det["box"], "detector_score": det["score"], "points": json_values(res["points"]),
                        "confidence": json_values(res["confidence"])}
                entry["faces"].append(face)
                for j, (name, p, c) in enumerate(zip(self.names, res["points"], res["confidence"])):
                    rows.append(f"{path.name},{k},{j},{name},{p[0]:.3f},{p[1]:.3f},"
                                f"{'' if np.isnan(p[2]) else f'{p[2]:.3f}'},{c:.4f},"
                                + ",".join(f"{v:.2f}" for v in det["box"]))
                write_ply(out / "ply" / f"{path.stem}_face{k}.ply", res["points"])
                if overlays:
                    plot_landmarks_3d(res["points"], out / "views3d" / f"{path.stem}_face{k}.png",
                                      f"{path.name}, face {k}")
            if not results:
                entry["message"] = NO_FACE
                if console is not None:
                    console.print(f"[yellow]{path.name}[/]: {NO_FACE}")
            records.append(entry)
            if overlays:
                save_image(out / "overlays" / f"{path.stem}.png", face_overlay(image, detections, results))
        target = write_json(out / "landmarks3d.json", {"scheme": "ibug68", "names": self.names, "z_convention":
                            "z in image pixels relative to each face's mean depth; larger z = closer to the camera",
                            "images": records})
        write_text(out / "landmarks3d.csv", "\n".join(rows) + "\n")
        return {"n_images": len(kept), "n_faces": sum(len(r) for r in faces), "file": str(target), "failed": failed,
                "faces": faces, "images": [str(p) for p in kept]}

    def test_time_augmentation(self):
        raise ShapekitError("--tta: landmarks3d already averages each crop with its mirror image (the option "
                            f"flip_test, {'on' if self.options.flip_test else 'off'} in this model; set it when "
                            "training with --opt flip_test=true|false); it has no other test-time augmentation")

    def predict_image(self, model, image, runtime, detector: str = "mtcnn", box=None,
                      forward: ForwardFn | None = None, **_):
        found = self.find_faces(image, detector, box)
        results = self.infer_faces(model, [image], [[f["box"] for f in found]], runtime, refine=self.options.refine,
                                   forward=forward)[0]
        instances = []
        for det, res in zip(found, results):
            score = float(np.mean(res["confidence"]))
            instances.append({"box": det["box"], "points": json_values(res["points"]),
                              "confidence": json_values(res["confidence"]), "score": score})
        return {"kind": self.web_kind, "names": self.names, "instances": instances,
                "score": json_number(max((i["score"] for i in instances), default=None)),
                "message": None if instances else NO_FACE}

    def evaluate(self, model, data, runtime: Runtime | None = None, batch_size: int = 16, out_dir: Path | None = None,
                 detect: str | None = None, forward: ForwardFn | None = None, **_):
        runtime = runtime or Runtime.create()
        dataset = load_face_set(Path(data))
        images = [read_image(r.image_path) for r in track(dataset.records, "reading images")]
        true = np.stack([r.points for r in dataset.records])
        truth_boxes = [landmark_box(p) for p in true]
        n_missed = 0
        if detect is not None:
            if detect not in DETECTORS:
                raise ShapekitError(f"--detect {detect!r}: choose {' or '.join(DETECTORS)}")
            boxes = []
            for image, truth in zip(track(images, f"detecting faces ({detect})"), truth_boxes):
                found = [f["box"] for f in detect_faces(image, detect)]
                best = max(found, key=lambda b: box_iou(b, truth), default=None)
                if best is None or box_iou(best, truth) < 0.1:
                    n_missed += 1  # scored on the ground-truth box, and counted
                    best = truth
                boxes.append([best])
            refine = self.options.refine
        else:
            boxes, refine = [[b] for b in truth_boxes], 0
        pred = np.stack([faces[0]["points"] for faces in self.infer_faces(model, images, boxes, runtime, batch_size,
                                                                          refine, forward)])
        yaw = np.array([np.nan if r.yaw is None else r.yaw for r in dataset.records])
        report = landmarks3d_report(pred, true, yaw, self.meta.get("has_depth", True) and dataset.has_depth,
                                    self.meta.get("mean_depth_over_box"))
        report.update({"data": str(data), "box_source": detect or "ground truth landmarks",
                       "n_detector_missed": n_missed if detect else None,
                       "images": [r.image_path.name for r in dataset.records]})
        if out_dir is not None:
            out_dir = Path(out_dir)
            plot_ced({"shapekit": report["ced"]}, out_dir / "ced.png", "sqrt(box area)")
            worst = np.argsort(-np.nan_to_num(np.array(report["per_image_nme"], float)))[:6]
            plot_overlay_grid([images[i] for i in worst], [pred[i, :, :2] for i in worst],
                              [true[i, :, :2] for i in worst],
                              [f"{report['images'][i]}: NME {report['per_image_nme'][i]:.2f} %" for i in worst],
                              out_dir / "worst_images.png", "Largest errors: green true, red predicted")
            write_json(out_dir / "evaluation.json", report)
        report["_predictions"] = pred
        return report

    def print_report(self, report, console) -> None:
        from rich.table import Table

        table = Table(title=f"{report['n_images']} faces, {report['data']} (boxes: {report['box_source']})")
        for col in ("figure", "value %"):
            table.add_column(col, justify="right")
        table.add_row("NME (sqrt box area)", _f(report["nme_box"]))
        for label, entry in report["nme_box_by_yaw"].items():
            table.add_row(f"  yaw {label} deg (n={entry['n']})", _f(entry["value"]))
        for key, label in (("gte", "GTE (inter-ocular)"), ("cvgtce", "CVGTCE (similarity-aligned)"),
                           ("x_error", "x error"), ("y_error", "y error"), ("z_error", "z error (relative depth)"),
                           ("z_error_mean_depth", "z error of the mean-depth baseline")):
            if report.get(key) is not None:
                table.add_row(label, _f(report[key]))
        console.print(table)


def landmarks3d_report(pred: np.ndarray, true: np.ndarray, yaw: np.ndarray, with_depth: bool,
                       mean_depth_over_box=None) -> dict[str, Any]:
    """The AFLW2000-3D / 3DFAW figures, in percent: NME by sqrt(box area) overall and by |yaw| bin, GTE,
    CVGTCE, errors per axis, z error (and that of the per-landmark mean-depth baseline)."""
    norm = box_size(true)
    dims = 3 if with_depth and true.shape[-1] == 3 and np.isfinite(pred[..., 2]).all() else 2
    p, t = pred[..., :dims], true[..., :dims]
    nme = nme_per_image(p, t, norm)
    report: dict[str, Any] = {"n_images": int(len(true)), "nme_box": float(np.mean(nme)) * 100,
                              "nme_box_median": float(np.median(nme)) * 100}
    report["nme_box_by_yaw"] = {k: {"n": v["n"], "value": None if v["value"] is None else v["value"] * 100}
                                for k, v in by_yaw(nme, yaw).items()}
    report["n_without_pose"] = int(np.isnan(yaw).sum())
    gte_values, cv_values = gte(p, t), cvgtce(p, t)
    report["gte"] = float(np.nanmean(gte_values)) * 100
    report["cvgtce"] = float(np.nanmean(cv_values)) * 100
    report["gte_dims"] = dims
    report["n_gte_excluded"] = int(np.isnan(gte_values).sum())
    for axis, values in axis_errors(p, t, norm).items():
        report[f"{axis}_error"] = float(np.mean(values)) * 100
    report.setdefault("z_error", None)
    if dims == 3 and mean_depth_over_box is not None:
        baseline = np.array(pred, float, copy=True)
        baseline[..., 2] = np.asarray(mean_depth_over_box)[None] * norm[:, None]
        report["z_error_mean_depth"] = float(np.mean(axis_errors(baseline, t, norm)["z"])) * 100
    report["ced"] = ced_curve(nme)
    report["per_image_nme"] = [float(v) * 100 for v in nme]
    return report


def box_iou(a, b) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def face_overlay(image: np.ndarray, detections: list[dict], results: list[dict]) -> np.ndarray:
    """The photo with each face's box (yellow) and its landmarks."""
    canvas = _rgb(image).copy()
    for det, res in zip(detections, results):
        canvas = draw_landmarks(canvas, res["points"][:, :2], max_side=max(canvas.shape[:2]))
        x0, y0, x1, y1 = (int(round(v)) for v in det["box"])
        cv2.rectangle(canvas, (x0, y0), (x1, y1), (255, 220, 0), max(1, max(canvas.shape[:2]) // 300), cv2.LINE_AA)
    return canvas


def write_ply(path: Path, points: np.ndarray) -> Path:
    """A PLY point cloud (trimesh); y flipped to point up (image y points down) so viewers show the face upright."""
    import trimesh

    points = np.nan_to_num(np.asarray(points, float)) * np.array([1.0, -1.0, 1.0])
    with atomic_open(path, "wb", encoding=None) as handle:
        handle.write(trimesh.PointCloud(points).export(file_type="ply"))
    return Path(path)


def _f(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
