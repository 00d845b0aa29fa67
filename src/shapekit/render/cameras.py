"""Perspective cameras from intrinsics + camera-to-world matrices (OpenGL convention: the camera looks
down its -Z axis, +Y up), as in the multi-view folders' ``cameras.json``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class PerspectiveCameras:
    """A batch of pinhole cameras rendering square ``image_size`` images.

    ``cam2world``: (B, 4, 4); ``yfov``: vertical field of view in radians (scalar or (B,)).
    """

    cam2world: torch.Tensor
    yfov: torch.Tensor | float
    image_size: int
    znear: float = 0.05
    zfar: float = 100.0

    def __post_init__(self):
        if self.cam2world.dim() == 2:
            self.cam2world = self.cam2world[None]
        if self.cam2world.shape[-2:] != (4, 4):
            raise ValueError(f"cam2world must be (B, 4, 4), got {tuple(self.cam2world.shape)}")

    def __len__(self) -> int:
        return len(self.cam2world)

    @property
    def focal_px(self) -> torch.Tensor:
        yfov = torch.as_tensor(self.yfov, dtype=self.cam2world.dtype, device=self.cam2world.device)
        return (self.image_size / 2) / torch.tan(yfov / 2) * torch.ones(len(self), dtype=yfov.dtype, device=yfov.device)

    def world_to_camera(self, points: torch.Tensor) -> torch.Tensor:
        """(B, P, 3) world points -> camera coordinates (camera looks down -Z)."""
        rotation = self.cam2world[:, :3, :3]
        origin = self.cam2world[:, :3, 3]
        return (points - origin[:, None]) @ rotation

    def project(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, P, 3) world points -> pixel coordinates (B, P, 2) (x right, y down, pixel centres at integers)
        and depth (B, P) = distance in front of the camera."""
        cam = self.world_to_camera(points)
        depth = -cam[..., 2]
        focal = self.focal_px[:, None]
        centre = self.image_size / 2 - 0.5
        safe = torch.where(depth.abs() < 1e-8, torch.full_like(depth, 1e-8), depth)
        x = centre + focal * cam[..., 0] / safe
        y = centre - focal * cam[..., 1] / safe
        return torch.stack([x, y], -1), depth

    def centres(self) -> torch.Tensor:
        return self.cam2world[:, :3, 3]


def look_at(eye: torch.Tensor, target: torch.Tensor | None = None, up=(0.0, 1.0, 0.0)) -> torch.Tensor:
    """OpenGL camera-to-world matrices (B, 4, 4) for cameras at ``eye`` (B, 3) looking at ``target``."""
    eye = torch.as_tensor(eye, dtype=torch.float32)
    if eye.dim() == 1:
        eye = eye[None]
    target = torch.zeros_like(eye) if target is None else torch.as_tensor(target, dtype=eye.dtype).expand_as(eye)
    up = torch.as_tensor(up, dtype=eye.dtype).expand_as(eye)
    back = torch.nn.functional.normalize(eye - target, dim=-1)  # camera +Z points away from the target
    right = torch.nn.functional.normalize(torch.cross(up, back, dim=-1), dim=-1)
    true_up = torch.cross(back, right, dim=-1)
    matrix = torch.eye(4, dtype=eye.dtype).repeat(len(eye), 1, 1)
    matrix[:, :3, 0], matrix[:, :3, 1], matrix[:, :3, 2], matrix[:, :3, 3] = right, true_up, back, eye
    return matrix


def orbit(count: int, distance: float, elevations_deg=(10.0,), start_deg: float = 0.0) -> tuple[torch.Tensor, list]:
    """Cameras on circles around the origin: ``count`` azimuths per elevation. Returns (cam2world, [(az, el)])."""
    eyes, angles = [], []
    for elevation in elevations_deg:
        for k in range(count):
            azimuth = start_deg + 360.0 * k / count
            a, e = math.radians(azimuth), math.radians(elevation)
            eyes.append([distance * math.cos(e) * math.sin(a), distance * math.sin(e), distance * math.cos(e) * math.cos(a)])
            angles.append((azimuth, elevation))
    return look_at(torch.tensor(eyes)), angles
