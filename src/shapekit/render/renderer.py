"""MeshRenderer: soft silhouettes and textured / vertex-coloured / shaded images of triangle meshes."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .cameras import PerspectiveCameras
from .rasterizer import RasterSettings, blend, rasterize, silhouette
from .shading import interpolate_face_attributes, lambert, sample_texture, vertex_normals


class MeshRenderer:
    def __init__(self, settings: RasterSettings | None = None):
        self.settings = settings or RasterSettings()

    def silhouettes(self, verts: torch.Tensor, faces: torch.Tensor, cameras: PerspectiveCameras) -> torch.Tensor:
        """(B, H, W) soft silhouettes of ``verts`` (B, V, 3) seen by one camera each."""
        return silhouette(rasterize(verts, faces, cameras, self.settings))

    def render(self, verts: torch.Tensor, faces: torch.Tensor, cameras: PerspectiveCameras, *,
               texture: torch.Tensor | None = None, face_uvs: torch.Tensor | None = None,
               texture_index: torch.Tensor | None = None, vertex_colors: torch.Tensor | None = None,
               shade: bool = False, wrap_u: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, H, W, C) and soft silhouettes (B, H, W).

        Colour from a UV texture (``texture`` (T, Ht, Wt, C), ``face_uvs`` (F, 3, 2), ``texture_index`` (B,)
        choosing each item's texture, default item b -> texture b), or from ``vertex_colors`` (B, V, C).
        ``shade`` multiplies by a two-sided Lambertian factor with a light at the camera.
        """
        fragments = rasterize(verts, faces, cameras, self.settings)
        batch, num_faces = verts.shape[0], faces.shape[0]
        face_batch = torch.div(fragments.face, num_faces, rounding_mode="floor")
        if texture is not None:
            if face_uvs is None:
                raise ValueError("a texture needs face_uvs")
            uvs = face_uvs[None].expand(batch, -1, -1, -1).reshape(-1, 3, 2)
            uv = interpolate_face_attributes(fragments, uvs)
            index = face_batch if texture_index is None else texture_index[face_batch]
            colours = sample_texture(texture, index, uv, wrap_u)
        elif vertex_colors is not None:
            colours = interpolate_face_attributes(fragments, vertex_colors[:, faces].reshape(-1, 3, vertex_colors.shape[-1]))
        else:
            colours = torch.ones(len(fragments.face), 3, dtype=verts.dtype, device=verts.device) * 0.7
        if shade:
            normals = vertex_normals(verts, faces)[:, faces].reshape(-1, 3, 3)
            normal = F.normalize(interpolate_face_attributes(fragments, normals), dim=-1, eps=1e-12)
            corners = verts[:, faces].reshape(-1, 3, 3)
            position = interpolate_face_attributes(fragments, corners)
            to_camera = F.normalize(cameras.centres()[face_batch] - position, dim=-1, eps=1e-12)
            colours = colours * lambert(normal, to_camera)[:, None]
        image = blend(fragments, colours, self.settings, cameras)
        return image, silhouette(fragments)
