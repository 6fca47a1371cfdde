"""The templates an agent may insert into a reply: body templates, not the hub's own pieces."""

from __future__ import annotations

import re

from hub.errors import TemplateError
from hub.models import ChannelKind
from hub.templates.engine import TemplateName, Templates

HUB_ONLY = re.compile(
    r"^(acknowledge|signature_\w+|\w+_subject|chat_greeting|chat_hold|phone_\w+|voicemail_greeting"
    r"|fax_cover|callback_script)$"
)
"""Templates the hub uses by itself: acknowledgements with their promise, signatures, subjects,
greetings, hold messages, cover pages and call scripts."""


def offered(templates: Templates, channel: ChannelKind, lang: str) -> list[str]:
    """Names of the reply templates that render for this channel and language (blocking: reads folders)."""
    chain = {option.channel for option in templates.candidates(channel, "any", lang, "txt")}
    names: set[str] = set()
    for folder in templates.folders:
        for sub in chain:
            for path in (folder / sub).glob("*.txt.j2"):
                parsed = TemplateName.parse(f"{sub}/{path.name}")
                if parsed is not None and not HUB_ONLY.match(parsed.name):
                    names.add(parsed.name)
    return sorted(n for n in names if _found(templates, channel, n, lang))


def _found(templates: Templates, channel: ChannelKind, name: str, lang: str) -> bool:
    try:
        templates.find(channel, name, lang)
    except TemplateError:
        return False
    return True
