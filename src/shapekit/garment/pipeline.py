"""``shapekit garment``: photo(s) of a garment -> UV texture, textured OBJ/MTL and GLB of a template garment,
and a front render beside the photo.

Per photo: landmarks (landmark task), mask (segment task + GrabCut), thin-plate-spline warp of the photo onto the
template's panel driven by the landmarks and the mask outline, texels off the garment filled with the nearest
garment colour. Without a back photo the front texture is mirrored onto the back panel. Every check runs before
anything is written: a photo without a garment, or with low-confidence landmarks, writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import Runtime, load_model
from ..errors import ShapekitError
from ..io.atomic import save_image, write_json
from ..io.images import read_image
from ..io.meshes import save_textured_mesh
from ..plots import draw_landmarks
from ..templates.garment import LANDMARK_NAMES, OUTLINE_ORDER, GarmentProportions, GarmentTemplate, build_garment
from . import DEFAULT_LANDMARK_MODEL, DEFAULT_SEGMENT_MODEL
from .mask import outer_contour, refine_mask
from .render import beside, render_glb_front
from .warp import correspondences, coverage, fill_nearest, fit_tps, sample_segments, warp_panel

MIN_CONFIDENCE = 0.3  # lowest heatmap peak accepted for any landmark
MIN_MASK_FRACTION = 0.01  # a garment mask smaller than this share of the photo is "no garment"


class NoGarmentError(ShapekitError):
    """No garment found in a photo."""


class LowConfidenceError(ShapekitError):
    """The landmarks of a photo are too uncertain to place a texture."""


@dataclass
class GarmentModels:
    """The landmark and segment models (task, network) and the runtime they run on."""

    landmarks: tuple
    segment: tuple
    runtime: Runtime = field(default_factory=Runtime.create)

    @classmethod
    def load(cls, landmark_model: str | Path | None = None, segment_model: str | Path | None = None) -> "GarmentModels":
        landmark_model = Path(landmark_model or DEFAULT_LANDMARK_MODEL)
        if landmark_model == DEFAULT_LANDMARK_MODEL and not landmark_model.is_file():
            raise ShapekitError(f"the shipped garment landmark model {landmark_model} is missing: build it with "
                                "python tools/ship_garment_model.py, or pass --landmark-model")
        landmarks = load_model(landmark_model, "landmarks")
        names = tuple(landmarks[0].names)
        if names != LANDMARK_NAMES:
            raise ShapekitError(f"{landmark_model}: predicts landmarks {', '.join(names)}; a garment model needs "
                                f"{', '.join(LANDMARK_NAMES)} (the garments-fld layout)")
        return cls(landmarks, load_model(segment_model or DEFAULT_SEGMENT_MODEL, "segment"))


@dataclass
class PhotoGarment:
    """What one photo tells about its garment."""

    image: np.ndarray
    landmarks: np.ndarray  # (6, 2) photo pixels, LANDMARK_NAMES order
    confidence: np.ndarray  # (6,)
    mask: np.ndarray  # (H, W) bool


def analyse_photo(image: np.ndarray, models: GarmentModels, where: str, min_confidence: float = MIN_CONFIDENCE
                  ) -> PhotoGarment:
    """Landmarks and mask of the garment in one RGB photo; NoGarmentError / LowConfidenceError otherwise."""
    task, model = models.landmarks
    points, confidence = task.infer_images(model, [image], models.runtime, batch_size=1)
    points, confidence = points[0], confidence[0]
    seg_task, seg_model = models.segment
    model_mask = seg_task.infer_masks(seg_model, [image], models.runtime, batch_size=1)[0] > 0
    weakest = int(np.argmin(confidence))
    if not model_mask.any() and confidence[weakest] < min_confidence:
        raise NoGarmentError(f"{where}: no garment found (the segment model sees no clothing and the landmarks "
                             f"are weak, best-to-worst peak {confidence.max():.2f}-{confidence.min():.2f})")
    if confidence[weakest] < min_confidence:
        raise LowConfidenceError(f"{where}: landmark {LANDMARK_NAMES[weakest]} has low confidence "
                                 f"({confidence[weakest]:.2f} < {min_confidence}); no texture written (is one "
                                 "upper-body garment seen from the front, roughly upright?)")
    mask = refine_mask(image, model_mask, points)
    if mask.mean() < MIN_MASK_FRACTION:
        raise NoGarmentError(f"{where}: no garment found (its mask covers {mask.mean() * 100:.1f} % of the photo)")
    return PhotoGarment(image, points, confidence, mask)


def panel_texture(photo: PhotoGarment, template: GarmentTemplate, panel: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(colours, valid texels, coverage %) of one template panel from one photo."""
    width, height = template.texture_size
    scale = np.array([width, height], float)
    outline = template.outlines[panel] * scale - 0.5  # texel centres at integers
    cuts = [int(template.outline_landmarks[panel][k]) for k in OUTLINE_ORDER]
    contour = outer_contour(photo.mask)
    template_points, photo_points = correspondences(outline, cuts, template.landmarks[panel] * scale - 0.5, contour,
                                                    photo.landmarks, template.sleeveless)
    panel_mask = template.panel_mask(panel)
    colours, valid = warp_panel(photo.image, photo.mask, fit_tps(template_points, photo_points), panel_mask)
    if valid.sum() < 0.05 * panel_mask.sum():
        raise LowConfidenceError("the warped photo covers under 5 % of the template panel: landmarks and garment "
                                 "outline disagree")
    return colours, valid, coverage(photo.mask, fit_tps(photo_points, template_points), panel_mask)


