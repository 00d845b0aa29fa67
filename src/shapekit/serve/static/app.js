// shapekit web app: pick a dataset or upload images, predict, review overlays, drag landmarks to correct
// them, save back into the dataset or export. Results are drawn by their `kind` only (landmarks,
// landmarks3d, mask, mesh), so a task added later shows up without changes here.
//
// Image coordinates follow shapekit: pixel centres at integers, x right, y down; pixel i covers
// [i - 0.5, i + 0.5], so the image is drawn from -0.5 to size - 0.5.

const $ = (id) => document.getElementById(id);
const HIT_RADIUS = 10; // screen pixels around a landmark that grab it
const PALETTE = [[255, 64, 160], [64, 200, 255], [255, 200, 40], [120, 255, 120], [200, 120, 255], [255, 120, 60]];

const state = {
  source: null, // {type: "dataset", path, info} or {type: "uploads"}
  items: [],
  order: [],
  current: -1,
  names: [],
  skeleton: [],
  yOrigin: "bottom",
  showMask: true,
  view: { scale: 1, ox: 0, oy: 0 },
  drag: null,
  health: null,
  models: [],
};

// --- helpers ------------------------------------------------------------------------------------
function status(message, isError = false) {
  const footer = $("status");
  footer.textContent = message;
  footer.classList.toggle("error", isError);
}

function busy(on) {
  document.body.dataset.busy = on ? "1" : "";
  for (const id of ["predict", "save", "export"]) $(id).disabled = on;
}

function encodePath(path) {
  return path.split("/").map(encodeURIComponent).join("/");
}

async function api(url, options = {}) {
  const response = await fetch(url, options);
  const type = response.headers.get("content-type") || "";
  if (!response.ok) {
    const body = type.includes("json") ? await response.json() : { error: await response.text() };
    throw new Error(body.error || `${response.status} ${response.statusText}`);
  }
  return type.includes("json") ? response.json() : response.blob();
}

const clone = (points) => (points ? points.map((p) => (p ? [p[0], p[1]] : null)) : null);

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error(`cannot load image ${src.slice(0, 80)}`));
    image.src = src;
  });
}

