import numpy as np
import torch

from shapekit.heatmaps import decode_heatmaps, default_radius, from_heatmap, render_targets, to_heatmap
from shapekit.losses import heatmap_mse_loss, weighted_l1_loss


def test_cone_target_shape_and_values():
    points = torch.tensor([[[10.0, 20.0]]])
    target = render_targets(points, torch.tensor([[True]]), 32, 32, radius=5, kind="cone")
    assert target.shape == (1, 1, 32, 32)
    assert target[0, 0, 20, 10] == 1.0
    assert torch.isclose(target[0, 0, 20, 13], torch.tensor(1 - 3 / 5))
    assert target[0, 0, 20, 15] == 0.0 and target[0, 0, 26, 10] == 0.0
    hidden = render_targets(points, torch.tensor([[False]]), 32, 32, radius=5)
    assert hidden.abs().sum() == 0


def test_decoding_recovers_subpixel_positions():
    rng = np.random.default_rng(0)
    points = torch.tensor(rng.uniform(6, 26, size=(4, 7, 2)), dtype=torch.float32)
    for kind in ("cone", "gaussian"):
        maps = render_targets(points, torch.ones(4, 7, dtype=torch.bool), 32, 32, radius=4, kind=kind)
        decoded, peak = decode_heatmaps(maps, radius=4)
        error = (decoded - points).norm(dim=-1)
        assert error.max() < 0.06, (kind, error.max())
        argmax_only = torch.stack([maps.flatten(2).argmax(-1) % 32, maps.flatten(2).argmax(-1) // 32], -1).float()
        assert (argmax_only - points).norm(dim=-1).mean() > 5 * error.mean()  # refinement matters
        assert torch.all(peak > 0.5)


def test_decoding_ignores_a_distant_weak_blob():
    maps = render_targets(torch.tensor([[[8.3, 9.6]]]), torch.tensor([[True]]), 32, 32, radius=4)
    maps[0, 0, 25:28, 25:28] = 0.3
    decoded, _ = decode_heatmaps(maps, radius=4)
    assert (decoded[0, 0] - torch.tensor([8.3, 9.6])).norm() < 0.06


def test_heatmap_coordinate_mapping_round_trip():
    x = torch.tensor([[0.0, 5.5, 255.0]])
    assert torch.allclose(from_heatmap(to_heatmap(x, 4), 4), x)
    assert to_heatmap(torch.tensor(1.5), 4) == 0.0  # centre of heatmap pixel 0 = centre of input pixels 0..3
    assert default_radius(128) == 10.0


def test_weighted_l1_matches_the_paper_formula():
    target = render_targets(torch.tensor([[[5.0, 5.0], [2.0, 3.0]]]), torch.ones(1, 2, dtype=torch.bool), 12, 12, 3)
    pred = torch.rand(1, 2, 12, 12, generator=torch.Generator().manual_seed(0))
    expected = 0
    for k in range(2):
        g, h = target[0, k], pred[0, k]
        disk = (g > 0).float()
        expected += 0.5 * ((h - g).abs() * disk).sum() / disk.sum() + 0.5 * ((h - g).abs() * (1 - disk)).sum() / (1 - disk).sum()
    expected /= 2
    assert torch.isclose(weighted_l1_loss(pred, target, torch.ones(1, 2, dtype=torch.bool)), expected)
    assert weighted_l1_loss(target, target, torch.ones(1, 2, dtype=torch.bool)) == 0
    # An empty prediction pays half the mean cone height, not the tiny area fraction plain L1 would give.
    empty = weighted_l1_loss(torch.zeros_like(target), target, torch.ones(1, 2, dtype=torch.bool))
    assert empty > 0.1 > (target.abs().mean())


def test_losses_skip_invisible_landmarks():
    target = render_targets(torch.tensor([[[5.0, 5.0], [2.0, 3.0]]]), torch.tensor([[True, False]]), 12, 12, 3)
    pred = target.clone()
    pred[0, 1] = 1.0  # garbage where the landmark is missing: must not count
    visible = torch.tensor([[True, False]])
    assert weighted_l1_loss(pred, target, visible) == 0
    assert heatmap_mse_loss(pred, target, visible) == 0
