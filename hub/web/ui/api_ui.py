"""Reads made for the UI: the enriched inbox list, a mail's HTML in a locked frame, CSV export."""

from __future__ import annotations

import csv
import dataclasses
import io
from typing import Any

from aiohttp import web
from pydantic import Field

from hub.models import Role, to_dict
from hub.web.api_conversations import ConversationQuery, conversation_filter
from hub.web.routing import Ctx, RouteTable, respond
from hub.web.schemas import Query
from hub.web.ui.reads import list_details, message_html

routes = RouteTable("ui")

EXPORT_PAGE = 500
CSV_COLUMNS = (
    "id",
    "channel",
    "channel_account",
    "contact_id",
    "subject",
    "status",
    "priority",
    "assignee_id",
    "team_id",
    "created_at",
    "updated_at",
    "due_at",
    "promise_due_at",
    "tags",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class FrameQuery(Query):
    """Whether remote images may load."""

    images: bool = Field(False, description="allow remote images (the agent asked)")


@routes.get("/api/inbox", Role.AGENT, query=ConversationQuery)
async def inbox_list(ctx: Ctx) -> web.StreamResponse:
    """The conversation list with each customer's name and the latest message's first words."""
    query = ctx.query(ConversationQuery)
    items, total = await ctx.services.inbox.list(conversation_filter(ctx, query))
    details = await list_details(
        ctx.services.db, [c.id for c in items], sorted({c.contact_id for c in items})
    )
    rows: list[dict[str, Any]] = []
    for conversation in items:
        row = to_dict(conversation)
        row["contact"] = details["contacts"].get(str(conversation.contact_id))
        row["preview"] = details["previews"].get(str(conversation.id))
        rows.append(row)
    return respond({"items": rows, "total": total, "now": ctx.services.clock().isoformat()})


def frame_policy(images: bool) -> str:
    """The CSP of a mail frame: no script, no fetches, styles inline, images only if asked."""
    img = "data: cid: https: http:" if images else "data: cid:"
    return (
        f"default-src 'none'; style-src 'unsafe-inline'; img-src {img}; font-src data:; "
        "form-action 'none'; base-uri 'none'; frame-ancestors 'self'; sandbox"
    )


@routes.get("/api/messages/{id}/html", Role.AGENT, query=FrameQuery)
async def message_frame(ctx: Ctx) -> web.StreamResponse:
    """A mail's sanitised HTML for a sandboxed frame; remote images stay blocked unless asked."""
    images = ctx.query(FrameQuery).images
    html = await message_html(ctx.services.db, ctx.path_id())
    body = (
        '<!doctype html><html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
        f"</head><body>{html or ''}</body></html>"
    )
    return web.Response(
        text=body,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": frame_policy(images),
            "X-Frame-Options": "SAMEORIGIN",
            "Referrer-Policy": "no-referrer",
        },
    )


def csv_cell(value: Any) -> str:
    """A cell a spreadsheet will not run as a formula."""
    text = "" if value is None else " ".join(value) if isinstance(value, list) else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


@routes.get("/api/export/conversations.csv", Role.SUPERVISOR, query=ConversationQuery)
async def export_conversations(ctx: Ctx) -> web.StreamResponse:
    """Every conversation matching the filters, as CSV (streamed page by page)."""
    query = ctx.query(ConversationQuery)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="conversations.csv"',
        }
    )
    await response.prepare(ctx.request)
    base = conversation_filter(ctx, query)
    offset = 0
    header = True
    while True:
        flt = dataclasses.replace(base, limit=EXPORT_PAGE, offset=offset)
        items, _ = await ctx.services.inbox.list(flt)
        out = io.StringIO()
        writer = csv.writer(out)
        if header:
            writer.writerow(CSV_COLUMNS)
            header = False
        for conversation in items:
            row = to_dict(conversation)
            writer.writerow([csv_cell(row[column]) for column in CSV_COLUMNS])
        await response.write(out.getvalue().encode())
        if len(items) < EXPORT_PAGE:
            break
        offset += EXPORT_PAGE
    await response.write_eof()
    return response