function base64Bytes(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

// --- items --------------------------------------------------------------------------------------
function newItem(fields) {
  return {
    name: "", url: "", width: 0, height: 0, points: null, saved: null, prediction: null, score: null,
    predicted: false, mask: null, dirty: false, undo: [], file: null, image: null, overlay: null, check: null,
    ...fields,
  };
}

function currentItem() {
  return state.current >= 0 ? state.items[state.order[state.current]] : null;
}

// The points a person edits: the annotation when there is one, else the predicted 2D landmarks.
function adoptPrediction(item) {
  const result = item.prediction;
  if (!item.points && result && result.kind === "landmarks" && result.points) {
    if (!state.names.length) {
      state.names = result.names || result.points.map((_, k) => `lm${k + 1}`);
      state.skeleton = result.skeleton || [];
    }
    if (result.points.length === state.names.length) item.points = clone(result.points);
  }
}

function sortOrder() {
  const indices = state.items.map((_, k) => k);
  if ($("sort").value === "confidence") {
    const key = (k) => (state.items[k].score == null ? Infinity : state.items[k].score);
    indices.sort((a, b) => key(a) - key(b) || a - b);
  } else if ($("sort").value === "check") { // the label check's flagged images, most unusual first
    const key = (k) => (state.items[k].check ? -state.items[k].check.z : Infinity);
    indices.sort((a, b) => key(a) - key(b) || a - b);
  }
  const keep = currentItem();
  state.order = indices;
  state.current = keep ? Math.max(0, state.order.indexOf(state.items.indexOf(keep))) : (indices.length ? 0 : -1);
}

function renderList() {
  const list = $("images");
  list.replaceChildren();
  state.order.forEach((index, position) => {
    const item = state.items[index];
    const li = document.createElement("li");
    li.dataset.name = item.name;
    li.classList.toggle("current", position === state.current);
    li.classList.toggle("dirty", item.dirty);
    li.classList.toggle("flagged", !!item.check);
    if (item.check) li.title = item.check.message;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = item.name;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = item.score == null ? "" : item.score.toFixed(3);
    li.append(name, score);
    li.addEventListener("click", () => show(position));
    list.append(li);
  });
}

// --- loading a dataset or uploads ------------------------------------------------------------------
async function openDataset(path) {
  if (!confirmDiscard()) return;
  busy(true);
  try {
    const info = await api(`/api/datasets/${encodePath(path)}`);
    state.source = { type: "dataset", path: info.path, info };
    state.names = info.names || [];
    state.skeleton = info.skeleton || [];
    state.yOrigin = info.y_origin || "bottom";
    state.items = info.images.map((im) => newItem({
      name: im.name, url: `/api/files/${encodePath(im.file)}`, width: im.width, height: im.height,
      points: clone(im.points), saved: clone(im.points), score: im.score, predicted: im.predicted, check: im.check,
      mask: im.mask ? `/api/files/${encodePath(im.mask)}` : null,
    }));
    if (info.predictions && $("sort").value === "file" && state.items.some((i) => i.score != null)) {
      $("sort").value = "confidence";
    }
    state.current = -1;
    sortOrder();
    renderList();
    const notes = info.warnings.length ? ` (${info.warnings.length} warnings: ${info.warnings[0]})` : "";
    status(`${info.path || "."}: ${info.images.length} images, ${info.kind}` +
      (info.format ? `, ${info.format.toUpperCase()} ${info.annotation_file}` : "") +
      (info.predictions ? `, predictions by ${info.predictions.model}` : "") + checkSummary(info) + notes);
    await show(0);
  } catch (error) {
    status(error.message, true);
  } finally {
    busy(false);
  }
}

function checkSummary(info) {
  const check = info.label_check;
  return check && check.n_flagged ? `, label check: ${check.n_flagged} of ${check.n_checked} flagged` : "";
}

function showCheck(item) {
  $("image-check").textContent = item && item.check ? `label check: ${item.check.message}` : "";
}

// After a save the label check is run again on the stored annotations.
async function refreshChecks() {
  const info = await api(`/api/datasets/${encodePath(state.source.path)}?y_origin=${state.source.info.y_origin || "bottom"}`);
  const byName = new Map(info.images.map((im) => [im.name, im.check]));
  for (const item of state.items) item.check = byName.get(item.name) || null;
  state.source.info.label_check = info.label_check;
}

async function openUploads(files) {
  if (!confirmDiscard()) return;
  state.source = { type: "uploads" };
  state.names = [];
  state.skeleton = [];
  state.yOrigin = "bottom";
  $("dataset").value = "";
  state.items = [...files].map((file) => newItem({ name: file.name, url: URL.createObjectURL(file), file }));
  state.current = -1;
  sortOrder();
  renderList();
  status(`${files.length} uploaded images`);
  await show(0);
  if ($("model").value) await predict();
}

function confirmDiscard() {
  const dirty = state.items.filter((i) => i.dirty).length;
  return !dirty || window.confirm(`${dirty} images have unsaved corrections. Discard them?`);
}

// --- predicting ----------------------------------------------------------------------------------
async function predict() {
  const model = $("model").value;
  if (!model) return status("choose a model first", true);
  if (!state.source) return status("choose a dataset or upload images first", true);
  busy(true);
  try {
    if (state.source.type === "dataset") {
      status(`predicting ${state.items.length} images with ${model}…`);
      const summary = await api(`/api/datasets/${encodePath(state.source.path)}/predict`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ model, test_time: $("test-time").value }),
      });
      busy(false);
      $("sort").value = "confidence";
      await openDataset(state.source.path);
      status(`predicted ${summary.n_images} images (${summary.kind}), mean confidence ` +
        `${summary.mean_score == null ? "-" : summary.mean_score.toFixed(3)}; sorted lowest first` +
        (summary.failed.length ? `; ${summary.failed.length} unreadable: ${summary.failed[0]}` : ""));
    } else {
      let done = 0;
      for (const item of state.items) {
        status(`predicting ${item.name} (${++done}/${state.items.length})…`);
        const form = new FormData();
        form.append("model", model);
        form.append("test_time", $("test-time").value);
        form.append("file", item.file, item.name);
        const result = await api("/api/predict", { method: "POST", body: form });
        setPrediction(item, result);
        if (item === currentItem()) await show(state.current);
      }
      sortOrder();
      renderList();
      const item = currentItem();
      status(`predicted ${done} images with ${model}` + (item && item.prediction ? `: ${describeResult(item.prediction)}` : ""));
    }
  } catch (error) {
    status(error.message, true);
  } finally {
    busy(false);
  }
}

function setPrediction(item, result) {
  item.prediction = result;
  item.score = result.score == null ? null : result.score;
  item.predicted = true;
  item.overlay = null;
  if (!item.saved && !item.dirty) item.points = null; // points taken from an earlier prediction
  adoptPrediction(item);
}

