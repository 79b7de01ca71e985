"""Serves the dashboard's files with a strict Content-Security-Policy.

No inline script or style is allowed (``'self'`` only), nothing may frame the pages, and
the only network peer is the gateway itself. Images, audio and video may come from any
https origin because the playground previews URLs a user types; drive files come through
the gateway's own signed links (``'self'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["DASHBOARD_HEADERS", "STATIC_DIR", "mount_dashboard"]

STATIC_DIR = Path(__file__).parent / "static"

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data: blob: https:",
        "media-src 'self' blob: https:",
        "font-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

DASHBOARD_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    # Revalidate every load (the ETag makes that a 304): a gateway upgrade must never
    # leave a browser running last version's modules against this version's API.
    "Cache-Control": "no-cache",
}


# Module scripts load only with a JavaScript type. Python guesses types from the host's
# tables (/etc/mime.types, the Windows registry), which can lack ``.mjs`` or map ``.js``
# to text/plain, so the dashboard's own files do not depend on them.
_SCRIPT_TYPE = "text/javascript; charset=utf-8"
_SCRIPT_SUFFIXES = frozenset({".js", ".mjs"})


class _DashboardFiles(StaticFiles):
    def file_response(self, full_path: Any, *args: Any, **kwargs: Any) -> Response:
        resp = super().file_response(full_path, *args, **kwargs)
        if Path(full_path).suffix in _SCRIPT_SUFFIXES:
            resp.headers["content-type"] = _SCRIPT_TYPE
        return resp

    async def get_response(self, path: str, scope: Scope) -> Response:
        resp = await super().get_response(path, scope)
        resp.headers.update(DASHBOARD_HEADERS)
        return resp


def mount_dashboard(app: FastAPI) -> None:
    """``GET /`` answers the dashboard's page; ``/ui/*`` its modules, styles and images."""
    index = STATIC_DIR / "index.html"

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def dashboard_index() -> Response:
        return FileResponse(index, media_type="text/html", headers=DASHBOARD_HEADERS)

    app.mount("/ui", _DashboardFiles(directory=STATIC_DIR), name="dashboard")
