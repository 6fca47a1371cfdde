"""Template checks for `omnihub rules check`: every template renders in both languages, and the
templates that etiquette rules shape (P2, V1–V5, E6, C1, L7, F2, E1) render what the rule needs.

A required field counts as rendered when its sample value shows in the output (strings), or
when changing the field to a second value changes the output (dates, numbers, switches); the
template's source is never searched, so `{{ agent.name|upper }}` passes and `{# agent.name #}`
does not.

V1 (greetings updated often): a voicemail greeting's age is the date of an `{# updated:
YYYY-MM-DD #}` comment in it if there is one, else the file's modification time.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from hub.errors import TemplateError
from hub.templates.dates import LANGUAGES, Language
from hub.templates.engine import (
    CHANNEL_FOLDERS,
    DEFAULT_FOLDER,
    EXTENSIONS,
    PARENT_FOLDER,
    SUFFIX,
    TemplateFailure,
    TemplateName,
    Templates,
    walk,
)
from hub.templates.samples import ALTERNATIVES, SAMPLE_TIMEZONES, SAMPLES, lookup, replaced

Severity = Literal["error", "warning"]
SIGNATURE_DELIMITER = "-- "
_UPDATED = re.compile(r"\{#-?\s*updated:\s*(?P<value>.*?)\s*-?#\}")
_TAG = re.compile(r"<[^>]*>")
_LATIN_WORD = re.compile(r"[A-Za-z0-9]+(?:['’.,:-][A-Za-z0-9]+)*")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with a template: where, what, how bad, and the rule it breaks."""

    file: str
    line: int | None
    message: str
    severity: Severity = "error"
    rule: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        tag = f" [{self.rule}]" if self.rule else ""
        return f"{where}: {self.severity}: {self.message}{tag}"


@dataclass(frozen=True, slots=True)
class TemplateLimits:
    """The limits from `rules/etiquette.yaml` that the template checks apply."""

    greeting_max_age: timedelta = timedelta(days=30)
    script_max_words: int = 75


@dataclass(frozen=True, slots=True)
class Requirement:
    """A rule needs the template to render one of `paths` (any of them will do)."""

    rule: str
    what: str
    paths: tuple[str, ...]


REQUIREMENTS: Mapping[str, tuple[Requirement, ...]] = {
    "acknowledge": (Requirement("E1", "the reply-time promise", ("reply_by",)),),
    "phone_greeting": (
        Requirement("P2", "the department", ("team.department", "agent.department")),
        Requirement("P2", "the agent's name", ("agent.name",)),
    ),
    "voicemail_greeting": (
        Requirement("V2", "when messages will be returned", ("reply_by",)),
        Requirement(
            "V3", "an alternative contact", ("alternative_contact.phone", "alternative_contact.email")
        ),
    ),
    "callback_script": (
        Requirement("V4", "the caller's name", ("agent.name",)),
        Requirement("V4", "the reason for the call", ("callback.reason",)),
        Requirement("V4", "a contact to call back", ("callback.contact",)),
        Requirement("V4", "a good time to call back", ("callback.best_time",)),
    ),
    "signature_agent": (
        Requirement("E6", "the name", ("agent.name",)),
        Requirement("E6", "the title", ("agent.title",)),
        Requirement("E6", "the address", ("agent.address", "team.address", "company.address")),
        Requirement("E6", "the phone number", ("agent.phone", "team.phone", "company.phone")),
    ),
    "signature_team": (
        Requirement("E6", "the team's name", ("team.name",)),
        Requirement("E6", "the department", ("team.department",)),
        Requirement("E6", "the address", ("team.address", "company.address")),
        Requirement("E6", "the phone number", ("team.phone", "company.phone")),
    ),
    "complaint_reply": (Requirement("C1", "the next step", ("complaint.next_step",)),),
    "refusal": (
        Requirement("L7", "the reason", ("refusal.reason",)),
        Requirement("L7", "the alternatives", ("refusal.alternatives",)),
    ),
    "fax_cover": (
        Requirement("F2", "the sender's name", ("fax.sender.name",)),
        Requirement("F2", "the sender's contact", ("fax.sender.phone", "fax.sender.fax", "fax.sender.email")),
        Requirement("F2", "the recipient's name", ("fax.recipient.name",)),
        Requirement("F2", "the recipient's contact", ("fax.recipient.fax", "fax.recipient.phone")),
        Requirement("F2", "the subject", ("fax.subject",)),
        Requirement("F2", "the date", ("fax.date",)),
        Requirement("F2", "the page count", ("fax.pages",)),
        Requirement("F2", "the optional confidentiality notice", ("fax.confidential",)),
    ),
    "fax_notice": (
        Requirement("F1", "the fax number", ("fax.recipient.fax",)),
        Requirement("F1", "the page count", ("fax.pages",)),
    ),
}
"""What each template that a rule shapes must render, by template name."""

