"""One sandboxed Jinja2 environment over the company's templates and the packaged defaults.

A template is `<channel>/<name>.<lang>.<ext>.j2` (e.g. `email/acknowledge.zh.txt.j2`). Lookup
for (channel, name, lang, ext) tries, in each template folder in turn (the company's folders
first, the packaged defaults last): `<channel>/…`, the channel's parent folder if it has one
(`voicemail` → `voice`, `whatsapp` → `sms`), `default/…`; and only then, if a fallback language
is configured, the same again in that language. So anything the company has overrides anything
shipped.

Templates run in `ImmutableSandboxedEnvironment` with `StrictUndefined`: no access to Python
internals, no mutation of the context, and a misspelt variable is an error. HTML templates
(`*.html.j2`) are autoescaped, text templates are not. Any failure raises TemplateError naming
the file and line; nothing is ever returned half-rendered.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hub import defaults
from hub.config import Config
from hub.errors import TemplateError
from hub.models import ChannelKind
from hub.templates import dates
from hub.templates.dates import Language
from hub.templates.filters import FILTERS, zone_named
from hub.templates.stamps import Stamp, TemplateStamps

SUFFIX = ".j2"
DEFAULT_FOLDER = "default"
PARENT_FOLDER = {"voicemail": "voice", "whatsapp": "sms"}
EXTENSIONS = frozenset({"txt", "html"})
CHANNEL_FOLDERS = frozenset({*(k.value for k in ChannelKind), DEFAULT_FOLDER})
MAX_OUTPUT_CHARS = 1_000_000
MAX_SEQUENCE_PRODUCT = 100_000
MAX_EXPONENT = 100
MAX_POWER_BITS = 10_000
_FILE_NAME = re.compile(r"^(?P<name>[a-z0-9][a-z0-9_]*)\.(?P<lang>[a-z]{2})\.(?P<ext>[a-z]+)\.j2$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


class TemplateFailure(TemplateError):
    """A template failed to load or render; `file` and `line` say where (line None if unknown)."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}" if line else f"{file}: {message}")
        self.file = file
        self.line = line
        self.reason = message


