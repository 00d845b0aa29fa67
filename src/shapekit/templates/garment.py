"""The parametric upper-body garment template of ``shapekit garment``, and users' own garment templates.

A garment template is a triangle mesh whose UV map holds a front and a back panel. Each panel carries the
garments-fld landmark layout (left/right collar, sleeve end, hem corner; left = the garment's own left, which is
image right on a front view) and its outline, a closed polyline through the six landmarks in the order
right hem -> left hem -> left sleeve -> left collar -> right collar -> right sleeve. ``shapekit garment`` warps a
photo onto a panel with correspondences along that outline.

The built-in garment is a flat pattern (front and back panels of the same outline, sleeves at an angle, a neck
curve) puffed into a pillow-like volume: both panels meet along the outline and bulge out towards the middle.
Both panels are laid out in the UV map as seen from the front (garment left at larger u), front in the left half,
back in the right half, so a front texture copied to the back half is the front mirrored onto the back.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from ..errors import InputError, ShapekitError

LANDMARK_NAMES = ("left_collar", "right_collar", "left_sleeve", "right_sleeve", "left_hem", "right_hem")
# Outline order of the landmarks (indices into LANDMARK_NAMES): around the garment, hem first.
OUTLINE_ORDER = (5, 4, 2, 0, 1, 3)
PANELS = ("front", "back")


@dataclass
class GarmentProportions:
    """Sizes in metres (y up, hem at y = 0); angles in degrees."""

    body_width: float = 0.50  # across the hem (and the chest: straight sides)
    body_length: float = 0.70  # from the collar points down to the hem
    shoulder_width: float = 0.46  # between the shoulder points (narrow for tank tops)
    neck_width: float = 0.18  # between the collar points
    neck_depth: float = 0.05  # front neckline dip below the collar points
    armhole_depth: float = 0.22  # shoulder point down to the armpit
    sleeve_length: float = 0.20  # armhole to cuff along the sleeve; 0 = sleeveless
    sleeve_width: float = 0.16  # across the cuff
    sleeve_angle: float = 40.0  # below the horizontal (90 = hanging straight down)
    thickness: float = 0.08  # how far each panel bulges out in the middle

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ShapekitError(f"garment proportion {f.name}={value!r}: not a number")
        positive = ("body_width", "body_length", "shoulder_width", "neck_width", "armhole_depth", "sleeve_width")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ShapekitError(f"garment proportion {name}={getattr(self, name)}: must be > 0")
        if self.sleeve_length < 0 or self.neck_depth < 0 or self.thickness < 0:
            raise ShapekitError("garment proportions sleeve_length, neck_depth and thickness must be >= 0")
        if not self.neck_width < self.shoulder_width:
            raise ShapekitError(f"garment neck_width {self.neck_width} must be smaller than shoulder_width "
                                f"{self.shoulder_width}")
        if not 0 <= self.sleeve_angle <= 80:
            raise ShapekitError(f"garment sleeve_angle {self.sleeve_angle}: choose 0..80 degrees below the horizontal "
                                "(steeper sleeves would overlap the body in the flat pattern)")
        if not self.armhole_depth < 0.8 * self.body_length:
            raise ShapekitError(f"garment armhole_depth {self.armhole_depth} must be under 0.8 x body_length")

    @classmethod
    def from_landmarks(cls, points: np.ndarray, length: float = 0.70) -> "GarmentProportions":
        """Proportions of the garment in a front photo from its six landmarks (pixels, y down, LANDMARK_NAMES
        order), scaled so that the collar-to-hem length is ``length`` metres. Left and right are averaged."""
        points = np.asarray(points, float)
        collar_l, collar_r, sleeve_l, sleeve_r, hem_l, hem_r = points
        length_px = max(1e-6, (hem_l[1] + hem_r[1] - collar_l[1] - collar_r[1]) / 2)
        scale = length / length_px
        centre_x = (collar_l[0] + collar_r[0] + hem_l[0] + hem_r[0]) / 4
        top_y = (collar_l[1] + collar_r[1]) / 2
        body_width = float(np.clip(abs(hem_l[0] - hem_r[0]) * scale, 0.2 * length, 1.5 * length))
        neck_width = float(np.clip(abs(collar_l[0] - collar_r[0]) * scale, 0.1 * length, 0.9 * body_width))
        # The sleeve landmark, mirrored onto the garment's left half: (x from the centre, y from the hem).
        sleeve = np.array([(abs(sleeve_l[0] - centre_x) + abs(sleeve_r[0] - centre_x)) / 2 * scale,
                           length - ((sleeve_l[1] + sleeve_r[1]) / 2 - top_y) * scale])
        base = cls(body_width=body_width, body_length=length, neck_width=neck_width,
                   shoulder_width=max(0.95 * body_width, neck_width * 1.25))
        shoulder, armpit = base.armhole()
        reach = sleeve - (shoulder + armpit) / 2
        if sleeve[0] < body_width / 2 * 1.05 and sleeve[1] > length * 0.45:
            # Sleeve landmark on the body's side (tank tops: annotated at the armhole): sleeveless, with the
            # armhole put where the landmark is.
            half_shoulder = float(np.clip(2 * sleeve[0] - body_width / 2, neck_width / 2 * 1.15, body_width / 2 * 0.95))
            drop = base.shoulder_drop
            armhole_depth = float(np.clip(2 * (length - drop - sleeve[1]) + drop, 0.12 * length, 0.6 * length))
            return cls(body_width=body_width, body_length=length, neck_width=neck_width,
                       shoulder_width=2 * half_shoulder, armhole_depth=armhole_depth, sleeve_length=0.0)
        angle = float(np.clip(np.degrees(np.arctan2(-reach[1], max(reach[0], 1e-6))), 10.0, 80.0))
        sleeve_length = float(np.clip(np.linalg.norm(reach), 0.05 * length, 1.2 * length))
        return cls(body_width=body_width, body_length=length, neck_width=neck_width,
                   shoulder_width=base.shoulder_width, sleeve_length=sleeve_length, sleeve_angle=angle)

    @property
    def shoulder_drop(self) -> float:
        return 0.04 * self.body_length

    def armhole(self) -> tuple[np.ndarray, np.ndarray]:
        """Left shoulder point and left armpit (x, y)."""
        top = self.body_length
        return (np.array([self.shoulder_width / 2, top - self.shoulder_drop]),
                np.array([self.body_width / 2, top - self.armhole_depth]))


@dataclass
class GarmentTemplate:
    """A garment mesh with a two-panel UV map.

    ``face_uvs`` (F, 3, 2) and the panel points are in UV units in [0, 1] with v = 0 at the top row of the
    texture (image convention). ``landmarks[panel]`` is (6, 2) in LANDMARK_NAMES order; ``outlines[panel]`` is
    a closed polyline (K, 2) and ``outline_landmarks[panel]`` the index in it of each landmark (LANDMARK_NAMES
    order)."""

    vertices: np.ndarray
    faces: np.ndarray
    face_uvs: np.ndarray
    landmarks: dict[str, np.ndarray]
    outlines: dict[str, np.ndarray]
    outline_landmarks: dict[str, np.ndarray]
    texture_size: tuple[int, int] = (1024, 512)  # width, height
    proportions: GarmentProportions | None = None
    source: str = "built-in garment"
    sleeveless: bool = False  # sleeve landmarks on the body's sides (tank tops): the warp then also matches the sides
    notes: list[str] = field(default_factory=list)

    @property
    def panels(self) -> list[str]:
        return [p for p in PANELS if p in self.landmarks]

    def panel_mask(self, panel: str) -> np.ndarray:
        """(H, W) bool: texture pixels inside the panel's outline."""
        import cv2

        width, height = self.texture_size
        mask = np.zeros((height, width), np.uint8)
        polygon = np.round(self.outlines[panel] * [width, height] - 0.5).astype(np.int32)
        cv2.fillPoly(mask, [polygon], 1)
        return mask.astype(bool)

    def landmark_json(self) -> dict:
        """The JSON a user template carries (UVs with v up, as in the mesh file)."""
        def flip(points):
            return [[round(float(u), 6), round(float(1 - v), 6)] for u, v in points]
        return {"uv_convention": "v up (as in OBJ/glTF files)", "landmark_names": list(LANDMARK_NAMES),
                "sleeveless": self.sleeveless,
                "panels": {p: {"landmarks": dict(zip(LANDMARK_NAMES, flip(self.landmarks[p]))),
                               "outline": flip(self.outlines[p])} for p in self.panels},
                **({"proportions": asdict(self.proportions)} if self.proportions else {})}

    def export(self, out_dir: str | Path, name: str = "garment-template", texture: np.ndarray | None = None) -> dict:
        """OBJ + MTL + PNG texture + GLB + the landmark JSON (a chequer of the panels when no texture)."""
        from ..io.atomic import write_json
        from ..io.meshes import save_textured_mesh

        texture = self.chequer() if texture is None else texture
        paths = save_textured_mesh(out_dir, name, self.vertices, self.faces, self.face_uvs, texture)
        paths["json"] = write_json(Path(out_dir) / f"{name}.json", self.landmark_json())
        return paths

    def chequer(self) -> np.ndarray:
        """A texture showing the panels (chequered), their outlines and landmarks: for looking at a template."""
        import cv2

        width, height = self.texture_size
        yy, xx = np.mgrid[0:height, 0:width]
        texture = np.full((height, width, 3), 235, np.uint8)
        colours = {"front": (70, 110, 190), "back": (190, 110, 70)}
        for panel in self.panels:
            inside = self.panel_mask(panel)
            check = ((xx // 32 + yy // 32) % 2).astype(bool)
            texture[inside & check] = colours[panel]
            texture[inside & ~check] = np.array(colours[panel]) // 2 + 100
            for point in self.landmarks[panel] * [width, height]:
                cv2.circle(texture, tuple(int(c) for c in point), 6, (230, 40, 40), -1)
        return texture


def _polyline(points: np.ndarray, spacing: float) -> np.ndarray:
    """Points along the open polyline ``points`` about ``spacing`` apart (first included, last excluded)."""
    out = []
    for a, b in zip(points[:-1], points[1:]):
        count = max(1, int(math.ceil(np.linalg.norm(b - a) / spacing)))
        out.extend(a + (b - a) * t for t in np.arange(count) / count)
    return np.array(out)


def garment_outline(p: GarmentProportions) -> tuple[list[np.ndarray], dict[int, int]]:
    """The pattern outline as corner points (x right = garment left, y up) and which corner is which landmark.

    Returns the corner list and {landmark index (LANDMARK_NAMES): corner index}."""
    hw, top = p.body_width / 2, p.body_length
    shoulder, armpit = p.armhole()
    angle = math.radians(p.sleeve_angle)
    direction = np.array([math.cos(angle), -math.sin(angle)])  # outwards and down
    across = np.array([math.sin(angle), math.cos(angle)])  # perpendicular, outwards and up
    neck_half = p.neck_width / 2

    def side(sign: float) -> tuple[list[np.ndarray], np.ndarray]:
        """From the hem corner up to the collar point on one side (sign +1: garment left)."""
        mirror = np.array([sign, 1.0])
        corners = [np.array([hw, 0.0]), armpit.copy()]
        if p.sleeve_length > 0:
            cuff = (shoulder + armpit) / 2 + p.sleeve_length * direction
            half = p.sleeve_width / 2
            inner, outer = cuff - half * across, cuff + half * across
            # Keep the sleeve clear of the body: its inner edge must stay outside the body's side.
            inner[0] = max(inner[0], hw + 0.02 * top)
            corners += [inner, cuff, outer]
            landmark = cuff
        else:
            landmark = (shoulder + armpit) / 2
            corners += [landmark]
        corners += [shoulder.copy(), np.array([neck_half, top])]
        return [c * mirror for c in corners], landmark * mirror

    left, _ = side(1.0)
    right, _ = side(-1.0)
    neck = [np.array([neck_half * math.cos(t), top - p.neck_depth * math.sin(t)]) for t in np.linspace(0, math.pi, 9)[1:-1]]
    # Around: right hem -> left hem -> up the left side -> neck (left to right) -> down the right side.
    corners = left + neck + right[::-1]
    n_left = len(left)
    sleeve_corner = 3 if p.sleeve_length > 0 else 2
    index = {5: len(corners) - 1, 4: 0, 2: sleeve_corner, 0: n_left - 1, 1: n_left + len(neck),
             3: len(corners) - 1 - sleeve_corner}
    return corners, index


def build_garment(proportions: GarmentProportions | None = None, spacing: float | None = None,
                  texture_size: tuple[int, int] = (1024, 512)) -> GarmentTemplate:
    """The parametric garment: flat-pattern front and back panels meshed on a triangle grid, puffed apart."""
    from matplotlib.path import Path as PolygonPath
    from scipy.spatial import Delaunay, cKDTree

    p = proportions or GarmentProportions()
    corners, landmark_corner = garment_outline(p)
    spacing = spacing or p.body_length / 40
    closed = np.array(corners + [corners[0]])
    outline_points, corner_at = [], {}
    for k, (a, b) in enumerate(zip(closed[:-1], closed[1:])):
        corner_at[k] = len(outline_points)
        segment = _polyline(np.array([a, b]), spacing / 2)  # denser on the boundary: Delaunay keeps it
        outline_points.extend(segment)
    outline = np.array(outline_points)
    polygon = PolygonPath(outline)
    low, high = outline.min(0), outline.max(0)
    grid = np.stack(np.meshgrid(np.arange(low[0], high[0], spacing), np.arange(low[1], high[1], spacing)), -1)
    grid = grid.reshape(-1, 2) + spacing / 2
    grid[::2] += [spacing / 4, 0]  # staggered rows give better-shaped triangles
    inner = grid[polygon.contains_points(grid)]
    boundary_tree = cKDTree(outline)
    inner = inner[boundary_tree.query(inner)[0] > spacing * 0.45]
    flat = np.concatenate([outline, inner])
    triangles = Delaunay(flat).simplices
    centroids = flat[triangles].mean(1)
    triangles = triangles[polygon.contains_points(centroids, radius=-1e-9)]
    # Orient counter-clockwise seen from the front (+z).
    a, b, c = flat[triangles[:, 0]], flat[triangles[:, 1]], flat[triangles[:, 2]]
    cross = (b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]
    triangles[cross < 0] = triangles[cross < 0][:, [0, 2, 1]]

    # Bulge: grows like a square root of the distance to the outline (rounded edges, flat middle).
    distance = boundary_tree.query(flat)[0]
    bulge = p.thickness * np.sqrt(np.clip(distance / (0.15 * p.body_length), 0, 1))
    n_outline, n_flat = len(outline), len(flat)
    # Outline vertices are shared by both panels (the seam); inner vertices exist once per panel.
    back_index = np.concatenate([np.arange(n_outline), n_flat + np.arange(n_flat - n_outline)])
    vertices = np.concatenate([np.column_stack([flat, bulge]), np.column_stack([flat[n_outline:], -bulge[n_outline:]])])
    front_faces = triangles
    back_faces = back_index[triangles][:, [0, 2, 1]]  # facing -z

    # UV: both panels in the front-view layout, uniform scale, each in its half of the texture.
    width, height = texture_size
    margin = 0.05
    half_w, full_h = width / 2, height
    extent = high - low
    scale = min(half_w * (1 - 2 * margin) / extent[0], full_h * (1 - 2 * margin) / extent[1])  # pixels per metre

    def to_uv(points: np.ndarray, panel: int) -> np.ndarray:
        px = (points[:, 0] - (low[0] + high[0]) / 2) * scale + half_w / 2 + panel * half_w
        py = ((low[1] + high[1]) / 2 - points[:, 1]) * scale + full_h / 2
        return np.column_stack([px / width, py / height])

    face_uvs = np.concatenate([to_uv(flat, 0)[front_faces], to_uv(flat, 1)[triangles[:, [0, 2, 1]]]])
    faces = np.concatenate([front_faces, back_faces])
    outline_landmarks = np.array([corner_at[landmark_corner[k]] for k in range(len(LANDMARK_NAMES))])
    landmarks, outlines, indices = {}, {}, {}
    for k, panel in enumerate(PANELS):
        outlines[panel] = to_uv(outline, k)
        landmarks[panel] = outlines[panel][outline_landmarks]
        indices[panel] = outline_landmarks
    return GarmentTemplate(vertices, faces, face_uvs, landmarks, outlines, indices, texture_size, p,
                           sleeveless=p.sleeve_length == 0)


def load_garment_template(mesh_path: str | Path, json_path: str | Path | None = None,
                          texture_size: tuple[int, int] = (1024, 1024)) -> GarmentTemplate:
    """A user's template: a mesh with UVs and a JSON of UV landmark positions per panel (``front`` required,
    ``back`` optional), v up as in the mesh file; an optional ``outline`` per panel (a closed polyline through
    the landmarks), else the polygon through the landmarks in outline order is used; ``"sleeveless": true`` for
    templates whose sleeve landmarks sit at the armholes. ``json_path`` defaults to
    the mesh path with a .json suffix."""
    from ..io.meshes import load_mesh

    mesh_path = Path(mesh_path)
    json_path = Path(json_path) if json_path is not None else mesh_path.with_suffix(".json")
    if not json_path.is_file():
        raise InputError(json_path, "garment template landmark JSON not found (it sits beside the mesh, same name)")
    try:
        spec = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(json_path, f"not valid JSON ({exc})") from None
    panels = spec.get("panels") if isinstance(spec, dict) else None
    if not isinstance(panels, dict) or "front" not in panels:
        raise InputError(json_path, 'needs {"panels": {"front": {"landmarks": {...}}, "back": ...}}')
    mesh = load_mesh(mesh_path, allow_nonmanifold=True)
    if mesh.uv is None:
        raise InputError(mesh_path, "garment template mesh has no UV coordinates")
    landmarks, outlines, indices = {}, {}, {}
    for panel, entry in panels.items():
        if panel not in PANELS:
            raise InputError(json_path, f"unknown panel {panel!r} (use front and back)")
        given = entry.get("landmarks") if isinstance(entry, dict) else None
        if not isinstance(given, dict):
            raise InputError(json_path, f"panel {panel!r} has no landmarks mapping")
        missing = [n for n in LANDMARK_NAMES if n not in given]
        if missing:
            raise InputError(json_path, f"panel {panel!r} is missing landmark(s) {', '.join(missing)} (needs "
                                        f"{', '.join(LANDMARK_NAMES)})")
        try:
            points = np.array([given[n] for n in LANDMARK_NAMES], float).reshape(len(LANDMARK_NAMES), 2)
            outline = np.array(entry["outline"], float).reshape(-1, 2) if "outline" in entry else None
        except (TypeError, ValueError):
            raise InputError(json_path, f"panel {panel!r}: landmarks and outline must be [u, v] pairs") from None
        if not np.isfinite(points).all() or (points < 0).any() or (points > 1).any():
            raise InputError(json_path, f"panel {panel!r}: landmark UVs must lie in [0, 1]")
        points[:, 1] = 1 - points[:, 1]
        if outline is None:
            outline = points[list(OUTLINE_ORDER)]
        else:
            outline[:, 1] = 1 - outline[:, 1]
        # Each landmark's place on the outline: its nearest outline point (moved onto it).
        index = np.array([int(np.argmin(np.linalg.norm(outline - q, axis=1))) for q in points])
        if len(set(index.tolist())) < len(LANDMARK_NAMES):
            raise InputError(json_path, f"panel {panel!r}: two landmarks fall on the same outline point")
        outline[index] = points
        landmarks[panel], outlines[panel], indices[panel] = points, outline, index
    uv = mesh.uv.copy()
    uv[:, 1] = 1 - uv[:, 1]
    return GarmentTemplate(mesh.vertices, mesh.faces, uv[mesh.faces], landmarks, outlines, indices, texture_size,
                           None, str(mesh_path), sleeveless=bool(spec.get("sleeveless", False)))
