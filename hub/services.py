"""The hub's services wired together from a configuration, for the runtime, the CLI and tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from aiohttp import ClientSession

import channels as channel_registry
from channels.base import Channel, ChannelContext
from hub.calls import CallDesk
from hub.chat_scripts import ChatScripts
from hub.clock import Clock, utcnow
from hub.compose import Composer
from hub.config import Config
from hub.contacts import ContactService
from hub.directory import Directory
from hub.events import EventBus
from hub.inbox import Inbox
from hub.outbox import Outbox
from hub.prepare import IngestLimits
from hub.replies import TemplateReplies
from hub.rules import queue as rule_queue
from hub.rules.engine import RuleEngine
from hub.rules.interest import wanted_kinds
from hub.rules.source import RuleSource
from hub.sla.service import SlaService
from hub.store import BlobStore, Database
from hub.store.migrate import upgrade
from hub.templates import Templates
from hub.voicemail import VoicemailDesk


@dataclass(slots=True)
class Services:
    """Everything the web app, the CLI and the channels work through."""

    config: Config
    db: Database
    blobs: BlobStore
    bus: EventBus
    inbox: Inbox
    contacts: ContactService
    outbox: Outbox
    directory: Directory
    sla: SlaService
    composer: Composer
    templates: Templates
    replies: TemplateReplies
    clock: Clock
    rules: RuleSource
    rule_engine: RuleEngine
    calls: CallDesk
    voicemail: VoicemailDesk
    channels: dict[str, Channel] = field(default_factory=dict)
    peer_events: EventBus = field(default_factory=EventBus)
    """Events from other hub processes (PostgreSQL relay), read only by the websockets."""

    def attach_channels(self, http: ClientSession) -> None:
        """Build the configured channels, sharing the process's one HTTP session."""
        context = ChannelContext(
            http=http,
            blobs=self.blobs,
            public_url=self.config.hub.public_url,
            data_dir=self.config.data_dir,
            report_status=self.outbox.record_status,
            inbox=self.inbox,
            calls=self.calls,
            voicemail=self.voicemail,
            templates=self.templates,
            company=self.config.company,
            policies=lambda: self.sla.book,
            channels=self.channels,
            chat_scripts=ChatScripts(self.templates, lambda: self.rules.loaded, self.config.company),
            replies=self.replies,
        )
        for entry in channel_registry.configured(self.config):
            self.channels[entry.entry.name] = channel_registry.build(entry, context)
        self.composer.channels = self.channels

    async def close(self) -> None:
        """Stop the SLA clock, the rules' reloading and the inbox's batching, and close the database."""
        await self.calls.stop()
        await self.voicemail.stop()
        await self.sla.stop()
        await self.rules.stop()
        await self.inbox.stop()
        await self.db.dispose()


async def open_services(config: Config, *, clock: Clock = utcnow, migrate: bool = True) -> Services:
    """Connect to the store (migrating it unless told not to) and build the services."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(config.store_url, schema=config.store.schema_name)
    if migrate:
        await upgrade(db)
    blobs = BlobStore(config.data_dir / "blobs")
    bus = EventBus()
    limits = IngestLimits(
        max_attachment_bytes=config.store.max_attachment_bytes,
        max_raw_bytes=config.store.max_raw_bytes,
        thread_window=timedelta(hours=config.inbox.thread_window_hours),
    )
    inbox = Inbox(db, blobs, bus, limits, clock)
    inbox.committer.max_batch = config.inbox.max_batch
    outbox = Outbox(db, bus, clock)
    rules = RuleSource(config.path(config.rules_dir), clock=clock)
    sla = SlaService(db, bus, clock)
    rules.on_change(lambda ruleset: sla.set_book(ruleset.policies))
    rules.on_change(lambda ruleset: rule_queue.listen(db, wanted_kinds(ruleset.triggers.triggers)))
    composer = Composer(inbox, outbox, lambda: rules.loaded.etiquette if rules.loaded else None)
    templates = Templates.for_config(config)
    replies = TemplateReplies(
        templates, composer, lambda: rules.loaded, config.company, config.hub.default_language
    )

    async def sign(conversation_id: int, lang: str) -> str:
        async with db.read() as conn:
            return await replies.signature(conn, conversation_id, lang)

    composer.signer = sign
    services = Services(
        config=config,
        db=db,
        blobs=blobs,
        bus=bus,
        inbox=inbox,
        contacts=ContactService(db, clock, bus),
        outbox=outbox,
        directory=Directory(db, clock, bus),
        sla=sla,
        composer=composer,
        templates=templates,
        replies=replies,
        clock=clock,
        rules=rules,
        rule_engine=RuleEngine(lambda: rules.current, replies, clock=clock),
        calls=CallDesk(db, inbox, bus, sla, templates, replies, clock),
        voicemail=VoicemailDesk(db, sla, lambda: rules.loaded, templates, config.company, clock),
    )
    services.peer_events.listen(services.calls.forget)
    return services
