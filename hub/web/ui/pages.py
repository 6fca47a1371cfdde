"""The UI's pages: login, inbox, conversation and the supervisor dashboard."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from html import escape
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler as AioHandler
from sqlalchemy import func, select

from hub.inbox import ConversationFilter
from hub.models import Agent, Availability, ConversationStatus, Role, to_dict
from hub.sla import report
from hub.stats import collect
from hub.store import schema
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
    end = services.clock()
    async with services.db.read() as conn:
        built = await report.build(conn, end - timedelta(days=30), end)
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
        + f'<b id="first-response">{_seconds(built.first_response_median_seconds)}</b>'
        + f"<small>p90 {_seconds(built.first_response_p90_seconds)} · n={built.first_responses}</small></div>"
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
        + _sla_section(built, t)
        + await _complaints_section(ctx, t)
        + _rules_section(ctx, t)
        + f'<p><a id="export" href="/api/export/conversations.csv" download>{t("dashboard.csv")}</a></p>'
        + "</main>"
    )
    assert ctx.auth is not None
    data = {"agent": to_dict(ctx.agent), "csrf_token": ctx.auth.csrf_token}
    return page(text(language, "dashboard.title"), language, body, script="dashboard.js", data=data)


def _sla_section(built: report.SlaReport, t: Callable[[str], str]) -> str:
    """Compliance in business time over 30 days, from the SLA clock (the full report: /api/reports/sla)."""
    rows = "".join(
        f"<tr><td>{escape(c.metric)}</td><td>{c.met}</td><td>{c.breached}</td><td>{c.open}</td>"
        f"<td>{'—' if c.rate is None else f'{c.rate:.0%}'}</td></tr>"
        for c in built.compliance.get("metric", [])
    )
    kept = built.promises_kept_rate
    kept_text = "—" if kept is None else f"{kept:.0%}"
    return (
        f'<section id="sla"><h2>{t("dashboard.sla")}</h2>'
        f'<p>{t("dashboard.promises_kept")} <b id="promises-kept">{kept_text}</b>'
        f" ({built.promises_kept}/{built.promises_made}) · {t('dashboard.abandoned')} {built.calls_abandoned}"
        f" · {t('dashboard.receipt_checks')} {built.receipt_checks_done}/{built.receipt_checks_due}</p>"
        f'<table id="compliance"><tr><th>{t("dashboard.metric")}</th><th>{t("dashboard.met")}</th>'
        f"<th>{t('dashboard.breaches')}</th><th>{t('dashboard.open')}</th><th>%</th></tr>{rows}</table>"
        f'<p><a href="/api/reports/sla?format=csv" download>{t("dashboard.sla_csv")}</a></p></section>'
    )


def _seconds(value: float | None) -> str:
    return duration(None if value is None else timedelta(seconds=value))


async def _complaints_section(ctx: Ctx, t: Callable[[str], str]) -> str:
    """C2: complaints per department over 30 days (conversations tagged `complaint`)."""
    c, ct, tm = schema.conversations, schema.conversation_tags, schema.teams
    since = ctx.services.clock() - timedelta(days=30)
    async with ctx.services.db.read() as conn:
        rows = await conn.execute(
            select(func.coalesce(tm.c.department, tm.c.name), func.count())
            .select_from(c.join(ct, ct.c.conversation_id == c.c.id).outerjoin(tm, tm.c.id == c.c.team_id))
            .where(ct.c.tag == "complaint", c.c.created_at >= since)
            .group_by(func.coalesce(tm.c.department, tm.c.name))
        )
        counts = sorted(((name or "—", int(n)) for name, n in rows), key=lambda x: -x[1])
    body = "".join(f"<tr><td>{escape(name)}</td><td>{n}</td></tr>" for name, n in counts)
    return f'<section><h2>{t("dashboard.complaints")}</h2><table id="complaints">{body}</table></section>'


def _rules_section(ctx: Ctx, t: Callable[[str], str]) -> str:
    """The rule files in force and the last failed reload, if any."""
    status = ctx.services.rules.status()
    error = f'<pre id="rules-error">{escape(status.last_error)}</pre>' if status.last_error else ""
    loaded = status.loaded_at.isoformat(timespec="seconds") if status.loaded_at else "—"
    return (
        f'<section><h2>{t("dashboard.rules")}</h2><p id="rules-version">'
        f"{t('dashboard.rules_version')} {escape(status.version or '—')} · {loaded}</p>{error}</section>"
    )


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
