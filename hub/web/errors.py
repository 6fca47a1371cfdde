"""Turning every failure into a JSON answer with the right status, and nothing internal in it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler as AioHandler
from pydantic import ValidationError

from hub.errors import Conflict, EtiquetteBlocked, Invalid, NotAllowed, NotFound, PayloadTooLarge

log = logging.getLogger(__name__)

GENERIC_ERROR = "internal error; the details are in the server log"


class ApiError(Exception):
    """An answer other than success, decided by the web layer itself (401, 403, 429...)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = dict(headers or {})


class BadRequest(ApiError):
    """The request body is not JSON (400)."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class UnsupportedMediaType(ApiError):
    """A body that is not declared as JSON (415); cross-site forms cannot declare it."""

    def __init__(self, message: str) -> None:
        super().__init__(415, message)


class Unauthorized(ApiError):
    """No valid session cookie or API token (401)."""

    def __init__(self, message: str = "not logged in") -> None:
        super().__init__(401, message)


class Forbidden(ApiError):
    """Logged in, but not allowed: role too low or CSRF token missing (403)."""

    def __init__(self, message: str) -> None:
        super().__init__(403, message)


class TooManyRequests(ApiError):
    """Throttled (429), with the seconds to wait."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(429, message, headers={"Retry-After": str(retry_after)})


class ValidationFailed(Invalid):
    """A request did not validate; keeps every problem, the first one names `field`."""

    def __init__(self, problems: list[dict[str, str | None]]) -> None:
        first = problems[0] if problems else {"error": "invalid request", "field": None}
        super().__init__(first["error"] or "invalid request", first["field"])
        self.problems = problems


def validation_failed(err: ValidationError, prefix: str = "") -> ValidationFailed:
    """The API's form of a pydantic error: field paths as dotted names, never the input."""
    problems: list[dict[str, str | None]] = []
    for problem in err.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in problem["loc"])
        field = f"{prefix}{path}" if path or prefix else None
        problems.append({"error": problem["msg"], "field": field})
    return ValidationFailed(problems)


def error_response(status: int, message: str, field: str | None = None, **extra: Any) -> web.Response:
    """The JSON error body every failure is answered with."""
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    body.update(extra)
    return web.json_response(body, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: AioHandler) -> web.StreamResponse:
    """Map exceptions to JSON error answers; log and hide anything unexpected."""
    try:
        return await handler(request)
    except ApiError as err:
        response = error_response(err.status, err.message, err.field)
        response.headers.update(err.headers)
        return response
    except ValidationFailed as err:
        return error_response(422, str(err), err.field, problems=err.problems)
    except EtiquetteBlocked as err:
        return error_response(422, str(err), err.field, findings=err.findings)
    except Invalid as err:
        return error_response(422, str(err), err.field)
    except NotFound as err:
        return error_response(404, str(err))
    except NotAllowed as err:
        return error_response(403, str(err))
    except Conflict as err:
        return error_response(409, str(err))
    except PayloadTooLarge as err:
        return error_response(413, str(err))
    except web.HTTPException as err:
        if err.status < 400:
            raise
        response = error_response(err.status, err.reason)
        for name in ("Allow", "Retry-After"):
            if name in err.headers:
                response.headers[name] = err.headers[name]
        return response
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return error_response(500, GENERIC_ERROR)
