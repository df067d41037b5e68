"""``/docs``: the API's interactive documentation (Swagger UI), its scripts and styles served by the
service itself from the installed package (swagger-ui-bundle-v2), never from a CDN: an organizer's
service may run offline, and a page that loads code from a third party makes it one more party
every visitor trusts.

``/openapi.json`` is FastAPI's document with two corrections (``truthful_document``): FastAPI adds a
422 with its own validation-error array to every route that has a parameter, where the service
answers ``{"detail": one line}`` (harness.service.app) and only where a parameter can be invalid;
those 422s and their schemas go (each route declares the 422 it can answer, with ``ErrorBody``),
and the schemes that the routes' ``security`` names are declared (a team's bearer token; the
registry issuer's HTTP Basic)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"
FASTAPI_422 = ("ValidationError", "HTTPValidationError")
SCHEMES = {
    "team": {"type": "http", "scheme": "bearer", "description": "a team's token (`harness teams add` prints it)"},
    "registry": {
        "type": "http",
        "scheme": "basic",
        "description": "any username and a team's token, or `harness-worker` and the workers' token",
    },
}


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


def truthful_document(app: FastAPI) -> None:
    """``app.openapi`` without FastAPI's validation-error 422s, with the service's security schemes."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            document = generate()
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    answer = operation.get("responses", {}).get("422", {})
                    if (
                        answer.get("content", {})
                        .get("application/json", {})
                        .get("schema", {})
                        .get("$ref", "")
                        .endswith("/HTTPValidationError")
                    ):
                        del operation["responses"]["422"]
            components = document.setdefault("components", {})
            for name in FASTAPI_422:
                components.get("schemas", {}).pop(name, None)
            components["securitySchemes"] = SCHEMES
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi
