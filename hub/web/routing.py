"""The declarative route table: one entry per endpoint, used to register it and to document it.

Every entry says who may call it: a minimum `Role`, or `Access.PUBLIC` (no login) or
`Access.WEBHOOK` (a channel's endpoint that checks its own signatures). Request bodies and
query strings are declared as pydantic models; they are validated after the access check
and before the handler runs. Path parameters are ids: `{name}` matches digits only.
"""

from __future__ import annotations

import enum
import functools
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler as AioHandler
from pydantic import BaseModel, ValidationError

from channels.base import Channel
from hub.errors import ConfigError, NotFound
from hub.models import Agent, Role
from hub.services import Services
from hub.web.errors import BadRequest, UnsupportedMediaType, validation_failed
from hub.web.keys import AUTH, SERVICES, Auth

MAX_ID = 2**63 - 1
PARAM = re.compile(r"\{([a-z_]+)\}")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
JSON_TYPE = "application/json"

M = TypeVar("M", bound=BaseModel)


class Access(enum.Enum):
    """Routes that need no login."""

    PUBLIC = "public"
    WEBHOOK = "webhook"


Required = Role | Access
Handler = Callable[["Ctx"], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint: method, path, who may call it, what it takes, what it does."""

    method: str
    path: str
    access: Required
    summary: str
    tag: str
    handler: Handler | None = None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    status: int = 200

    @property
    def operation_id(self) -> str:
        """A unique name for the operation, from its handler or its method and path."""
        if self.handler is not None:
            return self.handler.__name__
        return re.sub(r"[^a-z0-9]+", "_", f"{self.method} {self.path}".lower()).strip("_")

    @property
    def path_params(self) -> list[str]:
        """The names of the path parameters, in order."""
        return PARAM.findall(self.path)


@dataclass(frozen=True, slots=True)
class Ctx:
    """What a handler gets: the request, the services, the caller and the validated input."""

    request: web.Request
    services: Services
    auth: Auth | None
    payload: BaseModel | None = None
    params: BaseModel | None = None

    @property
    def agent(self) -> Agent:
        """The logged-in caller (only on routes that need a login)."""
        if self.auth is None:
            raise RuntimeError("this route needs no login, so it has no agent")
        return self.auth.agent

    def body(self, model: type[M]) -> M:
        """The validated request body, of the model the route declares."""
        if not isinstance(self.payload, model):
            raise TypeError(f"the route does not declare the body model {model.__name__}")
        return self.payload

    def query(self, model: type[M]) -> M:
        """The validated query string, of the model the route declares."""
        if not isinstance(self.params, model):
            raise TypeError(f"the route does not declare the query model {model.__name__}")
        return self.params

    def path_id(self, name: str = "id") -> int:
        """An id from the path; ids beyond the store's range do not exist."""
        value = int(self.request.match_info[name])
        if value > MAX_ID:
            raise NotFound(f"{name} {value} does not exist")
        return value


class RouteTable:
    """The routes of one resource, declared with decorators on their handlers."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        path: str,
        access: Required,
        *,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        status: int = 200,
    ) -> Callable[[Handler], Handler]:
        """Declare the decorated handler as the endpoint `method path`."""

        def declare(handler: Handler) -> Handler:
            summary = (handler.__doc__ or "").strip().splitlines()
            if not summary:
                raise ConfigError(f"handler {handler.__name__} needs a docstring for its summary")
            self.routes.append(
                Route(method, path, access, summary[0], self.tag, handler, body, query, status)
            )
            return handler

        return declare

    def get(self, path: str, access: Required, **kwargs: Any) -> Callable[[Handler], Handler]:
        """Declare a GET endpoint."""
        return self.route("GET", path, access, **kwargs)

    def post(self, path: str, access: Required, **kwargs: Any) -> Callable[[Handler], Handler]:
        """Declare a POST endpoint."""
        return self.route("POST", path, access, **kwargs)

    def patch(self, path: str, access: Required, **kwargs: Any) -> Callable[[Handler], Handler]:
        """Declare a PATCH endpoint."""
        return self.route("PATCH", path, access, **kwargs)

    def put(self, path: str, access: Required, **kwargs: Any) -> Callable[[Handler], Handler]:
        """Declare a PUT endpoint."""
        return self.route("PUT", path, access, **kwargs)

    def delete(self, path: str, access: Required, **kwargs: Any) -> Callable[[Handler], Handler]:
        """Declare a DELETE endpoint."""
        return self.route("DELETE", path, access, **kwargs)


class RouteIndex:
    """The app's routes: the declared entries and which aiohttp route each one became."""

    def __init__(self) -> None:
        self.specs: list[Route] = []
        self._by_route: dict[web.AbstractRoute, Route] = {}

    def add_table(self, app: web.Application, table: RouteTable) -> None:
        """Register every route of a table."""
        for spec in table.routes:
            assert spec.handler is not None
            route = app.router.add_route(
                spec.method, PARAM.sub(r"{\1:\\d{1,19}}", spec.path), _endpoint(spec, spec.handler)
            )
            self.specs.append(spec)
            self._by_route[route] = spec

    def add_webhooks(self, app: web.Application, channel: Channel) -> None:
        """Register a channel's webhook routes, which must stay under its own prefix."""
        prefix = f"/webhooks/{channel.kind}/{channel.name}/"
        for definition in channel.routes():
            if not definition.path.startswith(prefix):
                raise ConfigError(
                    f"channel {channel.name}: webhook path {definition.path} is not under {prefix}"
                )
            spec = Route(
                definition.method,
                definition.path,
                Access.WEBHOOK,
                f"Webhook of the {channel.kind} channel {channel.name}",
                "webhooks",
            )
            before = set(app.router.routes())
            app.router.add_routes([definition])
            for route in set(app.router.routes()) - before:
                self._by_route[route] = spec
            self.specs.append(spec)

    def spec(self, route: web.AbstractRoute) -> Route | None:
        """The declared entry of an aiohttp route, if it has one."""
        return self._by_route.get(route)

    def check(self, routes: Iterable[web.AbstractRoute]) -> None:
        """Refuse any route that was registered without a declared access."""
        missing = [
            f"{r.method} {r.resource.canonical if r.resource else '?'}"
            for r in routes
            if r not in self._by_route
        ]
        if missing:
            raise ConfigError(f"routes without a declared role: {', '.join(sorted(missing))}")


ROUTES = web.AppKey("routes", RouteIndex)


def respond(data: Any, status: int = 200) -> web.Response:
    """A JSON answer (UTF-8, not ASCII-escaped)."""
    return web.json_response(data, status=status, dumps=_dumps)


_dumps = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


def _endpoint(spec: Route, handler: Handler) -> AioHandler:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        params = _parse_query(spec.query, request) if spec.query is not None else None
        payload = await _parse_body(spec.body, request) if spec.body is not None else None
        ctx = Ctx(request, request.app[SERVICES], request.get(AUTH), payload, params)
        return await handler(ctx)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def _parse_query(model: type[BaseModel], request: web.Request) -> BaseModel:
    data = {key: ",".join(request.query.getall(key)) for key in request.query}
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise validation_failed(err) from None


async def _parse_body(model: type[BaseModel], request: web.Request) -> BaseModel:
    raw = await request.read()
    if raw.strip() and request.content_type != JSON_TYPE:
        raise UnsupportedMediaType(f"send the body as JSON, with Content-Type: {JSON_TYPE}")
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the request body is not valid JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise validation_failed(err) from None
