"""Plain-Django JSON views: method dispatch, body parsing, errors as JSON, list paging, health.

Every error a client can cause is a JSON body ``{"error": "...", "fields": {...}?}`` with a 4xx
status, including Django's own 404 and 500 (``handler404``/``handler500`` point here).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.db import DatabaseError, connection
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse

from common.validation import Invalid

MAX_PAGE = 1000
DEFAULT_PAGE = 100
MAX_JSON_DEPTH = 32
"""Nesting a request body may have. The APIs need three levels; the bound keeps a hostile body from
exhausting the stack here or anywhere the value goes next (validation, the event's JSON)."""


class ApiError(Exception):
    def __init__(self, status: int, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = dict(fields or {})

    def response(self) -> JsonResponse:
        body: dict[str, Any] = {"error": self.message}
        if self.fields:
            body["fields"] = self.fields
        return JsonResponse(body, status=self.status)


View = Callable[..., HttpResponse]


def methods(**handlers: View) -> View:
    """One view for a path: ``methods(get=..., post=...)``; other methods get 405 with ``Allow``."""
    allowed = {name.upper(): fn for name, fn in handlers.items()}

    def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        fn = allowed.get(request.method or "")
        if fn is None:
            response = ApiError(405, f"method {request.method} not allowed here").response()
            response["Allow"] = ", ".join(sorted(allowed))
            return response
        try:
            return fn(request, **kwargs)
        except Invalid as e:
            return ApiError(400, "invalid request body", e.errors).response()
        except ApiError as e:
            return e.response()

    return view


def read_json(request: HttpRequest) -> Any:
    """The decoded JSON body; a 400 that says what is wrong with it otherwise."""
    if not request.body:
        raise ApiError(400, "the request body is empty; send a JSON object")
    try:
        text = request.body.decode()
    except UnicodeDecodeError:
        raise ApiError(400, "the request body is not UTF-8 text") from None
    # Checked before parsing: json.loads recurses once per level and raises RecursionError.
    if _nesting(text) > MAX_JSON_DEPTH:
        raise ApiError(400, f"the request body is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as e:
        where = f"line {e.lineno}, column {e.colno}"
        raise ApiError(400, f"the request body is not valid JSON: {e.msg} ({where})") from None
    except ValueError as e:  # NaN/Infinity, or an integer beyond Python's digit limit
        raise ApiError(400, f"the request body is not valid JSON: {e}") from None


def _nesting(text: str) -> int:
    """The deepest bracket nesting of ``text``, brackets inside strings excluded; iterative."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def get_or_404(queryset: QuerySet[Any], what: str, **lookup: Any) -> Any:
    row = queryset.filter(**lookup).first()
    if row is None:
        raise ApiError(404, f"{what} {next(iter(lookup.values()), '')} not found")
    return row


def listing(request: HttpRequest, queryset: QuerySet[Any], render: Callable[[Any], dict[str, Any]]) -> JsonResponse:
    """``{"items": [...], "count": total}`` with ``?limit=`` (default 100, at most 1000) and ``?offset=``."""
    limit = _query_int(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    offset = _query_int(request, "offset", 0, 0, None)
    items: Iterable[Model] = queryset[offset : offset + limit]
    return JsonResponse({"items": [render(row) for row in items], "count": queryset.count()})


def include_deleted(request: HttpRequest) -> bool:
    """``?include_deleted=true`` lists tombstones too (to see a deletion has propagated)."""
    return request.GET.get("include_deleted", "").lower() in {"1", "true", "yes"}


def _query_int(request: HttpRequest, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.GET.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter {name} must be an integer") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ApiError(400, f"query parameter {name} must be {bound}")
    return value


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and readiness: the process serves and its database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as e:
        return JsonResponse({"status": "unavailable", "error": f"database: {e}"}, status=503)
    return JsonResponse({"status": "ok"})


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"error": f"no such resource: {request.path}"}, status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"error": "internal server error (see the service's log)"}, status=500)
