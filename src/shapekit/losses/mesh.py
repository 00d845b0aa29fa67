"""Losses for learning meshes from images (shoe paper): silhouette IoU, image L2, perceptual, flow;
and the mesh regularisers Laplacian, flatten (SoftRas) and normal consistency."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def silhouette_iou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - soft IoU per view, averaged: the paper's mask loss."""
    dims = tuple(range(1, pred.dim()))
    intersection = (pred * target).sum(dims)
    union = (pred + target - pred * target).sum(dims).clamp_min(1e-6)
    return (1 - intersection / union).mean()


def image_l2_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((pred - target) ** 2).mean()


def laplacian_loss(verts: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
    """Mean squared uniform-Laplacian coordinate: keeps the surface smooth while it deforms."""
    batch, count, _ = verts.shape
    flat = verts.permute(1, 0, 2).reshape(count, -1)
    averaged = torch.sparse.mm(neighbours, flat).reshape(count, batch, 3).permute(1, 0, 2)
    return ((verts - averaged) ** 2).sum(-1).mean()


def _dihedral_normals(verts: torch.Tensor, pairs: torch.Tensor):
    v0, v1, a, b = (verts[:, pairs[:, k]] for k in range(4))
    edge = v1 - v0
    n1 = F.normalize(torch.cross(edge, a - v0, dim=-1), dim=-1, eps=1e-12)
    n2 = F.normalize(torch.cross(b - v0, edge, dim=-1), dim=-1, eps=1e-12)
    return n1, n2


def flatten_loss(verts: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """SoftRas' flatten loss: (cos(dihedral angle) + 1)^2 summed over interior edges (per mesh, averaged)."""
    n1, n2 = _dihedral_normals(verts, pairs)
    cos_dihedral = -(n1 * n2).sum(-1)  # the dihedral angle is pi when neighbours are coplanar
    return ((cos_dihedral + 1) ** 2).sum(-1).mean()


def normal_consistency_loss(verts: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cos(angle between neighbouring face normals): penalises jagged, folded geometry."""
    n1, n2 = _dihedral_normals(verts, pairs)
    return (1 - (n1 * n2).sum(-1)).mean()


def flow_loss(flow: torch.Tensor, input_mask: torch.Tensor) -> torch.Tensor:
    """The shoe paper's flow loss: the texture should be looked up inside the object, not the background.
    ``flow`` (B, Ht, Wt, 2) grid in [-1, 1]; ``input_mask`` (B, H, W). Returns 1 - mean mask under the flow."""
    sampled = F.grid_sample(input_mask[:, None].float(), flow.float(), mode="bilinear", padding_mode="zeros",
                            align_corners=False)
    return 1 - sampled.mean()


class PerceptualLoss(torch.nn.Module):
    """Distance between ImageNet MobileNetV2 feature maps (AlexNet/VGG weights cannot be fetched offline)."""

    def __init__(self, layers: int = 7):
        super().__init__()
        from ..models.encoders import IMAGENET_MEAN, IMAGENET_STD, imagenet_classifier

        self.features = imagenet_classifier("mobilenet_v2").features[:layers].eval()
        for parameter in self.features.parameters():
            parameter.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.features.eval()  # frozen batch-norm statistics
        return self

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Images (B, H, W, 3) in [0, 1]."""
        a = self.features((pred.permute(0, 3, 1, 2) - self.mean) / self.std)
        b = self.features((target.permute(0, 3, 1, 2) - self.mean) / self.std)
        return F.mse_loss(F.normalize(a, dim=1), F.normalize(b, dim=1)) * a.shape[1]