function describeResult(result) {
  switch (result.kind) {
    case "mask": return `mask covering ${(100 * result.coverage).toFixed(1)} % of the image`;
    case "landmarks": return `${result.points.length} landmarks, confidence ${result.score == null ? "-" : result.score.toFixed(3)}`;
    case "landmarks3d": return result.instances.length ? `${result.instances.length} instance(s) of ${result.names.length} 3D landmarks`
      : (result.message || "nothing found");
    case "mesh": return `mesh of ${result.num_vertices} vertices, ${result.num_faces} faces`;
    default: return `a ${result.kind} result`;
  }
}

async function ensurePrediction(item) {
  if (item.prediction || !item.predicted || state.source.type !== "dataset") return;
  item.prediction = await api(`/api/datasets/${encodePath(state.source.path)}/predictions/${encodeURIComponent(item.name)}`);
  adoptPrediction(item);
}

// --- showing an image ------------------------------------------------------------------------------
async function show(position) {
  if (!state.order.length) {
    state.current = -1;
    draw();
    return;
  }
  state.current = Math.max(0, Math.min(state.order.length - 1, position));
  const item = currentItem();
  renderList();
  $("position").textContent = `${state.current + 1} / ${state.order.length}`;
  $("image-name").textContent = item.name;
  try {
    if (!item.image) {
      item.image = await loadImage(item.url);
      item.width = item.image.naturalWidth;
      item.height = item.image.naturalHeight;
    }
    await ensurePrediction(item);
    if (!item.overlay) item.overlay = await buildOverlay(item);
  } catch (error) {
    status(error.message, true);
  }
  if (item !== currentItem()) return; // the person moved on meanwhile
  $("image-score").textContent = item.score == null ? "" : `confidence ${item.score.toFixed(3)}`;
  showCheck(item);
  draw();
  await update3d(item.prediction);
  renderList();
  document.body.dataset.shown = item.name;
}

// A canvas the size of the image with the predicted mask (or, without one, the dataset's own mask) coloured in.
async function buildOverlay(item) {
  let source = null;
  let truth = false;
  if (item.prediction && item.prediction.kind === "mask") source = `data:image/png;base64,${item.prediction.mask_png}`;
  else if (item.mask) { source = item.mask; truth = true; }
  if (!source) return null;
  const image = await loadImage(source);
  const canvas = document.createElement("canvas");
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(image, 0, 0);
  const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const data = pixels.data;
  for (let i = 0; i < data.length; i += 4) {
    const value = data[i];
    if (value === 0) { data[i + 3] = 0; continue; }
    const colour = truth ? [80, 220, 120] : PALETTE[(value - 1) % PALETTE.length];
    data[i] = colour[0]; data[i + 1] = colour[1]; data[i + 2] = colour[2]; data[i + 3] = 120;
  }
  ctx.putImageData(pixels, 0, 0);
  return canvas;
}

// --- drawing ---------------------------------------------------------------------------------------
function toScreen(x, y) {
  const v = state.view;
  return [v.ox + (x + 0.5) * v.scale, v.oy + (y + 0.5) * v.scale];
}

function toImage(sx, sy) {
  const v = state.view;
  return [(sx - v.ox) / v.scale - 0.5, (sy - v.oy) / v.scale - 0.5];
}

function draw() {
  const canvas = $("canvas");
  const stage = $("stage");
  const dpr = window.devicePixelRatio || 1;
  const width = stage.clientWidth;
  const height = stage.clientHeight;
  if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const item = currentItem();
  if (!item || !item.image) return;
  const scale = Math.min((width - 20) / item.width, (height - 20) / item.height);
  state.view = { scale, ox: (width - item.width * scale) / 2, oy: (height - item.height * scale) / 2 };
  const { ox, oy } = state.view;
  ctx.imageSmoothingEnabled = scale < 1;
  ctx.drawImage(item.image, ox, oy, item.width * scale, item.height * scale);
  if (item.overlay && state.showMask) ctx.drawImage(item.overlay, ox, oy, item.width * scale, item.height * scale);
  const result = item.prediction;
  if (result && result.kind === "landmarks3d") drawInstances(ctx, result);
  const predictedPoints = result && result.kind === "landmarks" && !item.saved;
  if (item.points) drawLandmarks(ctx, item.points, predictedPoints ? result.confidence : null);
  // Predicted landmarks are drawn as crosses over the dataset's own annotation, which the person edits.
  if (result && result.kind === "landmarks" && item.saved && item.points) drawCrosses(ctx, result.points);
}

