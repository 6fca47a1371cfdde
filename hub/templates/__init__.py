"""Templates: the sandboxed Jinja2 environment, date filters in two languages, and template checks."""

from hub.templates.dates import LANGUAGES, Language, format_deadline, normalize_language
from hub.templates.engine import Rendered, TemplateName, Templates

__all__ = [
    "LANGUAGES",
    "Language",
    "Rendered",
    "TemplateName",
    "Templates",
    "format_deadline",
    "normalize_language",
]
