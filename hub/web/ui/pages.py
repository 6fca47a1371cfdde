"""The UI's pages: login, inbox, conversation and the supervisor dashboard."""

from __future__ import annotations

import functools
from html import escape
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler as AioHandler

from hub.inbox import ConversationFilter
from hub.models import Agent, Availability, ConversationStatus, Role, to_dict
from hub.stats import collect
from hub.web.errors import ApiError
from hub.web.routing import ROUTES, Access, Ctx, RouteTable
from hub.web.ui.charts import bar_chart
from hub.web.ui.measures import collect as measure
from hub.web.ui.measures import duration
from hub.web.ui.shell import page
from hub.web.ui.strings import pick_language, text

routes = RouteTable("ui")

LOGIN_PATH = "/login"


def _escaped(language: str, key: str) -> str:
    return escape(text(language, key))


def _nav(agent: Agent, language: str) -> str:
    links = [f'<a href="/inbox" data-key="nav.inbox">{escape(text(language, "nav.inbox"))}</a>']
    if agent.role >= Role.SUPERVISOR:
        links.append(f'<a href="/dashboard">{escape(text(language, "nav.dashboard"))}</a>')
    options = "".join(
        f'<option value="{code}"{" selected" if code == language else ""}>{name}</option>'
        for code, name in (("en", "English"), ("zh", "中文"))
    )
    states = "".join(
        f'<option value="{a.value}"{" selected" if a is agent.availability else ""}>'
        f"{escape(text(language, 'availability.' + a.value))}</option>"
        for a in Availability
    )
    return (
        f'<header class="top"><strong class="brand">omnihub</strong><nav>{"".join(links)}</nav>'
        '<span class="grow"></span>'
        f'<span id="live" class="live off">{escape(text(language, "offline"))}</span>'
        f'<label class="lang">{escape(text(language, "language"))} '
        f'<select id="language">{options}</select></label>'
        f'<span class="who">{escape(agent.display_name)}</span>'
        f'<select id="availability" aria-label="{escape(text(language, "availability"))}">{states}</select>'
        f'<button id="logout" type="button">{escape(text(language, "logout"))}</button></header>'
    )


@routes.get(LOGIN_PATH, Access.PUBLIC)
async def login_page(ctx: Ctx) -> web.StreamResponse:
    """The login form."""
    language = pick_language(None, ctx.request.headers.get("Accept-Language"))
    t = functools.partial(_escaped, language)
    body = (
        f'<main class="login"><h1>omnihub</h1><form id="login-form">'
        f'<label>{t("login.username")}<input name="username" autocomplete="username" required></label>'
        f'<label>{t("login.password")}<input name="password" type="password" '
        f'autocomplete="current-password" required></label>'
        f'<p id="login-error" class="error" hidden>{t("login.failed")}</p>'
        f'<button type="submit">{t("login.submit")}</button></form></main>'
    )
    return page(text(language, "login.title"), language, body, script="login.js")


@routes.get("/", Role.AGENT)
async def home(ctx: Ctx) -> web.StreamResponse:
    """The start page: the inbox."""
    raise web.HTTPFound("/inbox")


def _inbox_page(ctx: Ctx, conversation_id: int | None) -> web.Response:
    agent = ctx.agent
    language = pick_language(agent.language)
    assert ctx.auth is not None
    data = {
        "agent": to_dict(agent),
        "csrf_token": ctx.auth.csrf_token,
        "conversation_id": conversation_id,
        "statuses": [s.value for s in ConversationStatus],
    }
    body = (
        _nav(agent, language)
        + '<main class="inbox"><section id="list-pane" class="list-pane"></section>'
        + '<section id="conversation-pane" class="conversation-pane"></section></main>'
        + f'<footer class="hint">{escape(text(language, "shortcuts"))}</footer>'
    )
    return page(text(language, "nav.inbox"), language, body, script="inbox.js", data=data)


@routes.get("/inbox", Role.AGENT)
async def inbox_page(ctx: Ctx) -> web.StreamResponse:
    """The inbox: every channel's conversations in one list, and the open conversation."""
    return _inbox_page(ctx, None)


@routes.get("/conversations/{id}", Role.AGENT)
async def conversation_page(ctx: Ctx) -> web.StreamResponse:
    """The inbox with one conversation open."""
    return _inbox_page(ctx, ctx.path_id())


