"""Offline face detectors for the 3D face landmark task: boxes (x0, y0, x1, y1) in image pixels and scores.

- ``mtcnn``: MTCNN (Zhang et al. 2016) from ``facenet-pytorch``, whose weights ship inside its wheel
  (installed with ``--no-deps``: its metadata pins an older torch). Finds frontal to near-profile faces.
- ``dlib``: dlib's HOG + linear SVM frontal face detector (``dlib-bin``); frontal faces only.
"""

from __future__ import annotations

import functools

import numpy as np

from .errors import ShapekitError

DETECTORS = ("mtcnn", "dlib")
MIN_SCORE = 0.9  # MTCNN's last-stage probability; lower ones are mostly face-like textures


@functools.lru_cache(maxsize=1)
def _mtcnn():
    try:
        from facenet_pytorch import MTCNN
    except ImportError:
        raise ShapekitError("the mtcnn face detector needs facenet-pytorch: `pip install --no-deps facenet-pytorch` "
                            "(or give --box / choose --detector dlib)") from None
    return MTCNN(keep_all=True, device="cpu", min_face_size=20)


@functools.lru_cache(maxsize=1)
def _dlib():
    try:
        import dlib
    except ImportError:
        raise ShapekitError("the dlib face detector needs dlib: `pip install dlib-bin`") from None
    return dlib.get_frontal_face_detector()


def detect_faces(image: np.ndarray, detector: str = "mtcnn", min_score: float = MIN_SCORE) -> list[dict]:
    """Faces in an RGB uint8 image, largest first: [{"box": [x0, y0, x1, y1], "score": s}]."""
    if detector not in DETECTORS:
        raise ShapekitError(f"--detector {detector!r}: choose {' or '.join(DETECTORS)}")
    image = np.ascontiguousarray(image if image.ndim == 3 else np.repeat(image[..., None], 3, 2))
    faces = []
    if detector == "mtcnn":
        import torch
        from PIL import Image

        with torch.inference_mode():
            boxes, scores = _mtcnn().detect(Image.fromarray(image))
        if boxes is not None:
            faces = [{"box": [float(v) for v in box], "score": float(score)}
                     for box, score in zip(boxes, scores) if score is not None and score >= min_score]
    else:
        rects, scores, _ = _dlib().run(image, 1, 0.0)
        faces = [{"box": [float(r.left()), float(r.top()), float(r.right()), float(r.bottom())],
                  "score": float(score)} for r, score in zip(rects, scores)]
    return sorted(faces, key=lambda f: -(f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))


def parse_box(spec: str) -> list[float]:
    """'x0,y0,x1,y1' (pixels) -> a box, with a one-line error for anything else."""
    try:
        values = [float(v) for v in str(spec).replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or values[2] <= values[0] or values[3] <= values[1]:
        raise ShapekitError(f"--box {spec!r}: expected x0,y0,x1,y1 in pixels with x1 > x0 and y1 > y0")
    return values