function drawLandmarks(ctx, points, confidence) {
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = "rgba(255, 255, 255, 0.7)";
  for (const [i, j] of state.skeleton) {
    if (!points[i] || !points[j]) continue;
    ctx.beginPath();
    ctx.moveTo(...toScreen(...points[i]));
    ctx.lineTo(...toScreen(...points[j]));
    ctx.stroke();
  }
  ctx.font = "12px system-ui, sans-serif";
  points.forEach((point, k) => {
    if (!point) return;
    const [sx, sy] = toScreen(point[0], point[1]);
    const active = state.drag && state.drag.index === k;
    ctx.beginPath();
    ctx.arc(sx, sy, active ? 7 : 5, 0, 2 * Math.PI);
    ctx.fillStyle = active ? "rgb(255, 60, 60)" : "rgb(255, 176, 32)";
    ctx.fill();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = "rgb(20, 20, 20)";
    ctx.stroke();
    const label = String(k + 1) + (confidence && confidence[k] != null ? ` ${confidence[k].toFixed(2)}` : "");
    ctx.lineWidth = 3;
    ctx.strokeText(label, sx + 8, sy - 6);
    ctx.fillStyle = "white";
    ctx.fillText(label, sx + 8, sy - 6);
  });
}

function drawCrosses(ctx, points) {
  ctx.strokeStyle = "rgb(64, 200, 255)";
  ctx.lineWidth = 2;
  for (const point of points) {
    if (!point) continue;
    const [sx, sy] = toScreen(point[0], point[1]);
    ctx.beginPath();
    ctx.moveTo(sx - 5, sy - 5); ctx.lineTo(sx + 5, sy + 5);
    ctx.moveTo(sx + 5, sy - 5); ctx.lineTo(sx - 5, sy + 5);
    ctx.stroke();
  }
}

function drawInstances(ctx, result) {
  result.instances.forEach((instance, n) => {
    const colour = PALETTE[n % PALETTE.length];
    if (instance.box) {
      const [x0, y0] = toScreen(instance.box[0], instance.box[1]);
      const [x1, y1] = toScreen(instance.box[2], instance.box[3]);
      ctx.strokeStyle = `rgb(${colour.join(",")})`;
      ctx.lineWidth = 2;
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    }
    const zs = instance.points.filter(Boolean).map((p) => p[2]);
    const low = Math.min(...zs);
    const span = Math.max(...zs) - low || 1;
    for (const point of instance.points) {
      if (!point) continue;
      const [sx, sy] = toScreen(point[0], point[1]);
      const near = (point[2] - low) / span; // larger z = closer: brighter
      ctx.beginPath();
      ctx.arc(sx, sy, 3.5, 0, 2 * Math.PI);
      ctx.fillStyle = `rgb(${Math.round(80 + 175 * near)}, ${Math.round(120 + 100 * near)}, 255)`;
      ctx.fill();
    }
  });
}

// --- 3D view -----------------------------------------------------------------------------------------
let viewer = null;

async function update3d(result) {
  const panel = $("panel3d");
  const wanted = result && (result.kind === "mesh" || result.kind === "landmarks3d");
  if (!wanted) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  if (state.health && !state.health.viewer3d) {
    $("viewer3d-status").textContent = state.health.viewer3d_hint;
    return;
  }
  try {
    if (!viewer) {
      const module = await import("./viewer3d.js");
      viewer = new module.Viewer3D($("viewer3d"));
    }
    if (result.kind === "mesh") {
      await viewer.showMesh(base64Bytes(result.glb).buffer);
      $("viewer3d-status").textContent = `mesh: ${result.num_vertices} vertices, ${result.num_faces} faces (drag to turn, wheel to zoom)`;
    } else {
      viewer.showPoints(result.instances);
      $("viewer3d-status").textContent = result.instances.length
        ? `${result.instances.length} instance(s), ${result.names.length} landmarks (drag to turn, wheel to zoom)`
        : (result.message || "nothing found");
    }
  } catch (error) {
    $("viewer3d-status").textContent = `3D view failed: ${error.message}`;
  }
  draw(); // the panel took room from the image
}

// --- editing -------------------------------------------------------------------------------------------
function eventPoint(event) {
  const rect = $("canvas").getBoundingClientRect();
  return [event.clientX - rect.left, event.clientY - rect.top];
}

