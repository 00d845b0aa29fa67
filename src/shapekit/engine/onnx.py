"""ONNX export and onnxruntime inference. The task metadata travels inside the .onnx file, so an
exported model predicts on its own: ``shapekit predict --model model.onnx ...``."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from ..config import RunConfig
from ..errors import InputError, ShapekitError
from ..io.atomic import atomic_open
from .checkpoint import META_KEY, load_model, read_checkpoint
from .runtime import Runtime

ONNX_OPSET = 17


def export_onnx(checkpoint: str | Path, out: str | Path, calibration: list[np.ndarray] | None = None) -> Path:
    """Export a checkpoint to ONNX; with ``calibration`` images (RGB uint8), statically quantised to int8."""
    import onnx

    checkpoint, out = Path(checkpoint), Path(out)
    if out.resolve() == checkpoint.resolve():
        raise ShapekitError(f"{out}: refusing to overwrite the checkpoint")
    meta = read_checkpoint(checkpoint)[META_KEY]
    task, model = load_model(checkpoint)
    if calibration is not None and not task.int8_export:
        raise ShapekitError(f"{checkpoint}: int8 export is not available for the {task.name!r} task; "
                            "export without --int8")
    width, height = task.input_shape
    model = model.float().eval()
    refiner = getattr(model, "refiner", None)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw_path = Path(tmp) / "model.onnx"
        if refiner is None:
            outputs = list(task.onnx_outputs)
            torch.onnx.export(model, torch.rand(1, 3, height, width), str(raw_path), input_names=["image"],
                              output_names=outputs, dynamic_axes={"image": {0: "batch"}, **{o: {0: "batch"} for o in outputs}},
                              opset_version=ONNX_OPSET, dynamo=False)
        else:
            # A second stage (landmark crop refiner) travels in the same graph as a second input/output pair.
            crops = torch.rand(1, refiner.num_landmarks, 3, refiner.crop_size, refiner.crop_size)
            torch.onnx.export(_TwoStage(model), (torch.rand(1, 3, height, width), crops), str(raw_path),
                              input_names=["image", "crops"], output_names=["output", "refined"],
                              dynamic_axes={"image": {0: "batch"}, "output": {0: "batch"},
                                            "crops": {0: "crop_batch"}, "refined": {0: "crop_batch"}},
                              opset_version=ONNX_OPSET, dynamo=False)
        if calibration is not None:
            raw_path = _quantize_int8(raw_path, Path(tmp), calibration, (width, height), int(meta["meta"].get("pad_fill", 0)),
                                      None if refiner is None else (refiner.num_landmarks, refiner.crop_size),
                                      task.turn_to_fit)
        graph = onnx.load(str(raw_path))
    entry = graph.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
    with atomic_open(out, "wb") as handle:
        handle.write(graph.SerializeToString())
    return out


class _TwoStage(torch.nn.Module):
    """Whole-image pass and crop refiner side by side: (image, crops) -> (heatmap logits, crop points)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, crops: torch.Tensor):
        return self.model(image), self.model.refine(crops)


