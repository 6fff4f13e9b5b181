"""HTTP read side: ``GET /api/jobs/{id}/similar`` and ``GET /health`` (FastAPI).

Start it with ``.venv/bin/python -m api_export serve`` (or
``uvicorn api_export.app:create_app --factory``). Settings are read once, in
:func:`create_app`. Responses never carry stack traces or connection details: known
errors map to 400/404/503 with a short message, anything else to a generic 500.

The interactive docs (``/docs``, Swagger UI; ``/redoc``) load their JavaScript and CSS
from the installed ``fastapi-offline`` package, never from a CDN: they work offline.
"""

# No `from __future__ import annotations`: FastAPI must see the route signatures'
# annotations (built from settings inside create_app) as objects.
import logging
from typing import Annotated

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from pymongo.errors import PyMongoError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api_export.database import HEALTH_TIMEOUT_S
from api_export.similar import SimilarJobsResponse, SimilarJobsService
from jobsim.errors import InvalidRequestError, NotFoundError
from jobsim.settings import ApiSettings, Settings

log = logging.getLogger(__name__)

OBJECT_ID_PATTERN = r"^[0-9a-fA-F]{24}$"
STRING_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
DESCRIPTION = (
    "Similar jobs for a posting: its stored semantic neighbours (with the semantic score and "
    "the context bonuses that applied), or a category/city fallback. Closed, expired and draft "
    "jobs answer similar open jobs; deleted and unknown jobs 404."
)


class ErrorResponse(BaseModel):
    success: bool = False
    message: str = Field(description="What was wrong (never a stack trace or connection detail).")


class Health(BaseModel):
    status: str = Field(description="`ok` or `unavailable`.")
    database: str = Field(description="`ok` or `unreachable`.")


ERRORS = {
    400: {"model": ErrorResponse, "description": "Malformed job id or limit."},
    404: {"model": ErrorResponse, "description": "No such job, or the job is deleted."},
    500: {"model": ErrorResponse, "description": "Unexpected error (no details are exposed)."},
    503: {"model": ErrorResponse, "description": "The database is unavailable."},
}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"success": False, "message": message})


def _validation_message(exc: RequestValidationError) -> str:
    # Field and reason only: the offending input is never echoed back.
    parts = []
    for err in exc.errors()[:5]:
        field = ".".join(str(p) for p in err.get("loc", ())[1:]) or "request"
        parts.append(f"{field}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def create_app(settings: Settings | None = None, service: SimilarJobsService | None = None) -> FastAPI:
    """The API, with settings read once (``Settings()`` when not given)."""
    settings = settings or Settings()
    service = service or SimilarJobsService.from_settings(settings)
    app = FastAPIOffline(title="jobsim read side", version="1.1.0", description=DESCRIPTION)
    _add_error_handlers(app)
    _add_routes(app, service, settings.api)
    _document_400_not_422(app)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InvalidRequestError)
    def _bad_request(request: Request, exc: InvalidRequestError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, _validation_message(exc))

    @app.exception_handler(NotFoundError)
    def _not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code, headers=getattr(exc, "headers", None),
            content={"success": False, "message": str(exc.detail)},
        )

    @app.exception_handler(PyMongoError)
    def _database(request: Request, exc: PyMongoError) -> JSONResponse:
        log.error("database error on %s: %s", request.url.path, type(exc).__name__)
        return _error(503, "database unavailable")

    @app.exception_handler(Exception)
    def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected %s on %s", type(exc).__name__, request.url.path, exc_info=exc)
        return _error(500, "internal error")


def _add_routes(app: FastAPI, service: SimilarJobsService, api: ApiSettings) -> None:
    id_pattern = STRING_ID_PATTERN if api.string_ids else OBJECT_ID_PATTERN
    id_help = "The job's id: 24 hex digits (ObjectId)" + (
        "; or a string id of 1-64 letters, digits, _ - . : (24 hex digits are looked up as an "
        "ObjectId first, then as a string)" if api.string_ids else "."
    )

    @app.get(
        "/api/jobs/{job_id}/similar",
        response_model=SimilarJobsResponse,
        response_model_by_alias=True,
        responses=ERRORS,
        summary="Similar jobs of one posting",
    )
    def get_similar(
        job_id: Annotated[str, Path(pattern=id_pattern, description=id_help)],
        limit: Annotated[int, Query(ge=1, le=api.max_limit, description="Most results returned.")] = 10,
    ) -> SimilarJobsResponse:
        # A plain def: FastAPI runs it in its thread pool, so blocking pymongo calls are fine.
        return service.similar_jobs(job_id, limit)

    @app.get("/health", response_model=Health, responses={503: {"model": Health}}, summary="Liveness")
    def health() -> JSONResponse:
        try:
            service.reads.ping(HEALTH_TIMEOUT_S)
        except PyMongoError as exc:
            log.warning("health: database unreachable (%s)", type(exc).__name__)
            return JSONResponse(status_code=503, content={"status": "unavailable", "database": "unreachable"})
        return JSONResponse(content={"status": "ok", "database": "ok"})


def _document_400_not_422(app: FastAPI) -> None:
    """Validation errors answer 400 (see the handler), so the spec must not promise 422."""
    original = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            spec = original()
            for path in spec.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            schemas = spec.get("components", {}).get("schemas", {})
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
