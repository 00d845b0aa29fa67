"""Garment digitisation benchmark on garments-fld images the shipped landmark model never trained on.

    python bench/garment.py

* Landmarks: per-landmark error (px and % of the long side) of the shipped garment model next to dlib's shape
  predictor (ml-morph's recipe, bench/landmarks.py) trained on the same training split.
* Digitisation: `shapekit garment` on every held-out photo; coverage = % of the garment mask's pixels that land
  inside the template's front panel. The front renders beside the photos go to bench/figures/garment/ (git-ignored:
  they derive from the shared photos), with a contact sheet of all of them; bench/results/garment.json holds
  numbers only.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, WORK, console, garment_split, print_table, save_results  # noqa: E402
from landmarks import dlib_run  # noqa: E402  (bench/landmarks.py)

from shapekit.errors import ShapekitError  # noqa: E402
from shapekit.garment.pipeline import GarmentModels, digitise  # noqa: E402
from shapekit.io.landmark_dataset import load_landmark_set  # noqa: E402

FIGURES = REPO / "bench" / "figures" / "garment"


def contact_sheet(paths: list[Path], target: Path, columns: int = 2) -> None:
    import cv2

    from shapekit.io.atomic import save_image
    from shapekit.io.images import read_image

    tiles = [read_image(p) for p in paths]
    width = max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0)), constant_values=255) for t in tiles]
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.concatenate(tiles[i:i + columns], 1) for i in range(0, len(tiles), columns)]
    sheet = np.concatenate(rows, 0)
    save_image(target, cv2.resize(sheet, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))


def main() -> None:
    os.environ.setdefault("SHAPEKIT_NO_PROGRESS", "1")
    train_dir, test_dir = garment_split()
    models = GarmentModels.load()
    task, model = models.landmarks
    start = time.time()
    report = task.evaluate(model, test_dir, runtime=models.runtime, normalisation="long_side")
    shipped_seconds = time.time() - start
    dlib = dlib_run(train_dir, test_dir, None)
    records = load_landmark_set(test_dir).records
    long_side = float(np.mean([r.long_side for r in records]))  # garments-fld: every photo is 512 x 384
    rows, per_landmark = [], []
    for k, row in enumerate(report["per_landmark"]):
        dlib_px = dlib["per_landmark_mean_px"][k]
        rows.append([row["name"], row["mean_px"], row["mean_pct_long_side"], dlib_px, dlib_px / long_side * 100])
        per_landmark.append({"name": row["name"], "shipped_mean_px": row["mean_px"],
                             "shipped_mean_pct_long_side": row["mean_pct_long_side"], "dlib_mean_px": dlib_px,
                             "dlib_mean_pct_long_side": dlib_px / long_side * 100})
    rows.append(["all", report["mean_px"], report["mean_pct_long_side"], dlib["mean_px"], dlib["mean_pct_long_side"]])
    print_table(f"garments-fld, {len(records)} held-out photos: landmark error",
                ["landmark", "shipped px", "shipped % long side", "dlib px", "dlib % long side"], rows)

    digitised, renders = [], []
    for record in records:
        out = WORK / "garment" / "digitised" / record.image_path.stem
        begin = time.time()
        try:
            summary = digitise(record.image_path, None, out, models)
        except ShapekitError as exc:
            console.print(f"[red]failed[/] {exc}")
            digitised.append({"image": record.image_path.name, "error": str(exc)})
            continue
        seconds = time.time() - begin
        render = FIGURES / f"{record.image_path.stem}_render.png"
        render.parent.mkdir(parents=True, exist_ok=True)
        os.replace(summary["files"]["render"], render)
        renders.append(render)
        digitised.append({"image": record.image_path.name, "coverage_pct": summary["coverage_pct"],
                          "min_confidence": min(summary["confidence"]), "seconds": round(seconds, 2)})
    ok = [d for d in digitised if "coverage_pct" in d]
    print_table("shapekit garment on the held-out photos (coverage: % of garment-mask pixels inside the template panels)",
                ["image", "coverage %", "weakest landmark peak", "seconds"],
                [[d["image"], d.get("coverage_pct"), d.get("min_confidence"), d.get("seconds")] for d in digitised])
    coverage = [d["coverage_pct"] for d in ok]
    console.print(f"coverage: mean {np.mean(coverage):.1f} %, min {np.min(coverage):.1f} %; "
                  f"{len(ok)}/{len(digitised)} photos digitised; renders in {FIGURES}")
    if renders:
        contact_sheet(renders, FIGURES / "contact_sheet.png")
    save_results("garment", {
        "data": "garments-fld, sorted names, every 5th from the 3rd held out",
        "n_train": len(load_landmark_set(train_dir)), "n_heldout": len(records),
        "landmarks": {"shipped": {"mean_px": report["mean_px"], "median_px": report["median_px"],
                                  "mean_pct_long_side": report["mean_pct_long_side"],
                                  "evaluate_seconds": shipped_seconds},
                      "dlib": {k: dlib[k] for k in ("mean_px", "median_px", "mean_pct_long_side", "train_minutes")},
                      "per_landmark": per_landmark},
        "digitisation": {"coverage_mean_pct": float(np.mean(coverage)), "coverage_min_pct": float(np.min(coverage)),
                         "n_digitised": len(ok), "per_image": digitised},
    })


if __name__ == "__main__":
    main()