@dataclass(frozen=True, slots=True)
class TemplateName:
    """The parts of a template's path `<channel>/<name>.<lang>.<ext>.j2`."""

    channel: str
    name: str
    lang: str
    ext: str

    @property
    def path(self) -> str:
        """The path relative to a templates folder, with `/`."""
        return f"{self.channel}/{self.name}.{self.lang}.{self.ext}{SUFFIX}"

    @classmethod
    def parse(cls, relative: str) -> TemplateName | None:
        """The parts of a relative path, or None when it does not follow the layout."""
        folder, _, file_name = relative.rpartition("/")
        match = _FILE_NAME.match(file_name)
        if not folder or "/" in folder or match is None:
            return None
        return cls(folder, match["name"], match["lang"], match["ext"])


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered template: the text, and which file in which language produced it."""

    text: str
    file: str
    channel: str
    name: str
    language: Language
    ext: str


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with `*` and `**` bounded so a template cannot exhaust memory or CPU."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(left, int | float) and isinstance(right, int | float):
            bits = abs(int(left)).bit_length() * abs(right)
            if abs(right) > MAX_EXPONENT or bits > MAX_POWER_BITS:
                raise SecurityError(f"{left} ** {right} is over the size limit")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(count, int)
                if sized and len(seq) * count > MAX_SEQUENCE_PRODUCT:
                    raise SecurityError("repeated sequence is over the size limit")
        return super().call_binop(context, operator, left, right)


def _html_only(name: str | None) -> bool:
    return name is not None and name.endswith(f".html{SUFFIX}")


def packaged_folder() -> Path:
    """The folder of the templates shipped with omnihub."""
    return Path(str(defaults.location("templates")))


def _channel_name(channel: ChannelKind | str) -> str:
    name = channel.value if isinstance(channel, ChannelKind) else channel
    if name not in CHANNEL_FOLDERS:
        raise TemplateError(f"unknown channel {name!r} for templates")
    return name


class _FolderChain(jinja2.BaseLoader):
    """Folders searched in order; a loaded template is stale once it changes or an earlier folder gains it."""

    def __init__(self, folders: Sequence[Path]) -> None:
        self.folders = tuple(folders)
        self.loaders = [jinja2.FileSystemLoader(f) for f in self.folders]

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        """The source from the first folder that has the template, and when to load it again."""
        for index, loader in enumerate(self.loaders):
            try:
                source, filename, uptodate = loader.get_source(environment, template)
            except jinja2.TemplateNotFound:
                continue
            earlier = self.folders[:index]

            def fresh(
                uptodate: Callable[[], bool] | None = uptodate, earlier: tuple[Path, ...] = earlier
            ) -> bool:
                return (uptodate is None or uptodate()) and not any((f / template).is_file() for f in earlier)

            return source, filename, fresh
        raise jinja2.TemplateNotFound(template)

    def list_templates(self) -> list[str]:
        """Every template name any folder has."""
        return sorted({name for loader in self.loaders for name in loader.list_templates()})


class Templates:
    """Renders templates from `folders` (searched in order) and then the packaged defaults."""

    def __init__(
        self,
        folders: Sequence[Path] = (),
        *,
        fallback_language: str | None = None,
        include_defaults: bool = True,
    ) -> None:
        self.folders: tuple[Path, ...] = (
            *(Path(f) for f in folders),
            *((packaged_folder(),) if include_defaults else ()),
        )
        self.fallback_language = dates.language(fallback_language) if fallback_language else None
        self.environment = _Sandbox(
            loader=_FolderChain(self.folders),
            undefined=jinja2.StrictUndefined,
            autoescape=_html_only,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=True,
        )
        self.environment.globals.pop("lipsum", None)
        self.environment.filters.update(FILTERS)
        self._stamps = TemplateStamps(self.folders, self._candidate_paths)

    @classmethod
    def for_config(cls, config: Config, *, fallback_language: str | None = None) -> Templates:
        """The hub's templates: its `templates_dir`, then the packaged defaults."""
        return cls([config.path(config.templates_dir)], fallback_language=fallback_language)

    def candidates(self, channel: ChannelKind | str, name: str, lang: str, ext: str) -> list[TemplateName]:
        """The template names looked up, in order, for one render."""
        folder = _channel_name(channel)
        languages: list[str] = [dates.language(lang)]
        if self.fallback_language and self.fallback_language not in languages:
            languages.append(self.fallback_language)
        chain = [folder]
        if folder in PARENT_FOLDER:
            chain.append(PARENT_FOLDER[folder])
        if folder != DEFAULT_FOLDER:
            chain.append(DEFAULT_FOLDER)
        return [TemplateName(c, name, la, ext) for la in languages for c in chain]

    def _candidate_paths(self, channel: str, name: str, lang: str, ext: str) -> list[str]:
        return [option.path for option in self.candidates(channel, name, lang, ext)]

    def stamp(self, channel: ChannelKind | str, name: str, lang: str, ext: str = "txt") -> Stamp | None:
        """Which file a render would use and its state on disk (a few stats); None if there is none."""
        return self._stamps.stamp(_channel_name(channel), name, lang, ext)

    def find(self, channel: ChannelKind | str, name: str, lang: str, ext: str = "txt") -> TemplateName:
        """The template that a render would use; TemplateError when there is none."""
        if ext not in EXTENSIONS:
            raise TemplateError(f"unknown template extension {ext!r}; use txt or html")
        if not _NAME.match(name):
            raise TemplateError(f"{name!r} is not a template name: use lower-case letters, digits and _")
        try:
            options = self.candidates(channel, name, lang, ext)
        except ValueError as err:
            raise TemplateError(str(err)) from None
        for folder in self.folders:
            for option in options:
                if (folder / option.path).is_file():
                    return option
        tried = ", ".join(o.path for o in options)
        raise TemplateError(f"no template {name!r} for {channel} in {lang}: tried {tried}")

    def render(
        self,
        channel: ChannelKind | str,
        name: str,
        lang: str,
        ext: str = "txt",
        context: Mapping[str, Any] | None = None,
        *,
        tz: ZoneInfo | str = "UTC",
    ) -> Rendered:
        """Render the template for a channel and language with `context`, whole or not at all."""
        found = self.find(channel, name, lang, ext)
        text, file = self.render_file(found.path, found.lang, context, tz=tz)
        return Rendered(text, file, found.channel, name, dates.language(found.lang), ext)

    def render_subject(
        self,
        channel: ChannelKind | str,
        name: str,
        lang: str,
        context: Mapping[str, Any] | None = None,
        *,
        tz: ZoneInfo | str = "UTC",
    ) -> str:
        """The subject template `<name>_subject` rendered as one non-empty line."""
        rendered = self.render(channel, f"{name}_subject", lang, "txt", context, tz=tz)
        subject = " ".join(rendered.text.split())
        if not subject:
            raise TemplateFailure(rendered.file, None, "the subject rendered empty")
        return subject

    def render_file(
        self,
        relative: str,
        lang: str,
        context: Mapping[str, Any] | None = None,
        *,
        tz: ZoneInfo | str = "UTC",
    ) -> tuple[str, str]:
        """Render the template at a relative path; return the text and the file it came from."""
        zone = tz.key if isinstance(tz, ZoneInfo) else tz
        variables = {**(context or {}), "lang": dates.language(lang), "timezone": zone}
        file = relative
        try:
            zone_named(zone)
            template = self.environment.get_template(relative)
            file = template.filename or relative
            text = template.render(variables)
        except jinja2.TemplateSyntaxError as err:
            raise TemplateFailure(err.filename or file, err.lineno, f"syntax error: {err.message}") from None
        except jinja2.TemplateNotFound as err:
            raise TemplateFailure(file, None, f"template {err.name!r} not found") from None
        except Exception as err:  # noqa: BLE001 - any failure of template code is the template's error
            where, line = _template_frame(err, file)
            raise TemplateFailure(where, line, _describe(err)) from None
        if len(text) > MAX_OUTPUT_CHARS:
            raise TemplateFailure(file, None, f"output is over {MAX_OUTPUT_CHARS} characters")
        return _tidy(text, ext_of(relative)), file


