"""Single-view mesh reconstruction benchmark (shoe paper), and the paper's three open problems.

Data: the two real meshes in ../shared/data/shoes become hundreds of distinct shoe-like objects
through `make-multiview` (synthetic augmentation: random shape and texture variations, rendered from 24
cameras). Held out: objects generated from the same meshes with other random seeds, and the untouched
real boot and sneaker renders (48 views each). Training never sees a 3D mesh, only views and masks.

The main model trains in two stages (coarse template, then subdivided once).
Reported on held-out objects: silhouette IoU and PSNR on views the network never took as input,
Chamfer distance to the true mesh after scale alignment; and the renderer's forward+backward time.
Ablations (one short training each) show the open problems before/after:
  (a) invariance: no input jitter vs random scale/shift, scored on rescaled/shifted inputs;
  (b) texture seams: an island UV layout (six cube-projection charts) vs the seamless spherical unwrap;
  (c) jagged geometry: no normal/flatten regularisation, single level vs coarse-to-fine + regularisers.

    python bench/mesh.py [--minutes 20] [--ablation-minutes 6] [--variants 80]

Writes bench/results/mesh.json; figures go to bench/figures/mesh/ (git-ignored: they show shared data).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, REPO, WORK, console, print_table, save_results, train_throughput  # noqa: E402

from shapekit.config import RunConfig  # noqa: E402
from shapekit.engine import Runtime, load_model, read_checkpoint, train  # noqa: E402
from shapekit.engine.checkpoint import unfinished  # noqa: E402
from shapekit.io.atomic import save_figure  # noqa: E402
from shapekit.io.multiview import load_multiview_set  # noqa: E402
from shapekit.multiview_gen import make_multiview  # noqa: E402
from shapekit.render import MeshRenderer, PerspectiveCameras, RasterSettings, orbit  # noqa: E402
from shapekit.templates import icosphere  # noqa: E402

FIGURES = REPO / "bench" / "figures" / "mesh"
MESHES = [DATA / "shoes" / "boot" / "mesh" / "boot.obj", DATA / "shoes" / "sneaker" / "mesh" / "shoe.obj"]


def renderer_timing(repeats: int = 4) -> dict:
    sphere = icosphere(4)  # 2,562 vertices
    cam2world, _ = orbit(8, 2.6, (15.0,))
    cameras = PerspectiveCameras(cam2world, math.radians(35), 64)
    renderer = MeshRenderer(RasterSettings(image_size=64, sigma=0.4))
    texture = torch.rand(1, 64, 128, 3, requires_grad=True)
    results = {}
    for label in ("silhouettes", "rgb"):
        times = []
        for _ in range(repeats + 1):
            verts = (sphere.vertices * 0.8)[None].expand(8, -1, -1).clone().requires_grad_(True)
            start = time.perf_counter()
            if label == "silhouettes":
                loss = renderer.silhouettes(verts, sphere.faces, cameras).mean()
            else:
                image, alpha = renderer.render(verts, sphere.faces, cameras, texture=texture, face_uvs=sphere.face_uvs,
                                               texture_index=torch.zeros(8, dtype=torch.long))
                loss = image.mean() + alpha.mean()
            loss.backward()
            times.append(time.perf_counter() - start)
        results[f"{label}_forward_backward_s"] = float(np.median(times[1:]))
    return results


def generate(args) -> tuple[Path, Path]:
    train_dir, heldout_dir = WORK / "mesh" / "train", WORK / "mesh" / "heldout"
    if not train_dir.exists():
        make_multiview(MESHES, train_dir, views=24, variants=args.variants, size=128, seed=1, keep_original=False,
                       console=console)
    if not heldout_dir.exists():
        make_multiview(MESHES, heldout_dir, views=24, variants=args.heldout_variants, size=128, seed=12345,
                       keep_original=False, console=console)
    return train_dir, heldout_dir


def run(name: str, data: Path, minutes: float, n_objects: int, options: dict, init_from: Path | None = None,
        lr: float | None = None) -> Path:
    out = WORK / "mesh" / "runs" / name
    if not (out / "best.ckpt").exists() or _unfinished(out):
        config = RunConfig(task="mesh", data=data, out=out, input_size=128, batch_size=4, val_fraction=0.1, seed=0,
                           options=options, init_from=init_from, plot_every=5, lr=lr)
        speed = train_throughput(config, steps=4)
        epochs = max(3, math.floor(minutes * 60 * speed * 0.85 / (n_objects * 0.9)))
        console.print(f"{name}: {speed:.2f} objects/s -> {epochs} epochs")
        config = config.model_copy(update={"epochs": epochs, "max_minutes": minutes * 1.15})
        train(config, resume=(out / "last.ckpt").exists(), console=console)
        (out / "done").write_text("finished (possibly stopped by its time budget)\n")
    return out / "best.ckpt"


def _unfinished(out: Path) -> bool:
    if (out / "done").exists():
        return False
    if not (out / "last.ckpt").exists():
        return True
    return unfinished(read_checkpoint(out / "last.ckpt"))


def evaluate(checkpoint: Path, folders: list[Path]) -> dict:
    task, model = load_model(checkpoint)
    runtime = Runtime.create("cpu", "32")
    reports = [task.evaluate(model, folder, runtime=runtime) for folder in folders]
    objects = [o for r in reports for o in r["objects"]]
    return {"n_objects": len(objects), "iou_mean": float(np.mean([o["iou"] for o in objects])),
            "psnr_mean": float(np.mean([o["psnr"] for o in objects])),
            "chamfer_mean": float(np.mean([o["chamfer"] for o in objects if "chamfer" in o])), "objects": objects}


INPUT_MOVES = {"none": (1.0, 0.0, 0.0), "scale 0.6": (0.6, 0.0, 0.0), "scale 0.8": (0.8, 0.0, 0.0),
               "scale 1.2": (1.2, 0.0, 0.0), "scale 1.4": (1.4, 0.0, 0.0), "shift -15 %": (1.0, -0.15, 0.0),
               "shift +15 %": (1.0, 0.15, 0.0), "shift up 10 %": (1.0, 0.0, -0.10),
               "scale 0.8, shift +10 %": (0.8, 0.10, 0.05)}


def invariance(checkpoint: Path, folder: Path) -> dict:
    """Held-out IoU and PSNR when the input view is rescaled (about its centre) and shifted (fraction of its size)."""
    import cv2

    from shapekit.tasks.mesh import MultiViewSamples

    task, model = load_model(checkpoint)
    runtime = Runtime.create("cpu", "32")
    objects = load_multiview_set(folder)[:12]
    inputs = [MultiViewSamples([obj], 128, 16, 1, None, train=False).items[0]["input"] for obj in objects]
    result = {}
    for label, (scale, dx, dy) in INPUT_MOVES.items():
        scores = []
        for obj, image in zip(objects, inputs):
            matrix = np.array([[scale, 0, 63.5 * (1 - scale) + dx * 128], [0, scale, 63.5 * (1 - scale) + dy * 128]])
            moved = cv2.warpAffine(image, matrix, (128, 128), borderValue=(255, 255, 255))
            scores.append(task.score_object(model, obj, runtime, image=moved)[0])
        result[label] = {key: float(np.mean([s[key] for s in scores])) for key in ("iou", "psnr")}
    return result


def geometry_stats(checkpoint: Path, folder: Path) -> dict:
    """How jagged predicted meshes are: mean angle between neighbouring face normals (degrees)."""
    from shapekit.templates import adjacent_face_pairs

    task, model = load_model(checkpoint)
    runtime = Runtime.create("cpu", "32")
    pairs = adjacent_face_pairs(task.template.faces)
    angles = []
    for obj in load_multiview_set(folder)[:12]:
        from shapekit.tasks.mesh import MultiViewSamples

        samples = MultiViewSamples([obj], 128, task.options.render_size, 4, None, train=False)
        out = task.infer(model, [samples.items[0]["input"]], runtime)[0]
        verts = task.vertices(out["offsets"])[0]
        v0, v1, a, b = (verts[pairs[:, k]] for k in range(4))
        n1 = torch.nn.functional.normalize(torch.cross(v1 - v0, a - v0, dim=-1), dim=-1)
        n2 = torch.nn.functional.normalize(torch.cross(b - v0, v1 - v0, dim=-1), dim=-1)
        angles.append(float(torch.rad2deg(torch.acos((n1 * n2).sum(-1).clamp(-1, 1))).mean()))
    return {"mean_normal_angle_deg": float(np.mean(angles))}


def figure_turntables(checkpoint: Path, folders: list[Path], path: Path, count: int = 4) -> None:
    from shapekit.plots import plot_mesh_predictions
    from shapekit.tasks.mesh import MultiViewSamples

    task, model = load_model(checkpoint)
    runtime = Runtime.create("cpu", "32")
    objects = [o for folder in folders for o in load_multiview_set(folder)][-count:]
    inputs, strips, names = [], [], []
    for obj in objects:
        samples = MultiViewSamples([obj], 128, task.options.render_size, 4, None, train=False)
        out = task.infer(model, [samples.items[0]["input"]], runtime)[0]
        inputs.append(samples.items[0]["input"])
        strips.append(task.turntable(out["offsets"], out["texture"]))
        names.append(obj.name)
    plot_mesh_predictions(inputs, strips, names, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=25.0, help="training budget of the main model's first stage")
    parser.add_argument("--refine-minutes", type=float, default=20.0,
                        help="budget of its second stage: the template subdivided once (coarse to fine)")
    parser.add_argument("--ablation-minutes", type=float, default=6.0, help="budget of each ablation run")
    parser.add_argument("--variants", type=int, default=80, help="training objects per real mesh")
    parser.add_argument("--heldout-variants", type=int, default=8, help="held-out objects per real mesh")
    parser.add_argument("--skip-ablations", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("SHAPEKIT_NO_PROGRESS", "1")
    FIGURES.mkdir(parents=True, exist_ok=True)

    timing = renderer_timing()
    print_table("Renderer, 2,562-vertex sphere x 8 views at 64 px (forward + backward, s)",
                ["silhouettes", "RGB (texture)"], [[timing["silhouettes_forward_backward_s"], timing["rgb_forward_backward_s"]]])

    train_dir, heldout_dir = generate(args)
    n_train = len(load_multiview_set(train_dir))
    real = DATA / "shoes"
    coarse_ckpt = run("main_aligned", train_dir, args.minutes, n_train, {})
    main_ckpt = run("main_aligned_refined", train_dir, args.refine_minutes, n_train, {"refine": True},
                    init_from=coarse_ckpt, lr=1e-4)
    results = {"renderer": timing, "n_training_objects": n_train,
               "heldout_generated": evaluate(main_ckpt, [heldout_dir]), "heldout_real": evaluate(main_ckpt, [real]),
               "first_stage": {"heldout_generated": evaluate(coarse_ckpt, [heldout_dir]),
                               "heldout_real": evaluate(coarse_ckpt, [real])}}
    figure_turntables(main_ckpt, [heldout_dir, real], FIGURES / "heldout_turntables.png")
    rows = [[label, r["n_objects"], r["iou_mean"], r["psnr_mean"], r["chamfer_mean"]]
            for label, r in (("held-out generated shoes", results["heldout_generated"]),
                             ("real boot + sneaker (untouched)", results["heldout_real"]))]
    print_table("Held-out objects, views other than the input", ["objects", "n", "silhouette IoU", "PSNR dB",
                                                                 "Chamfer (unit sphere)"], rows)

    if not args.skip_ablations:
        minutes = args.ablation_minutes
        # The ablations study the paper's open problems on the paper's own design: a shape decoder that sees
        # only pooled features, trained with a blurrier soft silhouette.
        base = {"shape_features": "pooled", "sigma": 0.4}
        no_jitter = run("no_jitter", train_dir, minutes, n_train, {**base, "scale_jitter": 0.0, "shift_jitter": 0.0})
        jitter = run("jitter", train_dir, minutes, n_train, base)
        islands = run("islands", train_dir, minutes, n_train, {**base, "uv_layout": "islands"})
        jagged = run("no_regularisers", train_dir, minutes, n_train,
                     {**base, "template_level": 3, "weights": {"normal": 0.0, "flatten": 0.0, "laplacian": 0.0}})
        coarse = run("coarse", train_dir, minutes / 2, n_train, {**base, "template_level": 2})
        fine = run("coarse_to_fine", train_dir, minutes / 2, n_train, {**base, "refine": True}, init_from=coarse)
        results["ablations"] = {
            "invariance": {"without_jitter": invariance(no_jitter, heldout_dir), "with_jitter": invariance(jitter, heldout_dir)},
            "seams": {"islands": evaluate(islands, [heldout_dir])["psnr_mean"],
                      "spherical": evaluate(jitter, [heldout_dir])["psnr_mean"]},
            "geometry": {"no_regularisers": geometry_stats(jagged, heldout_dir),
                         "coarse_to_fine_regularised": geometry_stats(fine, heldout_dir)},
        }
        for label, ckpt in (("islands", islands), ("spherical", jitter), ("no_regularisers", jagged),
                            ("coarse_to_fine", fine)):
            figure_turntables(ckpt, [heldout_dir], FIGURES / f"ablation_{label}.png", count=3)
        _plot_invariance(results["ablations"]["invariance"], FIGURES / "ablation_invariance.png")
        ab = results["ablations"]
        print_table("Open problems, before / after", ["problem", "measure", "before", "after"], [
            ["(a) invariance", "IoU / PSNR dB, input as is",
             _moved(ab["invariance"]["without_jitter"], "none"), _moved(ab["invariance"]["with_jitter"], "none")],
            ["(a) invariance", "IoU / PSNR dB, worst of 8 scaled or shifted inputs",
             _moved(ab["invariance"]["without_jitter"]), _moved(ab["invariance"]["with_jitter"])],
            ["(b) texture seams", "held-out PSNR dB", ab["seams"]["islands"], ab["seams"]["spherical"]],
            ["(c) jagged geometry", "mean neighbour-normal angle (deg)",
             ab["geometry"]["no_regularisers"]["mean_normal_angle_deg"],
             ab["geometry"]["coarse_to_fine_regularised"]["mean_normal_angle_deg"]],
        ])
    save_results("mesh", {"settings": vars(args), **results})


def _moved(data: dict, label: str | None = None) -> str:
    """'IoU / PSNR' for one input move, or for the move with the lowest PSNR."""
    if label is None:
        label = min((k for k in data if k != "none"), key=lambda k: data[k]["psnr"])
    return f"{data[label]['iou']:.3f} / {data[label]['psnr']:.2f} ({label})"


def _plot_invariance(data: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    labels = list(INPUT_MOVES)
    for name, values in data.items():
        for ax, key in zip(axes, ("iou", "psnr")):
            ax.plot(range(len(labels)), [values[k][key] for k in labels], marker="o", label=name.replace("_", " "))
    for ax, title in zip(axes, ("held-out silhouette IoU", "held-out PSNR dB")):
        ax.set_xticks(range(len(labels)), labels, rotation=40, ha="right", fontsize=8)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend()
    save_figure(fig, path)


if __name__ == "__main__":
    main()
