"""Shipped clothing model: IoU on the CCP images it never trained on, and CPU throughput of PyTorch
eager (fp32 and the default bf16 + channels-last) against onnxruntime (fp32, and int8 from static
quantisation, whose IoU is measured too), at batch 1 and 8.

    python bench/segment.py              # everything, including the test-time augmentation rows
    python bench/segment.py --tta-only   # only the TTA rows, added to the existing results file

The CCP split (seed 0, 20 % test) is the one tools/ship_clothing_model.py trained with.
Writes bench/results/segment.json.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, RESULTS, WORK, print_table, save_results  # noqa: E402

from shapekit.engine import Runtime, load_model, read_checkpoint  # noqa: E402
from shapekit.engine.onnx import OnnxForward, export_onnx  # noqa: E402
from shapekit.io.images import list_images  # noqa: E402
from shapekit.io.landmark_dataset import split_dataset  # noqa: E402
from shapekit.tasks.base import read_inputs  # noqa: E402
from shapekit.tasks.segment import SegmentTask  # noqa: E402


def images_per_second(run, batch: int, repeats: int = 8) -> float:
    run(batch)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - start)
    return batch / float(np.median(times))


def tta_rows(task, model, test_dir: Path) -> dict:
    """IoU and end-to-end img/s (letterbox, network, resize back; batch 8, default precision) without and
    with test-time augmentation (flip + zooms 0.9 / 1.1, averaged logits)."""
    runtime = Runtime.create()
    images = read_inputs(list_images([test_dir / "images"])[:32])[0]
    rows = {}
    for label, tta in (("no TTA", False), ("TTA (flip + zooms 0.9, 1.1)", True)):
        report = task.evaluate(model, test_dir, runtime=runtime, tta=tta)
        task.infer_masks(model, images[:8], runtime, tta=tta)  # warm-up
        start = time.perf_counter()
        task.infer_masks(model, images, runtime, batch_size=8, tta=tta)
        rows[label] = {"iou_mean": report["iou_mean"], "iou_pooled": report["iou_pooled"],
                       "dice_mean": report["dice_mean"], "img_per_s": len(images) / (time.perf_counter() - start)}
    print_table("Test-time augmentation (shipped clothing model, unseen CCP images)",
                ["inference", "IoU mean", "IoU pooled", "Dice mean", "img/s (batch 8, end to end)"],
                [[k, v["iou_mean"], v["iou_pooled"], v["dice_mean"], v["img_per_s"]] for k, v in rows.items()])
    return rows


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tta-only", action="store_true",
                        help="measure only the TTA rows and add them to the existing results file")
    args = parser.parse_args()
    os.environ.setdefault("SHAPEKIT_NO_PROGRESS", "1")
    model_path = SegmentTask.default_model
    if not model_path.is_file():
        raise SystemExit(f"no shipped model at {model_path}; run tools/ship_clothing_model.py first")
    meta = read_checkpoint(model_path)["shapekit"]
    seed = meta["config"]["seed"]
    train_dir, test_dir = split_dataset(DATA / "ccp", WORK / "ccp" / "split", 0.2, seed)
    task, model = load_model(model_path)
    trained_on = set(meta["meta"]["train_ids"]) | set(meta["meta"]["val_ids"])
    test_ids = {p.stem for p in (test_dir / "images").iterdir()}
    assert not trained_on & test_ids, "test images overlap the training images"
    if args.tta_only:
        import json

        previous = json.loads((RESULTS / "segment.json").read_text())
        kept = {k: v for k, v in previous.items() if k not in ("command", "date", "machine")}
        save_results("segment", {**kept, "tta": tta_rows(task, model, test_dir)})
        return

    accuracy = {}
    for label, precision in (("bf16 + channels_last (default)", "auto"), ("fp32", "32")):
        report = task.evaluate(model, test_dir, runtime=Runtime.create("cpu", precision))
        accuracy[label] = {k: report[k] for k in ("n_images", "iou_mean", "iou_pooled", "iou_median", "dice_mean",
                                                   "pixel_accuracy_mean")}
    print_table(f"Shipped clothing model on {accuracy['fp32']['n_images']} unseen CCP images",
                ["inference", "IoU mean", "IoU pooled", "IoU median", "Dice mean"],
                [[k, v["iou_mean"], v["iou_pooled"], v["iou_median"], v["dice_mean"]] for k, v in accuracy.items()])

    width, height = task.input_shape
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(model_path, Path(tmp) / "clothing.onnx")
        session = OnnxForward(onnx_path)
        # int8: calibrated on 32 training images (never on the test split), scored on the test split.
        calibration = read_inputs(list_images([train_dir / "images"])[::8][:32])[0]
        int8_session = OnnxForward(export_onnx(model_path, Path(tmp) / "clothing-int8.onnx", calibration))
        report = task.evaluate(None, test_dir, runtime=Runtime.create("cpu", "32"), forward=int8_session)
        accuracy["onnxruntime int8"] = {k: report[k] for k in ("n_images", "iou_mean", "iou_pooled", "iou_median",
                                                               "dice_mean", "pixel_accuracy_mean")}
        print_table("int8 (onnxruntime static quantisation) on the same images", ["IoU mean", "IoU pooled", "Dice mean"],
                    [[report["iou_mean"], report["iou_pooled"], report["dice_mean"]]])
        engines = {}
        for label, precision in (("PyTorch eager fp32", "32"), ("PyTorch eager bf16 + channels_last", "bf16-mixed")):
            runtime = Runtime.create("cpu", precision)
            net = runtime.prepare_model(model)

            def run(batch, net=net, runtime=runtime):
                with torch.inference_mode(), runtime.autocast():
                    net(runtime.prepare_input(torch.rand(batch, 3, height, width)))
            engines[label] = run
        engines["onnxruntime fp32"] = lambda batch: session(np.random.rand(batch, 3, height, width).astype(np.float32))
        engines["onnxruntime int8"] = lambda batch: int8_session(np.random.rand(batch, 3, height, width).astype(np.float32))
        speed = {label: {f"batch_{b}": images_per_second(run, b) for b in (1, 8)} for label, run in engines.items()}
    base = speed["PyTorch eager fp32"]
    print_table(f"Throughput at {width}x{height}, {torch.get_num_threads()} threads (img/s)",
                ["engine", "batch 1", "batch 8", "x eager fp32 (b1)", "x eager fp32 (b8)"],
                [[k, v["batch_1"], v["batch_8"], v["batch_1"] / base["batch_1"], v["batch_8"] / base["batch_8"]]
                 for k, v in speed.items()])
    save_results("segment", {"model": str(model_path.name), "input": [width, height], "accuracy": accuracy,
                             "throughput_img_per_s": speed, "tta": tta_rows(task, model, test_dir)})


if __name__ == "__main__":
    main()
