import numpy as np

from shapekit.transforms import AugmentOptions, KeypointAugmenter, Letterbox, invert_letterbox_points


def test_letterbox_points_round_trip_and_image_placement():
    box = Letterbox.fit(300, 150, 128)
    assert (box.width, box.height) == (128, 128) and box.pad_x == 0 and box.pad_y == 32
    points = np.array([[0.0, 0.0], [299.0, 149.0], [123.4, 56.7]])
    mapped = box.apply_points(points)
    np.testing.assert_allclose(box.invert_points(mapped), points, atol=1e-9)
    np.testing.assert_allclose(invert_letterbox_points(mapped[None], box.as_array()[None])[0], points, atol=1e-9)
    image = np.zeros((150, 300, 3), np.uint8)
    image[75, 150] = 255
    canvas = box.apply_image(image)
    ys, xs = np.nonzero(canvas[..., 0])
    weights = canvas[ys, xs, 0].astype(float)
    centre = np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()
    np.testing.assert_allclose(centre, box.apply_points(np.array([[150.0, 75.0]]))[0], atol=0.3)


def test_turned_letterbox_puts_a_portrait_image_lengthwise_and_maps_points_back():
    box = Letterbox.fit(100, 300, 192, 64, turn_to_fit=True)
    assert box.turned and box.pad_y == 0 and box.sx == box.sy == 64 / 100  # the long side now runs along x
    assert not Letterbox.fit(300, 100, 192, 64, turn_to_fit=True).turned
    assert not Letterbox.fit(100, 300, 192, 64).turned  # off unless asked
    points = np.array([[0.0, 0.0], [99.0, 299.0], [12.3, 250.5]])
    mapped = box.apply_points(points)
    np.testing.assert_allclose(box.invert_points(mapped), points, atol=1e-9)
    rows = np.stack([box.as_array(), Letterbox.fit(100, 300, 192, 64).as_array()])
    both = invert_letterbox_points(np.stack([mapped, Letterbox.fit(100, 300, 192, 64).apply_points(points)]), rows)
    np.testing.assert_allclose(both, np.stack([points, points]), atol=1e-9)
    image = np.zeros((300, 100, 3), np.uint8)
    image[240:243, 19:22] = 255  # a dot near the bottom left: it must land where apply_points says
    canvas = box.apply_image(image)
    assert canvas.shape == (64, 192, 3)
    ys, xs = np.nonzero(canvas[..., 0])
    weights = canvas[ys, xs, 0].astype(float)
    centre = np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()
    np.testing.assert_allclose(centre, box.apply_points(np.array([[20.0, 241.0]]))[0], atol=0.5)


def _dot_image(points, size=96):
    image = np.zeros((size, size, 3), np.uint8)
    for k, (x, y) in enumerate(points):
        image[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2, k % 3] = 255
    return image


def test_augmented_keypoints_follow_the_pixels():
    points = np.array([[30.0, 40.0], [60.0, 50.0], [45.0, 70.0]])
    augmenter = KeypointAugmenter(AugmentOptions(rotate=30, scale=0.2, shear=8, color=0.0))
    for seed in range(5):
        np.random.seed(seed)
        augmenter.pipeline.set_random_seed(seed)
        image, moved, visible = augmenter(_dot_image(points), points, np.ones(3, bool))
        for k in range(3):
            channel = image[..., k].astype(float)
            if not visible[k] or channel.sum() == 0:
                continue
            ys, xs = np.nonzero(channel)
            centre = np.array([(xs * channel[ys, xs]).sum(), (ys * channel[ys, xs]).sum()]) / channel[ys, xs].sum()
            assert np.linalg.norm(centre - moved[k]) < 1.0


def test_horizontal_flip_swaps_left_right_pairs():
    options = AugmentOptions(rotate=0, scale=0, shift=0, shear=0, color=0)
    augmenter = KeypointAugmenter(options, flip_pairs=[(0, 1)])
    points = np.array([[20.0, 30.0], [70.0, 30.0], [50.0, 60.0]])
    flipped_seen = False
    for seed in range(12):
        augmenter.pipeline.set_random_seed(seed)
        _, moved, _ = augmenter(_dot_image(points), points, np.ones(3, bool))
        if np.allclose(moved, points, atol=1e-3):
            continue
        flipped_seen = True
        # Mirrored: the left landmark (index 0) is now where the right one was, and vice versa.
        np.testing.assert_allclose(moved[0], [95 - 70.0, 30.0], atol=1e-3)
        np.testing.assert_allclose(moved[1], [95 - 20.0, 30.0], atol=1e-3)
        np.testing.assert_allclose(moved[2], [95 - 50.0, 60.0], atol=1e-3)
    assert flipped_seen


def test_no_flip_without_pairs():
    augmenter = KeypointAugmenter(AugmentOptions(), flip_pairs=[])
    assert "HorizontalFlip" not in [type(t).__name__ for t in augmenter.pipeline.transforms]


def test_augmentation_follows_the_global_seed():
    """Albumentations keeps its own generator; shapekit seeds it from numpy's, so --seed repeats a run."""
    from shapekit.transforms import mask_augmenter

    points = np.array([[30.0, 40.0], [60.0, 50.0], [45.0, 70.0]])
    image = _dot_image(points)

    def keypoint_draws(seed):
        np.random.seed(seed)
        augmenter = KeypointAugmenter(AugmentOptions(rotate=30, scale=0.2, shear=8))
        return [augmenter(image, points, np.ones(3, bool))[1] for _ in range(4)]

    def mask_draws(seed):
        np.random.seed(seed)
        augment = mask_augmenter(AugmentOptions())
        return [augment(image=image, mask=image[..., 0])["mask"] for _ in range(4)]

    for draws in (keypoint_draws, mask_draws):
        first, again, other = draws(3), draws(3), draws(4)
        assert all(np.array_equal(a, b) for a, b in zip(first, again))
        assert not all(np.array_equal(a, b) for a, b in zip(first, other))