function nearestLandmark(sx, sy) {
  const item = currentItem();
  if (!item || !item.points) return -1;
  let best = -1;
  let bestDistance = HIT_RADIUS;
  item.points.forEach((point, k) => {
    if (!point) return;
    const [px, py] = toScreen(point[0], point[1]);
    const distance = Math.hypot(px - sx, py - sy);
    if (distance <= bestDistance) { best = k; bestDistance = distance; }
  });
  return best;
}

function onPointerDown(event) {
  const [sx, sy] = eventPoint(event);
  const index = nearestLandmark(sx, sy);
  if (index < 0) return;
  const item = currentItem();
  const [px, py] = toScreen(...item.points[index]);
  // Keep the grab offset so the landmark does not jump to the pointer.
  state.drag = { index, before: clone(item.points), dx: px - sx, dy: py - sy, moved: false };
  $("canvas").setPointerCapture(event.pointerId);
  $("canvas").classList.add("dragging");
  draw();
}

function onPointerMove(event) {
  const [sx, sy] = eventPoint(event);
  const canvas = $("canvas");
  if (!state.drag) {
    canvas.classList.toggle("grab", nearestLandmark(sx, sy) >= 0);
    return;
  }
  const item = currentItem();
  const [x, y] = toImage(sx + state.drag.dx, sy + state.drag.dy);
  item.points[state.drag.index] = [Math.min(Math.max(x, -0.5), item.width - 0.5), Math.min(Math.max(y, -0.5), item.height - 0.5)];
  state.drag.moved = true;
  draw();
}

function onPointerUp(event) {
  if (!state.drag) return;
  const item = currentItem();
  if (state.drag.moved) {
    item.undo.push(state.drag.before);
    item.dirty = true;
    const point = item.points[state.drag.index];
    status(`${item.name}: landmark ${state.drag.index + 1} moved to (${point[0].toFixed(1)}, ${point[1].toFixed(1)})`);
  }
  state.drag = null;
  $("canvas").releasePointerCapture(event.pointerId);
  $("canvas").classList.remove("dragging");
  draw();
  renderList();
}

function undo() {
  const item = currentItem();
  if (!item || !item.undo.length) return status("nothing to undo");
  item.points = item.undo.pop();
  item.dirty = item.undo.length > 0 || JSON.stringify(item.points) !== JSON.stringify(item.saved);
  draw();
  renderList();
  status(`${item.name}: undone`);
}

function acceptPrediction() {
  const item = currentItem();
  if (!item || !item.points) return;
  item.dirty = true;
  renderList();
  status(`${item.name}: landmarks accepted (saved with the next Save)`);
}

