"""Where and how numbers are crunched: device, precision, memory format."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from ..errors import ShapekitError


def cpu_has_fast_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 autocast then runs MobileNet-class convnets about 2x faster than fp32."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False


def resolve_accelerator(device: str) -> str:
    device = device.lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ShapekitError("--device cuda: no CUDA device is available (use --device auto or cpu)")
    if device not in ("cpu", "cuda"):
        raise ShapekitError(f"--device {device!r}: choose auto, cpu or cuda")
    return device


def resolve_precision(precision: str, accelerator: str) -> str:
    if precision != "auto":
        allowed = {"32", "32-true", "bf16-mixed", "16-mixed", "bf16", "16"}
        if precision not in allowed:
            raise ShapekitError(f"--precision {precision!r}: choose auto, 32, bf16-mixed or 16-mixed")
        return {"32": "32-true", "bf16": "bf16-mixed", "16": "16-mixed"}.get(precision, precision)
    if accelerator == "cuda":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if cpu_has_fast_bf16() else "32-true"


def resolve_channels_last(channels_last: bool | None, accelerator: str, precision: str) -> bool:
    if channels_last is not None:
        return channels_last
    # Measured here: channels_last only pays off together with bf16 on the CPU.
    return accelerator == "cpu" and precision == "bf16-mixed"


@dataclass
class Runtime:
    """Settings for inference outside the Lightning trainer."""

    device: torch.device
    precision: str
    channels_last: bool

    @classmethod
    def create(cls, device: str = "auto", precision: str = "auto", channels_last: bool | None = None) -> "Runtime":
        accelerator = resolve_accelerator(device)
        precision = resolve_precision(precision, accelerator)
        return cls(torch.device(accelerator), precision, resolve_channels_last(channels_last, accelerator, precision))

    def autocast(self):
        if self.precision == "bf16-mixed":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        if self.precision == "16-mixed":
            return torch.autocast(self.device.type, dtype=torch.float16)
        return contextlib.nullcontext()

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        model = model.to(self.device).eval()
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def prepare_input(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device, non_blocking=True)
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images
