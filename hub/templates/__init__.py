"""Templates: the sandboxed Jinja2 environment, date filters in two languages, and template checks."""

from hub.templates.checks import Problem, TemplateLimits, check_templates
from hub.templates.dates import LANGUAGES, Language, format_deadline, normalize_language
from hub.templates.engine import Rendered, TemplateFailure, TemplateName, Templates
from hub.templates.samples import SAMPLES

__all__ = [
    "LANGUAGES",
    "SAMPLES",
    "Language",
    "Problem",
    "Rendered",
    "TemplateFailure",
    "TemplateLimits",
    "TemplateName",
    "Templates",
    "check_templates",
    "format_deadline",
    "normalize_language",
]
