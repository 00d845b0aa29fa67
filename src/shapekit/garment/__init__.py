"""Garment digitisation: a photo of a garment becomes a textured template garment (``shapekit garment``)."""

from __future__ import annotations

from ..tasks.base import ASSETS

DEFAULT_LANDMARK_MODEL = ASSETS / "garment-landmarks.ckpt"
DEFAULT_SEGMENT_MODEL = ASSETS / "clothing-segment.ckpt"
