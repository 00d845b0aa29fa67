"""Batched inference shared by the image tasks: letterbox, stack, run (PyTorch or onnxruntime)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..transforms import Letterbox
from .runtime import Runtime

if TYPE_CHECKING:
    from ..tta import TestTimeAugmentation

# A replacement for the PyTorch model, e.g. an onnxruntime session: float32 NCHW array in, raw output out.
ForwardFn = Callable[[np.ndarray], np.ndarray]


def letterboxed_batches(images: Sequence[np.ndarray], shape: tuple[int, int], model: nn.Module | None, runtime: Runtime,
                        batch_size: int = 8, fill: int = 0, forward: ForwardFn | None = None,
                        tta: "TestTimeAugmentation | None" = None
                        ) -> Iterator[tuple[torch.Tensor, list[Letterbox]]]:
    """Yield (raw float32 CPU output, letterboxes) per batch of RGB uint8 images; shape = (width, height).

    With ``tta`` the output is the average over its views (see :mod:`shapekit.tta`)."""
    if forward is None:
        model = runtime.prepare_model(model)

    def run(tensor: torch.Tensor) -> torch.Tensor:
        if forward is not None:
            return torch.from_numpy(np.asarray(forward(tensor.contiguous().numpy())))
        with torch.inference_mode(), runtime.autocast():
            return model(runtime.prepare_input(tensor)).float().cpu()

    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        boxes = [Letterbox.fit(im.shape[1], im.shape[0], *shape) for im in chunk]
        batch = np.stack([box.apply_image(im, fill) for box, im in zip(boxes, chunk)])
        tensor = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0)
        raw = tta(run, tensor) if tta is not None else run(tensor)
        yield raw.float().cpu(), boxes
