"""Batched inference shared by the image tasks: letterbox, stack, run (PyTorch or onnxruntime)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ShapekitError
from ..transforms import Letterbox
from .runtime import Runtime

if TYPE_CHECKING:
    from ..tta import TestTimeAugmentation

# A replacement for the PyTorch model, e.g. an onnxruntime session: float32 NCHW array in, raw output out.
ForwardFn = Callable[[np.ndarray], np.ndarray]


def network_runner(model: nn.Module | None, runtime: Runtime, forward: ForwardFn | None = None
                   ) -> Callable[[torch.Tensor], torch.Tensor | tuple[torch.Tensor, ...]]:
    """A function from a float NCHW batch to the network's raw output as float32 CPU tensors (a tuple when
    the network has several outputs), run by PyTorch, or by ``forward`` (onnxruntime) when given."""
    if forward is not None:
        def run_onnx(tensor: torch.Tensor):
            output = forward(tensor.contiguous().numpy())
            if isinstance(output, tuple):
                return tuple(torch.from_numpy(np.asarray(o)) for o in output)
            return torch.from_numpy(np.asarray(output))
        return run_onnx
    if model is None:
        raise ShapekitError("no model to run: give --model, or --task to use the shipped one")
    model = runtime.prepare_model(model)

    def run_torch(tensor: torch.Tensor):
        with torch.inference_mode(), runtime.autocast():
            output = model(runtime.prepare_input(tensor))
        if isinstance(output, tuple):
            return tuple(o.float().cpu() for o in output)
        return output.float().cpu()
    return run_torch


def letterboxed_batches(images: Sequence[np.ndarray], shape: tuple[int, int], model: nn.Module | None, runtime: Runtime,
                        batch_size: int = 8, fill: int = 0, forward: ForwardFn | None = None,
                        tta: "TestTimeAugmentation | None" = None, turn_to_fit: bool = False
                        ) -> Iterator[tuple[torch.Tensor, list[Letterbox]]]:
    """Yield (raw float32 CPU output, letterboxes) per batch of RGB uint8 images; shape = (width, height);
    ``turn_to_fit``: see :meth:`Letterbox.fit`.

    With ``tta`` the output is the average over its views (see :mod:`shapekit.tta`)."""
    run = network_runner(model, runtime, forward)
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        boxes = [Letterbox.fit(im.shape[1], im.shape[0], *shape, turn_to_fit=turn_to_fit) for im in chunk]
        batch = np.stack([box.apply_image(im, fill) for box, im in zip(boxes, chunk)])
        tensor = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0)
        raw = tta(run, tensor) if tta is not None else run(tensor)
        yield raw.float().cpu(), boxes