def mirror_to_back(texture: np.ndarray, template: GarmentTemplate) -> np.ndarray:
    """The front panel's texels carried onto the back panel (outline to outline, landmarks to landmarks):
    the garment seen from behind shows the front mirrored."""
    import cv2

    width, height = template.texture_size
    scale = np.array([width, height], float)
    front = sample_segments(template.outlines["front"] * scale - 0.5,
                            [int(template.outline_landmarks["front"][k]) for k in OUTLINE_ORDER])
    back = sample_segments(template.outlines["back"] * scale - 0.5,
                           [int(template.outline_landmarks["back"][k]) for k in OUTLINE_ORDER])
    back_mask = template.panel_mask("back")
    ys, xs = np.nonzero(back_mask)
    mapped = fit_tps(back, front)(np.column_stack([xs, ys]).astype(float)).astype(np.float32)
    map_x = np.full((height, width), -1, np.float32)
    map_y = np.full((height, width), -1, np.float32)
    map_x[ys, xs], map_y[ys, xs] = mapped[:, 0], mapped[:, 1]
    carried = cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out = texture.copy()
    out[back_mask] = carried[back_mask]
    return out


def digitise(front: str | Path, back: str | Path | None, out: str | Path, models: GarmentModels,
             template: GarmentTemplate | None = None, min_confidence: float = MIN_CONFIDENCE,
             render_size: int = 384) -> dict[str, Any]:
    """One garment: front photo (and optional back photo) -> files in ``out``; returns a summary."""
    front, out = Path(front), Path(out)
    inputs = [front] + ([Path(back)] if back is not None else [])
    front_photo = analyse_photo(read_image(front), models, str(front), min_confidence)
    back_photo = None
    if back is not None:
        # A back view shows the garment's left on the image's left: mirrored, it looks like a front view (what
        # the landmark model knows), and lands on the back panel laid out as seen from the front.
        back_photo = analyse_photo(np.ascontiguousarray(read_image(back)[:, ::-1]), models, str(back), min_confidence)
    if template is None:
        template = build_garment(GarmentProportions.from_landmarks(front_photo.landmarks))
    width, height = template.texture_size
    texture = np.zeros((height, width, 3), np.uint8)
    valid = np.zeros((height, width), bool)
    colours, front_valid, front_coverage = panel_texture(front_photo, template, "front")
    texture[front_valid], valid[front_valid] = colours[front_valid], True
    notes = []
    back_coverage = None
    if "back" in template.panels and back_photo is not None:
        colours, back_valid, back_coverage = panel_texture(back_photo, template, "back")
        texture[back_valid], valid[back_valid] = colours[back_valid], True
        texture = fill_nearest(texture, valid)
        back_source = "photo"
    else:
        texture = fill_nearest(texture, valid)
        if "back" in template.panels:
            texture = mirror_to_back(texture, template)
            back_source = "mirrored from the front"
            notes.append("no back photo: the front was mirrored onto the back")
        else:
            back_source = "none (the template has no back panel)"
            if back_photo is not None:
                notes.append("the template has no back panel: the back photo was not used")

    written = [out / "garment.obj", out / "garment.mtl", out / "garment.png", out / "garment.glb"]
    if any(p.resolve() == q.resolve() for p in inputs for q in written if q.exists()):
        raise ShapekitError(f"{out}: refusing to overwrite an input photo")
    files = save_textured_mesh(out, "garment", template.vertices, template.faces, template.face_uvs, texture)
    # Rendered from the GLB as written, so the picture shows what a viewer loads.
    files["render"] = save_image(out / "render_front.png",
                                 beside(front_photo.image, render_glb_front(files["glb"], render_size)))
    files["mask"] = save_image(out / "mask.png", front_photo.mask.astype(np.uint8) * 255)
    files["landmarks"] = save_image(out / "landmarks.png", draw_landmarks(front_photo.image, front_photo.landmarks))
    summary = {
        "front": str(front), "back": str(back) if back is not None else None, "back_texture": back_source,
        "template": template.source, "landmark_names": list(LANDMARK_NAMES),
        "landmarks": front_photo.landmarks.round(2).tolist(), "confidence": front_photo.confidence.round(4).tolist(),
        "coverage_pct": round(front_coverage, 2),
        "back_coverage_pct": None if back_coverage is None else round(back_coverage, 2),
        "proportions": None if template.proportions is None else vars(template.proportions),
        "notes": notes, "files": {k: str(v) for k, v in files.items()},
    }
    files["summary"] = write_json(out / "garment.json", summary)
    summary["files"]["summary"] = str(files["summary"])
    return summary


