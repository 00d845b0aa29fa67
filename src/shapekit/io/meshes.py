"""Triangle meshes in and out (trimesh): validated loading, textured OBJ+MTL+PNG and GLB export."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .atomic import atomic_open, save_image, write_text


@dataclass
class MeshData:
    vertices: np.ndarray  # (V, 3) float
    faces: np.ndarray  # (F, 3) int
    uv: np.ndarray | None = None  # (V, 2) per-vertex UVs, v = 0 at the bottom (OBJ convention)
    texture: np.ndarray | None = None  # (H, W, 3) uint8 base colour
    vertex_colors: np.ndarray | None = None  # (V, 3) float in [0, 1]


def _missing_textures(path: Path) -> list[Path]:
    """Texture files named by the OBJ's material libraries that do not exist."""
    if path.suffix.lower() != ".obj":
        return []
    missing = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("mtllib"):
            mtl = path.parent / line.split(maxsplit=1)[1].strip()
            if not mtl.is_file():
                missing.append(mtl)
                continue
            for entry in mtl.read_text(errors="replace").splitlines():
                match = re.match(r"\s*map_Kd\s+(?:-\S+\s+\S+\s+)*(.+)$", entry)
                if match and not (mtl.parent / match.group(1).strip()).is_file():
                    missing.append(mtl.parent / match.group(1).strip())
    return missing


def load_mesh(path: str | Path, allow_nonmanifold: bool = False) -> MeshData:
    """Load an OBJ/GLB/PLY/... mesh, merged into one; one-line errors for what would break rendering."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "mesh file not found")
    missing = _missing_textures(path)
    if missing:
        raise InputError(path, f"texture/material file {missing[0].name} is missing (looked in {missing[0].parent})")
    try:
        loaded = trimesh.load(path, force=None, process=False)
    except Exception as exc:
        raise InputError(path, f"cannot read mesh ({type(exc).__name__}: {exc})") from None
    geometries = list(loaded.geometry.values()) if isinstance(loaded, trimesh.Scene) else [loaded]
    geometries = [g for g in geometries if isinstance(g, trimesh.Trimesh)]
    if not geometries or sum(len(g.faces) for g in geometries) == 0:
        raise InputError(path, "mesh has no faces (a point cloud or an empty file?)")
    if len(geometries) > 1:
        mesh = trimesh.util.concatenate(geometries)
    else:
        mesh = geometries[0]
    faces = np.asarray(mesh.faces, dtype=np.int64)
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    if not np.isfinite(vertices).all():
        raise InputError(path, "mesh has non-finite vertex coordinates")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise InputError(path, "faces refer to vertices that do not exist")
    if not allow_nonmanifold:
        edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
        _, counts = np.unique(edges, axis=0, return_counts=True)
        if (counts > 2).any():
            raise InputError(path, f"mesh is non-manifold: {(counts > 2).sum()} edges are shared by more than two "
                                   "faces (repair it, e.g. in Blender or with trimesh/pymeshfix)")
    uv, texture, colors = None, None, None
    visual = mesh.visual
    if getattr(visual, "kind", None) == "texture" and getattr(visual, "uv", None) is not None:
        uv = np.asarray(visual.uv, dtype=np.float64)
        image = getattr(getattr(visual, "material", None), "image", None)
        if image is None:
            image = getattr(getattr(visual, "material", None), "baseColorTexture", None)
        if image is not None:
            texture = np.asarray(image.convert("RGB"))
    elif getattr(visual, "kind", None) == "vertex":
        colors = np.asarray(visual.vertex_colors, dtype=np.float64)[:, :3] / 255.0
    return MeshData(vertices, faces, uv, texture, colors)


def normalise(mesh: MeshData) -> tuple[MeshData, np.ndarray, float]:
    """Centre the bounding box at the origin and scale its half-diagonal to 1 (the bounding box's sphere), the
    normalisation of the shoe data's cameras.json files."""
    low, high = mesh.vertices.min(0), mesh.vertices.max(0)
    centre = (low + high) / 2
    scale = 2.0 / max(float(np.linalg.norm(high - low)), 1e-12)
    return MeshData((mesh.vertices - centre) * scale, mesh.faces, mesh.uv, mesh.texture, mesh.vertex_colors), centre, scale


def _corners(vertices: np.ndarray, faces: np.ndarray, face_uvs: np.ndarray):
    """Unshared vertices per face corner (UV seams need distinct (position, uv) pairs), OBJ/glTF UVs (v up)
    and the faces over them."""
    corner_vertices = vertices[faces].reshape(-1, 3)
    corner_uv = face_uvs.reshape(-1, 2).copy()
    corner_uv[:, 1] = 1.0 - corner_uv[:, 1]  # image v (down) -> OBJ/glTF v (up)
    return corner_vertices, corner_uv, np.arange(len(corner_vertices)).reshape(-1, 3)


def textured_glb(vertices: np.ndarray, faces: np.ndarray, face_uvs: np.ndarray, texture: np.ndarray) -> bytes:
    """A binary glTF of a textured mesh (arguments as for :func:`save_textured_mesh`)."""
    import trimesh
    from PIL import Image

    corner_vertices, corner_uv, corner_faces = _corners(vertices, faces, face_uvs)
    material = trimesh.visual.material.PBRMaterial(baseColorFactor=[255, 255, 255, 255],
                                                   baseColorTexture=Image.fromarray(texture),
                                                   metallicFactor=0.0, roughnessFactor=1.0)
    mesh = trimesh.Trimesh(corner_vertices, corner_faces, process=False,
                           visual=trimesh.visual.TextureVisuals(uv=corner_uv, material=material))
    return trimesh.Scene(mesh).export(file_type="glb")


def save_textured_mesh(out_dir: str | Path, name: str, vertices: np.ndarray, faces: np.ndarray,
                       face_uvs: np.ndarray, texture: np.ndarray) -> dict[str, Path]:
    """Write ``name.obj`` + ``name.mtl`` + ``name.png`` and ``name.glb``.

    ``face_uvs`` (F, 3, 2) in [0, 1] with v = 0 at the top row of ``texture`` (image convention); OBJ/GLB
    UVs are flipped accordingly. The material's diffuse colour is white so viewers show the texture as is.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    corner_vertices, corner_uv, corner_faces = _corners(vertices, faces, face_uvs)
    png = save_image(out_dir / f"{name}.png", texture)
    lines = [f"mtllib {name}.mtl", "usemtl shapekit"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in corner_vertices]
    lines += [f"vt {u:.6f} {v:.6f}" for u, v in corner_uv]
    lines += [f"f {a + 1}/{a + 1} {b + 1}/{b + 1} {c + 1}/{c + 1}" for a, b, c in corner_faces]
    write_text(out_dir / f"{name}.mtl", f"newmtl shapekit\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nillum 1\nmap_Kd {name}.png\n")
    obj = write_text(out_dir / f"{name}.obj", "\n".join(lines) + "\n")
    with atomic_open(out_dir / f"{name}.glb", "wb") as handle:
        handle.write(textured_glb(vertices, faces, face_uvs, texture))
    return {"obj": obj, "mtl": out_dir / f"{name}.mtl", "png": png, "glb": out_dir / f"{name}.glb"}


def save_plain_obj(path: str | Path, vertices: np.ndarray, faces: np.ndarray) -> Path:
    buffer = io.StringIO()
    for x, y, z in vertices:
        buffer.write(f"v {x:.6f} {y:.6f} {z:.6f}\n")
    for a, b, c in faces:
        buffer.write(f"f {a + 1} {b + 1} {c + 1}\n")
    return write_text(path, buffer.getvalue())
