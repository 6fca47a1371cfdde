"""The hub's exception hierarchy."""


class HubError(Exception):
    """Base of every error the hub raises on purpose."""


class ConfigError(HubError):
    """The configuration is invalid; the message names the key path."""


class RuleError(HubError):
    """A rule file is invalid."""


class TemplateError(HubError):
    """A template failed to load or render."""


class StoreError(HubError):
    """The store could not do what was asked."""


class NotFound(HubError):
    """The object asked for does not exist."""


class Conflict(HubError):
    """The request conflicts with the current state."""


class PayloadTooLarge(HubError):
    """An attachment or raw message is over the configured size limit."""


class ChannelError(HubError):
    """A channel failed to receive or deliver."""


class ChannelAuthError(ChannelError):
    """The provider refused our credentials: a person must fix them."""


class ChannelUnavailable(ChannelError):
    """A transient failure: try again later."""


class DeliveryRejected(ChannelError):
    """The provider refused the message for good: do not retry."""


class Invalid(HubError):
    """A value is not acceptable; `field` names it (the API answers 422)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class EtiquetteBlocked(Invalid):
    """A message breaks etiquette rules with severity error (the API answers 422 with the findings)."""

    def __init__(self, message: str, findings: list[dict[str, object]]) -> None:
        super().__init__(message, "text")
        self.findings = findings


class NotAllowed(HubError):
    """The caller's role does not allow this action (the API answers 403)."""
