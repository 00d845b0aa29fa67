"""The web app: ``shapekit serve`` runs :func:`create_app` with uvicorn."""

from __future__ import annotations

from pathlib import Path

from .app import create_app

__all__ = ["create_app", "run"]


def run(root: str | Path = ".", host: str = "127.0.0.1", port: int = 8000, **options) -> None:
    import uvicorn

    hosts = ["*"] if host not in ("127.0.0.1", "localhost", "::1") else None
    app = create_app(root, allowed_hosts=hosts, **options)
    uvicorn.run(app, host=host, port=port, log_level="info")
