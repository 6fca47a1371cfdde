"""The hub's HTTP side: the JSON REST API, health and metrics, and the channels' webhooks."""

from hub.web.app import create_app

__all__ = ["create_app"]
