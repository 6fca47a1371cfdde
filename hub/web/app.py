"""Building the aiohttp application from the services."""

from __future__ import annotations

from importlib import metadata

from aiohttp import web

from hub.services import Services
from hub.web import (
    api_attachments,
    api_calls,
    api_compose,
    api_contacts,
    api_conversations,
    api_directory,
    api_fax,
    api_outbox,
    api_reports,
    api_rules,
    api_session,
    api_system,
    api_tasks,
    health,
    metrics,
    openapi,
    ws,
)
from hub.web.auth import auth_middleware
from hub.web.errors import error_middleware
from hub.web.headers import add_security_headers
from hub.web.keys import SERVICES
from hub.web.routing import ROUTES, RouteIndex, RouteTable
from hub.web.throttle import THROTTLE, LoginThrottle
from hub.web.ui import api_ui, pages, static_files

MAX_BODY_BYTES = 30 * 1024 * 1024
TITLE = "omnihub API"

TABLES: tuple[RouteTable, ...] = (
    health.routes,
    metrics.routes,
    openapi.routes,
    api_session.routes,
    api_conversations.routes,
    api_contacts.routes,
    api_directory.routes,
    api_outbox.routes,
    api_rules.routes,
    api_system.routes,
    api_reports.routes,
    api_tasks.routes,
    api_calls.routes,
    api_attachments.routes,
    api_fax.routes,
    api_compose.routes,
    api_ui.routes,
    pages.routes,
    static_files.routes,
    ws.routes,
)


def create_app(services: Services) -> web.Application:
    """The web application: REST API, health, metrics, OpenAPI and the channels' webhooks."""
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[
            metrics.metrics_middleware,
            error_middleware,
            pages.login_redirect_middleware,
            auth_middleware,
        ],
    )
    app[SERVICES] = services
    app[metrics.METRICS] = metrics.Metrics()
    app[THROTTLE] = LoginThrottle(services.clock)
    ws.setup(app)
    index = RouteIndex()
    for table in TABLES:
        index.add_table(app, table)
    for channel in services.channels.values():
        index.add_webhooks(app, channel)
    index.check(app.router.routes())
    app[ROUTES] = index
    app[openapi.OPENAPI] = openapi.build(index.specs, title=TITLE, version=_version())
    app.on_response_prepare.append(add_security_headers)
    app.on_startup.append(_check_routes)
    return app


async def _check_routes(app: web.Application) -> None:
    app[ROUTES].check(app.router.routes())


def _version() -> str:
    try:
        return metadata.version("omnihub")
    except metadata.PackageNotFoundError:
        return "0.0.0"
