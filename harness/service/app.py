"""The service's FastAPI application: the JSON API, its error shape (``{"detail": one line}``, the
document's ``ErrorBody``, 422 included) and the request body cap."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from harness import __version__
from harness.service import notify, pages
from harness.service.api import ROUTERS
from harness.service.apidocs import serve_docs, truthful_document
from harness.service.bodylimit import BodyLimit
from harness.service.context import ServiceContext
from harness.service.errors import ServiceError


def create_app(ctx: ServiceContext, lifespan=None) -> FastAPI:
    """The application over ``ctx``; ``lifespan`` (an async context manager factory) starts and
    stops what runs beside it (``serve``: the evaluation loop and the registry)."""
    lifespan = notify.beside(ctx, lifespan)  # webhooks (issue 15c): the delivery worker runs beside the API
    app = FastAPI(
        title=f"harness: {ctx.name}",
        description="The competition service's JSON API (docs/service-api.md).",
        version=__version__,  # the harness that answers, not FastAPI's default 0.1.0
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    serve_docs(app)
    truthful_document(app)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(pages.router)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_middleware(BodyLimit, max_bytes=ctx.settings.max_body_bytes)
    return app


async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)


UNPARSED = "There was an error parsing the body"  # FastAPI's 400 for a JSON body json.loads raised on (not JSONDecodeError)
UNPARSED_WHY = {UnicodeDecodeError: "it is not UTF-8 text", RecursionError: "it nests too deeply"}


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    if exc.status_code == 400 and exc.detail == UNPARSED:  # malformed JSON, as _invalid says it (fuzzer: a body b'9\xff' was a 400)
        why = next((text for kind, text in UNPARSED_WHY.items() if isinstance(exc.__cause__, kind)), "it cannot be parsed")
        return JSONResponse({"detail": f"the request body is not valid JSON ({why})"}, status_code=422)
    detail = exc.detail if isinstance(exc.detail, str) else "the request cannot be answered"
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    """The first problem as one line: malformed JSON says so; a field names itself."""
    error = exc.errors()[0] if exc.errors() else {}
    if error.get("type") == "json_invalid":
        detail = f"the request body is not valid JSON ({(error.get('ctx') or {}).get('error', 'cannot be parsed')})"
    else:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "the request"
        detail = f"{where}: {error.get('msg', 'is not valid')}"
    return JSONResponse({"detail": detail}, status_code=422)
