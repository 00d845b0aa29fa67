"""`shapekit make-multiview`: render meshes from many cameras into multi-view training folders.

Synthetic augmentation of real meshes: each input mesh yields ``variants`` distinct objects through
smooth shape variation (anisotropic scale, taper, bend, random free-form bumps) and texture variation
(hue / brightness / saturation shifts, colourway swaps), rendered with shapekit's own soft rasteriser
(near-hard settings) from orbiting cameras. The deformed ground-truth mesh is saved beside the views
(``mesh.obj``) for evaluation only; training reads views, masks and cameras.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import torch

from .io.atomic import save_image
from .io.meshes import MeshData, load_mesh, normalise, save_plain_obj
from .io.multiview import write_cameras
from .progress import track
from .render import MeshRenderer, PerspectiveCameras, RasterSettings, orbit

YFOV = math.radians(35.0)
CAMERA_DISTANCE = 2.6


def deform(vertices: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """A smooth random deformation of a unit-sphere-normalised mesh (the result is renormalised)."""
    v = vertices.copy()
    v *= rng.uniform(1 - 0.18 * strength, 1 + 0.18 * strength, 3)  # anisotropic scale
    long_axis = int(np.argmax(v.max(0) - v.min(0)))
    others = [a for a in range(3) if a != long_axis]
    taper = rng.uniform(-0.25, 0.25) * strength
    v[:, others] *= (1 + taper * v[:, long_axis:long_axis + 1])
    bend = rng.uniform(-0.25, 0.25) * strength
    v[:, others[0]] += bend * v[:, long_axis] ** 2
    for _ in range(rng.integers(2, 5)):  # smooth free-form bumps (Gaussian radial basis displacements)
        centre = v[rng.integers(len(v))]
        amplitude = rng.normal(0, 0.06 * strength, 3)
        width = rng.uniform(0.3, 0.7)
        v += amplitude * np.exp(-((v - centre) ** 2).sum(1, keepdims=True) / width ** 2)
    low, high = v.min(0), v.max(0)
    return (v - (low + high) / 2) * (2.0 / np.linalg.norm(high - low))  # half bounding-box diagonal = 1


def vary_colours(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Hue rotation, saturation and brightness change, and sometimes a colourway swap (channel permutation)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-90, 90) * strength) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(1 - 0.4 * strength, 1 + 0.4 * strength), 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * rng.uniform(1 - 0.3 * strength, 1 + 0.2 * strength), 0, 255)
    out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    if rng.random() < 0.3 * strength:
        out = out[..., rng.permutation(3)]
    return np.ascontiguousarray(out)


def render_views(mesh: MeshData, size: int, views: int, chunk: int = 8) -> dict:
    """Render a normalised mesh from ``views`` orbit cameras (half at 10 degrees elevation, half at 30)."""
    elevations = (10.0, 30.0) if views >= 2 else (10.0,)
    per_ring = max(1, views // len(elevations))
    cam2world, angles = orbit(per_ring, CAMERA_DISTANCE, elevations)
    renderer = MeshRenderer(RasterSettings(image_size=size, sigma=0.03, gamma=1e-4))
    verts = torch.tensor(mesh.vertices, dtype=torch.float32)
    faces = torch.tensor(mesh.faces, dtype=torch.long)
    texture = face_uvs = colours = None
    if mesh.texture is not None and mesh.uv is not None:
        texture = torch.tensor(mesh.texture, dtype=torch.float32)[None] / 255.0
        uv = np.stack([mesh.uv[:, 0] % 1.0, 1.0 - (mesh.uv[:, 1] % 1.0)], 1)  # OBJ v (up) -> image v (down)
        face_uvs = torch.tensor(uv[mesh.faces], dtype=torch.float32)
    else:
        base = mesh.vertex_colors if mesh.vertex_colors is not None else np.full((len(mesh.vertices), 3), 0.7)
        colours = torch.tensor(base, dtype=torch.float32)
    images, masks = [], []
    with torch.no_grad():
        for start in range(0, len(cam2world), chunk):
            c2w = cam2world[start:start + chunk]
            cameras = PerspectiveCameras(c2w, YFOV, size)
            batch_verts = verts[None].expand(len(c2w), -1, -1)
            if texture is not None:
                image, alpha = renderer.render(batch_verts, faces, cameras, texture=texture, face_uvs=face_uvs,
                                               texture_index=torch.zeros(len(c2w), dtype=torch.long), shade=True,
                                               wrap_u=False)
            else:
                image, alpha = renderer.render(batch_verts, faces, cameras,
                                               vertex_colors=colours[None].expand(len(c2w), -1, -1), shade=True)
            images.append((image.clamp(0, 1) * 255).round().byte().numpy())
            masks.append(((alpha > 0.5).byte() * 255).numpy())
    return {"images": np.concatenate(images), "masks": np.concatenate(masks), "cam2world": cam2world.numpy(),
            "angles": angles}


def write_object(out: Path, rendered: dict, mesh: MeshData, size: int, **info) -> Path:
    frames = []
    for k, (image, mask, matrix, (azimuth, elevation)) in enumerate(zip(
            rendered["images"], rendered["masks"], rendered["cam2world"], rendered["angles"])):
        save_image(out / f"view_{k:03d}.png", image)
        save_image(out / f"view_{k:03d}_mask.png", mask)
        frames.append({"file": f"view_{k:03d}.png", "mask": f"view_{k:03d}_mask.png", "azimuth_deg": azimuth,
                       "elevation_deg": elevation, "cam2world": matrix.tolist()})
    save_plain_obj(out / "mesh.obj", mesh.vertices, mesh.faces)
    write_cameras(out / "cameras.json", frames, YFOV, size,
                  camera_convention="cam2world 4x4, OpenGL (camera looks down -Z, +Y up), looking at origin",
                  ground_truth_mesh="mesh.obj (for evaluation only; training uses views, masks, cameras)", **info)
    return out


def make_multiview(meshes: list[Path], out: Path, views: int = 48, variants: int = 0, size: int = 128,
                   seed: int = 0, strength: float = 1.0, keep_original: bool = True, console=None) -> list[Path]:
    """Render each mesh (normalised to a unit bounding sphere) and ``variants`` random variations of it."""
    rng = np.random.default_rng(seed)
    written = []
    jobs = []
    for path in meshes:
        base, _, _ = normalise(load_mesh(path))
        if keep_original:
            jobs.append((path, base, f"{Path(path).stem}_original", None))
        for k in range(variants):
            jobs.append((path, base, f"{Path(path).stem}_{k:03d}", int(rng.integers(1 << 31))))
    for path, base, name, variant_seed in track(jobs, "rendering objects"):
        mesh = base
        if variant_seed is not None:
            local = np.random.default_rng(variant_seed)
            texture = vary_colours(base.texture, local, strength) if base.texture is not None else None
            colours = None
            if base.texture is None:
                colours = np.tile(local.uniform(0.25, 0.95, 3), (len(base.vertices), 1))
            mesh = MeshData(deform(base.vertices, local, strength), base.faces, base.uv, texture, colours)
        rendered = render_views(mesh, size, views)
        written.append(write_object(Path(out) / name, rendered, mesh, size, source_mesh=str(path),
                                    variation_seed=variant_seed))
        if console is not None:
            console.print(f"{name}: {len(rendered['images'])} views")
    return written
