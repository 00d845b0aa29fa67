"""The web app's HTTP server: the review page and a JSON API over one workspace folder.

Every task plugs in through ``Task.predict_image``; the server knows nothing task-specific beyond the
``kind`` of a result, so a task added later appears here without changes.
"""

from __future__ import annotations

import functools
import logging
import mimetypes
import time
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..engine.runtime import Runtime
from ..errors import ShapekitError
from ..io.images import decode_image, read_image
from ..tta import TEST_TIME_MODES
from . import datasets
from .models import ModelCache, list_models, shipped_models
from .workspace import PathRefused, Workspace

log = logging.getLogger("shapekit.serve")

STATIC = Path(__file__).resolve().parent / "static"
VENDOR = STATIC / "vendor"
VENDOR_FILES = ("three.module.js", "three.core.js", "addons/controls/OrbitControls.js",
                "addons/loaders/GLTFLoader.js")
VENDOR_HINT = ("the 3D viewer's three.js files are not built: run `make install` (or `make vendor`) in the "
               "shapekit checkout; it runs `npm ci` in web/ and copies them into src/shapekit/serve/static/vendor/")
# Served inline by /api/files; anything else (HTML, SVG, scripts...) is sent as a download so that a file in
# the workspace can never run script in the page's origin.
INLINE_TYPES = {"image/png", "image/jpeg", "image/tiff", "image/bmp", "image/webp", "application/json",
                "text/plain", "text/csv", "model/gltf-binary"}
INFERENCE_THREADS = 4  # a model runs one request at a time anyway; this bounds threads across models
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; connect-src 'self' data: blob:; "
                               "script-src 'self'; style-src 'self'; object-src 'none'; frame-ancestors 'none'",
}


def vendor_missing() -> list[str]:
    return [name for name in VENDOR_FILES if not (VENDOR / name).is_file()]


