"""Template meshes for single-view reconstruction: ico-spheres (or a user's base shape) with a UV
layout without islands (spherical unwrap, horizontally wrapping), adjacency for regularisers, and the
midpoint subdivision used for coarse-to-fine training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass
class Template:
    vertices: torch.Tensor  # (V, 3)
    faces: torch.Tensor  # (F, 3) long
    face_uvs: torch.Tensor  # (F, 3, 2), v = 0 at the top of the texture; u wraps around

    @property
    def num_vertices(self) -> int:
        return len(self.vertices)


def spherical_face_uvs(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Longitude/latitude UVs per face corner. Faces across the u = 0/1 seam get u shifted by one so the
    triangle stays small; with wrap-around sampling the texture then has no seam and no islands."""
    centred = vertices - vertices.mean(0)
    direction = centred / np.linalg.norm(centred, axis=1, keepdims=True).clip(1e-12)
    u = (np.arctan2(direction[:, 0], direction[:, 2]) / (2 * np.pi)) + 0.5
    v = np.arccos(np.clip(direction[:, 1], -1, 1)) / np.pi  # 0 at the top (+Y), 1 at the bottom
    corners = np.stack([u[faces], v[faces]], -1)  # (F, 3, 2)
    span = corners[..., 0].max(1) - corners[..., 0].min(1)
    seam = span > 0.5
    shifted = corners[seam].copy()
    shifted[..., 0] = np.where(shifted[..., 0] < 0.5, shifted[..., 0] + 1.0, shifted[..., 0])
    corners[seam] = shifted
    # At the poles longitude is undefined: use the mean u of the other two corners.
    for pole in np.flatnonzero(np.abs(direction[:, 1]) > 1 - 1e-9):
        rows, cols = np.nonzero(faces == pole)
        for r, c in zip(rows, cols):
            others = [k for k in range(3) if k != c]
            corners[r, c, 0] = corners[r, others, 0].mean()
    return corners


def icosphere(level: int = 3, radii=(1.0, 1.0, 1.0)) -> Template:
    """An ico-sphere (level 3: 642 vertices), optionally stretched into an ellipsoid."""
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=level)
    vertices = np.asarray(sphere.vertices) * np.asarray(radii)
    faces = np.asarray(sphere.faces)
    return Template(torch.tensor(vertices, dtype=torch.float32), torch.tensor(faces, dtype=torch.long),
                    torch.tensor(spherical_face_uvs(vertices, faces), dtype=torch.float32))


def template_from_mesh(path: str | Path) -> Template:
    """A user's base shape (normalised to a unit bounding sphere), with the spherical UV layout."""
    from ..io.meshes import load_mesh, normalise

    mesh, _, _ = normalise(load_mesh(path))
    return Template(torch.tensor(mesh.vertices, dtype=torch.float32), torch.tensor(mesh.faces, dtype=torch.long),
                    torch.tensor(spherical_face_uvs(mesh.vertices, mesh.faces), dtype=torch.float32))


def subdivide(template: Template) -> tuple[Template, np.ndarray]:
    """Midpoint subdivision (each face -> 4). Returns the new template and, per new vertex, the pair of
    old vertices it sits between (equal pairs for the old vertices themselves)."""
    vertices = template.vertices.numpy()
    faces = template.faces.numpy()
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    unique, inverse = np.unique(edges, axis=0, return_inverse=True)
    midpoint_index = len(vertices) + inverse.reshape(-1, 3)  # per face: edges (0,1), (1,2), (2,0)
    parents = np.concatenate([np.stack([np.arange(len(vertices))] * 2, 1), unique])
    new_vertices = vertices[parents].mean(1)
    a, b, c = faces.T
    ab, bc, ca = midpoint_index.T
    new_faces = np.concatenate([np.stack([a, ab, ca], 1), np.stack([ab, b, bc], 1), np.stack([ca, bc, c], 1),
                                np.stack([ab, bc, ca], 1)])
    # Keep the surface on the template's shape family: project midpoints to the old radius profile.
    radius_old = np.linalg.norm(vertices, axis=1)
    radius_new = radius_old[parents].mean(1)
    new_vertices = new_vertices / np.linalg.norm(new_vertices, axis=1, keepdims=True).clip(1e-12) * radius_new[:, None]
    refined = Template(torch.tensor(new_vertices, dtype=torch.float32), torch.tensor(new_faces, dtype=torch.long),
                       torch.tensor(spherical_face_uvs(new_vertices, new_faces), dtype=torch.float32))
    return refined, parents


def vertex_neighbours(faces: torch.Tensor, num_vertices: int) -> torch.Tensor:
    """Sparse row-normalised adjacency (V, V): multiplying by it averages each vertex's neighbours."""
    edges = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = torch.unique(torch.cat([edges, edges.flip(1)]), dim=0)
    degree = torch.bincount(edges[:, 0], minlength=num_vertices).clamp_min(1).float()
    values = 1.0 / degree[edges[:, 0]]
    return torch.sparse_coo_tensor(edges.T, values, (num_vertices, num_vertices), check_invariants=True).coalesce()


def adjacent_face_pairs(faces: torch.Tensor) -> torch.Tensor:
    """(E, 4) for every interior edge: the two shared vertices and the two opposite vertices."""
    faces_np = faces.numpy()
    table: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for f, (a, b, c) in enumerate(faces_np):
        for u, v, w in ((a, b, c), (b, c, a), (c, a, b)):
            table.setdefault((min(u, v), max(u, v)), []).append((f, w))
    rows = [(u, v, items[0][1], items[1][1]) for (u, v), items in table.items() if len(items) == 2]
    return torch.tensor(rows, dtype=torch.long)


def island_face_uvs(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """A UV layout *with* islands, for comparison: each face goes to one of six cube-projection charts
    (by its normal's dominant axis), packed in a 3 x 2 atlas. Neighbouring faces on different charts
    sample unrelated texture regions, the seam problem the shoe paper reports."""
    corners = vertices[faces]  # (F, 3, 3)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    axis = np.abs(normals).argmax(1)
    sign = np.sign(normals[np.arange(len(faces)), axis]).clip(0, 1).astype(int)
    chart = axis * 2 + sign  # 0..5
    low, high = vertices.min(0), vertices.max(0)
    scaled = (corners - low) / np.maximum(high - low, 1e-9)  # [0, 1] per axis
    plane_axes = {0: (2, 1), 1: (0, 2), 2: (0, 1)}
    uv = np.zeros(corners.shape[:2] + (2,))
    for a, (i, j) in plane_axes.items():
        chosen = axis == a
        uv[chosen] = scaled[chosen][..., [i, j]]
    margin = 0.04
    uv = margin + uv * (1 - 2 * margin)
    col, row = chart % 3, chart // 3
    uv[..., 0] = (uv[..., 0] + col[:, None]) / 3
    uv[..., 1] = (uv[..., 1] + row[:, None]) / 2
    return uv


def face_uvs(vertices: np.ndarray, faces: np.ndarray, layout: str = "spherical") -> np.ndarray:
    if layout == "spherical":
        return spherical_face_uvs(vertices, faces)
    if layout == "islands":
        return island_face_uvs(vertices, faces)
    raise ValueError(f"unknown UV layout {layout!r}")
