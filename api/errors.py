"""One place that turns every error into ``application/problem+json`` (RFC 9457).

A :class:`~geo.errors.GridmapError` gets the status of :data:`STATUS_CODES`, this module's one
class -> status map (4xx for what the client sent), and keeps its message and Chinese message;
request validation (also a pydantic model a route builds from the client's data) becomes 422
with the fields named, and text that is not valid Unicode 422 wherever it is found; an unknown
route 404; anything else is a bug: 500 with a generic message and no
stack trace. Every answer is encodable: text the client sent (a lone surrogate in a field name or
an id) is echoed with U+FFFD in its place, so that writing the error can never fail in turn.
"""

from __future__ import annotations

import logging
import math
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from geo.errors import (
    Conflict,
    Forbidden,
    GridmapError,
    InputError,
    InternalError,
    NotFound,
    StoreError,
    TooLarge,
    Unauthorized,
)

PROBLEM = "application/problem+json"
_SURROGATE = re.compile("[\ud800-\udfff]")
#: how pydantic names the member of a union of models in an error's location (``IncidentBatch``)
#: and of the member of a union of types (``int``, ``function-before[valid_text(), str]``)
_UNION_MEMBER = re.compile(r"[A-Z][A-Za-z]+|int|str|float|bool|[a-z-]+\[.*\]")
log = logging.getLogger("gridmap.api")
#: the HTTP status of each kind of error, most specific class first (an error takes the first
#: class it is an instance of): geo's exceptions say what went wrong, this map how HTTP says it
STATUS_CODES: dict[type[GridmapError], int] = {
    TooLarge: 413,
    InputError: 422,
    NotFound: 404,
    Conflict: 409,
    Forbidden: 403,
    Unauthorized: 401,
    StoreError: 500,
    InternalError: 500,
    GridmapError: 400,
}


def status_of(error: GridmapError) -> int:
    """The HTTP status of ``error``: its first class in :data:`STATUS_CODES`."""
    return next(status for kind, status in STATUS_CODES.items() if isinstance(error, kind))


def problem(
    status: int,
    detail: str,
    *,
    zh: str | None = None,
    hint: str | None = None,
    kind: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": f"urn:gridmap:error:{kind or status}",
        "title": _title(status),
        "status": status,
        "detail": detail,
    }
    if zh:
        body["detail_zh"] = zh
    if hint:
        body["hint"] = hint
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(_encodable(body), status_code=status, media_type=PROBLEM, headers=headers)


def _title(status: int) -> str:
    """The status's standard reason phrase (``404`` -> ``"Not Found"``), as RFC 9457 suggests."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _encodable(value: Any) -> Any:
    """``value`` as JSON can always write it: strings UTF-8 encodable (lone surrogates become
    U+FFFD), numbers as numbers, anything else (a numpy scalar, a time) as its text."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {str(_encodable(k)): _encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_encodable(v) for v in value]
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)  # a numpy scalar
    return _encodable(item()) if callable(item) and not hasattr(value, "__len__") else str(value)


def _kind(error: Exception) -> str:
    name = type(error).__name__
    return "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-")


async def gridmap_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, GridmapError)
    status = status_of(error)
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return problem(
        status,
        error.message,
        zh=error.zh,
        hint=error.hint,
        kind=_kind(error),
        headers=headers,
        **getattr(error, "problem_extra", {}),
    )


def _where(location: tuple) -> str:
    # a body that may be one of several models names the model tried: the client never sees it
    parts = [str(p) for p in location if p != "body" and not _UNION_MEMBER.fullmatch(str(p))]
    return ".".join(parts) or "body"


#: which errors say most: a wrong value before a missing or extra field (in a union of models
#: the member the client did not mean reports its missing fields first)
_VAGUE = ("missing", "extra_forbidden")


async def validation_error(request: Request, error: Exception) -> JSONResponse:
    """422 naming the fields: the request's (FastAPI) or a model built from the client's data."""
    assert isinstance(error, RequestValidationError | ValidationError)
    errors = [
        {
            "field": _where(tuple(e.get("loc", ()))),
            "message": str(e.get("msg", "invalid")).removeprefix("Value error, "),
        }
        for e in sorted(error.errors(), key=lambda e: e.get("type") in _VAGUE)
    ]
    first = errors[0] if errors else {"field": "request", "message": "invalid"}
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return problem(
        422,
        f"{first['field']}: {first['message']}{more}",
        zh=f"请求参数有误：{first['field']}",
        kind="validation",
        errors=errors[:50],
    )


async def unicode_error(request: Request, error: Exception) -> JSONResponse:
    """Text with a lone surrogate that reached an encoder: the client's text, so 422."""
    assert isinstance(error, UnicodeEncodeError)
    if "surrogate" not in str(error.reason):
        return await unexpected_error(request, error)
    return problem(
        422,
        "the request holds text that is not valid Unicode (a lone surrogate such as \\ud800)",
        zh="请求中含有无效的 Unicode 文本（孤立代理字符）",
        kind="validation",
    )


async def http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    detail = error.detail if isinstance(error.detail, str) else _title(error.status_code)
    if error.status_code == 404 and detail == "Not Found":
        detail = f"no such route: {request.method} {request.url.path}; see /docs"
    return problem(error.status_code, str(detail), headers=getattr(error, "headers", None))


async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
    # a bug, not the client's fault: log it here, never send the traceback
    log.exception("internal error on %s %s", request.method, request.url.path)
    return problem(
        500,
        f"internal error ({type(error).__name__}); the request was not completed, please report it",
        zh="服务器内部错误，请求未完成，请报告此问题",
        kind="internal",
    )


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(GridmapError, gridmap_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ValidationError, validation_error)
    app.add_exception_handler(UnicodeEncodeError, unicode_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