def _quantize_int8(fp32_path: Path, tmp: Path, images: list[np.ndarray], shape: tuple[int, int], fill: int,
                   crops: tuple[int, int] | None = None, turn_to_fit: bool = False) -> Path:
    """onnxruntime static quantisation (QDQ, per-channel int8 weights, uint8 activations calibrated on ``images``)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from ..transforms import Letterbox

    if not images:
        raise ShapekitError("int8 export needs calibration images (--calibration)")

    class Reader(CalibrationDataReader):
        # The inputs exactly as inference builds them: letterboxed, float32 NCHW in [0, 1].
        def __init__(self):
            self.pending = list(images)

        def get_next(self):
            if not self.pending:
                return None
            image = self.pending.pop(0)
            boxed = Letterbox.fit(image.shape[1], image.shape[0], *shape, turn_to_fit=turn_to_fit).apply_image(image, fill)
            feed = {"image": np.ascontiguousarray(boxed.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0}
            if crops is not None:
                feed["crops"] = _calibration_crops(image, *crops)
            return feed

    prepared, quantised = tmp / "prepared.onnx", tmp / "int8.onnx"
    quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(quantised), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return quantised


def _calibration_crops(image: np.ndarray, count: int, size: int) -> np.ndarray:
    """Refiner calibration input: crops at ``count`` random places of the image, at native resolution (no
    landmark predictions exist yet at export time; the activations' ranges are what matters)."""
    from ..crops import image_tensor, sample_crops

    rng = np.random.default_rng(0)
    height, width = image.shape[:2]
    centres = torch.from_numpy(rng.uniform([0, 0], [width, height], size=(count, 2)).astype(np.float32))
    return sample_crops(image_tensor(image), centres, 1.0, size)[None].numpy()


class OnnxForward:
    """Callable running an exported model with onnxruntime: float32 NCHW in, raw output out."""

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:
            raise InputError(path, f"onnxruntime cannot load this model ({exc})") from None
        inputs = self.session.get_inputs()
        self.input_name = inputs[0].name
        meta = self.session.get_modelmeta().custom_metadata_map.get(META_KEY)
        if meta is None:
            raise InputError(path, "not a shapekit ONNX export (no task metadata inside)")
        self.meta = json.loads(meta)
        # Two-stage exports (landmarks with the crop refiner) also take crops; each call feeds an empty batch
        # to the stage it does not run.
        self._crops = next((i for i in inputs if i.name == "crops"), None)
        self._image_shape = [int(d) if isinstance(d, int) else 1 for d in inputs[0].shape]
        if self._crops is None:
            self.refine = None

    def __call__(self, images: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        """The network's output; a tuple when it has several (as the torch model returns them)."""
        feed = {self.input_name: np.ascontiguousarray(images, dtype=np.float32)}
        if self._crops is not None:
            feed["crops"] = np.zeros([0] + [int(d) for d in self._crops.shape[1:]], np.float32)
            return self.session.run(["output"], feed)[0]
        outputs = self.session.run(None, feed)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def refine(self, crops: np.ndarray) -> np.ndarray:
        """Crops (B, N, 3, S, S) around coarse landmarks -> refined crop-pixel points (B, N, 2)."""
        feed = {self.input_name: np.zeros([0] + self._image_shape[1:], np.float32),
                "crops": np.ascontiguousarray(crops, dtype=np.float32)}
        return self.session.run(["refined"], feed)[0]


def cache_dir() -> Path:
    """Where automatic ONNX exports are kept: $SHAPEKIT_CACHE_DIR, else ~/.cache/shapekit."""
    return Path(os.environ.get("SHAPEKIT_CACHE_DIR") or Path.home() / ".cache" / "shapekit") / "onnx"


def cached_export(checkpoint: Path) -> Path:
    """The checkpoint's fp32 ONNX export, made once and kept in :func:`cache_dir`, named by a hash of the
    checkpoint's bytes and of what shapes an export (package version, opset), so a retrained or edited
    checkpoint never meets a stale graph. Nothing is written beside the user's files."""
    from .. import __version__

    digest = hashlib.sha256(f"{__version__}:{ONNX_OPSET}:".encode())
    with open(checkpoint, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    path = cache_dir() / f"{digest.hexdigest()[:24]}.onnx"
    if not path.is_file():
        export_onnx(checkpoint, path)  # written atomically: a concurrent or interrupted export leaves no half file
    return path


def prefers_onnx(task, runtime: Runtime | None) -> bool:
    """``--engine auto``: onnxruntime for fp32 on the CPU, PyTorch otherwise (GPU, bf16 CPUs, tasks whose
    inference cannot run from an export). Measured on 2 CPU cores without fast bf16, where PyTorch runs
    fp32 eager: the landmark model with its refiner 28 vs 19 img/s, the face cascade 24 vs 15 faces/s, with
    the same points (bench/landmarks.py, bench/landmarks3d.py)."""
    if not task.onnx_inference:
        return False
    runtime = runtime or Runtime.create()
    if runtime.device.type != "cpu" or runtime.precision != "32-true":
        return False
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def load_predictor(model_path: str | Path, engine: str = "auto", task_name: str | None = None,
                   runtime: Runtime | None = None):
    """(task, torch model or None, onnx forward or None) for a .ckpt or .onnx model and an engine.

    ``auto`` runs a checkpoint by onnxruntime where :func:`prefers_onnx` says it is faster (its export is
    cached), else by PyTorch on ``runtime``."""
    from ..tasks import get_task

    model_path = Path(model_path)
    if engine not in ("auto", "torch", "onnx"):
        raise ShapekitError(f"--engine {engine!r}: choose auto, torch or onnx")
    is_onnx = model_path.suffix.lower() == ".onnx"
    if is_onnx and engine == "torch":
        raise ShapekitError(f"{model_path}: an ONNX file runs with --engine onnx only")
    if not is_onnx and engine != "onnx":
        task, model = load_model(model_path, task_name)
        if engine == "auto" and prefers_onnx(task, runtime):
            try:
                return task, None, OnnxForward(cached_export(model_path))
            except (OSError, ShapekitError, RuntimeError) as exc:
                # No writable cache or a graph the exporter rejects: PyTorch still runs the model.
                warnings.warn(f"{model_path}: running in PyTorch, the automatic ONNX export failed ({exc})")
        return task, model, None
    if not is_onnx:
        if not model_path.is_file():
            raise InputError(model_path, "model file not found")
        # A .ckpt runs from the same cached export as --engine auto's (nothing is written beside it); a
        # temporary file when the cache cannot be written.
        try:
            model_path = cached_export(model_path)
        except OSError:
            model_path = export_onnx(model_path, Path(tempfile.mkdtemp(prefix="shapekit-onnx-")) / "model.onnx")
    if not model_path.is_file():
        raise InputError(model_path, "model file not found")
    forward = OnnxForward(model_path)
    meta = forward.meta
    if task_name is not None and task_name != meta["task"]:
        raise InputError(model_path, f"is a {meta['task']!r} model, not {task_name!r}")
    task = get_task(meta["task"])(RunConfig(**meta["config"]), meta["meta"])
    return task, None, forward
