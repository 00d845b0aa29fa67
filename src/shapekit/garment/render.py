"""Offscreen front view of a textured garment with shapekit's own renderer (render/), beside the input photo."""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from ..render import MeshRenderer, PerspectiveCameras, RasterSettings, look_at


def render_front(vertices: np.ndarray, faces: np.ndarray, face_uvs: np.ndarray, texture: np.ndarray,
                 size: int = 384, fill: float = 0.9, background=(1.0, 1.0, 1.0)) -> np.ndarray:
    """(size, size, 3) uint8: the mesh seen from +z (its front), framed to ``fill`` of the image, lit from the
    camera. ``face_uvs`` use v = 0 at the texture's top row."""
    vertices = np.asarray(vertices, float)
    low, high = vertices.min(0), vertices.max(0)
    centre = (low + high) / 2
    yfov = math.radians(20.0)
    half = max(high[0] - low[0], high[1] - low[1]) / 2 / fill
    distance = half / math.tan(yfov / 2) + high[2] - centre[2]
    eye = torch.tensor([[centre[0], centre[1], centre[2] + distance]], dtype=torch.float32)
    cameras = PerspectiveCameras(look_at(eye, torch.tensor(centre, dtype=torch.float32)[None]), yfov, size,
                                 znear=0.1 * distance, zfar=10 * distance)
    # Nearly hard edges: this is a picture, not a gradient for training.
    renderer = MeshRenderer(RasterSettings(image_size=size, sigma=0.1, gamma=1e-4, background=background))
    with torch.no_grad():
        image, _ = renderer.render(torch.tensor(vertices, dtype=torch.float32)[None], torch.tensor(faces).long(),
                                   cameras, texture=torch.tensor(np.asarray(texture), dtype=torch.float32)[None] / 255.0,
                                   face_uvs=torch.tensor(face_uvs, dtype=torch.float32), shade=True, wrap_u=False)
    return (image[0].clamp(0, 1).numpy() * 255).round().astype(np.uint8)


def beside(photo: np.ndarray, render: np.ndarray, gap: int = 8) -> np.ndarray:
    """The photo scaled to the render's height, a white gap, then the render."""
    height = render.shape[0]
    scaled = cv2.resize(photo, (round(photo.shape[1] * height / photo.shape[0]), height), interpolation=cv2.INTER_AREA)
    return np.concatenate([scaled, np.full((height, gap, 3), 255, np.uint8), render], axis=1)


def render_glb_front(path, size: int = 384) -> np.ndarray:
    """Front render of a textured GLB file as written (what a viewer would load)."""
    from ..io.meshes import load_mesh

    mesh = load_mesh(path, allow_nonmanifold=True)
    if mesh.uv is None or mesh.texture is None:
        raise ValueError(f"{path}: no UV texture to render")
    uv = mesh.uv.copy()
    uv[:, 1] = 1 - uv[:, 1]  # glTF v up -> image rows
    return render_front(mesh.vertices, mesh.faces, uv[mesh.faces], mesh.texture, size)