SIGNATURES = frozenset({"signature_agent", "signature_team"})
SPOKEN_SCRIPTS = frozenset({"callback_script"})
GREETINGS = frozenset({"voicemail_greeting"})


def spoken_words(text: str) -> int:
    """Words as spoken: each Latin word or number is one, two Chinese characters count as one."""
    cjk = len(_CJK.findall(text))
    return len(_LATIN_WORD.findall(text)) + (cjk + 1) // 2


def visible_text(text: str, ext: str) -> str:
    """Text as a reader sees it, for matching: tags dropped, entities decoded, spaces collapsed."""
    if ext == "html":
        text = html.unescape(_TAG.sub(" ", text))
    return " ".join(text.split()).casefold()


def check_templates(
    templates: Templates,
    samples: Mapping[Language, Mapping[str, Any]] = SAMPLES,
    *,
    now: datetime | None = None,
    limits: TemplateLimits = TemplateLimits(),
) -> list[Problem]:
    """Render every template against the samples and check what the etiquette rules require."""
    now = now or datetime.now(UTC)
    files = _effective_files(templates)
    problems: list[Problem] = []
    parsed: dict[str, TemplateName] = {}
    for relative, folder in files.items():
        name = TemplateName.parse(relative)
        problem = _layout_problem(relative, folder, name)
        if problem:
            problems.append(problem)
        elif name is not None:
            parsed[relative] = name
    problems += _missing_languages(parsed, files)
    for relative, name in parsed.items():
        checker = _FileCheck(templates, relative, files[relative] / relative, name, samples)
        problems += checker.run(now, limits)
    return problems


def _effective_files(templates: Templates) -> dict[str, Path]:
    """Each relative template path with the folder it is taken from (earlier folders win)."""
    found: dict[str, Path] = {}
    for folder in templates.folders:
        for relative in walk(folder):
            if relative.endswith(SUFFIX):
                found.setdefault(relative, folder)
    return found


def _layout_problem(relative: str, folder: Path, name: TemplateName | None) -> Problem | None:
    file = str(folder / relative)
    if name is None:
        return Problem(file, None, f"not a template name: use <channel>/<name>.<lang>.<ext>{SUFFIX}")
    if name.channel not in CHANNEL_FOLDERS:
        known = ", ".join(sorted(CHANNEL_FOLDERS))
        return Problem(file, None, f"unknown channel folder {name.channel!r}; use one of {known}")
    if name.lang not in LANGUAGES:
        return Problem(file, None, f"unknown language {name.lang!r}; use en or zh")
    if name.ext not in EXTENSIONS:
        return Problem(file, None, f"unknown extension {name.ext!r}; use txt or html")
    return None


def _missing_languages(parsed: Mapping[str, TemplateName], files: Mapping[str, Path]) -> list[Problem]:
    """A template in one language needs the other too, in its folder or in a folder it falls back to."""
    problems = []
    for relative, name in parsed.items():
        for lang in LANGUAGES:
            if lang == name.lang:
                continue
            chain = [name.channel, PARENT_FOLDER.get(name.channel), DEFAULT_FOLDER]
            options = [TemplateName(c, name.name, lang, name.ext).path for c in chain if c]
            if not any(option in files for option in options):
                problems.append(
                    Problem(str(files[relative] / relative), None, f"no {lang} version: add {options[0]}")
                )
    return problems


