"""Training defaults of the landmark task: the pretrained encoder's stem stays fixed."""

import torch

from shapekit.models import create_encoder


def test_pretrained_stem_stays_fixed_and_the_rest_trains(trained_run):
    ckpt = torch.load(trained_run / "last.ckpt", map_location="cpu", weights_only=False)
    state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    imagenet = create_encoder("mobilenet_v2", "imagenet").state_dict()
    # MobileNetV2 blocks 0-3 run at strides 2 and 4: fixed in the U-Net's encoder and in the crop refiner's trunk
    # (batch-norm weights included; only their running statistics adapt).
    stem = [k for k in imagenet if k.split(".")[1] in {"0", "1", "2", "3"} and k.endswith(("weight", "bias"))]
    assert len(stem) > 20 and all(torch.equal(state[f"encoder.{k}"], imagenet[k]) for k in stem)
    assert all(torch.equal(state[f"refiner.stem4.{k[len('features.'):]}"], imagenet[k]) for k in stem)
    later = [k for k in imagenet if k.startswith("features.10.") and k.endswith("weight")]
    assert any(not torch.equal(state[f"encoder.{k}"], imagenet[k]) for k in later)
    refiner_later = [k for k in state if k.startswith("refiner.stem8.") and k.endswith("weight")]
    assert any(not torch.equal(state[k], imagenet[f"features.{4 + int(k.split('.')[2])}.{k.split('.', 3)[3]}"])
               for k in refiner_later)


def test_freeze_stem_false_trains_every_layer():
    from shapekit.config import RunConfig
    from shapekit.tasks.landmarks import LandmarkTask

    meta = {"landmark_names": ["a", "b"], "num_landmarks": 2, "flip_pairs": [], "input_shape": [64, 64]}
    for freeze, frozen_expected in ((True, True), (False, False)):
        task = LandmarkTask(RunConfig(input_size=64, options={"freeze_stem": freeze}), dict(meta))
        task.meta["refine"] = {"crop": 32, "cells": 6.0, "head": "heatmap"}
        model = task.build_model(pretrained=True)
        frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
        assert bool(frozen) == frozen_expected
        assert all(n.startswith(("encoder.features.0.", "encoder.features.1.", "encoder.features.2.",
                                 "encoder.features.3.", "refiner.stem4.")) for n in frozen)
