"""One IMAP connection, built around aioimaplib's known faults.

Every command runs under `asyncio.timeout`; a lost connection does not fail aioimaplib's
pending commands, so any error raises `ImapError` and the caller throws the session away
and opens a new one. FETCH batches stay at `BATCH` UIDs or fewer (larger responses in one
network read hit the parser's recursion limit). Mailbox names are quoted and sent in
modified UTF-7.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import aioimaplib

from channels.email.imap import responses, utf7
from channels.email.imap.responses import MailboxStatus
from channels.email.oauth import StaticToken, Tokens
from hub.errors import ChannelAuthError, ChannelUnavailable

BATCH = 200
READ_SLICE = 8192
IDLE_MAX_SECONDS = 28 * 60
T = TypeVar("T")


class ImapError(ChannelUnavailable):
    """The connection failed or the server refused a command: rebuild the connection."""


class _Fetch(aioimaplib.FetchCommand):  # type: ignore[misc]
    """UID FETCH that tells whether its response is complete in constant time per line.

    aioimaplib re-reads every line received so far after each new line (quadratic in the
    number of mails a FETCH returns), and re-arms a timer for every line; this keeps the
    parenthesis balance since the last `n FETCH (` line as lines arrive, and notes the time
    of the last data for one watchdog that ends the command after `idle_seconds` of silence
    (a lost connection does not fail aioimaplib's commands).
    """

    def __init__(
        self, tag: str, uids: str, parts: str, loop: asyncio.AbstractEventLoop, idle_seconds: float
    ) -> None:
        super().__init__(tag, uids, parts, prefix="UID", loop=loop, timeout=None)
        self._seen = 0
        self._open = 0
        self._idle_seconds = idle_seconds
        self._last_data = loop.time()
        self._watchdog = loop.call_later(idle_seconds, self._check_silence)

    def wait_data(self) -> bool:
        lines = self._resp_lines
        for line in lines[self._seen :]:
            if isinstance(line, bytes):
                if self.FETCH_MESSAGE_DATA_RE.match(line):
                    self._open = 0
                self._open += line.count(b"(") - line.count(b")")
        self._seen = len(lines)
        return self._open != 0

    def close(self, line: bytes, result: str) -> None:
        self.stop_watching()
        super().close(line, result)

    def stop_watching(self) -> None:
        """End the watchdog (the command is over, or abandoned)."""
        self._watchdog.cancel()

    def _reset_timer(self) -> None:
        self._last_data = self._loop.time()

    def _check_silence(self) -> None:
        quiet = self._loop.time() - self._last_data
        if quiet >= self._idle_seconds:
            self._timeout_callback()
        else:
            self._watchdog = self._loop.call_later(self._idle_seconds - quiet, self._check_silence)


@dataclass(frozen=True, slots=True)
class ImapServer:
    """Where and how to log in: implicit TLS unless `tls` is off (allowed on loopback only).

    Give `password` for LOGIN, or `oauth_token` (fixed) or `tokens` (renewed) for XOAUTH2.
    """

    host: str
    port: int
    username: str
    password: str | None = None
    oauth_token: str | None = None
    tokens: Tokens | None = None
    tls: bool = True
    timeout: float = 30.0
    fetch_timeout: float = 120.0
    ssl_context: ssl.SSLContext | None = None


def uid_set(uids: Sequence[int]) -> str:
    """A compact UID set (`1:5,7,9:10`) for a sorted list of UIDs."""
    parts: list[str] = []
    start = prev = None
    for uid in uids:
        if prev is not None and uid == prev + 1:
            prev = uid
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = uid
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(parts)


def uid_set_pieces(uids: Sequence[int], max_chars: int = 1000) -> list[str]:
    """UID sets for commands that take any number of UIDs, each short enough for one line
    (a contiguous range of any length is one piece)."""
    pieces: list[str] = []
    current = ""
    for part in uid_set(sorted(uids)).split(","):
        if not part:
            continue
        if current and len(current) + 1 + len(part) > max_chars:
            pieces.append(current)
            current = ""
        current = f"{current},{part}" if current else part
    if current:
        pieces.append(current)
    return pieces


class ImapSession:
    """A logged-in connection; after any `ImapError` it must be closed and replaced."""

    def __init__(self, server: ImapServer, client: aioimaplib.IMAP4) -> None:
        self.server = server
        self._client = client
        self.selected: str | None = None

    @classmethod
    async def open(cls, server: ImapServer) -> ImapSession:
        """Connect and log in; raise ChannelAuthError when the credentials are refused."""
        if server.tls:
            context = server.ssl_context or ssl.create_default_context()
            client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(
                server.host, server.port, timeout=server.timeout, ssl_context=context
            )
        else:
            client = aioimaplib.IMAP4(server.host, server.port, timeout=server.timeout)
        _harden(client.protocol)
        session = cls(server, client)
        try:
            await session._login()
        except BaseException:
            await session.close()
            raise
        return session

    async def _login(self) -> None:
        server, client = self.server, self._client
        await self._run(client.wait_hello_from_server())
        tokens = server.tokens or (
            StaticToken(server.oauth_token) if server.oauth_token is not None else None
        )
        if tokens is None:
            response = await self._run(
                client.login(aioimaplib.quoted(server.username), server.password or "")
            )
        else:
            response = await self._xoauth2(tokens)
        if response.result != "OK":
            raise ChannelAuthError(f"IMAP login refused for {server.username}: {_text(response.lines)}")

    async def _xoauth2(self, tokens: Tokens) -> Any:
        """AUTHENTICATE XOAUTH2; a refused token is renewed and tried once more."""
        for attempt in range(2):
            token = await tokens.token()
            response = await self._run(self._client.xoauth2(self.server.username, token))
            if response.result == "OK" or isinstance(tokens, StaticToken) or attempt:
                return response
            tokens.refused(token)
        raise AssertionError("unreachable")

    @property
    def capabilities(self) -> frozenset[str]:
        """What the server offers (after login)."""
        return frozenset(self._client.protocol.capabilities)

    @property
    def has_idle(self) -> bool:
        """Whether the server can push new mail."""
        return "IDLE" in self.capabilities

    async def select(self, mailbox: str) -> MailboxStatus:
        """Select a mailbox (with CONDSTORE where offered) and return its status."""
        name = utf7.quoted(mailbox)
        if "CONDSTORE" in self.capabilities:
            name += " (CONDSTORE)"
        response = await self._ok(self._client.select(name), f"SELECT {mailbox}")
        self.selected = mailbox
        try:
            return responses.mailbox_status(response.lines)
        except ValueError as err:
            raise ImapError(f"SELECT {mailbox}: {err}") from err

    async def uids_after(self, last_uid: int) -> list[int]:
        """UIDs above `last_uid` in the selected mailbox, ascending."""
        response = await self._ok(
            self._client.uid_search(f"UID {last_uid + 1}:*", charset=None), "UID SEARCH"
        )
        return [uid for uid in responses.search_uids(response.lines) if uid > last_uid]

    async def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        """RFC822.SIZE of each UID, asked in batches of at most `BATCH`."""
        found: dict[int, int] = {}
        for start in range(0, len(uids), BATCH):
            chunk = uids[start : start + BATCH]
            response = await self._ok(
                self._fetch(uid_set(chunk), "(UID RFC822.SIZE)"),
                "UID FETCH RFC822.SIZE",
                self.server.fetch_timeout,
            )
            found.update(responses.sizes(response.lines))
        return found

    async def bodies(self, uids: Sequence[int]) -> dict[int, bytes]:
        """The full messages of at most `BATCH` UIDs, without setting `\\Seen`."""
        return {uid: raw for uid, (raw, _) in (await self.bodies_and_dates(uids)).items()}

    async def bodies_and_dates(self, uids: Sequence[int]) -> dict[int, tuple[bytes, datetime | None]]:
        """The full messages of at most `BATCH` UIDs with their INTERNALDATE, without `\\Seen`."""
        if len(uids) > BATCH:
            raise ValueError(f"at most {BATCH} UIDs per body fetch")
        if not uids:
            return {}
        response = await self._ok(
            self._fetch(uid_set(uids), "(UID INTERNALDATE BODY.PEEK[])"),
            "UID FETCH BODY",
            self.server.fetch_timeout,
        )
        dates = responses.internal_dates(response.lines)
        return {uid: (raw, dates.get(uid)) for uid, raw in responses.bodies(response.lines).items()}

    async def headers(self, uids: Sequence[int]) -> dict[int, bytes]:
        """The header blocks of at most `BATCH` UIDs (for mail too big to fetch whole)."""
        if not uids:
            return {}
        response = await self._ok(
            self._fetch(uid_set(uids[:BATCH]), "(UID BODY.PEEK[HEADER])"), "UID FETCH HEADER"
        )
        return responses.bodies(response.lines)

    async def add_flags(self, uids: Sequence[int], flags: str) -> None:
        """Add flags (e.g. `\\Seen`) to messages."""
        for piece in uid_set_pieces(uids):
            await self._ok(
                self._client.uid("store", piece, "+FLAGS.SILENT", f"({flags})"),
                "UID STORE",
                self.server.fetch_timeout,
            )

    async def move(self, uids: Sequence[int], mailbox: str) -> None:
        """Move messages to another mailbox (MOVE, else COPY + delete + expunge)."""
        target = utf7.quoted(mailbox)
        seconds = self.server.fetch_timeout
        for piece in uid_set_pieces(uids):
            if "MOVE" in self.capabilities:
                await self._ok(self._client.uid("move", piece, target), "UID MOVE", seconds)
                continue
            await self._ok(self._client.uid("copy", piece, target), "UID COPY", seconds)
            await self._ok(
                self._client.uid("store", piece, "+FLAGS.SILENT", r"(\Deleted)"), "UID STORE", seconds
            )
            if "UIDPLUS" in self.capabilities:
                await self._ok(self._client.uid("expunge", piece), "UID EXPUNGE", seconds)

    async def wait_for_news(self, seconds: float) -> bool:
        """IDLE for up to `seconds` (capped below 29 minutes); True if the server pushed news."""
        seconds = min(seconds, IDLE_MAX_SECONDS)
        client = self._client
        idle = await self._run(client.idle_start(timeout=seconds))
        news = False
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + seconds
            while not news:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    pushed = await client.wait_server_push(timeout=remaining + 1)
                except TimeoutError:
                    break
                if pushed == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                news = any(
                    isinstance(line, bytes) and (b"EXISTS" in line or b"RECENT" in line) for line in pushed
                )
        finally:
            with contextlib.suppress(Exception):
                client.idle_done()
        await self._run(asyncio.wait_for(idle, self.server.timeout))
        return news

    async def noop(self) -> None:
        """Ask the server whether it is still there."""
        await self._ok(self._client.noop(), "NOOP")

    async def append(self, mailbox: str, message: bytes) -> None:
        """Store a message into a mailbox (tests and tools fill mailboxes this way)."""
        await self._ok(self._client.append(message, mailbox=utf7.quoted(mailbox)), "APPEND")

    async def create(self, mailbox: str) -> None:
        """Create a mailbox."""
        await self._ok(self._client.create(utf7.quoted(mailbox)), "CREATE")

    async def close(self) -> None:
        """Log out politely if that is quick, then drop the connection and aioimaplib's tasks."""
        client = self._client
        protocol = client.protocol
        if protocol is not None and protocol.transport is not None and not protocol.transport.is_closing():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await client.logout()
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()
        if client._idle_waiter is not None:
            client._idle_waiter.cancel()
        tasks: set[asyncio.Future[Any]] = {client._client_task, *client.tasks}
        if protocol is not None:
            tasks |= set(protocol.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _fetch(self, uids: str, parts: str) -> Any:
        protocol = self._client.protocol
        fetch = _Fetch(protocol.new_tag(), uids, parts, protocol.loop, self.server.timeout)
        try:
            return await protocol.execute(fetch)
        finally:
            fetch.stop_watching()

    async def _ok(self, command: Awaitable[Any], what: str, seconds: float | None = None) -> Any:
        response = await self._run(command, seconds)
        if response.result != "OK":
            raise ImapError(f"{what} failed: {response.result} {_text(response.lines)}")
        return response

    async def _run(self, command: Awaitable[T], seconds: float | None = None) -> T:
        try:
            async with asyncio.timeout(seconds or self.server.timeout):
                return await command
        except (ChannelAuthError, ImapError):
            raise
        except (TimeoutError, OSError, aioimaplib.AioImapException, RecursionError) as err:
            raise ImapError(
                f"IMAP {self.server.host}:{self.server.port}: {type(err).__name__}: {err}"
            ) from err


def _harden(protocol: Any) -> None:
    """Work around three aioimaplib faults on this connection's protocol object.

    Received data goes to its parser in small slices: it recurses once per line, and a big
    read (many short lines) deep in a call stack overflows the recursion limit. Its own
    `data_received` formats every slice for a debug log line, logged or not (about 25 µs per
    8 KB), so the slices go to its parser directly. And a refused
    XOAUTH2 login gets the empty answer SASL asks for (RFC 7628), so the server says NO
    instead of both sides waiting for ever.
    """
    continuation = protocol._continuation

    def receive(data: bytes) -> None:
        try:
            protocol._handle_responses(
                protocol.incomplete_line + data, protocol._handle_line, protocol.current_command
            )
        except aioimaplib.IncompleteRead as incomplete:
            protocol.current_command = incomplete.cmd
            protocol.incomplete_line = incomplete.data
        else:
            protocol.incomplete_line = b""
            protocol.current_command = None

    def data_received(data: bytes) -> None:
        for start in range(0, len(data), READ_SLICE):
            receive(data[start : start + READ_SLICE])

    def on_continuation(line: bytes) -> None:
        pending = protocol.pending_sync_command
        if pending is not None and pending.name == "AUTHENTICATE" and protocol.transport is not None:
            protocol.transport.write(b"\r\n")
            return
        continuation(line)

    protocol.data_received = data_received
    protocol._continuation = on_continuation


def _text(lines: Sequence[Any]) -> str:
    return " ".join(line.decode(errors="replace") for line in lines if isinstance(line, bytes))[:300]