def ext_of(relative: str) -> str:
    """`txt` or `html` from a template path."""
    return relative.removesuffix(SUFFIX).rpartition(".")[2]


def _tidy(text: str, ext: str) -> str:
    text = text.strip("\n")
    return _BLANK_RUNS.sub("\n\n", text) if ext == "txt" else text


def _describe(err: BaseException) -> str:
    if isinstance(err, SecurityError):
        return f"not allowed in a template: {err}"
    if isinstance(err, jinja2.UndefinedError):
        return f"undefined: {err.message}"
    return f"{type(err).__name__}: {err}"


def _template_frame(err: BaseException, file: str) -> tuple[str, int | None]:
    """The innermost template file and line in the traceback (Jinja maps frames to templates)."""
    found: tuple[str, int | None] = (file, None)
    for tb in _frames(err.__traceback__):
        name = tb.tb_frame.f_code.co_filename
        if name.endswith(SUFFIX):
            found = (name, tb.tb_lineno)
    return found


def _frames(tb: types.TracebackType | None) -> Iterator[types.TracebackType]:
    while tb is not None:
        yield tb
        tb = tb.tb_next


def walk(folder: Path) -> Iterator[str]:
    """Every file under a templates folder, as a path relative to it with `/`."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            yield path.relative_to(folder).as_posix()