class _FileCheck:
    """The checks of one template file."""

    def __init__(
        self,
        templates: Templates,
        relative: str,
        path: Path,
        name: TemplateName,
        samples: Mapping[Language, Mapping[str, Any]],
    ) -> None:
        self.templates = templates
        self.relative = relative
        self.path = path
        self.name = name
        self.lang: Language = "zh" if name.lang == "zh" else "en"
        self.sample = samples[self.lang]

    def problem(self, message: str, rule: str | None = None, severity: Severity = "error") -> Problem:
        return Problem(str(self.path), None, message, severity, rule)

    def render(self, context: Mapping[str, Any]) -> str:
        text, _ = self.templates.render_file(
            self.relative, self.lang, context, tz=SAMPLE_TIMEZONES[self.lang]
        )
        return text

    def run(self, now: datetime, limits: TemplateLimits) -> Iterator[Problem]:
        try:
            text = self.render(self.sample)
        except TemplateFailure as err:
            yield Problem(err.file, err.line, err.reason)
            return
        except TemplateError as err:
            yield self.problem(str(err))
            return
        if self.name.name.endswith("_subject"):
            yield from self._subject(text)
        for requirement in REQUIREMENTS.get(self.name.name, ()):
            if not any(self._renders(path, text) for path in requirement.paths):
                yield self.problem(f"does not render {requirement.what}", requirement.rule)
        plain_signature = self.name.name in SIGNATURES and self.name.ext == "txt"
        if plain_signature and text.split("\n", 1)[0] != SIGNATURE_DELIMITER:
            yield self.problem(
                "a plain-text signature must start with the line '-- ' (dash dash space)", "E6"
            )
        if self.name.name in SPOKEN_SCRIPTS:
            words = spoken_words(text)
            if words > limits.script_max_words:
                yield self.problem(
                    f"is {words} words long with the sample data; the limit is {limits.script_max_words}",
                    "V5",
                )
        if self.name.name in GREETINGS:
            yield from self._age(now, limits.greeting_max_age)

    def _subject(self, text: str) -> Iterator[Problem]:
        if not text.strip():
            yield self.problem("the subject renders empty", "E3")
        elif "\n" in text.strip():
            yield self.problem("a subject must render as one line", "E3")

    def _renders(self, path: str, text: str) -> bool:
        """Whether the output shows the field at `path` (see the module's docstring)."""
        try:
            value = lookup(self.sample, path)
        except (KeyError, TypeError):
            return False
        seen = visible_text(text, self.name.ext)
        if isinstance(value, str):
            return bool(value) and visible_text(value, "txt") in seen
        if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
            return all(visible_text(v, "txt") in seen for v in value)
        if path not in ALTERNATIVES:
            return False
        try:
            other = self.render(replaced(self.sample, path, ALTERNATIVES[path]))
        except TemplateError:
            return False
        return visible_text(other, self.name.ext) != seen

    def _age(self, now: datetime, max_age: timedelta) -> Iterator[Problem]:
        try:
            source = self.path.read_text(encoding="utf-8")
            modified = datetime.fromtimestamp(self.path.stat().st_mtime, UTC)
        except OSError as err:
            yield self.problem(f"cannot read the file: {err}")
            return
        match = _UPDATED.search(source)
        if match:
            try:
                updated = date.fromisoformat(match["value"])
            except ValueError:
                yield self.problem(f"`updated:` must be a date like 2026-11-22, not {match['value']!r}", "V1")
                return
            modified = datetime.combine(updated, datetime.min.time(), UTC)
        age = now - modified
        if age > max_age:
            yield self.problem(
                f"the greeting is {age.days} days old; personalise and refresh it at least every "
                f"{max_age.days} days, and record the day in it as {{# updated: {now.date()} #}}",
                "V1",
                "warning",
            )