BACK_SUFFIXES = ("_back", "-back")


def garment_jobs(inputs: list[Path], each: bool = False) -> list[tuple[Path, Path | None]]:
    """(front, back) photo pairs from the command line.

    One or two image files: FRONT [BACK]. Folders, or ``each``: every image is the front of its own garment, and
    an image named like it plus ``_back`` (or ``-back``) is that garment's back."""
    from ..io.images import list_images

    inputs = [Path(p) for p in inputs]
    for path in inputs:
        if not path.exists():
            raise ShapekitError(f"{path}: no such file or folder")
    if not each and all(p.is_file() for p in inputs):
        if len(inputs) > 2:
            raise ShapekitError(f"{len(inputs)} photos given: FRONT [BACK] takes two at most; add --each to make "
                                "every photo its own garment (backs named NAME_back.jpg)")
        return [(inputs[0], inputs[1] if len(inputs) == 2 else None)]
    photos = list_images(inputs)
    if not photos:
        raise ShapekitError("no photos found (looked for .jpg .png .tif .bmp .webp)")
    by_stem = {p.stem: p for p in photos}
    backs = {by_stem[p.stem[:-len(s)]]: p for p in photos for s in BACK_SUFFIXES
             if p.stem.endswith(s) and p.stem[:-len(s)] in by_stem}
    return [(p, backs.get(p)) for p in photos if p not in backs.values()]


def digitise_many(jobs: list[tuple[Path, Path | None]], out: str | Path, models: GarmentModels,
                  template: GarmentTemplate | None = None, console=None, **options) -> tuple[list[dict], list[str]]:
    """Several garments, one output folder each (``out/<front photo name>``; ``out`` itself for one garment).
    A garment that fails is reported in one line and skipped. Returns (summaries, failures)."""
    from ..progress import track

    out = Path(out)
    summaries, failures = [], []
    for front, back in track(jobs, "digitising garments"):
        target = out if len(jobs) == 1 else out / front.stem
        try:
            summaries.append(digitise(front, back, target, models, template, **options))
        except ShapekitError as exc:
            if len(jobs) == 1:
                raise
            failures.append(str(exc))
            if console is not None:
                console.print(f"[red]skipped[/] {exc}", markup=True, highlight=False)
    return summaries, failures