// --- saving and exporting ----------------------------------------------------------------------------
async function save() {
  if (!state.source || state.source.type !== "dataset") return status("uploads are not in a dataset: use Export", true);
  if (!state.source.info.can_save) return status("this folder has no images/ folder to save landmarks beside: use Export", true);
  const dirty = state.items.filter((i) => i.dirty && i.points);
  if (!dirty.length) return status("nothing to save: no landmark was changed");
  busy(true);
  try {
    const body = {
      images: dirty.map((i) => ({ name: i.name, points: i.points })),
      names: state.names, y_origin: state.source.info.y_origin || state.yOrigin,
      format: state.source.info.format ? null : $("export-format").value,
    };
    const saved = await api(`/api/datasets/${encodePath(state.source.path)}/annotations`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    for (const item of dirty) { item.dirty = false; item.saved = clone(item.points); item.undo = []; }
    if (state.source.info.label_check) await refreshChecks();
    showCheck(currentItem());
    renderList();
    draw();
    status(`saved ${saved.n_images} images to ${saved.file}` + (saved.backup ? ` (previous file: ${saved.backup})` : ""));
    document.body.dataset.saved = saved.file;
  } catch (error) {
    status(error.message, true);
  } finally {
    busy(false);
  }
}

async function exportLandmarks() {
  const items = state.items.filter((i) => i.points && i.width);
  if (!items.length) return status("no landmarks to export", true);
  busy(true);
  try {
    const body = {
      format: $("export-format").value, names: state.names, skeleton: state.skeleton,
      y_origin: state.source.type === "dataset" ? (state.source.info.y_origin || "bottom") : "bottom",
      images: items.map((i) => ({ name: i.name, width: i.width, height: i.height, points: i.points })),
    };
    const response = await fetch("/api/export", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error((await response.json()).error);
    const name = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") || "")?.[1] || "landmarks";
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = name;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    status(`exported ${items.length} images as ${name}`);
  } catch (error) {
    status(error.message, true);
  } finally {
    busy(false);
  }
}

// --- start ---------------------------------------------------------------------------------------------
async function fillSelectors() {
  const [datasets, models, health] = await Promise.all([api("/api/datasets"), api("/api/models"), api("/api/health")]);
  state.health = health;
  for (const d of datasets) {
    const option = new Option(`${d.path || "."} (${d.kind}${d.predicted ? ", predicted" : ""})`, d.path || ".");
    $("dataset").append(option);
  }
  $("model").append(new Option("choose…", ""));
  state.models = models;
  for (const m of models) $("model").append(new Option(m.task ? `${m.name} (${m.task})` : m.name, m.name));
}

// The test-time views the chosen model's task offers (see shapekit.tta.TEST_TIME_MODES).
const TEST_TIME_LABELS = { off: "off", votes: "crop votes", full: "full TTA" };
function fillTestTime() {
  const select = $("test-time");
  const previous = select.value;
  const model = state.models.find((m) => m.name === $("model").value);
  const modes = model && model.test_time ? model.test_time : ["off"];
  select.replaceChildren(...modes.map((mode) => new Option(TEST_TIME_LABELS[mode] || mode, mode)));
  select.value = modes.includes(previous) ? previous : "off";
  select.disabled = modes.length < 2;
}

function onKey(event) {
  const tag = event.target.tagName;
  if (tag === "SELECT" || tag === "INPUT" || tag === "TEXTAREA") return;
  if (tag === "BUTTON" && (event.key === "Enter" || event.key === " ")) return; // the button's own click
  const ctrl = event.ctrlKey || event.metaKey;
  if (ctrl && event.key.toLowerCase() === "z") { event.preventDefault(); undo(); }
  else if (ctrl && event.key.toLowerCase() === "s") { event.preventDefault(); save(); }
  else if (ctrl) return;
  else if (event.key === "ArrowRight" || event.key === "n") { event.preventDefault(); show(state.current + 1); }
  else if (event.key === "ArrowLeft" || event.key === "p") { event.preventDefault(); show(state.current - 1); }
  else if (event.key === "z") undo();
  else if (event.key === "m") { $("show-mask").checked = !$("show-mask").checked; toggleMask(); }
  else if (event.key === "Enter") acceptPrediction();
}

function toggleMask() {
  state.showMask = $("show-mask").checked;
  draw();
}

async function start() {
  const canvas = $("canvas");
  canvas.addEventListener("pointerdown", onPointerDown);
  canvas.addEventListener("pointermove", onPointerMove);
  canvas.addEventListener("pointerup", onPointerUp);
  window.addEventListener("keydown", onKey);
  window.addEventListener("resize", draw);
  window.addEventListener("beforeunload", (event) => { if (state.items.some((i) => i.dirty)) event.preventDefault(); });
  $("dataset").addEventListener("change", (e) => { e.target.blur(); if (e.target.value) openDataset(e.target.value); });
  $("upload").addEventListener("change", (e) => { if (e.target.files.length) openUploads(e.target.files); e.target.blur(); });
  $("model").addEventListener("change", (e) => { e.target.blur(); fillTestTime(); });
  $("test-time").addEventListener("change", (e) => e.target.blur());
  $("sort").addEventListener("change", (e) => { e.target.blur(); sortOrder(); renderList(); show(state.current); });
  $("show-mask").addEventListener("change", (e) => { e.target.blur(); toggleMask(); });
  $("predict").addEventListener("click", predict);
  $("save").addEventListener("click", save);
  $("export").addEventListener("click", exportLandmarks);
  $("prev").addEventListener("click", () => show(state.current - 1));
  $("next").addEventListener("click", () => show(state.current + 1));
  $("undo").addEventListener("click", undo);
  try {
    await fillSelectors();
    const params = new URLSearchParams(window.location.search);
    if (params.get("model")) $("model").value = params.get("model");
    fillTestTime();
    if (params.get("test_time")) $("test-time").value = params.get("test_time");
    status("choose a dataset or upload images");
    if (params.has("dataset")) {
      $("dataset").value = params.get("dataset");
      await openDataset(params.get("dataset"));
    }
  } catch (error) {
    status(error.message, true);
  }
  document.body.dataset.ready = "1";
}

// For the browser tests and the curious: the page's state and its image <-> screen mapping.
window.shapekit = { state, toScreen, toImage, currentItem, show, viewer: () => (viewer ? viewer.summary : null) };
start();
