"""The default rule files and templates shipped inside the package, and copying them out.

In the source tree they are the top-level `rules/` and `templates/` folders; pyproject.toml
maps them to the packages `hub._defaults.rules` and `hub._defaults.templates`, which an
installed wheel contains. An editable install runs from the source tree and finds them there.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

from hub.errors import HubError

Kind = Literal["rules", "templates"]
KINDS: tuple[Kind, ...] = ("rules", "templates")
PACKAGES: dict[Kind, str] = {
    "rules": "hub._defaults.rules",
    "templates": "hub._defaults.templates",
}
_SKIPPED = frozenset({"__pycache__", ".DS_Store"})


@dataclass(slots=True)
class CopyReport:
    """What copying a default tree did with each file."""

    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    same_folder: bool = False


def location(kind: Kind) -> Traversable:
    """The packaged folder of default rule files or templates."""
    package = PACKAGES[kind]
    try:
        return importlib.resources.files(package)
    except ModuleNotFoundError:
        return _source_folder(kind, package)
    except NotADirectoryError:
        return _namespace_folder(package, kind)


def _source_folder(kind: Kind, package: str) -> Path:
    """The folder in the source tree, for an editable install, which cannot import the package."""
    # setuptools' editable finder reaches a mapped folder without __init__.py only through a
    # namespace parent, and `hub` is a regular package.
    root = Path(__file__).resolve().parent.parent
    folder = root / kind
    if (root / "pyproject.toml").is_file() and folder.is_dir():
        return folder
    raise HubError(f"the packaged default {kind} ({package}) are not installed")


def _namespace_folder(package: str, kind: Kind) -> Path:
    """The package's real folder, for Python 3.11, whose reader rejects editable installs' paths."""
    spec = importlib.util.find_spec(package)
    for entry in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(entry)
        if folder.is_dir():
            return folder
    raise HubError(f"the packaged default {kind} ({package}) have no folder")


def files(kind: Kind) -> dict[str, bytes]:
    """Every default file of a kind, by its path relative to the folder (with `/`)."""
    return dict(_walk(location(kind), ""))


def _walk(folder: Traversable, prefix: str) -> Iterator[tuple[str, bytes]]:
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name in _SKIPPED or entry.name.endswith(".pyc"):
            continue
        name = f"{prefix}{entry.name}"
        if entry.is_dir():
            yield from _walk(entry, f"{name}/")
        elif entry.is_file():
            yield name, entry.read_bytes()


def copy_defaults(kind: Kind, target: Path, *, force: bool = False) -> CopyReport:
    """Copy the default tree of `kind` into `target`; edited files are kept unless `force`."""
    report = CopyReport()
    source = location(kind)
    if isinstance(source, Path) and target.exists() and source.resolve() == target.resolve():
        report.same_folder = True
        return report
    for name, data in files(kind).items():
        path = target.joinpath(*name.split("/"))
        if path.is_file():
            if path.read_bytes() == data:
                report.unchanged.append(path)
                continue
            if not force:
                report.kept.append(path)
                continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        report.written.append(path)
    return report
