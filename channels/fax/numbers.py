"""Fax numbers (F1): validated and normalised to E.164 before anything is sent."""

from __future__ import annotations

from hub.errors import DeliveryRejected
from hub.models import IdentityKind, normalise_address


class InvalidFaxNumber(DeliveryRejected):
    """A number that is not a valid fax number; sending to it is refused."""


def e164(number: str, region: str | None = None) -> str:
    """The number in E.164 (`+441134960388`); a number without `+` is read in `region`."""
    try:
        return normalise_address(IdentityKind.FAX, number, region)
    except ValueError as err:
        bare = not region and not number.strip().startswith("+")
        hint = " (no default_region is set: write it with +)" if bare else ""
        raise InvalidFaxNumber(f"invalid fax number {number!r}: {err}{hint}") from None
