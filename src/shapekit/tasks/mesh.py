"""Single-view textured mesh reconstruction (shoe paper), trained from multi-view images and
silhouettes only, through shapekit's differentiable soft rasteriser.

Input: one view per object (the side view by default), randomly scaled and shifted during training so
the network does not depend on where the object sits in the frame. Output: template vertex offsets and
a texture sampled from the input through a predicted flow map. Supervision: silhouettes and images of
the object's other views, rendered from their cameras.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.utils.data import Dataset

from ..engine.runtime import Runtime
from ..errors import InputError, ShapekitError
from ..io.atomic import save_image, write_json
from ..io.images import read_image
from ..io.landmark_dataset import split_indices
from ..io.meshes import save_textured_mesh
from ..io.multiview import MultiViewObject, load_multiview_set
from ..losses.mesh import (PerceptualLoss, flatten_loss, flow_loss, image_l2_loss, laplacian_loss,
                           normal_consistency_loss, silhouette_iou_loss)
from ..models import create_model
from ..progress import track
from ..render import MeshRenderer, PerspectiveCameras, RasterSettings, orbit
from ..templates import Template, adjacent_face_pairs, face_uvs, icosphere, subdivide, vertex_neighbours
from ..transforms import Letterbox
from .base import ASSETS, Task, read_inputs, register_task

WHITE = 255


class LossWeights(BaseModel):
    model_config = ConfigDict(extra="forbid")
    silhouette: float = 1.0
    image: float = 1.0
    perceptual: float = 0.05
    laplacian: float = 1.0
    flatten: float = 2e-4
    normal: float = 0.02
    flow: float = 0.2


class MeshOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: str = Field("icosphere", description="icosphere, or a mesh file with the user's base shape")
    template_level: int = Field(3, ge=1, le=5, description="ico-sphere subdivisions (3: 642 vertices)")
    template_radii: tuple[float, float, float] = Field((0.9, 0.5, 0.5), description="ellipsoid radii x, y, z")
    uv_layout: Literal["spherical", "islands"] = Field("spherical", description="spherical: seamless unwrap "
                                                       "without islands; islands: six cube charts (for comparison)")
    refine: bool = Field(False, description="coarse-to-fine: subdivide the --init-from checkpoint's template once")
    render_size: int = Field(64, ge=16, description="training render resolution")
    texture_size: tuple[int, int] = Field((64, 128), description="texture height, width")
    views_per_step: int = Field(6, ge=1, description="supervising views rendered per object and step")
    input_view: int | None = Field(None, description="index of the input view; default: the side view")
    # Sharp (0.05 px^2): a blurrier soft silhouette is fitted by a mesh that is too small once rendered hard.
    sigma: float = Field(0.05, gt=0, description="soft-rasteriser blur, squared pixels")
    gamma: float = Field(1e-3, gt=0, description="soft-rasteriser depth temperature")
    scale_jitter: float = Field(0.15, ge=0, description="input view random scale (invariance)")
    shift_jitter: float = Field(0.08, ge=0, description="input view random shift, fraction of its size")
    max_offset: float = Field(0.6, gt=0)
    aligned_steps: int = Field(1, ge=1, le=4, description="aligned features: how often the vertices read the "
                                                           "input view's features and move")
    shape_features: Literal["pooled", "aligned"] = Field(
        "aligned", description="what the shape decoder sees: the pooled bottleneck only, or also, per vertex, "
                               "the decoder's features where the template vertex projects in the input view")
    weights: LossWeights = Field(default_factory=LossWeights)


def side_view(obj: MultiViewObject) -> int:
    """The view closest to azimuth 0 at the lowest elevation (a side photo in the shoe data's convention)."""
    if np.isnan(obj.azimuth).all():
        return 0
    azimuth = np.abs((obj.azimuth + 180) % 360 - 180)
    return int(np.lexsort((azimuth, np.round(obj.elevation, 3)))[0])


def letterbox_white(image: np.ndarray, size: int) -> np.ndarray:
    box = Letterbox.fit(image.shape[1], image.shape[0], size)
    return box.apply_image(image, WHITE)


class MultiViewSamples(Dataset):
    """Per object: the input view (input size) and all views + masks at render size (None: as stored),
    cached in memory."""

    def __init__(self, objects: list[MultiViewObject], input_size: int, render_size: int | None, views_per_step: int,
                 input_view: int | None, scale_jitter: float = 0.0, shift_jitter: float = 0.0, train: bool = True):
        self.input_size, self.views_per_step, self.train = input_size, views_per_step, train
        self.scale_jitter, self.shift_jitter = scale_jitter, shift_jitter
        self.items = []
        for obj in track(objects, "loading multi-view objects"):
            index = side_view(obj) if input_view is None else input_view
            if not 0 <= index < len(obj):
                raise InputError(obj.folder, f"input view {index} does not exist ({len(obj)} views)")
            full_image = read_image(obj.files[index])
            full_mask = read_image(obj.masks[index])[..., 0]
            views, masks = obj.load(render_size)
            self.items.append({"input": letterbox_white(full_image, input_size),
                               "input_mask": Letterbox.fit(full_mask.shape[1], full_mask.shape[0], input_size)
                               .apply_image(full_mask, 0), "views": views, "masks": masks,
                               "cam2world": obj.cam2world.astype(np.float32), "yfov": obj.yfov, "input_index": index,
                               "name": obj.name})

    def __len__(self) -> int:
        return len(self.items)

    def _jitter(self, image: np.ndarray, mask: np.ndarray):
        scale = 1 + np.random.uniform(-self.scale_jitter, self.scale_jitter)
        shift = np.random.uniform(-self.shift_jitter, self.shift_jitter, 2) * self.input_size
        centre = self.input_size / 2 - 0.5
        matrix = np.array([[scale, 0, centre * (1 - scale) + shift[0]], [0, scale, centre * (1 - scale) + shift[1]]])
        size = (self.input_size, self.input_size)
        return (cv2.warpAffine(image, matrix, size, borderValue=(WHITE, WHITE, WHITE)),
                cv2.warpAffine(mask, matrix, size, borderValue=0))

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        image, mask = item["input"], item["input_mask"]
        count = len(item["views"])
        if self.train:
            if self.scale_jitter or self.shift_jitter:
                image, mask = self._jitter(image, mask)
            chosen = np.random.choice(count, min(self.views_per_step, count), replace=False)
        else:  # evenly spread views other than the input one, the same every time
            others = [k for k in range(count) if k != item["input_index"]]
            chosen = np.array(others)[np.linspace(0, len(others) - 1, min(self.views_per_step, len(others))).astype(int)]
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255,
            "input_mask": torch.from_numpy(np.ascontiguousarray(mask)).float() / 255,
            "views": torch.from_numpy(item["views"][chosen]).float() / 255,
            "masks": torch.from_numpy(item["masks"][chosen]).float(),
            "cam2world": torch.from_numpy(item["cam2world"][chosen]),
            "yfov": torch.tensor(item["yfov"], dtype=torch.float32),
            "index": torch.tensor(index),
        }


