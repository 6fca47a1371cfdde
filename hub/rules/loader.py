"""Loading a rules folder: every file parsed, validated and cross-checked, all problems at once.

`RULE_FILES` maps a file name (or a glob such as `phrases/*.yaml`) to the pydantic model that
validates it and an optional cross-check run once every file is valid. Adding a kind of
rule file is one entry there.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import hashlib
import logging
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ForwardRef, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, Tag, ValidationError
from pydantic_core import ErrorDetails

from hub.errors import RuleError
from hub.etiquette import EtiquetteConfig, EtiquetteRules, PhraseFile
from hub.rules import conditions
from hub.rules.calendars import CalendarsFile
from hub.rules.problems import RuleProblem, RuleSetInvalid, key_path
from hub.rules.triggers import TriggersFile
from hub.rules.yamlsource import SourceMap, parse_checked
from hub.sla.calendar import BusinessCalendar
from hub.sla.policy import PolicyBook, SlaFile

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
IGNORED = ("README*", ".*", "*~", "*.swp", "*.bak", "*.orig")
VERSION_LENGTH = 12
EXPECTED = {
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "dict_type": "a mapping (key: value)",
    "list_type": "a list",
    "tuple_type": "a list",
    "string_type": "text",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "date_type": "a date like 2026-12-24",
    "date_parsing": "a date like 2026-12-24",
    "date_from_datetime_parsing": "a date like 2026-12-24",
}
"""What to say was expected, by pydantic error type."""


@dataclass(frozen=True, slots=True)
class RuleFile:
    """A kind of rule file: its model, and a check of its references to the other files."""

    model: type[BaseModel]
    check: Callable[[RuleSet], list[RuleProblem]] | None = None


def _check_triggers(ruleset: RuleSet) -> list[RuleProblem]:
    problems = []
    source = ruleset.source("triggers.yaml")
    seen: dict[str, int] = {}
    for index, trigger in enumerate(ruleset.triggers.triggers):
        if trigger.name in seen:
            problems.append(
                source.problem(
                    ("triggers", index, "name"),
                    f"trigger name {trigger.name!r} is used twice (first at triggers[{seen[trigger.name]}])",
                )
            )
        seen.setdefault(trigger.name, index)
        if trigger.calendar not in ruleset.calendars:
            problems.append(
                source.problem(
                    ("triggers", index, "calendar"),
                    f"no calendar {trigger.calendar!r} in calendars.yaml; "
                    f"known: {', '.join(ruleset.calendars)}",
                )
            )
    return problems


def _check_sla(ruleset: RuleSet) -> list[RuleProblem]:
    source = ruleset.source("sla.yaml")
    sla = ruleset.sla
    known = ", ".join(ruleset.calendars)
    wanted: list[tuple[tuple[str | int, ...], str]] = [(("defaults", "calendar"), sla.defaults.calendar)]
    wanted += [(("policies", i, "calendar"), p.calendar) for i, p in enumerate(sla.policies) if p.calendar]
    problems = [
        source.problem(path, f"no calendar {name!r} in calendars.yaml; known: {known}")
        for path, name in wanted
        if name not in ruleset.calendars
    ]
    if not problems:
        ruleset.policies  # noqa: B018
    return problems


def _check_etiquette(ruleset: RuleSet) -> list[RuleProblem]:
    try:
        ruleset.etiquette  # noqa: B018
    except (ValueError, RuleError) as err:
        return [RuleProblem("etiquette.yaml", 1, 1, "", f"the phrase lists cannot be compiled: {err}")]
    return []


RULE_FILES: dict[str, RuleFile] = {
    "calendars.yaml": RuleFile(CalendarsFile),
    "triggers.yaml": RuleFile(TriggersFile, _check_triggers),
    "sla.yaml": RuleFile(SlaFile, _check_sla),
    "etiquette.yaml": RuleFile(EtiquetteConfig, _check_etiquette),
    "phrases/*.yaml": RuleFile(PhraseFile),
}
"""Every kind of rule file, by name or glob relative to the rules folder."""


@dataclass(frozen=True)
class RuleSet:
    """One validated rules folder: its files' models, calendars and a short version hash.

    `files` holds a model for every `RULE_FILES` name (the default model for a missing file)
    and one per file matching a glob. `version` is a hash over the files' paths and bytes.
    """

    directory: Path | None
    files: Mapping[str, BaseModel]
    version: str
    calendars: Mapping[str, BusinessCalendar]
    warnings: tuple[str, ...] = ()
    sources: Mapping[str, SourceMap] = field(default_factory=dict, repr=False)

    def get(self, name: str, model: type[M]) -> M:
        """The model of one rule file."""
        value = self.files[name]
        if not isinstance(value, model):
            raise TypeError(f"{name} holds a {type(value).__name__}, not a {model.__name__}")
        return value

    def matching(self, pattern: str, model: type[M]) -> dict[str, M]:
        """The models of the files matching a glob, by path."""
        return {p: self.get(p, model) for p in sorted(self.files) if fnmatch.fnmatch(p, pattern)}

    def source(self, name: str) -> SourceMap:
        """Where the keys of a file are (an empty map for a file that is not there)."""
        return self.sources.get(name) or SourceMap(name)

    @property
    def triggers(self) -> TriggersFile:
        """`triggers.yaml`."""
        return self.get("triggers.yaml", TriggersFile)

    @property
    def sla(self) -> SlaFile:
        """`sla.yaml`."""
        return self.get("sla.yaml", SlaFile)

    @functools.cached_property
    def policies(self) -> PolicyBook:
        """The SLA policies resolved against the calendars (built once per rule set)."""
        return PolicyBook.build(self.sla, self.calendars)

    @functools.cached_property
    def etiquette(self) -> EtiquetteRules:
        """`etiquette.yaml` and `phrases/*.yaml` compiled for the pre-send checks (once per rule set)."""
        config = self.get("etiquette.yaml", EtiquetteConfig)
        return EtiquetteRules.compile(config, self.matching("phrases/*.yaml", PhraseFile))


def load_ruleset(directory: Path) -> RuleSet:
    """Load and validate a rules folder; raise `RuleSetInvalid` (a RuleError) listing every problem."""
    ruleset, problems = check_ruleset(directory)
    if problems or ruleset is None:
        raise RuleSetInvalid(problems)
    for warning in ruleset.warnings:
        log.warning("%s", warning)
    return ruleset


def check_ruleset(directory: Path) -> tuple[RuleSet | None, list[RuleProblem]]:
    """Validate a rules folder: the rule set if it is valid, and every problem found."""
    problems: list[RuleProblem] = []
    warnings: list[str] = []
    models: dict[str, BaseModel] = {}
    sources: dict[str, SourceMap] = {}
    digest = hashlib.sha256()
    for rel, path in _files(directory):
        kind = _kind_of(rel)
        if kind is None:
            if not any(fnmatch.fnmatch(Path(rel).name, p) for p in IGNORED):
                warnings.append(f"{directory / rel}: not a known rule file; ignored")
            continue
        try:
            raw = path.read_bytes()
        except OSError as err:
            problems.append(RuleProblem(rel, 1, 1, "", f"cannot read: {err.strerror}"))
            continue
        digest.update(rel.encode() + b"\0" + raw + b"\0")
        model, source, found = _validate(rel, raw, kind.model)
        sources[rel] = source
        problems.extend(found)
        if model is not None:
            models[rel] = model
    if problems:
        return None, problems
    try:
        ruleset = _assemble(directory, models, sources, tuple(warnings), digest)
    except ValueError as err:
        return None, [RuleProblem("calendars.yaml", 1, 1, "calendars", str(err))]
    for kind in RULE_FILES.values():
        if kind.check is not None:
            problems.extend(kind.check(ruleset))
    return (None, problems) if problems else (ruleset, [])


def _assemble(
    directory: Path | None,
    models: dict[str, BaseModel],
    sources: dict[str, SourceMap],
    warnings: tuple[str, ...],
    digest: Any,
) -> RuleSet:
    files = dict(models)
    for name, kind in RULE_FILES.items():
        if not _is_glob(name) and name not in files:
            files[name] = kind.model.model_validate({})
    calendars = files["calendars.yaml"]
    assert isinstance(calendars, CalendarsFile)
    return RuleSet(
        directory=directory,
        files=types.MappingProxyType(files),
        version=digest.hexdigest()[:VERSION_LENGTH],
        calendars=types.MappingProxyType(dict(calendars.build())),
        warnings=warnings,
        sources=types.MappingProxyType(sources),
    )


def _files(directory: Path) -> list[tuple[str, Path]]:
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            found.append((path.relative_to(directory).as_posix(), path))
    return found


def _is_glob(name: str) -> bool:
    return any(c in name for c in "*?[")


def _kind_of(rel: str) -> RuleFile | None:
    if rel in RULE_FILES:
        return RULE_FILES[rel]
    for name, kind in RULE_FILES.items():
        if _is_glob(name) and fnmatch.fnmatch(rel, name):
            return kind
    return None


def _validate(
    rel: str, raw: bytes, model: type[BaseModel]
) -> tuple[BaseModel | None, SourceMap, list[RuleProblem]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return None, SourceMap(rel), [RuleProblem(rel, 1, 1, "", f"not UTF-8 text (byte {err.start})")]
    data, source, problems = parse_checked(text, rel)
    if problems:
        return None, source, problems
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None, source, [source.problem((), "expected a mapping of keys at the top of the file")]
    try:
        return model.model_validate(data), source, []
    except ValidationError as err:
        return None, source, [_problem(source, model, e) for e in err.errors()]


def _problem(source: SourceMap, model: type[BaseModel], error: ErrorDetails) -> RuleProblem:
    path = tuple(
        part
        for part in error["loc"]
        if not (isinstance(part, str) and (part.startswith("__") or part == "[key]"))
    )
    kind = error["type"]
    if error["loc"] and error["loc"][-1] == "[key]":
        return source.problem(path, _message(error), at_key=True)
    if kind == "extra_forbidden":
        key = str(path[-1])
        allowed = _allowed_keys(model, error["loc"][:-1])
        message = f"unknown key {key!r}"
        if allowed:
            message = f"expected one of: {', '.join(allowed)}; got {key!r}"
            close = difflib.get_close_matches(key, allowed, n=1)
            if close:
                message += f" (did you mean {close[0]!r}?)"
        return source.problem(path, message, at_key=True)
    if kind == "missing":
        line, column = source.locate(path[:-1])
        return RuleProblem(source.file, line, column, key_path(path), f"missing required key {path[-1]!r}")
    return source.problem(path, _message(error))


def _message(error: ErrorDetails) -> str:
    kind, msg = error["type"], error["msg"]
    ctx = error.get("ctx") or {}
    if kind == "value_error":
        return str(ctx.get("error", msg)).removeprefix("Value error, ")
    got = error.get("input")
    if kind in ("enum", "literal_error"):
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"expected one of: {expected}; got {got!r}"
    if kind == "string_pattern_mismatch":
        pattern = ctx.get("pattern")
        return f"expected a name of lower-case letters, digits and - _ . (pattern {pattern}); got {got!r}"
    if kind in EXPECTED:
        return f"expected {EXPECTED[kind]}; got {_shown(got)}"
    if kind in ("too_short", "string_too_short") and not got:
        return "must not be empty"
    return f"{msg.rstrip('.')}; got {_shown(got)}"


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)


def _allowed_keys(model: type[BaseModel], path: Sequence[str | int]) -> list[str]:
    target: Any = model
    for part in path:
        target = _step(target, part)
        if target is None:
            return []
    target = _unwrap_model(target)
    if target is None:
        return []
    return [f.alias or name for name, f in target.model_fields.items()]


def _step(annotation: Any, part: str | int) -> Any:
    if isinstance(part, str) and part.startswith("__"):
        return _tagged(annotation, part)
    model = _unwrap_model(annotation)
    if model is not None and isinstance(part, str):
        for name, f in model.model_fields.items():
            if part in (name, f.alias):
                return f.annotation
        return None
    annotation = _strip(annotation)
    origin = get_origin(annotation)
    args = [a for a in get_args(annotation) if a is not Ellipsis]
    if origin in (list, tuple) and isinstance(part, int) and args:
        return args[0]
    if origin is dict and isinstance(part, str) and len(args) == 2:
        return args[1]
    return None


def _tagged(annotation: Any, tag: str) -> Any:
    """The member of a tagged union that carries this tag."""
    while get_origin(annotation) is Annotated and get_origin(get_args(annotation)[0]) is Annotated:
        annotation = get_args(annotation)[0]
    union = get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation
    for member in get_args(union):
        if get_origin(member) is Annotated and any(
            isinstance(m, Tag) and m.tag == tag for m in get_args(member)[1:]
        ):
            return get_args(member)[0]
    return None


def _strip(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        members = [_strip(a) for a in get_args(annotation) if a is not type(None)]
        return members[0] if len(members) == 1 else annotation
    return annotation


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    annotation = _strip(annotation)
    if isinstance(annotation, ForwardRef | str):
        name = annotation.__forward_arg__ if isinstance(annotation, ForwardRef) else annotation
        found = getattr(conditions, name, None)
        return found if isinstance(found, type) and issubclass(found, BaseModel) else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        for member in get_args(annotation):
            found = _unwrap_model(member)
            if found is not None:
                return found
    return None
