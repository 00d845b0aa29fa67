"""The soft rasteriser: gradients against finite differences, silhouettes against a hard rasteriser,
texture lookup and depth order."""

import math

import numpy as np
import torch

from shapekit.render import MeshRenderer, PerspectiveCameras, RasterSettings, look_at, orbit
from shapekit.templates import icosphere


def _hard_silhouette(verts, faces, cameras, size):
    """Reference: a pixel is covered when its centre lies inside any projected triangle."""
    screen, _ = cameras.project(verts)
    ys, xs = np.mgrid[0:size, 0:size]
    points = np.stack([xs, ys], -1).reshape(-1, 2).astype(float)
    covered = np.zeros(len(points), bool)
    for tri in screen[0][faces].numpy():
        a, b, c = tri
        def edge(p, q):
            return (q[0] - p[0]) * (points[:, 1] - p[1]) - (q[1] - p[1]) * (points[:, 0] - p[0])
        e0, e1, e2 = edge(b, c), edge(c, a), edge(a, b)
        covered |= ((e0 >= 0) & (e1 >= 0) & (e2 >= 0)) | ((e0 <= 0) & (e1 <= 0) & (e2 <= 0))
    return covered.reshape(size, size)


def test_sharp_silhouette_matches_hard_rasterisation():
    template = icosphere(2, (0.9, 0.5, 0.6))
    cam2world, _ = orbit(3, 2.6, (20.0,))
    cameras = PerspectiveCameras(cam2world, math.radians(35), 64)
    renderer = MeshRenderer(RasterSettings(image_size=64, sigma=1e-3))
    verts = template.vertices[None].expand(3, -1, -1)
    soft = renderer.silhouettes(verts, template.faces, cameras) > 0.5
    for k in range(3):
        one = PerspectiveCameras(cam2world[k:k + 1], math.radians(35), 64)
        hard = torch.from_numpy(_hard_silhouette(template.vertices[None], template.faces, one, 64))
        disagree = (soft[k] != hard).float().mean()
        assert hard.float().mean() > 0.1 and disagree < 0.005, float(disagree)


def test_gradients_match_finite_differences():
    torch.manual_seed(0)
    template = icosphere(1, (0.8, 0.6, 0.7))
    verts = template.vertices.double()[None].clone().requires_grad_(True)
    texture = torch.rand(1, 8, 16, 3, dtype=torch.float64, requires_grad=True)
    cam2world = look_at(torch.tensor([[0.3, 0.5, 2.4]])).double()
    cameras = PerspectiveCameras(cam2world, math.radians(40), 16)
    renderer = MeshRenderer(RasterSettings(image_size=16, sigma=2.0, gamma=0.05))
    weights = torch.rand(1, 16, 16, 3, dtype=torch.float64)

    def loss(v, t):
        image, alpha = renderer.render(v, template.faces, cameras, texture=t, face_uvs=template.face_uvs.double())
        return (image * weights).sum() + (alpha * weights[..., 0]).sum() * 3

    assert torch.autograd.gradcheck(loss, (verts, texture), eps=1e-6, atol=1e-4, rtol=1e-3)


def test_texture_lookup_and_depth_order():
    # Two squares facing the camera: red at z = 0.2 (nearer), blue at z = 0 (behind), overlapping.
    square = torch.tensor([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]], dtype=torch.float32)
    near = torch.cat([square + torch.tensor([0.3, 0.0]), torch.full((4, 1), 0.2)], 1)
    far = torch.cat([square - torch.tensor([0.3, 0.0]), torch.zeros(4, 1)], 1)
    verts = torch.cat([near, far])[None]
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    colours = torch.tensor([[1.0, 0, 0]] * 4 + [[0, 0, 1.0]] * 4)[None]
    cameras = PerspectiveCameras(look_at(torch.tensor([[0.0, 0.0, 3.0]])), math.radians(40), 64)
    renderer = MeshRenderer(RasterSettings(image_size=64, sigma=0.05, gamma=1e-4))
    image, alpha = renderer.render(verts, faces, cameras, vertex_colors=colours)
    centre = image[0, 32, 32]
    assert centre[0] > 0.95 and centre[2] < 0.05  # overlap: the nearer (red) square wins
    assert image[0, 32, 16][2] > 0.9  # only blue there
    assert torch.allclose(image[0, 2, 2], torch.ones(3), atol=1e-3) and alpha[0, 2, 2] < 1e-3  # background
    # UV texture: a 2x2 texture mapped over the near square shows its quadrants.
    texture = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]], [[0, 0, 1.0], [1.0, 1.0, 0]]])[None]
    uv = torch.tensor([[0, 1], [1, 1], [1, 0], [0, 0]], dtype=torch.float32)  # v = 0 at the texture's top row
    face_uvs = uv[torch.tensor([[0, 1, 2], [0, 2, 3]])]
    image, _ = renderer.render(near[None], faces[:2], cameras, texture=texture, face_uvs=face_uvs, wrap_u=False)
    screen, _ = cameras.project(near[None] * torch.tensor([0.5, 0.5, 1.0]) + torch.tensor([0.15, 0.0, 0.0]))
    top_left = screen[0, 3].round().long()  # halfway towards the square's top-left corner
    assert image[0, top_left[1], top_left[0]].argmax() == 0  # top-left quadrant of the texture: red