def chamfer_distance(pred_vertices: np.ndarray, pred_faces: np.ndarray, true_vertices: np.ndarray,
                     true_faces: np.ndarray, samples: int = 5000, seed: int = 0) -> float:
    """Symmetric mean nearest-neighbour distance between surface samples, after aligning the prediction's
    centroid and RMS radius to the truth's (scale alignment)."""
    import trimesh
    from scipy.spatial import cKDTree

    def sample(vertices, faces):
        mesh = trimesh.Trimesh(vertices, faces, process=False)
        points, _ = trimesh.sample.sample_surface(mesh, samples, seed=seed)
        return np.asarray(points)

    a, b = sample(pred_vertices, pred_faces), sample(true_vertices, true_faces)
    a = (a - a.mean(0)) * (np.sqrt(((b - b.mean(0)) ** 2).sum(1).mean()) / np.sqrt(((a - a.mean(0)) ** 2).sum(1).mean()))
    a = a + b.mean(0)
    return float((cKDTree(b).query(a)[0].mean() + cKDTree(a).query(b)[0].mean()) / 2)


@register_task
class MeshTask(Task):
    name = "mesh"
    Options = MeshOptions
    monitor = "val/iou"
    monitor_mode = "max"
    output_formats = ("obj",)
    default_lr = 3e-4
    default_model = ASSETS / "shoe-mesh.ckpt"
    onnx_inference = False  # prediction renders and textures through PyTorch code, not one network pass

    def __init__(self, config, meta=None):
        super().__init__(config, meta)
        self._template: Template | None = None
        self._perceptual: PerceptualLoss | None = None

    # --- template -------------------------------------------------------------------------------
    @property
    def template(self) -> Template:
        if self._template is None:
            if "template" in self.meta:
                t = self.meta["template"]
                vertices, faces = np.asarray(t["vertices"], np.float32), np.asarray(t["faces"], np.int64)
            else:
                built = self._build_template()
                vertices, faces = built.vertices.numpy(), built.faces.numpy()
                self.meta["template"] = {"vertices": vertices.tolist(), "faces": faces.tolist()}
            uvs = face_uvs(vertices, faces, self.options.uv_layout)
            self._template = Template(torch.tensor(vertices), torch.tensor(faces), torch.tensor(uvs, dtype=torch.float32))
            self._neighbours = vertex_neighbours(self._template.faces, self._template.num_vertices)
            self._pairs = adjacent_face_pairs(self._template.faces)
        return self._template

    def _build_template(self) -> Template:
        opts = self.options
        if opts.refine:
            if self.config.init_from is None:
                raise ShapekitError("--opt refine=true subdivides the --init-from checkpoint's template: give --init-from")
            from ..engine.checkpoint import read_checkpoint

            source = read_checkpoint(self.config.init_from)["shapekit"]["meta"]["template"]
            vertices, faces = np.asarray(source["vertices"], np.float32), np.asarray(source["faces"], np.int64)
            coarse = Template(torch.tensor(vertices), torch.tensor(faces), torch.zeros(len(faces), 3, 2))
            refined, parents = subdivide(coarse)
            self.meta["template_parents"] = parents.tolist()
            return refined
        if opts.template == "icosphere":
            return icosphere(opts.template_level, opts.template_radii)
        from ..templates import template_from_mesh

        return template_from_mesh(opts.template)

    # --- training -------------------------------------------------------------------------------
    def setup(self):
        opts = self.options
        objects = load_multiview_set(Path(self.config.data))
        if self.config.val_fraction > 0 and len(objects) >= 4:
            n_val = max(1, round(len(objects) * self.config.val_fraction))
            train_idx, val_idx = split_indices(len(objects), n_val / len(objects), self.config.seed)
        else:
            train_idx, val_idx = list(range(len(objects))), []
        size = self.config.input_size
        self.meta.update({"input_shape": [size, size], "render_size": opts.render_size,
                          "shape_features": opts.shape_features, "aligned_steps": opts.aligned_steps,
                          "input_camera": _input_camera(objects[train_idx[0]], opts.input_view),
                          "train_ids": [objects[i].name for i in train_idx], "val_ids": [objects[i].name for i in val_idx]})
        _ = self.template
        train = MultiViewSamples([objects[i] for i in train_idx], size, opts.render_size, opts.views_per_step,
                                 opts.input_view, opts.scale_jitter, opts.shift_jitter, train=True)
        val = MultiViewSamples([objects[i] for i in val_idx], size, opts.render_size, 8, opts.input_view,
                               train=False) if val_idx else None
        self._val_samples = val
        return train, val

    def default_epochs(self, n_train: int) -> int:
        return int(np.clip(round(6000 / max(1, n_train)), 20, 400))

    def build_model(self, pretrained: bool = True):
        return create_model("mesh_net", num_vertices=self.template.num_vertices,
                            texture_size=tuple(self.options.texture_size), encoder=self.config.encoder,
                            encoder_weights=self.config.encoder_weights if pretrained else None,
                            max_offset=self.options.max_offset, **self._shape_inputs())

    def _shape_inputs(self) -> dict[str, Any]:
        # A checkpoint written before the option existed (it has a template but no choice) used pooled features.
        kind = self.meta.get("shape_features", "pooled" if "template" in self.meta else self.options.shape_features)
        if kind == "pooled":
            return {"shape_features": kind}
        camera = self.meta["input_camera"]
        return {"shape_features": kind, "template_vertices": self.template.vertices,
                "input_camera": (camera["cam2world"], camera["yfov"]),
                "aligned_steps": self.meta.get("aligned_steps", 1)}

    def adapt_state_dict(self, state, source_meta, model):
        """Coarse-to-fine: grow the shape head for the subdivided template (a midpoint's offset starts as
        the mean of its edge's end points' offsets)."""
        parents = self.meta.get("template_parents")
        if parents is None:
            return state
        parents = torch.tensor(parents)
        state = dict(state)
        for key in ("shape_head.4.weight", "shape_head.4.bias"):
            old = state[key].view(-1, 3, *state[key].shape[1:])
            state[key] = old[parents].mean(1).reshape(-1, *state[key].shape[1:])
        return state

    @property
    def wrap_u(self) -> bool:
        return self.options.uv_layout == "spherical"

    def renderer(self, size: int | None = None, sigma: float | None = None) -> MeshRenderer:
        return MeshRenderer(RasterSettings(image_size=size or self.options.render_size,
                                           sigma=sigma or self.options.sigma, gamma=self.options.gamma))

    def vertices(self, offsets: torch.Tensor) -> torch.Tensor:
        return self.template.vertices.to(offsets.device) + offsets.float()

    def _render_views(self, out, batch, renderer: MeshRenderer):
        verts = self.vertices(out["offsets"])
        batch_size, count = batch["cam2world"].shape[:2]
        verts_k = verts[:, None].expand(-1, count, -1, -1).reshape(batch_size * count, -1, 3)
        cameras = PerspectiveCameras(batch["cam2world"].reshape(-1, 4, 4).float(),
                                     batch["yfov"].float().repeat_interleave(count), renderer.settings.image_size)
        index = torch.arange(batch_size, device=verts.device).repeat_interleave(count)
        image, alpha = renderer.render(verts_k, self.template.faces.to(verts.device), cameras,
                                       texture=out["texture"].float(), face_uvs=self.template.face_uvs.to(verts.device),
                                       texture_index=index, wrap_u=self.wrap_u)
        return verts, image, alpha

    def _losses(self, out, batch, verts, image, alpha) -> dict[str, torch.Tensor]:
        views = batch["views"].flatten(0, 1).float()
        masks = batch["masks"].flatten(0, 1).float()
        weights = self.options.weights
        losses = {"silhouette": silhouette_iou_loss(alpha, masks), "image": image_l2_loss(image, views),
                  "laplacian": laplacian_loss(verts, self._neighbours.to(verts.device)),
                  "flatten": flatten_loss(verts, self._pairs.to(verts.device)),
                  "normal": normal_consistency_loss(verts, self._pairs.to(verts.device)),
                  "flow": flow_loss(out["flow"], batch["input_mask"])}
        if weights.perceptual > 0:
            if self._perceptual is None:
                self._perceptual = PerceptualLoss().to(image.device)
            losses["perceptual"] = self._perceptual(image, views)
        return losses

    def _total(self, losses):
        weights = self.options.weights
        return sum(getattr(weights, k) * v for k, v in losses.items())

    def _render_and_score(self, model, batch):
        out = model(batch["image"])
        # The network may run under bf16 autocast; rasterisation and the losses need fp32.
        with torch.autocast(batch["image"].device.type, enabled=False):
            out = {k: v.float() for k, v in out.items()}
            verts, image, alpha = self._render_views(out, batch, self.renderer())
            losses = self._losses(out, batch, verts, image, alpha)
        return verts, image, alpha, losses

    def training_step(self, model, batch):
        _, _, _, losses = self._render_and_score(model, batch)
        return self._total(losses), {k: float(v.detach()) for k, v in losses.items()}

    def validation_step(self, model, batch):
        verts, image, alpha, losses = self._render_and_score(model, batch)
        iou, psnr = view_scores(alpha, image, batch["masks"].flatten(0, 1), batch["views"].flatten(0, 1))
        return self._total(losses), {"iou": iou, "psnr": psnr}

    def validation_metrics(self, outputs):
        return {"val/iou": float(outputs["iou"].mean()), "val/psnr": float(outputs["psnr"].mean())}

    def epoch_plots(self, model, out_dir, device):
        chosen = self.first_val_images(3, device)
        if chosen is None:
            return
        from ..plots import plot_mesh_predictions

        (picks, images), samples = chosen, self._val_samples
        out = model(images)
        strips = [self.turntable(out["offsets"][k:k + 1], out["texture"][k:k + 1], size=96) for k in range(len(picks))]
        plot_mesh_predictions([samples.items[i]["input"] for i in picks], strips,
                              [samples.items[i]["name"] for i in picks], Path(out_dir) / "val_meshes.png")

    # --- inference ------------------------------------------------------------------------------
    def turntable(self, offsets: torch.Tensor, texture: torch.Tensor, views: int = 8, size: int = 128,
                  elevation: float = 15.0) -> np.ndarray:
        """A strip of renders of one predicted textured mesh from cameras circling it."""
        cam2world, _ = orbit(views, 2.6, (elevation,))
        renderer = self.renderer(size, sigma=0.05)
        verts = self.vertices(offsets.detach().cpu())
        with torch.no_grad():
            image, _ = renderer.render(verts.expand(views, -1, -1), self.template.faces,
                                       PerspectiveCameras(cam2world, math.radians(35), size),
                                       texture=texture.detach().float().cpu(), face_uvs=self.template.face_uvs,
                                       texture_index=torch.zeros(views, dtype=torch.long), wrap_u=self.wrap_u)
        return (image.clamp(0, 1).numpy() * 255).astype(np.uint8).transpose(1, 0, 2, 3).reshape(size, -1, 3)

    def infer(self, model, images: list[np.ndarray], runtime: Runtime) -> list[dict[str, torch.Tensor]]:
        model = runtime.prepare_model(model)
        results = []
        for image in images:
            tensor = torch.from_numpy(letterbox_white(image, self.input_shape[0])).permute(2, 0, 1).float()[None] / 255
            with torch.inference_mode():  # fp32: geometry and texture are exported as is
                out = model(tensor.to(runtime.device))
            results.append({k: v.float().cpu() for k, v in out.items()})
        return results

    def predict(self, model, inputs, out, runtime: Runtime | None = None, console=None, fmt: str = "obj", **_):
        runtime = runtime or Runtime.create()
        out = Path(out)
        images, kept, failed = read_inputs(inputs, console)
        for path, image, result in track(list(zip(kept, images, self.infer(model, images, runtime))), "writing meshes"):
            folder = out / path.stem
            vertices = self.vertices(result["offsets"])[0].numpy()
            texture = (result["texture"][0].clamp(0, 1).numpy() * 255).astype(np.uint8)
            save_textured_mesh(folder, path.stem, vertices, self.template.faces.numpy(),
                               self.template.face_uvs.numpy(), texture)
            save_image(folder / "turntable.png", self.turntable(result["offsets"], result["texture"]))
        return {"n_images": len(kept), "file": str(out), "failed": failed, "images": [str(p) for p in kept]}

    # --- web app --------------------------------------------------------------------------------
    web_kind = "mesh"

    def predict_image(self, model, image, runtime, **_):
        import base64

        from ..io.meshes import textured_glb

        result = self.infer(model, [image], runtime)[0]
        vertices = self.vertices(result["offsets"])[0].numpy()
        texture = (result["texture"][0].clamp(0, 1).numpy() * 255).astype(np.uint8)
        faces = self.template.faces.numpy()
        glb = textured_glb(vertices, faces, self.template.face_uvs.numpy(), texture)
        return {"kind": self.web_kind, "glb": base64.b64encode(glb).decode("ascii"), "num_vertices": len(vertices),
                "num_faces": len(faces), "score": None}

    def score_object(self, model, obj: MultiViewObject, runtime: Runtime, image: np.ndarray | None = None
                     ) -> tuple[dict[str, float], torch.Tensor]:
        """Silhouette IoU and PSNR of the mesh predicted from ``obj``'s input view (or ``image``), rendered
        from every other view. Views are scored at their native resolution against binarised masks: IoU
        between a hard render and a downsampled, anti-aliased mask would be capped below 1 by the fractional
        boundary pixels even for a perfect mesh. Returns the scores and the vertices."""
        samples = MultiViewSamples([obj], self.input_shape[0], None, len(obj), self.options.input_view, train=False)
        batch = {k: v[None] for k, v in samples[0].items()}
        image = samples.items[0]["input"] if image is None else image
        result = self.infer(model, [image], runtime)[0]
        renderer = self.renderer(batch["views"].shape[2], sigma=0.05)
        with torch.no_grad():
            verts, rendered, alpha = self._render_views(result, batch, renderer)
        iou, psnr = view_scores(alpha, rendered, batch["masks"][0], batch["views"][0])
        return {"iou": float(iou.mean()), "psnr": float(psnr.mean())}, verts[0]

    def evaluate(self, model, data, runtime: Runtime | None = None, out_dir: Path | None = None, **_):
        from ..io.meshes import load_mesh

        runtime = runtime or Runtime.create()
        per_object = []
        for obj in track(load_multiview_set(Path(data)), "evaluating objects"):
            scores, verts = self.score_object(model, obj, runtime)
            entry = {"object": obj.name, **scores}
            truth = _ground_truth_mesh(obj)
            if truth is not None:
                true_mesh = load_mesh(truth[0], allow_nonmanifold=True)
                true_vertices = truth[1](true_mesh.vertices)
                entry["chamfer"] = chamfer_distance(verts.numpy(), self.template.faces.numpy(), true_vertices,
                                                    true_mesh.faces)
            per_object.append(entry)
        report = {"n_objects": len(per_object), "iou_mean": float(np.mean([e["iou"] for e in per_object])),
                  "psnr_mean": float(np.mean([e["psnr"] for e in per_object])), "objects": per_object, "data": str(data),
                  "scored_at": "each view's native resolution, binary masks, all views but the input"}
        chamfers = [e["chamfer"] for e in per_object if "chamfer" in e]
        if chamfers:
            report["chamfer_mean"] = float(np.mean(chamfers))
        if out_dir is not None:
            write_json(Path(out_dir) / "evaluation.json", report)
        return report

    def print_report(self, report, console) -> None:
        from rich.table import Table

        table = Table(title=f"{report['n_objects']} objects, {report['data']} (views other than the input)")
        for col in ("object", "silhouette IoU", "PSNR dB", "Chamfer"):
            table.add_column(col, justify="right")
        for e in report["objects"]:
            table.add_row(e["object"], f"{e['iou']:.3f}", f"{e['psnr']:.2f}",
                          f"{e['chamfer']:.4f}" if "chamfer" in e else "-")
        table.add_row("[bold]mean", f"{report['iou_mean']:.3f}", f"{report['psnr_mean']:.2f}",
                      f"{report['chamfer_mean']:.4f}" if "chamfer_mean" in report else "-")
        console.print(table)


