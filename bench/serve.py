"""Load test of the web app on loopback: `shapekit serve` in its own process, 100 concurrent predict requests
(image uploads, httpx async) per model, after a sequential baseline. Prints a table, writes
bench/results/serve.json.

Models: the shipped clothing segmentation model (320 px) and a heatmap landmark U-Net at its default 256 px
input (MobileNetV2 encoder; its decoder is untrained, which does not change the cost of a request).
Every request and the whole run are bounded in time; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, WORK, console, print_table, save_results  # noqa: E402


def landmark_checkpoint(path: Path) -> Path:
    from shapekit.config import RunConfig
    from shapekit.engine.checkpoint import save_model_checkpoint
    from shapekit.synthetic import LANDMARK_NAMES
    from shapekit.tasks import get_task

    task = get_task("landmarks")(RunConfig(task="landmarks", input_size=256),
                                 {"landmark_names": LANDMARK_NAMES, "num_landmarks": len(LANDMARK_NAMES),
                                  "input_shape": [256, 256], "y_origin": "bottom", "skeleton": []})
    return save_model_checkpoint(task, task.build_model(pretrained=True), path)


def upload_bytes(size: int) -> bytes:
    from PIL import Image
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((size, size)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _one(http, model: str, image: bytes) -> tuple[float, int, str]:
    start = time.perf_counter()
    try:
        answer = await http.post("/api/predict", data={"model": model}, files={"file": ("photo.jpg", image, "image/jpeg")})
        status, detail = answer.status_code, "" if answer.status_code == 200 else answer.text[:200]
    except Exception as exc:  # a timeout or a dropped connection is an error of the run, not a crash of it
        status, detail = 0, f"{type(exc).__name__}: {exc}"
    return time.perf_counter() - start, status, detail


async def scenario(base: str, model: str, image: bytes, sequential: int, concurrent: int, timeout: float) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=concurrent, max_keepalive_connections=concurrent)
    async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits) as http:
        for _ in range(3):  # load the model and warm up
            _, status, detail = await _one(http, model, image)
            if status != 200:
                raise SystemExit(f"warm-up request for {model} failed: {status} {detail}")
        rows = {}
        for name, count, parallel in (("sequential", sequential, False), ("concurrent", concurrent, True)):
            start = time.perf_counter()
            if parallel:
                results = await asyncio.gather(*[_one(http, model, image) for _ in range(count)])
            else:
                results = [await _one(http, model, image) for _ in range(count)]
            wall = time.perf_counter() - start
            latency = np.array([r[0] for r in results]) * 1000
            errors = [r for r in results if r[1] != 200]
            rows[name] = {"requests": count, "errors": len(errors), "first_errors": [e[2] for e in errors[:3]],
                          "wall_s": wall, "requests_per_s": count / wall,
                          "p50_ms": float(np.percentile(latency, 50)), "p95_ms": float(np.percentile(latency, 95)),
                          "p99_ms": float(np.percentile(latency, 99)), "max_ms": float(latency.max())}
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--sequential", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=512, help="uploaded photo, pixels (square JPEG)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per request")
    args = parser.parse_args()

    work = WORK / "serve"
    shutil.rmtree(work, ignore_errors=True)
    landmark_checkpoint(work / "models" / "landmarks.ckpt")
    image = upload_bytes(args.image_size)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(work / "server.log", "w")
    server = subprocess.Popen([str(Path(sys.executable).with_name("shapekit")), "serve", "--root", str(work),
                               "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                              env={**os.environ, "SHAPEKIT_NO_PROGRESS": "1"})
    try:
        import httpx

        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"the server did not start; see {work / 'server.log'}")
            time.sleep(0.2)
        results = {}
        for label, model in (("landmarks (heatmap U-Net, 256 px)", "models/landmarks.ckpt"),
                             ("segment (shipped clothing model, 320 px)", "shipped:segment")):
            console.print(f"[bold]{label}[/]: {args.sequential} sequential, then {args.concurrent} concurrent requests")
            results[label] = {"model": model, **asyncio.run(
                scenario(base, model, image, args.sequential, args.concurrent, args.timeout))}
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()

    rows = []
    for label, entry in results.items():
        for name in ("sequential", "concurrent"):
            r = entry[name]
            rows.append([label, name, r["requests"], r["errors"], round(r["p50_ms"]), round(r["p95_ms"]),
                         round(r["p99_ms"]), round(r["requests_per_s"], 2)])
    print_table(f"shapekit serve on loopback, {args.image_size} px JPEG uploads", ["model", "load", "requests", "errors",
                "p50 ms", "p95 ms", "p99 ms", "requests/s"], rows)
    save_results("serve", {"image_size": args.image_size, "results": results})
    if any(entry[name]["errors"] for entry in results.values() for name in ("sequential", "concurrent")):
        raise SystemExit("some requests failed (see bench/results/serve.json)")


if __name__ == "__main__":
    main()
