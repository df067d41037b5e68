"""``/docs``: the API's interactive documentation (Swagger UI), its scripts and styles served by the
service itself from the installed package (swagger-ui-bundle-v2), never from a CDN: an organizer's
service may run offline, and a page that loads code from a third party makes it one more party
every visitor trusts."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"


def serve_docs(app: FastAPI) -> None:
    """``/docs`` on ``app``, created with ``docs_url=None`` (FastAPI's own page loads from a CDN)."""
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title}: API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )
