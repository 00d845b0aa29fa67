"""Model registry: ``create_model(name, **kwargs)`` builds any network shapekit tasks use."""

from __future__ import annotations

from typing import Callable

from torch import nn

from ..errors import ShapekitError
from .encoders import available_encoders, create_encoder, imagenet_classifier, resolve_weights
from .face3d import Face3DCascade
from .heatmap_unet import HeatmapUNet
from .mesh_net import MeshNet
from .regress_cnn import EncoderRegressor, LandmarkCNN
from .seg_unet import SegmentationUNet

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    def wrap(factory):
        _MODELS[name] = factory
        return factory
    return wrap


def create_model(name: str, **kwargs) -> nn.Module:
    if name not in _MODELS:
        raise ShapekitError(f"unknown model {name!r}; available: {', '.join(sorted(_MODELS))}")
    return _MODELS[name](**kwargs)


def available_models() -> list[str]:
    return sorted(_MODELS)


register_model("heatmap_unet")(HeatmapUNet)
register_model("seg_unet")(SegmentationUNet)
register_model("landmark_cnn")(LandmarkCNN)
register_model("encoder_regressor")(EncoderRegressor)
register_model("mesh_net")(MeshNet)
register_model("face3d_cascade")(Face3DCascade)

__all__ = ["EncoderRegressor", "Face3DCascade", "HeatmapUNet", "LandmarkCNN", "MeshNet", "SegmentationUNet", "available_encoders", "available_models", "create_encoder", "create_model",
           "imagenet_classifier", "register_model", "resolve_weights"]