class PredictDatasetRequest(BaseModel):
    model: str = Field(description="a .ckpt/.onnx path under the root, or shipped:TASK")
    test_time: Literal[TEST_TIME_MODES] = Field(  # type: ignore[valid-type]
        "off", description="test-time views: off, votes (the refiner's crop votes) or full (--tta)")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class BodyTooLarge(HTTPException):
    """Raised from inside the request body stream; FastAPI's HTTPException so that its body parsing passes it
    on as it is (a 413) instead of turning it into "error parsing the body"."""

    def __init__(self, message: str):
        super().__init__(413, message)


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` with 413: at once from Content-Length, and
    for bodies without one while they stream in (before the app has answered). Hand-written because only
    the newest FastAPI releases have a body limit, and theirs answers in another JSON shape than our errors."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        message = f"request body over the upload limit of {self.max_bytes / 2**20:g} MB"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await _error(413, message)(scope, receive, send)
        seen, started = 0, False

        async def counted_receive():
            nonlocal seen
            event = await receive()
            if event["type"] == "http.request":
                seen += len(event.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(message)
            return event

        async def tracked_send(event):
            nonlocal started
            started = started or event["type"] == "http.response.start"
            await send(event)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await _error(413, message)(scope, receive, send)


class RequestGuard:
    """ASGI middleware refusing, with a JSON 4xx: requests addressed to a host name not in ``allowed_hosts``
    (DNS rebinding: another site's name resolving to 127.0.0.1), and state-changing requests sent by another
    web site (CSRF: a POST whose Origin names a different host than the one the browser addressed)."""

    def __init__(self, app, allowed_hosts: list[str]):
        self.app, self.allowed = app, {h.lower() for h in allowed_hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1").lower()
        if "*" not in self.allowed and _host_name(host) not in self.allowed:
            return await _error(400, f"requests for host {host!r} are not served (it listens for "
                                     f"{', '.join(sorted(self.allowed))})")(scope, receive, send)
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            origin = headers.get(b"origin")
            if origin is not None and origin.split(b"://", 1)[-1].lower() != host.encode("latin-1"):
                return await _error(403, "cross-site request refused")(scope, receive, send)
        await self.app(scope, receive, send)


def _host_name(host: str) -> str:
    """A Host header without its port: "127.0.0.1:8000" -> "127.0.0.1", "[::1]:8000" -> "[::1]"."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0]


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every response (a pure ASGI middleware: Starlette's
    BaseHTTPMiddleware would wrap the request body stream and hide BodyLimit's 413)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(event):
            if event["type"] == "http.response.start":
                present = {key.lower() for key, _ in event.get("headers", [])}
                extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()
                         if k.lower().encode() not in present]
                event = {**event, "headers": list(event.get("headers", [])) + extra}
            await send(event)

        await self.app(scope, receive, with_headers)


def create_app(root: str | Path = ".", max_upload_mb: float = 25.0, max_megapixels: float = 50.0,
               device: str = "auto", precision: str = "auto", allowed_hosts: list[str] | None = None,
               model_capacity: int = 4) -> FastAPI:
    """The web app over the workspace ``root``. ``allowed_hosts``: Host header values accepted (default:
    loopback names only, against DNS rebinding); pass ["*"] when serving on a network interface."""
    workspace = Workspace(root)
    runtime = Runtime.create(device, precision)
    cache = ModelCache(workspace, runtime, model_capacity)
    max_bytes = int(max_upload_mb * 2**20)
    max_pixels = int(max_megapixels * 1e6)
    app = FastAPI(title="shapekit", version=__version__, docs_url=None, redoc_url=None,
                  description="Predict, review and correct landmarks, masks and meshes; export TPS, COCO, CSV.")
    app.state.workspace, app.state.models, app.state.runtime = workspace, cache, runtime
    app.state.limits = {"max_upload_mb": max_upload_mb, "max_megapixels": max_megapixels}
    limiter = {}

    async def off_loop(fn, *args):
        """Model loading and inference in worker threads of their own (at most INFERENCE_THREADS), so a burst of
        predictions queues without a thread each and leaves Starlette's thread pool to files and datasets."""
        import anyio

        if "inference" not in limiter:  # created lazily: a limiter belongs to the running event loop
            limiter["inference"] = anyio.CapacityLimiter(INFERENCE_THREADS)
        return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=limiter["inference"])
    if vendor_missing():
        log.warning("shapekit serve: %s", VENDOR_HINT)

    # --- errors: one JSON line, never a stack trace -----------------------------------------------
    @app.exception_handler(PathRefused)
    async def refused(request: Request, exc: PathRefused):
        return _error(exc.status, workspace.scrub(str(exc)))

    @app.exception_handler(ShapekitError)
    async def user_error(request: Request, exc: ShapekitError):
        return _error(400, workspace.scrub(str(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(422, f"{where}: {first.get('msg')}" if where else str(first.get("msg")))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, "internal error (the server's log has the details)")

    # --- page ------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/static/vendor/{name:path}", include_in_schema=False)
    async def vendor(name: str):
        path = (VENDOR / name).resolve()
        if not path.is_relative_to(VENDOR.resolve()) or not path.is_file():
            return _error(404, VENDOR_HINT if vendor_missing() else f"{name}: not a vendored file")
        return FileResponse(path, media_type="text/javascript")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # --- API -------------------------------------------------------------------------------------
    @app.get("/api/health", summary="Server status, limits and whether the 3D viewer is built")
    async def health() -> dict[str, Any]:
        missing = vendor_missing()
        return {"status": "ok", "version": __version__, "root": workspace.root.name, "limits": app.state.limits,
                "viewer3d": not missing, "viewer3d_hint": VENDOR_HINT if missing else None,
                "device": str(runtime.device), "precision": runtime.precision, "loaded_models": cache.loaded()}

    @app.get("/api/tasks", summary="Tasks and what the page draws for each")
    async def tasks() -> list[dict[str, Any]]:
        from ..tasks import available_tasks, get_task

        shipped = shipped_models()
        return [{"name": name, "web_kind": get_task(name).web_kind or None,
                 "shipped_model": f"shipped:{name}" if f"shipped:{name}" in shipped else None}
                for name in available_tasks()]

    @app.get("/api/models", summary="Shipped models and checkpoints / ONNX files under the root")
    async def models() -> list[dict[str, Any]]:
        return cache.registered() + await run_in_threadpool(list_models, workspace)

    @app.get("/api/files/{path:path}", summary="A file under the workspace root")
    async def files(path: str):
        real = workspace.resolve(path, kind="file")
        media = mimetypes.guess_type(real.name)[0] or "application/octet-stream"
        if real.suffix.lower() in (".tps", ".csv", ".txt", ".md", ".yaml", ".yml"):
            media = "text/plain"
        if media in INLINE_TYPES:
            return FileResponse(real, media_type=media)
        return FileResponse(real, media_type="application/octet-stream", filename=real.name)

    @app.get("/api/datasets", summary="Dataset folders under the root")
    async def dataset_list() -> list[dict[str, Any]]:
        return await run_in_threadpool(datasets.list_datasets, workspace)

    @app.get("/api/datasets/{path:path}/predictions/{image}", summary="The stored prediction for one image")
    async def dataset_prediction(path: str, image: str) -> dict[str, Any]:
        return await run_in_threadpool(datasets.prediction_for, workspace, path, image)

    @app.get("/api/datasets/{path:path}", summary="A dataset: images, annotations, predictions, confidence")
    async def dataset(path: str, y_origin: str | None = Query(None, pattern="^(bottom|top)$")) -> dict[str, Any]:
        return await run_in_threadpool(datasets.describe, workspace, path, y_origin)

    @app.post("/api/datasets/{path:path}/predict",
              summary=f"Predict every image; writes {datasets.PREDICTIONS_FILE} beside the dataset")
    async def dataset_predict(path: str, request: PredictDatasetRequest) -> dict[str, Any]:
        loaded = await off_loop(cache.get, request.model)
        return await off_loop(datasets.predict_dataset, workspace, path, loaded, runtime, request.test_time)

    @app.post("/api/datasets/{path:path}/annotations",
              summary="Save corrected landmarks into the dataset's file (previous file kept as .bak-<time>)")
    async def dataset_save(path: str, request: datasets.SaveRequest) -> dict[str, Any]:
        return await run_in_threadpool(datasets.save_annotations, workspace, path, request)

    @app.post("/api/export", summary="Landmarks as a TPS, COCO or CSV download (nothing written)")
    async def export(request: datasets.ExportRequest):
        name, content = await run_in_threadpool(datasets.export_annotations, request)
        media = "application/json" if name.endswith(".json") else "text/plain"
        return Response(content, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.post("/api/predict", summary="Predict one image: an upload (file) or a file under the root (path)")
    async def predict(model: str = Form(..., description="a .ckpt/.onnx path under the root, or shipped:TASK"),
                      file: UploadFile | None = File(None), path: str | None = Form(None),
                      test_time: str = Form("off", description="off, votes (the refiner's crop votes) or full (--tta)"),
                      ) -> dict[str, Any]:
        if (file is None) == (path is None):
            raise ShapekitError("send either an image file or the path of an image under the root")
        if file is not None:
            name = Path(file.filename or "upload").name
            data = await file.read(max_bytes + 1)
            if len(data) > max_bytes:
                return _error(413, f"{name}: over the upload limit of {max_upload_mb:g} MB")
            image = await run_in_threadpool(decode_image, data, name, True, max_pixels)
        else:
            real = workspace.resolve(path, kind="file")
            name = real.name
            image = await run_in_threadpool(_read_bounded, real, max_pixels, workspace)
        loaded = await off_loop(cache.get, model)
        start = time.perf_counter()
        result = await off_loop(loaded.predict, image, runtime, test_time)
        result["image"] = {"name": name, "width": int(image.shape[1]), "height": int(image.shape[0])}
        result["wall_milliseconds"] = round((time.perf_counter() - start) * 1000, 2)
        return result

    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, max_bytes=max_bytes)
    app.add_middleware(RequestGuard, allowed_hosts=allowed_hosts or LOOPBACK_HOSTS)
    return app


def _read_bounded(path: Path, max_pixels: int, workspace: Workspace):
    from ..io.images import image_size

    width, height = image_size(path)
    if width * height > max_pixels:
        raise ShapekitError(f"{workspace.relative(path)}: {width}x{height} is over the limit of "
                            f"{max_pixels / 1e6:g} megapixels")
    return read_image(path)