@routes.get("/dashboard", Role.SUPERVISOR)
async def dashboard_page(ctx: Ctx) -> web.StreamResponse:
    """The supervisor dashboard: counts, charts, agent availability, channels, export."""
    services = ctx.services
    language = pick_language(ctx.agent.language)
    t = functools.partial(_escaped, language)
    stats = await collect(services.db)
    _, breached = await services.inbox.list(ConversationFilter(breached=True, limit=1))
    agents = await services.directory.agents()
    measures = await measure(services.db, services.clock())
    share = measures.three_ring_share
    conversations = [
        (text(language, f"status.{s.value}"), stats["conversations"][s.value]) for s in ConversationStatus
    ]
    per_channel = [
        (channel, sum(directions.values())) for channel, directions in stats["messages"]["by_channel"].items()
    ]
    outbox = [(status, count) for status, count in stats["outbox"].items()]
    agent_rows = "".join(
        f"<tr><td>{escape(a.display_name)}</td><td>{escape(a.role.name.lower())}</td>"
        f'<td class="availability {a.availability.value}">'
        f"{t('availability.' + a.availability.value)}</td></tr>"
        for a in agents
        if a.active
    )
    channel_rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{escape(channel.kind)}</td><td>{escape(channel.state().value)}</td></tr>"
        for name, channel in sorted(services.channels.items())
    )
    body = (
        _nav(ctx.agent, language)
        + f'<main class="dashboard"><h1>{t("dashboard.title")}</h1>'
        + '<section class="cards">'
        + f'<div class="card"><span>{t("dashboard.contacts")}</span><b>{stats["contacts"]}</b></div>'
        + f'<div class="card"><span>{t("dashboard.breached")}</span><b id="breached">{breached}</b></div>'
        + f'<div class="card"><span>{t("dashboard.quarantine")}</span><b>{stats["quarantined"]}</b></div>'
        + f'<div class="card"><span>{t("dashboard.first_response")}</span>'
        + f'<b id="first-response">{duration(measures.first_response_median)}</b>'
        + f"<small>p90 {duration(measures.first_response_p90)} · n={measures.responded}</small></div>"
        + f'<div class="card"><span>{t("dashboard.three_rings")}</span>'
        + f'<b id="three-rings">{"—" if share is None else f"{share:.0%}"}</b>'
        + f"<small>n={measures.calls}</small></div>"
        + "</section>"
        + f'<section class="charts"><figure><figcaption>{t("dashboard.conversations")}</figcaption>'
        + bar_chart(text(language, "dashboard.conversations"), conversations)
        + f"</figure><figure><figcaption>{t('dashboard.messages')}</figcaption>"
        + bar_chart(text(language, "dashboard.messages"), per_channel)
        + f"</figure><figure><figcaption>{t('dashboard.outbox')}</figcaption>"
        + bar_chart(text(language, "dashboard.outbox"), outbox)
        + "</figure></section>"
        + f'<section><h2>{t("dashboard.agents")}</h2><table id="agents">{agent_rows}</table></section>'
        + f'<section><h2>{t("dashboard.channels")}</h2><table id="channels">{channel_rows}</table></section>'
        + f"<section><h2>{t('dashboard.rules')}</h2><p>{t('dashboard.rules_missing')}</p></section>"
        + f'<p><a id="export" href="/api/export/conversations.csv" download>{t("dashboard.csv")}</a></p>'
        + "</main>"
    )
    assert ctx.auth is not None
    data = {"agent": to_dict(ctx.agent), "csrf_token": ctx.auth.csrf_token}
    return page(text(language, "dashboard.title"), language, body, script="dashboard.js", data=data)


@web.middleware
async def login_redirect_middleware(request: web.Request, handler: AioHandler) -> web.StreamResponse:
    """Send a browser that is not logged in from a UI page to the login page."""
    try:
        return await handler(request)
    except ApiError as err:
        spec = request.app[ROUTES].spec(request.match_info.route) if request.match_info.route else None
        page_route = spec is not None and spec.tag == "ui" and not spec.path.startswith("/api/")
        if err.status == 401 and request.method == "GET" and page_route:
            raise web.HTTPFound(f"{LOGIN_PATH}?next={quote(request.path_qs, safe='')}") from None
        raise
