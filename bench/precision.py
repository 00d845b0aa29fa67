"""bf16 autocast + channels-last against fp32 on the CPU: throughput and accuracy.

Throughput: the heatmap U-Net (MobileNetV2) and the segmentation U-Net at 256 px, training
(forward + backward + Adam) and inference, for each combination of precision and memory format.
Accuracy: the same drosophila-wings training run (fixed seed, fixed epochs) in fp32 and in
bf16 + channels-last, both evaluated on the same unseen test split, and the fp32 model evaluated with
bf16 inference.

    python bench/precision.py [--epochs 40] [--threads 2]

Writes bench/results/precision.json.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, WORK, console, print_table, save_results  # noqa: E402

from shapekit.config import RunConfig  # noqa: E402
from shapekit.engine import Runtime, load_model, train  # noqa: E402
from shapekit.io.landmark_dataset import split_dataset  # noqa: E402
from shapekit.models import create_model  # noqa: E402

SETTINGS = {"fp32": (False, False), "bf16": (True, False), "fp32 + channels_last": (False, True),
            "bf16 + channels_last": (True, True)}


def throughput(model_name: str, kwargs: dict, bf16: bool, channels_last: bool, train_mode: bool, batch: int = 8,
               size: int = 256, repeats: int = 6) -> float:
    model = create_model(model_name, encoder_weights=None, **kwargs)
    model.train(train_mode)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    images = torch.rand(batch, 3, size, size)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters())
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        if train_mode:
            with autocast:
                out = model(images)
            out.float().mean().backward()
            optimizer.step()
            optimizer.zero_grad()
        else:
            with torch.inference_mode(), autocast:
                model(images)
        times.append(time.perf_counter() - start)
    return batch / float(np.median(times[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("SHAPEKIT_NO_PROGRESS", "1")
    torch.set_num_threads(args.threads)

    models = {"heatmap U-Net": ("heatmap_unet", {"num_landmarks": 12}),
              "segmentation U-Net": ("seg_unet", {"num_classes": 1})}
    speed, rows = {}, []
    for label, (name, kwargs) in models.items():
        speed[label] = {}
        for setting, (bf16, cl) in SETTINGS.items():
            train_ips = throughput(name, kwargs, bf16, cl, True)
            infer_ips = throughput(name, kwargs, bf16, cl, False)
            speed[label][setting] = {"train_img_per_s": train_ips, "infer_img_per_s": infer_ips}
        base = speed[label]["fp32"]
        for setting, values in speed[label].items():
            rows.append([label, setting, values["train_img_per_s"], values["train_img_per_s"] / base["train_img_per_s"],
                         values["infer_img_per_s"], values["infer_img_per_s"] / base["infer_img_per_s"]])
    print_table(f"Throughput at 256 px, batch 8, {args.threads} threads",
                ["model", "setting", "train img/s", "x fp32", "infer img/s", "x fp32"], rows)

    train_dir, test_dir = split_dataset(DATA / "drosophila-wings", WORK / "precision" / "split", 0.2, args.seed)
    accuracy, rows = {}, []
    for label, precision in (("fp32", "32"), ("bf16 + channels_last", "bf16-mixed")):
        run = WORK / "precision" / precision
        config = RunConfig(task="landmarks", data=train_dir, out=run, epochs=args.epochs, seed=args.seed,
                           precision=precision, plot_every=100, options={"refine": False})  # as measured
        if not (run / "best.ckpt").exists():
            start = time.time()
            train(config, console=console)
            (run / "train_minutes.txt").write_text(f"{(time.time() - start) / 60:.3f}\n")
        task, model = load_model(run / "best.ckpt")
        for infer_label, infer_precision in (("fp32", "32"), ("bf16", "bf16-mixed")):
            report = task.evaluate(model, test_dir, runtime=Runtime.create("cpu", infer_precision))
            key = f"train {label}, infer {infer_label}"
            accuracy[key] = {"mean_px": report["mean_px"], "mean_pct_long_side": report["mean_pct_long_side"],
                             "train_minutes": float((run / "train_minutes.txt").read_text())}
            rows.append([key, report["mean_px"], report["mean_pct_long_side"], accuracy[key]["train_minutes"]])
    print_table(f"drosophila-wings, {args.epochs} epochs, unseen test split",
                ["setting", "mean px", "% long side", "train min"], rows)
    save_results("precision", {"settings": vars(args), "throughput": speed, "accuracy": accuracy})


if __name__ == "__main__":
    main()
