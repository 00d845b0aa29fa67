"""Differentiable rendering of triangle meshes (soft rasterisation in plain PyTorch)."""

from .cameras import PerspectiveCameras, look_at, orbit
from .rasterizer import RasterSettings, rasterize, silhouette
from .renderer import MeshRenderer

__all__ = ["MeshRenderer", "PerspectiveCameras", "RasterSettings", "look_at", "orbit", "rasterize", "silhouette"]
