"""The `omnihub` command: init, run, db, user, team, demo, rules and stats."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import unicodedata
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from hub import bootstrap, report_cli
from hub.config import CONFIG_NAME, Config, load
from hub.errors import ConfigError, HubError, NotFound
from hub.etiquette.config import EtiquetteConfig
from hub.models import Agent, Availability, Role
from hub.services import Services, open_services
from hub.templates import TemplateLimits

log = logging.getLogger(__name__)
T = TypeVar("T")

ROLES = {"agent": Role.AGENT, "supervisor": Role.SUPERVISOR, "admin": Role.ADMIN}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (2: bad configuration, 1: other errors)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return 2
    _configure_logging(args.verbose)
    try:
        code: int = args.handler(args)
    except ConfigError as err:
        _fail(err, args.verbose)
        return 2
    except HubError as err:
        _fail(err, args.verbose)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


def _fail(err: HubError, verbose: bool) -> None:
    if verbose:
        log.debug("details", exc_info=err)
    print(f"omnihub: {err}", file=sys.stderr)


def _configure_logging(verbose: bool) -> None:
    root = logging.getLogger()
    if root.handlers:
        return
    from hub import logs

    logs.configure((), verbose)
    if not verbose:
        root.setLevel(logging.WARNING)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omnihub",
        description="Omnichannel customer-service hub: e-mail, fax, phone, SMS, WhatsApp and chat "
        "in one inbox.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"the configuration file (default: ./{CONFIG_NAME})",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    init = commands.add_parser(
        "init",
        help="create a hub in a folder",
        description="Write a commented omnihub.toml, copy the default rules "
        "and templates, create the store and an admin user.",
    )
    init.add_argument("dir", nargs="?", type=Path, default=Path("."), metavar="DIR")
    group = init.add_mutually_exclusive_group()
    group.add_argument("--force", action="store_true", help="overwrite omnihub.toml and edited default files")
    group.add_argument("--if-missing", action="store_true", help="do nothing if omnihub.toml exists")
    init.set_defaults(handler=cmd_init)

    run = commands.add_parser("run", help="run the hub until SIGTERM or SIGINT")
    run.set_defaults(handler=cmd_run)

    db = commands.add_parser("db", help="database maintenance").add_subparsers(
        title="db commands", metavar="COMMAND", required=True
    )
    db.add_parser("upgrade", help="apply the migrations").set_defaults(handler=cmd_db_upgrade)

    user = commands.add_parser("user", help="manage users").add_subparsers(
        title="user commands", metavar="COMMAND", required=True
    )
    add = user.add_parser("add", help="create a user")
    add.add_argument("name")
    add.add_argument("--role", choices=sorted(ROLES), required=True)
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (default: generate one)",
    )
    add.add_argument("--display-name")
    add.add_argument("--language", choices=("en", "zh"), default="en")
    add.set_defaults(handler=cmd_user_add)
    token = user.add_parser("token", help="issue an API token and print it")
    token.add_argument("name")
    token.add_argument("--name", dest="label", default="cli", help="a label for the token")
    token.set_defaults(handler=cmd_user_token)
    user.add_parser("list", help="list users").set_defaults(handler=cmd_user_list)

    team = commands.add_parser("team", help="manage teams").add_subparsers(
        title="team commands", metavar="COMMAND", required=True
    )
    team_add = team.add_parser("add", help="create a team")
    team_add.add_argument("name")
    team_add.add_argument("--department")
    team_add.set_defaults(handler=cmd_team_add)
    member = team.add_parser("member", help="put a user in a team")
    member.add_argument("team")
    member.add_argument("user")
    member.set_defaults(handler=cmd_team_member)

    demo = commands.add_parser("demo", help="fill the hub with sample data")
    demo.add_argument("--if-empty", action="store_true", help="do nothing if the hub holds conversations")
    demo.set_defaults(handler=cmd_demo)

    rules = commands.add_parser("rules", help="check and try the rule files").add_subparsers(
        title="rules commands", metavar="COMMAND"
    )
    check = rules.add_parser("check", help="validate every rule file and print each problem")
    check.add_argument(
        "dir", nargs="?", type=Path, help="the rules folder (default: rules_dir of the config)"
    )
    check.add_argument(
        "--templates",
        type=Path,
        default=None,
        metavar="DIR",
        help="the templates folder to render and check (default: templates_dir of the config)",
    )
    check.set_defaults(handler=cmd_rules_check)
    try_rules = rules.add_parser("test", help="show what the rules would do with a sample message")
    try_rules.add_argument("sample", type=Path, help="a .eml file or a JSON message")
    try_rules.add_argument("--rules", type=Path, default=None, metavar="DIR", help="the rules folder")
    try_rules.add_argument("--json", action="store_true", help="print JSON")
    try_rules.set_defaults(handler=cmd_rules_test)

    stats = commands.add_parser("stats", help="show what the hub holds")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(handler=cmd_stats)

    report_cli.add_parser(commands).set_defaults(handler=cmd_report_sla)
    return parser


def _config(args: argparse.Namespace) -> Config:
    import channels
    from hub import logs

    path: Path | None = args.config
    config = load(path)
    logs.mask(channels.secrets(config))
    return config


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def _with_services(config: Config, work: Callable[[Services], Coroutine[Any, Any, T]]) -> T:
    services = await open_services(config)
    try:
        return await work(services)
    finally:
        await services.close()


def cmd_init(args: argparse.Namespace) -> int:
    """`omnihub init [DIR]`."""
    folder: Path = args.dir
    if args.if_missing and (folder / CONFIG_NAME).exists():
        print(f"{folder / CONFIG_NAME} exists; nothing to do")
        return 0
    result = bootstrap.write_files(folder, force=args.force)
    print(f"wrote {result.config_path}")
    for kind, report in result.copied.items():
        if report.same_folder:
            print(f"{kind}/: the packaged defaults themselves (source tree)")
            continue
        line = f"{kind}/: {_files(report.written)} written, {len(report.unchanged)} unchanged"
        if report.kept:
            line += f", {_files(report.kept)} with local edits kept (--force overwrites them)"
        print(line)
    password = bootstrap.new_password()
    created, revision = _run(bootstrap.prepare_store(result.config, password))
    print(f"database at revision {revision}")
    password_file = result.config.data_dir / bootstrap.INITIAL_LOGIN_FILE
    if created:
        bootstrap.write_secret(password_file, password)
        print(f"created user {bootstrap.ADMIN_USERNAME!r} (admin) with password: {password}")
        print(f"the password is also in {password_file} (readable by you only)")
    else:
        print(f"user {bootstrap.ADMIN_USERNAME!r} exists; its password is unchanged")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """`omnihub run`: validate the configuration, then hand over to the runtime."""
    import channels

    config = _config(args)
    channels.configured(config, str(args.config or CONFIG_NAME))
    from hub.runtime import main as run_hub

    return run_hub(config, args.verbose)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """`omnihub db upgrade`."""
    from hub.store import Database
    from hub.store.migrate import current_revision, upgrade

    config = _config(args)

    async def work() -> str | None:
        db = Database(config.store_url, schema=config.store.schema_name)
        try:
            before = await current_revision(db)
            await upgrade(db)
            after = await current_revision(db)
        finally:
            await db.dispose()
        if before == after:
            print(f"database already at revision {after}")
        else:
            print(f"database upgraded from {before or 'empty'} to revision {after}")
        return after

    if config.store_url.startswith("sqlite"):
        config.data_dir.mkdir(parents=True, exist_ok=True)
    _run(work())
    return 0


def _read_password() -> str:
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise HubError("no password on standard input")
    return password


def cmd_user_add(args: argparse.Namespace) -> int:
    """`omnihub user add NAME --role ROLE`."""
    config = _config(args)
    generated = not args.password_stdin
    password = bootstrap.new_password() if generated else _read_password()

    async def work(services: Services) -> Agent:
        return await services.directory.add_agent(
            args.name,
            password,
            ROLES[args.role],
            display_name=args.display_name,
            language=args.language,
            availability=Availability.AWAY,
        )

    agent = _run(_with_services(config, work))
    print(f"created user {agent.username!r} ({args.role}, id {agent.id})")
    if generated:
        print(f"password: {password}")
    return 0


def cmd_user_token(args: argparse.Namespace) -> int:
    """`omnihub user token NAME`: print a new API token."""
    config = _config(args)

    async def work(services: Services) -> str:
        agent = await services.directory.agent_by_name(args.name)
        return await services.directory.issue_token(agent.id, args.label)

    print(_run(_with_services(config, work)))
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    """`omnihub user list`."""
    config = _config(args)

    async def work(services: Services) -> list[list[str]]:
        teams = {t.id: t.name for t in await services.directory.teams()}
        return [
            [
                str(a.id),
                a.username,
                a.display_name,
                a.role.name.lower(),
                a.availability.value,
                a.language,
                "yes" if a.active else "no",
                ", ".join(teams[t] for t in a.teams),
            ]
            for a in await services.directory.agents()
        ]

    rows = _run(_with_services(config, work))
    _table(["id", "user", "name", "role", "availability", "language", "active", "teams"], rows)
    return 0


def cmd_team_add(args: argparse.Namespace) -> int:
    """`omnihub team add NAME`."""
    config = _config(args)

    async def work(services: Services) -> int:
        return (await services.directory.add_team(args.name, args.department)).id

    team_id = _run(_with_services(config, work))
    print(f"created team {args.name!r} (id {team_id})")
    return 0


def cmd_team_member(args: argparse.Namespace) -> int:
    """`omnihub team member TEAM USER`."""
    config = _config(args)

    async def work(services: Services) -> None:
        teams = [t for t in await services.directory.teams() if t.name == args.team]
        if not teams:
            raise NotFound(f"no team named {args.team!r}")
        agent = await services.directory.agent_by_name(args.user)
        await services.directory.add_member(teams[0].id, agent.id)

    _run(_with_services(config, work))
    print(f"{args.user!r} is in team {args.team!r}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """`omnihub demo`: sample teams, agents and conversations."""
    from hub import demo

    config = _config(args)
    summary = _run(demo.run(config, if_empty=args.if_empty))
    if summary is None:
        print("the hub already holds conversations; no demo data added")
        return 0
    if not summary.total:
        print(f"the {summary.skipped} sample conversations are already there; nothing added")
        return 0
    by_channel = ", ".join(f"{k} {v}" for k, v in sorted(summary.conversations.items()))
    by_language = ", ".join(f"{k} {v}" for k, v in sorted(summary.languages.items()))
    by_status = ", ".join(f"{k} {v}" for k, v in sorted(summary.statuses.items()))
    print(f"demo: {summary.total} conversations ({by_channel})")
    print(f"  languages: {by_language}; statuses: {by_status}")
    print(
        f"  {summary.messages} customer messages, {summary.replies} replies queued, "
        f"{summary.notes} internal notes"
    )
    if summary.skipped:
        print(f"  {summary.skipped} sample conversations were already there")
    if summary.teams:
        print(f"  teams: {', '.join(summary.teams)}")
    for username, password in summary.agents.items():
        if password is not None:
            print(f"  agent {username}: password {password}")
    return 0


def cmd_report_sla(args: argparse.Namespace) -> int:
    """`omnihub report sla`."""
    return report_cli.run(_config(args), args)


def _rules_dir(args: argparse.Namespace, given: Path | None) -> Path:
    if given is not None:
        return given
    config = _config(args)
    return config.path(config.rules_dir)


def cmd_rules_check(args: argparse.Namespace) -> int:
    """`omnihub rules check [DIR]`: every problem as `file:line:column: key: message`."""
    from hub.rules.loader import check_ruleset

    directory = _rules_dir(args, args.dir)
    if not directory.is_dir():
        raise HubError(f"{directory}: no such folder")
    ruleset, problems = check_ruleset(directory)
    for warning in ruleset.warnings if ruleset else ():
        print(f"warning: {warning}", file=sys.stderr)
    if problems or ruleset is None:
        for problem in sorted(problems):
            print(problem)
        print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {directory}", file=sys.stderr)
        return 1
    names = ", ".join(sorted(p for p in ruleset.sources))
    print(f"{directory}: rules valid, version {ruleset.version} ({names or 'built-in defaults'})")
    etiquette = ruleset.etiquette.config
    max_age = etiquette.V1.greeting_max_age if etiquette.V1.enabled else timedelta.max
    limits = TemplateLimits(greeting_max_age=max_age, script_max_words=etiquette.V5.script_max_words)
    templates = _check_templates(args, limits)
    greetings = _check_greetings(args, etiquette)
    return templates or greetings


def _check_greetings(args: argparse.Namespace, etiquette: EtiquetteConfig) -> int:
    """What the rules require of the channels' own settings (voicemail greetings: V1-V3)."""
    from channels import rule_problems

    try:
        problems = rule_problems(_config(args), etiquette, datetime.now(UTC).date())
    except ConfigError:
        return 0
    for problem in problems:
        print(problem)
    errors = [p for p in problems if p.severity == "error"]
    if problems:
        print(f"greetings: {len(errors)} errors, {len(problems) - len(errors)} warnings")
    return 1 if errors else 0


