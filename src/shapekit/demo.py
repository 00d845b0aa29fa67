"""`shapekit demo`: the main job end to end on a dataset built inside the package.

Generate a landmark dataset, hold part of it out, train a heatmap model for about a minute on the
CPU, evaluate it on the held-out images, predict TPS files with overlays, and write a report.
No network, no arguments.
"""

from __future__ import annotations

import time
from pathlib import Path

from .config import RunConfig
from .engine import Runtime, load_model, train
from .io.atomic import write_json, write_text
from .io.landmark_dataset import split_dataset
from .synthetic import make_landmark_dataset


def _fresh_folder(out: Path) -> Path:
    """Never write into an earlier demo's folder: use out, out-2, out-3, ..."""
    candidate, k = out, 1
    while candidate.exists() and any(candidate.iterdir()):
        k += 1
        candidate = out.with_name(f"{out.name}-{k}")
    return candidate


def run_demo(out: Path = Path("shapekit-demo"), minutes: float = 1.0, console=None) -> Path:
    out = _fresh_folder(Path(out))
    say = console.print if console is not None else print
    started = time.time()

    say(f"[1/4] building a procedural landmark dataset in {out / 'data'}")
    make_landmark_dataset(out / "data" / "all", n_images=200, seed=0)
    train_dir, test_dir = split_dataset(out / "data" / "all", out / "data", test_fraction=0.2, seed=0)

    say(f"[2/4] training the heatmap landmark model (~{minutes:g} min on the CPU)")
    config = RunConfig(task="landmarks", data=train_dir, out=out / "run", input_size=128, batch_size=16,
                       epochs=max(4, round(20 * minutes)), max_minutes=minutes * 1.5, lr=2e-3, plot_every=10,
                       options={"refine": False})  # a minutes-long run: the refiner pays off at full budgets
    run = train(config, console=console)

    say("[3/5] evaluating on the held-out images")
    task, model = load_model(run / "best.ckpt")
    runtime = Runtime.create()
    report = task.evaluate(model, test_dir, runtime=runtime, out_dir=out / "evaluation")
    report = {k: v for k, v in report.items() if not k.startswith("_")}
    write_json(out / "evaluation" / "evaluation.json", report)
    if console is not None:
        task.print_report(report, console)

    say("[4/5] predicting on the held-out images")
    prediction = task.predict(model, [test_dir / "images"], out / "predictions", fmt="tps", runtime=runtime)

    overlays = sorted((out / "predictions" / "overlays").glob("*.png"))[:3]
    clothing = _clothing_demo(out, runtime, say)
    faces = _face3d_demo(out, runtime, say)
    lines = [
        "# shapekit demo report", "",
        f"Procedural specimens ({len(task.meta['train_ids'])} training + {len(task.meta['val_ids'])} validation, "
        f"{report['n_images']} held out for testing), {task.meta['num_landmarks']} landmarks each; heatmap U-Net "
        f"(MobileNetV2, ImageNet weights) trained for {time.time() - started:.0f} s in all.", "",
        "## Held-out accuracy", "",
        f"- mean error **{report['mean_px']:.2f} px** ({report['mean_pct_long_side']:.2f} % of the image's long side),"
        f" median {report['median_px']:.2f} px",
        f"- NME ({report['nme']['normalisation']}): {report['nme']['value']:.4f}",
        "- PCK: " + ", ".join(f"{v:.2f} within {k} % of the long side" for k, v in report["pck_pct_long_side"].items()),
        "", "| landmark | mean px | median px |", "|---|---|---|",
        *[f"| {r['name']} | {r['mean_px']:.2f} | {r['median_px']:.2f} |" for r in report["per_landmark"]],
        "", "## Figures", "",
        "![loss curves](run/loss_curves.png)", "![heatmaps](run/heatmaps.png)",
        "![validation overlays](run/val_overlays.png)", "![CED](evaluation/ced.png)",
        "![largest errors](evaluation/worst_images.png)", "",
        "## Files", "",
        f"- model: `run/best.ckpt` (try `shapekit predict --model {run / 'best.ckpt'} IMAGES --out DIR`)",
        f"- predictions: `{Path(prediction['file']).relative_to(out)}` (tpsDig convention) and overlays:",
        *[f"  ![{p.stem}]({p.relative_to(out)})" for p in overlays],
        "", *clothing, "", *faces,
    ]
    return write_text(out / "report.md", "\n".join(lines) + "\n")


def _astronaut_with_shipped(task_cls, folder: Path, runtime: Runtime, title: str, say, step: str):
    """Run a task's shipped model on scikit-image's astronaut photo: (predict result, None), or (None, report
    lines saying the model is missing)."""
    from skimage import data

    from .io.atomic import save_image

    say(step)
    if not task_cls.default_model.is_file():
        return None, [f"## {title}", "", "The shipped model is missing from this installation."]
    photo = save_image(folder / "astronaut.png", data.astronaut())
    task, model = load_model(task_cls.default_model)
    return task.predict(model, [photo], folder, runtime=runtime), None


def _clothing_demo(out: Path, runtime: Runtime, say) -> list[str]:
    """Run the shipped clothing segmentation model on scikit-image's astronaut photo."""
    from .tasks.segment import SegmentTask

    result, missing = _astronaut_with_shipped(SegmentTask, out / "clothing", runtime, "Clothing segmentation", say,
                                              "[5/6] segmenting clothing in skimage's astronaut photo with the "
                                              "shipped model")
    if missing:
        return missing
    coverage = result["coverage"][0]
    return ["## Clothing segmentation (shipped model)", "",
            f"`skimage.data.astronaut()`: {coverage * 100:.1f} % of the pixels labelled as clothing.", "",
            "![photo](clothing/astronaut.png) ![mask](clothing/masks/astronaut.png) "
            "![overlay](clothing/overlays/astronaut.png) ![cut-out](clothing/cutouts/astronaut.png)"]


def _face3d_demo(out: Path, runtime: Runtime, say) -> list[str]:
    """3D face landmarks on scikit-image's astronaut photo with the shipped landmarks3d model."""
    from .tasks.landmarks3d import Landmarks3DTask

    result, missing = _astronaut_with_shipped(Landmarks3DTask, out / "faces3d", runtime, "3D face landmarks", say,
                                              "[6/6] 3D face landmarks on skimage's astronaut photo with the "
                                              "shipped model")
    if missing:
        return missing
    faces = result["faces"][0]
    if not faces:
        return ["## 3D face landmarks (shipped model)", "", "No face was found in the astronaut photo."]
    points = faces[0]["points"]
    nose, jaw_ends = points[30, 2], (points[0, 2] + points[16, 2]) / 2
    return ["## 3D face landmarks (shipped model)", "",
            f"`skimage.data.astronaut()`: {len(faces)} face found by MTCNN; 68 landmarks with relative depth "
            f"(the nose tip is {nose - jaw_ends:.1f} px in front of the jaw ends). Files: "
            "`faces3d/landmarks3d.json`, `faces3d/landmarks3d.csv`, `faces3d/ply/astronaut_face0.ply`.", "",
            "![overlay](faces3d/overlays/astronaut.png) ![3D view](faces3d/views3d/astronaut_face0.png)"]
