"""Reports for supervisors: the SLA report as JSON or CSV."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from hub.errors import Invalid
from hub.models import Role
from hub.sla import report
from hub.sla.report_format import render
from hub.web.routing import Ctx, RouteTable, respond

routes = RouteTable("reports")


class SlaQuery(BaseModel):
    """The period (default: the last 30 days), an optional team and the format."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: AwareDatetime | None = Field(None, alias="from")
    end: AwareDatetime | None = Field(None, alias="to")
    team: str | None = None
    format: Literal["json", "csv"] = "json"


@routes.get("/api/reports/sla", Role.SUPERVISOR, query=SlaQuery)
async def sla_report(ctx: Ctx) -> web.StreamResponse:
    """First-response times, compliance per policy, metric, team and agent, calls, promises and breaches."""
    q = ctx.query(SlaQuery)
    end: datetime = q.end or ctx.services.clock()
    start: datetime = q.start or end - timedelta(days=30)
    if start >= end:
        raise Invalid("`from` must be before `to`", "from")
    async with ctx.services.db.read() as conn:
        built = await report.build(conn, start, end, q.team)
    if q.format == "csv":
        return web.Response(
            text=render(built, "csv"),
            content_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="sla-report.csv"'},
        )
    return respond(built.to_dict())