def view_scores(alpha: torch.Tensor, rendered: torch.Tensor, masks: torch.Tensor, views: torch.Tensor):
    """Per view: IoU of the hard silhouette (alpha > 0.5) with the binarised mask, and PSNR of the image."""
    hard, masks = (alpha > 0.5).float(), (masks > 0.5).float()
    iou = (hard * masks).sum((1, 2)) / (hard + masks - hard * masks).sum((1, 2)).clamp_min(1)
    mse = ((rendered - views) ** 2).mean((1, 2, 3)).clamp_min(1e-10)
    return iou, -10 * torch.log10(mse)


def _input_camera(obj: MultiViewObject, input_view: int | None) -> dict[str, Any]:
    """The camera of the input view (a photo at predict time is assumed to be taken like it)."""
    index = side_view(obj) if input_view is None else input_view
    return {"cam2world": obj.cam2world[index].tolist(), "yfov": float(obj.yfov)}


def _ground_truth_mesh(obj: MultiViewObject):
    """(path, transform) of the object's true mesh in the cameras' frame, when the folder has one."""
    if (obj.folder / "mesh.obj").is_file():
        return obj.folder / "mesh.obj", lambda v: v
    extra = obj.extra
    if "mesh" in extra and "norm_center" in extra and "norm_scale" in extra:
        path = obj.folder.parent / "mesh" / extra["mesh"]
        if path.is_file():
            centre, scale = np.asarray(extra["norm_center"]), float(extra["norm_scale"])
            rotate = extra.get("up_axis_of_file", "y") == "z"

            def transform(v, centre=centre, scale=scale, rotate=rotate):
                v = (v - centre) * scale
                return v @ np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]]).T if rotate else v
            return path, transform
    return None
