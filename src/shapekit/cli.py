"""Command line: one verb set across tasks (train, evaluate, predict, export) plus helpers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from .errors import ShapekitError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="shapekit: photos to shape (landmarks, masks, meshes).")
console = Console(stderr=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False)

DEVICE_HELP = "auto | cpu | cuda"
TTA_HELP = ("test-time augmentation: average over small zooms (and a mirrored view for models trained with "
            "flips), and for two-stage landmark models over five shifted refiner crops; about 3-4x the "
            "prediction time")
CROP_VOTES_HELP = ("two-stage landmark models: average the refiner over five shifted crops per landmark, without "
                   "the whole-image views of --tta (about half the prediction speed)")
PRECISION_HELP = "auto (bf16-mixed on CPUs with bf16 support, else 32) | 32 | bf16-mixed | 16-mixed"


def _runtime(device: str, precision: str):
    from .engine import Runtime

    return Runtime.create(device, precision)


@app.command()
def train(
    task: str = typer.Option("landmarks", help="landmarks | ... (see `shapekit tasks`)"),
    data: Optional[Path] = typer.Option(None, help="dataset folder (images/ + landmarks.tps | annotations.json | ...)"),
    out: Path = typer.Option(..., help="run folder: best.ckpt, last.ckpt, metrics.csv, plots"),
    epochs: Optional[int] = typer.Option(None, help="default: enough for the dataset size"),
    input_size: Optional[int] = typer.Option(None, help="network input, pixels (multiple of 32)"),
    batch_size: Optional[int] = typer.Option(None),
    lr: Optional[float] = typer.Option(None, help="Adam learning rate"),
    encoder: Optional[str] = typer.Option(None, help="mobilenet_v2 | efficientnet_lite0 | resnet18 | resnet34"),
    encoder_weights: Optional[str] = typer.Option(None, help="imagenet | none | path to a .pth file"),
    init_from: Optional[Path] = typer.Option(None, help="fine-tune from this checkpoint (encoder kept)"),
    landmark_map: Optional[str] = typer.Option(None, help="with --init-from: old:new landmark pairs, e.g. 0:0,3:1"),
    resume: bool = typer.Option(False, help="continue the run in --out from its last.ckpt"),
    seed: Optional[int] = typer.Option(None),
    val_fraction: Optional[float] = typer.Option(None, help="share of images held out for validation"),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    devices: int = typer.Option(1, help="devices (GPUs, or CPU processes) per node"),
    num_nodes: int = typer.Option(1),
    strategy: str = typer.Option("auto", help="auto | ddp | ddp_spawn | ..."),
    precision: str = typer.Option("auto", help=PRECISION_HELP),
    num_workers: Optional[int] = typer.Option(None, help="data loader worker processes"),
    minutes: Optional[float] = typer.Option(None, help="train for about this wall time: epochs and learning-rate "
                                            "schedule sized from the first epochs (--epochs: at most)"),
    max_minutes: Optional[float] = typer.Option(None, help="stop after this wall time"),
    ema: Optional[float] = typer.Option(None, help="keep an exponential moving average of the weights (decay, e.g. 0.995)"),
    config: Optional[Path] = typer.Option(None, help="YAML file of settings (CLI flags win)"),
    opt: Optional[List[str]] = typer.Option(None, "--opt", help="task option key=value, e.g. --opt target=gaussian"),
):
    """Train a model; leaves best.ckpt, last.ckpt, metrics.csv and plots in --out."""
    from .config import RunConfig, load_config_file, merge, parse_overrides, validate
    from .engine import resumable_config, train as run_training

    if resume:
        settings = resumable_config(out, epochs)
    else:
        base = load_config_file(config) if config else {}
        flags = {"task": task, "data": data, "out": out, "epochs": epochs, "input_size": input_size,
                 "batch_size": batch_size, "lr": lr, "encoder": encoder, "encoder_weights": encoder_weights,
                 "init_from": init_from, "landmark_map": landmark_map, "seed": seed, "val_fraction": val_fraction, "num_workers": num_workers,
                 "minutes": minutes, "max_minutes": max_minutes, "ema": ema}
        merged = merge(base, {k: v for k, v in flags.items() if v is not None})
        merged["options"] = merge(merged.get("options", {}), parse_overrides(opt))
        settings = validate(RunConfig, merged, "settings")
    settings = settings.model_copy(update={"device": device, "devices": devices, "num_nodes": num_nodes,
                                           "strategy": strategy, "precision": precision})
    run_dir = run_training(settings, resume=resume, console=console)
    console.print(f"done: {run_dir / 'best.ckpt'} (plots and metrics.csv beside it)")


ENGINE_HELP = ("auto | torch | onnx (onnxruntime). auto: onnxruntime for fp32 on the CPU (faster there; the export "
               "is made once and cached in $SHAPEKIT_CACHE_DIR or ~/.cache/shapekit), PyTorch on GPUs and bf16 CPUs")


def _predictor(model: Optional[Path], task: Optional[str], engine: str, runtime=None):
    """(task, torch model, onnx forward) for --model, or the task's shipped model when none is given;
    ``runtime`` is where PyTorch would run (it decides what --engine auto picks)."""
    from .engine.onnx import load_predictor
    from .tasks import get_task

    if model is None:
        if task is None:
            raise ShapekitError("give --model CKPT (or --task TASK to use the model shipped for that task)")
        shipped = getattr(get_task(task), "default_model", None)
        if shipped is None or not Path(shipped).is_file():
            raise ShapekitError(f"--task {task} ships no model; give --model CKPT")
        model = Path(shipped)
    return load_predictor(model, engine, task, runtime)


@app.command()
def evaluate(
    data: Path = typer.Option(..., help="annotated dataset folder"),
    model: Optional[Path] = typer.Option(None, help="checkpoint (.ckpt) or ONNX export; default: the task's shipped model"),
    task: Optional[str] = typer.Option(None, help="task (checked against the model; picks the shipped model)"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write the report as JSON here"),
    out: Optional[Path] = typer.Option(None, help="folder for plots; with --rounds, for the rounds' data and models"),
    normalisation: Optional[str] = typer.Option(None, help="NME normaliser: bbox | long_side | 'i,j' (two landmarks)"),
    rounds: Optional[int] = typer.Option(None, help="K-round cross-validation: train K models, each image predicted "
                                                    "once by a model that never saw it"),
    epochs: Optional[int] = typer.Option(None, help="with --rounds: epochs per round (with --minutes: at most)"),
    minutes: Optional[float] = typer.Option(None, help="with --rounds: training minutes per round, epochs fitted to them"),
    input_size: Optional[int] = typer.Option(None, help="with --rounds: network input size"),
    opt: Optional[List[str]] = typer.Option(None, "--opt", help="with --rounds: task option key=value"),
    engine: str = typer.Option("auto", help=ENGINE_HELP),
    tta: bool = typer.Option(False, "--tta", help=TTA_HELP),
    crop_votes: bool = typer.Option(False, "--crop-votes", help=CROP_VOTES_HELP),
    batch_size: int = typer.Option(8),
    detect: Optional[str] = typer.Option(None, help="landmarks3d: crop faces with this detector (mtcnn | dlib) "
                                                    "instead of the box around the true landmarks"),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    precision: str = typer.Option("auto", help=PRECISION_HELP),
):
    """Compare predictions with the annotations of every image in --data (or cross-validate with --rounds)."""
    from .io.atomic import write_json

    if rounds is not None:
        report = _cross_validate(data, model, task, out, rounds, epochs, minutes, input_size, opt, device, precision)
    else:
        runtime = _runtime(device, precision)
        task_obj, net, forward = _predictor(model, task, engine, runtime)
        report = task_obj.evaluate(net, data, runtime=runtime, batch_size=batch_size,
                                   normalisation=normalisation, out_dir=out, forward=forward,
                                   tta=_test_time_views(task_obj, tta, crop_votes),
                                   **({"detect": detect} if detect else {}))
        report = {k: v for k, v in report.items() if not k.startswith("_")}
        report["model"] = str(model or "shipped")
        task_obj.print_report(report, console)
    if json_out:
        write_json(json_out, report)
        console.print(f"report: {json_out}")


def _test_time_views(task_obj, tta: bool, crop_votes: bool):
    """The ``tta`` argument of predict/evaluate from the --tta and --crop-votes flags."""
    from .tta import test_time_views

    return test_time_views(task_obj, "full" if tta else "votes" if crop_votes else "off")


def _cross_validate(data, model, task, out, rounds, epochs, minutes, input_size, opt, device, precision) -> dict:
    from .config import RunConfig, merge, parse_overrides, validate
    from .engine import read_checkpoint
    from .tasks import get_task
    from .tasks._keypoints import KeypointTask, cross_validate, print_crossval

    if out is None:
        raise ShapekitError("--rounds needs --out (a folder for the rounds' data splits and models)")
    if model is not None:  # train each round as this checkpoint was trained
        base = read_checkpoint(model)["shapekit"]["config"]
        base.pop("init_from", None)
    else:
        base = {"task": task or "landmarks"}
    if task is not None and base.get("task") != task:
        raise ShapekitError(f"{model}: is a {base.get('task')!r} checkpoint, not {task!r}")
    if epochs:
        base["epochs"] = epochs
    if minutes:
        base["minutes"] = minutes
    if input_size:
        base["input_size"] = input_size
    base["options"] = merge(base.get("options", {}), parse_overrides(opt))
    base.update({"device": device, "precision": precision, "devices": 1, "strategy": "auto"})
    config = validate(RunConfig, base, "settings")
    if not issubclass(get_task(config.task), KeypointTask):
        raise ShapekitError(f"--rounds works for landmark tasks, not {config.task!r}")
    report = cross_validate(config, data, rounds, out, runtime=_runtime(device, precision), console=console)
    print_crossval(report, console)
    return {k: v for k, v in report.items() if not k.startswith("_")}


@app.command("shape-analysis")
def shape_analysis(
    tps: Path = typer.Argument(..., help="TPS file (e.g. manual landmarks)"),
    out: Path = typer.Option(..., help="output folder"),
    compare: Optional[Path] = typer.Option(None, help="second TPS file (e.g. predicted landmarks) to compare with"),
):
    """Procrustes alignment, centroid size and shape PCA; with --compare, manual vs predicted shape."""
    from .shape_analysis import analyse

    report = analyse(tps, out, compare)
    console.print(f"{report['n_specimens']} specimens, {report['n_landmarks']} landmarks; PC1-3 explain "
                  + ", ".join(f"{v * 100:.1f} %" for v in report["explained_variance"][:3]))
    console.print(f"centroid size: {report['centroid_size']['mean']:.4g} +/- {report['centroid_size']['sd']:.3g} "
                  f"({report['centroid_size_units']})")
    if compare is not None:
        console.print(f"Procrustes distance between the mean shapes: {report['procrustes_distance_between_means']:.5f} "
                      f"(median distance of a specimen to its group mean: "
                      f"{report['median_procrustes_distance_to_mean_within_first']:.5f})")
        if "paired_specimens" in report:
            console.print(f"{report['paired_specimens']} paired specimens: median Procrustes distance "
                          f"{report['paired_procrustes_distance_median']:.5f}, PC1 correlation "
                          f"{report['paired_pc1_correlation']:.3f}, centroid size correlation "
                          f"{report['paired_centroid_size_correlation']:.4f}")
    console.print(f"results: {out / 'shape_analysis.json'}, {out / 'shape_scores.csv'}, {out / 'shape_analysis.png'}")


@app.command()
def check(
    data: Path = typer.Argument(..., help="landmark dataset folder (landmarks.tps, annotations.json or landmarks.csv)"),
    out: Path = typer.Option(..., help="report folder: label_check.json, label_check.csv, label_check.png"),
    threshold: float = typer.Option(3.5, help="robust z-score of the Procrustes distance above which an image is flagged"),
    clean_out: Optional[Path] = typer.Option(None, help="also write a cleaned copy of the dataset here"),
    renumber: bool = typer.Option(True, help="in the cleaned copy, renumber images whose landmark order is off"),
    drop: bool = typer.Option(True, help="in the cleaned copy, leave out the other flagged images"),
    y_origin: str = typer.Option("bottom", help="TPS y axis: bottom (tpsDig) | top"),
):
    """Find likely labelling mistakes: swapped or mirror-numbered landmarks, misplaced or doubled points."""
    from .label_check import run_check

    if y_origin not in ("bottom", "top"):
        raise ShapekitError(f"--y-origin {y_origin!r}: use bottom or top")
    report = run_check(data, out, threshold, clean_out, renumber, drop, y_origin)
    table = Table(title=f"{report['n_flagged']} of {report['n_checked']} images flagged "
                        f"(z > {threshold:g}; {report['n_incomplete']} with missing landmarks not checked)")
    for column in ("image", "issue", "z", "what to check"):
        table.add_column(column)
    for row in report["checks"][:report["n_flagged"]][:40]:
        table.add_row(row["image"], row["issue"], f"{row['shape_z']:.1f}", row["message"])
    console.print(table)
    if report["n_flagged"] > 40:
        console.print(f"... {report['n_flagged'] - 40} more in {out / 'label_check.csv'}")
    if "clean_dataset" in report:
        console.print(f"cleaned copy: {report['clean_dataset']} ({report['n_renumbered']} renumbered, "
                      f"{report['n_dropped']} left out)")
    console.print(f"report: {out / 'label_check.json'}, {out / 'label_check.csv'}"
                  + (f", {report['figure']}" if "figure" in report else ""))


@app.command()
def predict(
    inputs: List[Path] = typer.Argument(..., help="images and/or folders of images"),
    out: Path = typer.Option(..., help="output folder"),
    model: Optional[Path] = typer.Option(None, help="checkpoint (.ckpt) or ONNX export; default: the task's shipped model"),
    task: Optional[str] = typer.Option(None, help="task (checked against the model; picks the shipped model)"),
    fmt: Optional[str] = typer.Option(None, "--format", help="landmarks: tps | coco | csv; segment: png"),
    y_origin: Optional[str] = typer.Option(None, help="TPS y axis: bottom | top (default: as in the training data)"),
    overlays: bool = typer.Option(True, help="write overlay PNGs"),
    engine: str = typer.Option("auto", help=ENGINE_HELP),
    tta: bool = typer.Option(False, "--tta", help=TTA_HELP),
    crop_votes: bool = typer.Option(False, "--crop-votes", help=CROP_VOTES_HELP),
    batch_size: int = typer.Option(8),
    detector: str = typer.Option("mtcnn", help="landmarks3d: face detector, mtcnn | dlib"),
    box: Optional[str] = typer.Option(None, help="landmarks3d: the face box x0,y0,x1,y1 in pixels (no detector)"),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    precision: str = typer.Option("auto", help=PRECISION_HELP),
):
    """Predict on new images; writes predictions and overlays to --out."""
    runtime = _runtime(device, precision)
    task_obj, net, forward = _predictor(model, task, engine, runtime)
    result = task_obj.predict(net, inputs, out, fmt=fmt or task_obj.output_formats[0],
                              runtime=runtime, batch_size=batch_size, overlays=overlays, y_origin=y_origin,
                              console=console, forward=forward, tta=_test_time_views(task_obj, tta, crop_votes),
                              detector=detector,
                              box=box)
    faces = f", {result['n_faces']} faces" if "n_faces" in result else ""
    console.print(f"{result['n_images']} images{faces} -> {result['file']}")
    if result["failed"]:
        err_console.print(f"{len(result['failed'])} images could not be read (listed above)")
        raise typer.Exit(1)


@app.command()
def export(
    model: Path = typer.Option(..., help="checkpoint (.ckpt)"),
    out: Path = typer.Option(..., help="output file, e.g. model.onnx"),
    fmt: str = typer.Option("onnx", "--format", help="onnx"),
    int8: bool = typer.Option(False, "--int8", help="quantise to int8 (onnxruntime static quantisation)"),
    calibration: Optional[List[Path]] = typer.Option(None, help="with --int8: images or folders to calibrate on"),
    calibration_images: int = typer.Option(32, help="with --int8: how many calibration images to use"),
):
    """Export a checkpoint for deployment (ONNX, with the task metadata inside)."""
    from .engine.onnx import export_onnx
    from .tasks.base import read_inputs

    if fmt != "onnx":
        raise ShapekitError(f"--format {fmt!r}: only onnx export is available")
    if int8 and not calibration:
        raise ShapekitError("--int8 needs --calibration IMAGES_OR_DIR (a few dozen images like the ones to predict on)")
    images = None
    if int8:
        from .io.images import list_images

        paths = list_images(calibration)
        step = max(1, len(paths) // max(1, calibration_images))  # spread over the whole folder
        images = read_inputs(paths[::step][:calibration_images], console)[0]
    console.print(f"exported: {export_onnx(model, out, images)}")


@app.command()
def split(
    data: Path = typer.Option(..., help="dataset folder to split"),
    out: Path = typer.Option(..., help="writes OUT/train and OUT/test (images symlinked)"),
    test_fraction: float = typer.Option(0.2),
    seed: int = typer.Option(0),
):
    """Split a dataset into train and test folders without copying images."""
    from .io.landmark_dataset import split_dataset

    train_dir, test_dir = split_dataset(data, out, test_fraction, seed)
    console.print(f"train: {train_dir}\ntest:  {test_dir}")


@app.command("make-multiview")
def make_multiview_command(
    meshes: List[Path] = typer.Argument(..., help="OBJ/GLB/PLY meshes (textured or not)"),
    out: Path = typer.Option(..., help="output folder: one sub-folder per rendered object"),
    views: int = typer.Option(48, help="cameras per object (half at 10, half at 30 degrees elevation)"),
    variants: int = typer.Option(0, help="random shape + texture variations per mesh (synthetic augmentation)"),
    size: int = typer.Option(128, help="rendered image size, pixels"),
    seed: int = typer.Option(0),
    strength: float = typer.Option(1.0, help="how far variations stray from the original"),
    original: bool = typer.Option(True, help="also render the unmodified mesh"),
):
    """Render meshes from many cameras into multi-view training folders (views, masks, cameras.json)."""
    from .multiview_gen import make_multiview

    written = make_multiview(meshes, out, views, variants, size, seed, strength, original, console=console)
    console.print(f"{len(written)} objects -> {out}")


@app.command()
def serve(
    root: Path = typer.Option(Path("."), help="workspace folder: datasets and models under it are served"),
    host: str = typer.Option("127.0.0.1", help="interface to listen on (loopback only by default)"),
    port: int = typer.Option(8000),
    max_upload_mb: float = typer.Option(25.0, help="largest request body (image upload), MB"),
    max_megapixels: float = typer.Option(50.0, help="largest image accepted, megapixels"),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    precision: str = typer.Option("auto", help=PRECISION_HELP),
):
    """Web app: predict, review and correct landmarks / masks / meshes, export TPS, COCO or CSV."""
    from .serve import run
    from .serve.app import VENDOR_HINT, vendor_missing

    if not root.is_dir():
        raise ShapekitError(f"{root}: --root is not a folder")
    if host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(f"warning: listening on {host}: the web app has no login; anyone who reaches "
                          f"{host}:{port} can read and change files under {root.resolve()}")
    if vendor_missing():
        err_console.print(f"warning: {VENDOR_HINT}")
    console.print(f"shapekit web app on http://{'[' + host + ']' if ':' in host else host}:{port}/ "
                  f"(workspace {root.resolve()}; Ctrl-C stops it)")
    run(root, host, port, max_upload_mb=max_upload_mb, max_megapixels=max_megapixels, device=device,
        precision=precision)


@app.command()
def garment(
    photos: List[Path] = typer.Argument(..., help="FRONT [BACK] photo of one garment; or, with --each or folders, "
                                                  "one garment per photo (backs named NAME_back.jpg)"),
    out: Path = typer.Option(..., help="output folder (one subfolder per garment when there are several)"),
    each: bool = typer.Option(False, help="every photo is the front of its own garment"),
    template: Optional[Path] = typer.Option(None, help="your template mesh with UVs (a JSON of UV landmarks beside "
                                                       "it, same name; see `shapekit garment-template`); default: the "
                                                       "built-in garment fitted to the photo's proportions"),
    template_landmarks: Optional[Path] = typer.Option(None, help="the template's landmark JSON, if not beside it"),
    landmark_model: Optional[Path] = typer.Option(None, help="garment landmark checkpoint (default: the shipped one)"),
    segment_model: Optional[Path] = typer.Option(None, help="segment checkpoint (default: the shipped clothing model)"),
    min_confidence: float = typer.Option(0.3, help="refuse photos whose weakest landmark peak is below this"),
    render_size: int = typer.Option(384, help="pixels of the front render"),
):
    """Photo(s) of a garment -> UV texture, textured OBJ/MTL and GLB of a template garment, front render."""
    from .garment.pipeline import GarmentModels, digitise_many, garment_jobs
    from .templates.garment import load_garment_template

    jobs = garment_jobs(photos, each)
    user_template = load_garment_template(template, template_landmarks) if template is not None else None
    models = GarmentModels.load(landmark_model, segment_model)
    summaries, failures = digitise_many(jobs, out, models, user_template, console=console,
                                        min_confidence=min_confidence, render_size=render_size)
    for summary in summaries:
        note = f" ({'; '.join(summary['notes'])})" if summary["notes"] else ""
        console.print(f"{summary['front']} -> {Path(summary['files']['glb']).parent}: coverage "
                      f"{summary['coverage_pct']:.1f} %, back {summary['back_texture']}{note}")
    if failures:
        err_console.print(f"{len(failures)} of {len(jobs)} garments failed (listed above)")
        raise typer.Exit(1)


@app.command("garment-template")
def garment_template(
    out: Path = typer.Option(..., help="output folder: garment-template.obj/.mtl/.png/.glb/.json and a front render"),
    body_width: float = typer.Option(0.50, help="across the hem, metres"),
    body_length: float = typer.Option(0.70, help="collar points to hem"),
    shoulder_width: float = typer.Option(0.46, help="between the shoulder points"),
    neck_width: float = typer.Option(0.18, help="between the collar points"),
    neck_depth: float = typer.Option(0.05, help="front neckline dip"),
    armhole_depth: float = typer.Option(0.22, help="shoulder point to armpit"),
    sleeve_length: float = typer.Option(0.20, help="armhole to cuff; 0 = sleeveless"),
    sleeve_width: float = typer.Option(0.16, help="across the cuff"),
    sleeve_angle: float = typer.Option(40.0, help="degrees below the horizontal (0-80)"),
):
    """Export the built-in parametric garment (chequered panels, landmarks marked) for viewing or editing."""
    from .garment.render import render_front
    from .io.atomic import save_image
    from .templates.garment import GarmentProportions, build_garment

    proportions = GarmentProportions(body_width=body_width, body_length=body_length, shoulder_width=shoulder_width,
                                     neck_width=neck_width, neck_depth=neck_depth, armhole_depth=armhole_depth,
                                     sleeve_length=sleeve_length, sleeve_width=sleeve_width, sleeve_angle=sleeve_angle)
    built = build_garment(proportions)
    texture = built.chequer()
    paths = built.export(out, texture=texture)
    save_image(Path(out) / "garment-template-front.png",
               render_front(built.vertices, built.faces, built.face_uvs, texture))
    console.print(f"garment template -> {paths['obj']} (+ .mtl .png .glb .json, front render)")


@app.command()
def tasks():
    """List tasks, encoders and models."""
    from .models import available_encoders
    from .tasks import available_tasks

    console.print("tasks:    " + ", ".join(available_tasks()))
    console.print("encoders: " + ", ".join(available_encoders()))


@app.command()
def info(model: Path = typer.Argument(..., help="checkpoint (.ckpt)")):
    """Show what a checkpoint holds: task, landmarks, preprocessing, training settings."""
    from .engine import read_checkpoint

    meta = read_checkpoint(model)["shapekit"]
    summary = {"task": meta["task"], "version": meta["version"], "config": meta["config"],
               "meta": {k: v for k, v in meta["meta"].items() if not k.endswith("_ids")}}
    console.print_json(json.dumps(summary, default=str))


@app.command()
def demo(
    out: Path = typer.Option(Path("shapekit-demo"), help="folder for the demo's data, model and report"),
    minutes: float = typer.Option(1.0, help="training budget"),
):
    """Build a small landmark dataset, train on it, evaluate, predict, and write a report."""
    from .demo import run_demo

    report = run_demo(out, minutes=minutes, console=console)
    console.print(f"\n[bold green]report:[/] {report}")


def main(argv: list[str] | None = None) -> None:
    try:
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)  # click returns typer.Exit codes when not in standalone mode
    except ShapekitError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
