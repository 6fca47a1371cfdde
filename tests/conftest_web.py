"""Helpers for the web API tests: callers of each role and JSON requests with status checks."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from hub.models import Agent, Availability, Role
from hub.services import Services, open_services

PASSWORD = "correct horse battery staple"
_numbers = itertools.count(1)


async def add_agent(
    services: Services,
    role: Role = Role.AGENT,
    username: str | None = None,
    *,
    password: str | None = None,
    availability: Availability = Availability.AVAILABLE,
) -> Agent:
    """A user; without a password (fast: no hashing) unless one is given."""
    name = username or f"{role.name.lower()}{next(_numbers)}"
    return await services.directory.add_agent(name, password, role, availability=availability)


@dataclass
class Caller:
    """Makes JSON requests as one caller and checks the status."""

    client: TestClient[Any, Any]
    agent: Agent | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def agent_id(self) -> int:
        """The caller's agent id."""
        assert self.agent is not None
        return self.agent.id

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        expect: int | None = 200,
    ) -> Any:
        """Send a request; return the JSON body (or the raw bytes if not JSON)."""
        kwargs: dict[str, Any] = {"headers": {**self.headers, **(headers or {})}}
        if json is not None:
            kwargs["json"] = json
        if data is not None:
            kwargs["data"] = data
        async with self.client.request(method, path, **kwargs) as response:
            body: Any = await response.read()
            if response.content_type == "application/json":
                body = await response.json()
            if expect is not None:
                assert response.status == expect, (method, path, response.status, body)
            return body

    async def get(self, path: str, **kwargs: Any) -> Any:
        """GET."""
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        """POST."""
        return await self.call("POST", path, json=json, **kwargs)

    async def patch(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        """PATCH."""
        return await self.call("PATCH", path, json=json, **kwargs)

    async def put(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        """PUT."""
        return await self.call("PUT", path, json=json, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Any:
        """DELETE."""
        return await self.call("DELETE", path, **kwargs)


async def as_role(client: TestClient[Any, Any], services: Services, role: Role) -> Caller:
    """A caller with a new agent of `role`, authenticated by API token."""
    agent = await add_agent(services, role)
    token = await services.directory.issue_token(agent.id, "tests")
    return Caller(client, agent, {"Authorization": f"Bearer {token}"})


@asynccontextmanager
async def services_with_channels(
    make_config: Any,
    clock: Any,
    channels: list[dict[str, Any]],
    *,
    start: bool = True,
) -> AsyncIterator[Services]:
    """Services whose configuration has these channels, built (and started) as the runtime does."""
    config = make_config(channels=channels)
    services = await open_services(config, clock=clock)
    try:
        async with aiohttp.ClientSession() as http:
            services.attach_channels(http)
            if start:
                for channel in services.channels.values():
                    await channel.start(services.inbox.ingest)
            yield services
            for channel in services.channels.values():
                await channel.stop()
    finally:
        await services.close()
