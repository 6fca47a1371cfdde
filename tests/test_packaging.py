"""The built wheel carries every module, the migrations and the default rules and templates."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hub import defaults

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "hub", "channels", "rules", "templates")
EXTRA = {
    "rules/phrases/packaging-check.yaml": "forbidden: []\n",
    "templates/email/packaging-check.zh.txt.j2": "{{ agent.name }} 您好\n",
}


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the source tree, with a nested rule and template added."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    for name, text in EXTRA.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text, encoding="utf-8")
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [built] = out.glob("omnihub-*.whl")
    return built


def test_wheel_has_the_default_rules_and_templates(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in defaults.KINDS:
        expected = {f"hub/_defaults/{kind}/{name}" for name in _tree(REPO / kind)}
        expected |= {f"hub/_defaults/{name}" for name in EXTRA if name.startswith(kind)}
        assert expected <= names, sorted(expected - names)
        assert f"hub/_defaults/{kind}/README.md" in names


def test_wheel_has_the_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = REPO / "hub" / "store" / "migrations"
    expected = {"hub/store/migrations/env.py", "hub/store/migrations/script.py.mako"}
    expected |= {f"hub/store/migrations/versions/{p.name}" for p in (migrations / "versions").glob("*.py")}
    assert len(expected) > 2
    assert expected <= names, sorted(expected - names)


def test_wheel_has_the_ui_assets_and_the_chat_widget(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    static = REPO / "hub" / "web" / "ui" / "static"
    expected = {f"hub/web/ui/static/{p.name}" for p in static.iterdir() if p.is_file()}
    expected.add("channels/webchat/widget.js")
    assert len(expected) > 4
    assert expected <= names, sorted(expected - names)


def test_wheel_has_every_module(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {
        p.relative_to(REPO).as_posix()
        for top in ("hub", "channels")
        for p in (REPO / top).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    missing = sorted(modules - names)
    packages = sorted({m.rpartition("/")[0].replace("/", ".") for m in missing})
    assert not missing, (
        f"modules missing from the wheel: {missing}; add the packages {packages} "
        "to [tool.setuptools] packages in pyproject.toml"
    )
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "omnihub = hub.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_finds_its_defaults(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); from hub import defaults; "
        "print(json.dumps({k: sorted(defaults.files(k)) for k in defaults.KINDS}))"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", script, str(site)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (
        str(site)
        in subprocess.run(
            [
                sys.executable,
                "-S",
                "-c",
                "import sys; sys.path.insert(0, sys.argv[1]); "
                "import hub.defaults as d; print(d.location('rules'))",
                str(site),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    )
    found = json.loads(done.stdout)
    for kind in defaults.KINDS:
        expected = set(_tree(REPO / kind)) | {n.partition("/")[2] for n in EXTRA if n.startswith(kind)}
        assert set(found[kind]) == expected


def test_source_install_finds_the_repository_defaults() -> None:
    for kind in defaults.KINDS:
        assert defaults.files(kind) == _tree(REPO / kind)
