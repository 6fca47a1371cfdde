"""`check_templates`: rendering in both languages, and the fields that etiquette rules require."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.templates import Problem, TemplateLimits, Templates, check_templates
from hub.templates.checks import spoken_words
from hub.templates.engine import packaged_folder

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
Write = Callable[[str, str], Path]


@pytest.fixture
def company(tmp_path: Path) -> Path:
    return tmp_path / "templates"


@pytest.fixture
def write(company: Path) -> Write:
    def write(relative: str, text: str) -> Path:
        path = company / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


def _check(company: Path, **kwargs: object) -> list[Problem]:
    return check_templates(Templates([company]), now=NOW, **kwargs)  # type: ignore[arg-type]


def _found(problems: list[Problem]) -> set[tuple[str, str | None, str]]:
    return {(Path(p.file).name, p.rule, p.message) for p in problems}


def _shipped(relative: str) -> str:
    return (packaged_folder() / relative).read_text(encoding="utf-8")


def test_shipped_templates_copied_into_a_hub_pass(company: Path, write: Write) -> None:
    for path in packaged_folder().rglob("*.j2"):
        write(path.relative_to(packaged_folder()).as_posix(), path.read_text(encoding="utf-8"))
    assert _check(company) == []


def test_phone_greeting_must_name_department_and_agent(company: Path, write: Write) -> None:
    write(
        "voice/phone_greeting.en.txt.j2", "Hello, thank you for calling {{ company.name }}. How can I help?"
    )
    # A name in a comment or behind a test that never prints it does not count.
    write(
        "voice/phone_greeting.zh.txt.j2",
        "{# agent.name #}您好，这里是{{ team.department }}。{% if agent.name %}请讲。{% endif %}",
    )
    found = _found(_check(company))
    assert found == {
        ("phone_greeting.en.txt.j2", "P2", "does not render the department"),
        ("phone_greeting.en.txt.j2", "P2", "does not render the agent's name"),
        ("phone_greeting.zh.txt.j2", "P2", "does not render the agent's name"),
    }


def test_fields_count_however_they_are_formatted(company: Path, write: Write) -> None:
    write(
        "voice/phone_greeting.en.txt.j2",
        "Hello, {{ team.department|upper }}, {{ agent.name|replace(' ', '  ') }} speaking.",
    )
    write(
        "voice/voicemail_greeting.en.txt.j2",
        "{# updated: 2026-11-20 #}\nWe call back on {{ reply_by.day }}/{{ reply_by.month }}. "
        "Urgent? {{ alternative_contact.email|replace('@', ' at ') }} or {{ alternative_contact.phone }}.",
    )
    assert _check(company) == []


def test_voicemail_greeting_needs_a_reply_time_and_an_alternative_contact(
    company: Path, write: Write
) -> None:
    write(
        "voice/voicemail_greeting.en.txt.j2",
        "{# updated: 2026-11-20 #}\nHi, this is {{ agent.name }}. {# reply_by #}We will call back soon.",
    )
    write(
        "voice/voicemail_greeting.zh.txt.j2",
        "{# updated: 2026-11-20 #}\n您好，我们会在{{ reply_by|deadline }}回电。"
        "{% if alternative_contact %}{% endif %}",
    )
    assert _found(_check(company)) == {
        ("voicemail_greeting.en.txt.j2", "V2", "does not render when messages will be returned"),
        ("voicemail_greeting.en.txt.j2", "V3", "does not render an alternative contact"),
        ("voicemail_greeting.zh.txt.j2", "V3", "does not render an alternative contact"),
    }


def test_old_voicemail_greetings_get_a_warning(company: Path, write: Write) -> None:
    body = _shipped("voice/voicemail_greeting.en.txt.j2")
    write("voice/voicemail_greeting.en.txt.j2", "{# updated: 2026-09-01 #}\n" + body)
    old_file = write("voice/voicemail_greeting.zh.txt.j2", _shipped("voice/voicemail_greeting.zh.txt.j2"))
    stamp = (NOW - timedelta(days=45)).timestamp()
    os.utime(old_file, (stamp, stamp))
    problems = _check(company)
    assert {(Path(p.file).name, p.rule, p.severity) for p in problems} == {
        ("voicemail_greeting.en.txt.j2", "V1", "warning"),
        ("voicemail_greeting.zh.txt.j2", "V1", "warning"),
    }
    assert "82 days old" in str(problems[0]) + str(problems[1])
    assert "45 days old" in str(problems[0]) + str(problems[1])
    # A recent `updated:` date wins over an old file date; a longer limit silences the rest.
    write(
        "voice/voicemail_greeting.zh.txt.j2",
        "{# updated: 2026-11-21 #}\n" + _shipped("voice/voicemail_greeting.zh.txt.j2"),
    )
    os.utime(company / "voice/voicemail_greeting.zh.txt.j2", (stamp, stamp))
    assert _check(company, limits=TemplateLimits(greeting_max_age=timedelta(days=90))) == []
    write("voice/voicemail_greeting.en.txt.j2", "{# updated: last week #}\n" + body)
    assert _found(_check(company)) == {
        (
            "voicemail_greeting.en.txt.j2",
            "V1",
            "`updated:` must be a date like 2026-11-22, not 'last week'",
        )
    }


def test_callback_script_needs_four_points_and_at_most_75_words(company: Path, write: Write) -> None:
    write(
        "voice/callback_script.en.txt.j2",
        "Hello, this is {{ agent.name }} about {{ callback.reason }}. "
        "Please call back on {{ callback.contact }}.",
    )
    rambling = "我们非常重视您的来电，" * 12
    write(
        "voice/callback_script.zh.txt.j2",
        "我是{{ agent.name }}，关于{{ callback.reason }}。"
        + rambling
        + "请回电{{ callback.contact }}，{{ callback.best_time }}最方便。",
    )
    problems = _check(company)
    assert _found(problems) - {p for p in _found(problems) if p[1] == "V5"} == {
        ("callback_script.en.txt.j2", "V4", "does not render a good time to call back"),
    }
    [too_long] = [p for p in problems if p.rule == "V5"]
    assert Path(too_long.file).name == "callback_script.zh.txt.j2"
    assert "the limit is 75" in too_long.message
    assert _check(company, limits=TemplateLimits(script_max_words=200)) == [
        p for p in problems if p.rule == "V4"
    ]


def test_spoken_words_count_latin_words_and_pairs_of_chinese_characters() -> None:
    assert spoken_words("Please call me back on +44 113 496 0377, after 14:00.") == 11
    assert spoken_words("请您回电") == 2
    assert spoken_words("请您回电。Thank you") == 4
    assert spoken_words("") == 0


def test_signatures_need_every_field_and_the_delimiter(company: Path, write: Write) -> None:
    write(
        "default/signature_agent.en.txt.j2", "--\n{{ agent.name }}\n{{ agent.title }}\n{{ company.address }}"
    )
    write("email/signature_team.zh.html.j2", "<p>-- <br>{{ team.name }}<br>{{ team.department }}</p>")
    assert _found(_check(company)) == {
        ("signature_agent.en.txt.j2", "E6", "does not render the phone number"),
        (
            "signature_agent.en.txt.j2",
            "E6",
            "a plain-text signature must start with the line '-- ' (dash dash space)",
        ),
        ("signature_team.zh.html.j2", "E6", "does not render the address"),
        ("signature_team.zh.html.j2", "E6", "does not render the phone number"),
    }


def test_fax_cover_refusal_complaint_and_acknowledgement_fields(company: Path, write: Write) -> None:
    write(
        "fax/fax_cover.en.txt.j2",
        "To {{ fax.recipient.name }} ({{ fax.recipient.fax }}) from {{ fax.sender.name }}\n"
        "Re: {{ fax.subject }}, {{ fax.date|date }}",
    )
    write("email/refusal.en.txt.j2", "Sorry, company policy. Try {{ refusal.alternatives|first }}.")
    write("email/complaint_reply.en.txt.j2", "We apologise, and thank you.")
    write("email/acknowledge.en.txt.j2", "Thanks, we will reply soon.")
    assert _found(_check(company)) == {
        ("fax_cover.en.txt.j2", "F2", "does not render the sender's contact"),
        ("fax_cover.en.txt.j2", "F2", "does not render the page count"),
        ("fax_cover.en.txt.j2", "F2", "does not render the optional confidentiality notice"),
        ("refusal.en.txt.j2", "L7", "does not render the reason"),
        ("refusal.en.txt.j2", "L7", "does not render the alternatives"),
        ("complaint_reply.en.txt.j2", "C1", "does not render the next step"),
        ("acknowledge.en.txt.j2", "E1", "does not render the reply-time promise"),
    }


def test_render_errors_layout_and_missing_languages_are_reported(company: Path, write: Write) -> None:
    write("email/notice.en.txt.j2", "Hello {{ customer.name }}\n{{ customer.nickname }}\n")
    write("email/notice.zh.txt.j2", "您好\n{% if %}\n")
    write("sms/promo.en.txt.j2", "Hello {{ customer.name }}")
    write("pager/beep.en.txt.j2", "beep")
    write("email/Bad Name.j2", "x")
    write("email/x.fr.txt.j2", "Bonjour")
    write("email/x.en.md.j2", "# hi")
    write("email/notes.md", "not a template: ignored")
    write("email/broken_subject.en.txt.j2", "Line one\nline two")
    write("email/broken_subject.zh.txt.j2", "{{ '' }}")
    problems = _check(company)
    assert {(Path(p.file).name, p.line, p.message) for p in problems} == {
        ("notice.en.txt.j2", 2, "undefined: 'dict object' has no attribute 'nickname'"),
        ("notice.zh.txt.j2", 2, "syntax error: Expected an expression, got 'end of statement block'"),
        ("promo.en.txt.j2", None, "no zh version: add sms/promo.zh.txt.j2"),
        ("beep.en.txt.j2", None, "unknown channel folder 'pager'; use one of " + _channels()),
        ("Bad Name.j2", None, "not a template name: use <channel>/<name>.<lang>.<ext>.j2"),
        ("x.fr.txt.j2", None, "unknown language 'fr'; use en or zh"),
        ("x.en.md.j2", None, "unknown extension 'md'; use txt or html"),
        ("broken_subject.en.txt.j2", None, "a subject must render as one line"),
        ("broken_subject.zh.txt.j2", None, "the subject renders empty"),
    }
    assert all(p.severity == "error" for p in problems)
    assert str(next(p for p in problems if p.line == 2 and "nickname" in p.message)).endswith(
        "notice.en.txt.j2:2: error: undefined: 'dict object' has no attribute 'nickname'"
    )


def _channels() -> str:
    return "api, chat, default, email, fax, sms, voice, voicemail, whatsapp"