def _check_templates(args: argparse.Namespace, limits: TemplateLimits) -> int:
    """Render every template in both languages and check what the rules require of them."""
    from hub.templates import Templates, check_templates

    folder: Path | None = args.templates
    if folder is None:
        try:
            config = _config(args)
        except ConfigError:
            config = None
        folder = config.path(config.templates_dir) if config is not None else None
    templates = Templates([folder] if folder is not None and folder.is_dir() else [])
    problems = check_templates(templates, limits=limits)
    for problem in problems:
        print(problem)
    errors = [p for p in problems if p.severity == "error"]
    where = ", ".join(str(f) for f in templates.folders)
    print(f"templates: {len(errors)} errors, {len(problems) - len(errors)} warnings ({where})")
    return 1 if errors else 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    """`omnihub rules test SAMPLE [--rules DIR]`: triggers and actions, SLA, acknowledgement, etiquette."""
    from hub.clock import utcnow
    from hub.rules.loader import load_ruleset
    from hub.rules.sample import format_report, load_sample, report
    from hub.rules.sample_outcome import outcome
    from hub.templates import Templates

    ruleset = load_ruleset(_rules_dir(args, args.rules))
    sample = load_sample(args.sample, utcnow())
    try:
        config = _config(args)
        templates = Templates.for_config(config)
    except ConfigError:
        templates = Templates()
    data = report(ruleset, sample) | outcome(ruleset, sample, templates)
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else format_report(data))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """`omnihub stats`: counts from the store, safe beside a running hub."""
    from hub import stats
    from hub.store import Database

    config = _config(args)

    async def work() -> dict[str, Any]:
        db = Database(config.store_url, schema=config.store.schema_name)
        try:
            return await stats.collect(db)
        except (SQLAlchemyError, OSError) as err:
            raise HubError(
                f"cannot read the store at {_shown(config.store_url)} ({type(err).__name__}); "
                "run `omnihub db upgrade` first"
            ) from err
        finally:
            await db.dispose()

    if config.store_url.startswith("sqlite") and not _sqlite_file(config).exists():
        raise HubError(
            f"no database at {_sqlite_file(config)}; run `omnihub init` or `omnihub db upgrade` first"
        )
    data = _run(work())
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        _print_stats(data)
    return 0


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_file(config: Config) -> Path:
    return Path(config.store_url.partition(":///")[2])


def _print_stats(data: dict[str, Any]) -> None:
    conv = data["conversations"]
    states = ", ".join(f"{k} {v}" for k, v in conv.items() if k != "total")
    print(f"contacts        {data['contacts']}")
    print(f"conversations   {conv['total']} ({states})")
    print(f"messages        {data['messages']['total']}")
    directions = sorted({d for v in data["messages"]["by_channel"].values() for d in v})
    rows = [
        [ch, *(str(counts.get(d, 0)) for d in directions)]
        for ch, counts in data["messages"]["by_channel"].items()
    ]
    if rows:
        _table(["  channel", *directions], [[f"  {r[0]}", *r[1:]] for r in rows])
    print(f"quarantined     {data['quarantined']}")
    print("outbox          " + ", ".join(f"{k} {v}" for k, v in data["outbox"].items()))


def _files(paths: Sequence[Path]) -> str:
    return f"{len(paths)} file" + ("" if len(paths) == 1 else "s")


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(_width(c) for c in col) for col in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        cells = (c + " " * (w - _width(c)) for c, w in zip(row, widths, strict=False))
        print("  ".join(cells).rstrip())
