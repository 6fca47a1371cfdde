"""Logging set-up, with every configured secret masked in every line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

MASK = "***"


class MaskingFormatter(logging.Formatter):
    """A formatter that replaces secret values wherever they appear in the output."""

    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        """Format the record, then mask."""
        line = super().format(record)
        for secret in self.secrets:
            line = line.replace(secret, MASK)
        return line


def mask(secrets: Iterable[str]) -> None:
    """Add secrets to mask to every handler already configured."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, MaskingFormatter):
            known = set(handler.formatter.secrets) | {s for s in secrets if len(s) >= 4}
            handler.formatter.secrets = sorted(known, key=len, reverse=True)


def configure(secrets: Iterable[str] = (), verbose: bool = False) -> None:
    """Send logs to stderr, masked; INFO by default, DEBUG when verbose."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("aiohttp.access", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
