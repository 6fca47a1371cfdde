"""The web-chat channel: a widget script on a company's site, a visitor websocket, an offline form."""

from channels.webchat.channel import WebchatChannel, create
from channels.webchat.settings import WebchatSettings

__all__ = ["WebchatChannel", "WebchatSettings", "create"]
