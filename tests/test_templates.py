"""Template lookup, rendering, errors with file and line, and the filters in two languages."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hub.config import Config
from hub.errors import TemplateError
from hub.models import ChannelKind
from hub.templates import SAMPLES, TemplateFailure, Templates, check_templates
from hub.templates.engine import packaged_folder

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


def test_every_shipped_template_renders_in_both_languages_and_passes_the_checks() -> None:
    templates = Templates()
    assert check_templates(templates, now=datetime.now(UTC)) == []
    shipped = sorted(p.relative_to(packaged_folder()).as_posix() for p in packaged_folder().rglob("*.j2"))
    stems = {name.rsplit(".", 3)[0] + "." + name.rsplit(".", 3)[2] for name in shipped}
    for stem in stems:
        base, ext = stem.split(".")
        assert f"{base}.en.{ext}.j2" in shipped and f"{base}.zh.{ext}.j2" in shipped, stem
    names = {s.split("/")[1].split(".")[0] for s in shipped}
    assert {
        "acknowledge",
        "acknowledge_subject",
        "receipt_check",
        "signature_agent",
        "signature_team",
        "complaint_reply",
        "refusal",
        "phone_greeting",
        "voicemail_greeting",
        "callback_script",
        "fax_cover",
        "chat_greeting",
        "chat_hold",
        "followup",
    } <= names


def test_acknowledgement_carries_the_promise_in_the_customers_language_and_zone() -> None:
    templates = Templates()
    context = dict(SAMPLES["en"]) | {"reply_by": datetime(2025, 11, 25, 17, 0, tzinfo=UTC)}
    english = templates.render(ChannelKind.EMAIL, "acknowledge", "en", "txt", context, tz="Europe/London")
    assert "We will reply by Tuesday 25 November, 17:00." in english.text
    assert english.text.startswith("Dear Harriet Quennell,\n\n")
    assert english.file.endswith("email/acknowledge.en.txt.j2")
    chinese = templates.render("email", "acknowledge", "zh-CN", "txt", SAMPLES["zh"], tz="Asia/Shanghai")
    assert "我们将在3月11日（周二）17:00前回复您" in chinese.text
    assert chinese.language == "zh"
    sms = templates.render(ChannelKind.SMS, "acknowledge", "en", "txt", context, tz=ZoneInfo("Asia/Shanghai"))
    assert sms.channel == "default"
    assert "by Wednesday 26 November, 01:00" in sms.text
    subject = templates.render_subject(ChannelKind.EMAIL, "acknowledge", "en", SAMPLES["en"])
    assert subject == "Re: Replacement kettle lid [#48213]"


def test_signature_starts_with_the_delimiter_and_keeps_its_trailing_space() -> None:
    text = Templates().render("email", "signature_agent", "en", "txt", SAMPLES["en"]).text
    assert text.split("\n")[:3] == ["-- ", "Mira Okafor", "Senior Support Specialist, Customer Care"]


def test_company_templates_override_every_shipped_one(company: Path, write: Write) -> None:
    write("default/acknowledge.en.txt.j2", "Company default for {{ customer.name }}")
    templates = Templates([company])
    # The company's default/ wins over the shipped email/ variant.
    rendered = templates.render("email", "acknowledge", "en", "txt", SAMPLES["en"])
    assert rendered.text == "Company default for Harriet Quennell"
    assert rendered.file == str(company / "default/acknowledge.en.txt.j2")
    # Anything the company does not have still comes from the shipped defaults.
    assert templates.render("email", "acknowledge", "zh", "txt", SAMPLES["zh"]).file.startswith(
        str(packaged_folder())
    )


def test_an_override_written_while_the_hub_runs_is_used_at_once(company: Path, write: Write) -> None:
    company.mkdir()
    templates = Templates([company])
    shipped = templates.render("chat", "chat_greeting", "en", "txt", SAMPLES["en"])
    assert shipped.file.startswith(str(packaged_folder()))
    write("chat/chat_greeting.en.txt.j2", "Welcome to {{ company.name }}")
    assert templates.render("chat", "chat_greeting", "en", "txt", SAMPLES["en"]).text == (
        "Welcome to Brightwater Supplies"
    )
    path = write("chat/chat_greeting.en.txt.j2", "Hello from {{ company.name }}!")
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
    assert templates.render("chat", "chat_greeting", "en", "txt", SAMPLES["en"]).text.startswith("Hello from")
    path.unlink()
    assert templates.render("chat", "chat_greeting", "en", "txt", SAMPLES["en"]).file == shipped.file


def test_templates_for_a_configuration_use_its_templates_dir(tmp_path: Path) -> None:
    (tmp_path / "tpl" / "chat").mkdir(parents=True)
    (tmp_path / "tpl" / "chat" / "chat_greeting.en.txt.j2").write_text("Hi from {{ company.name }}")
    config = Config(base_dir=tmp_path, templates_dir=Path("tpl"))
    templates = Templates.for_config(config)
    assert templates.folders == (tmp_path / "tpl", packaged_folder())
    assert templates.render("chat", "chat_greeting", "en", "txt", SAMPLES["en"]).text == (
        "Hi from Brightwater Supplies"
    )


def test_lookup_order_channel_parent_default(company: Path, write: Write) -> None:
    write("default/note.en.txt.j2", "default")
    write("voice/note.en.txt.j2", "voice")
    write("sms/note.en.txt.j2", "sms")
    write("whatsapp/note.en.txt.j2", "whatsapp")
    templates = Templates([company], include_defaults=False)
    assert templates.render(ChannelKind.VOICEMAIL, "note", "en").text == "voice"
    assert templates.render(ChannelKind.WHATSAPP, "note", "en").text == "whatsapp"
    assert templates.render(ChannelKind.FAX, "note", "en").text == "default"
    assert templates.render("default", "note", "en").text == "default"
    with pytest.raises(TemplateError, match="unknown channel 'pager'"):
        templates.render("pager", "note", "en")
    with pytest.raises(TemplateError, match="unknown template extension"):
        templates.render("sms", "note", "en", "pdf")
    with pytest.raises(TemplateError, match="unsupported language 'fr'"):
        templates.render("sms", "note", "fr")
    with pytest.raises(TemplateError, match="not a template name"):
        templates.render("sms", "../../etc/passwd", "en")


def test_other_language_only_when_configured_as_fallback(company: Path, write: Write) -> None:
    write("email/only.en.txt.j2", "English only")
    strict = Templates([company], include_defaults=False)
    with pytest.raises(TemplateError, match=r"no template 'only' for email in zh: tried email/only\.zh"):
        strict.render("email", "only", "zh")
    lenient = Templates([company], include_defaults=False, fallback_language="en")
    rendered = lenient.render("email", "only", "zh")
    assert (rendered.text, rendered.language) == ("English only", "en")


def test_html_is_autoescaped_and_text_is_not(company: Path, write: Write) -> None:
    write("email/echo.en.html.j2", "<p>{{ value }}</p>")
    write("email/echo.en.txt.j2", "{{ value }}")
    templates = Templates([company], include_defaults=False)
    value = {"value": "<script>alert('x')</script> & co"}
    assert templates.render("email", "echo", "en", "html", value).text == (
        "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co</p>"
    )
    assert templates.render("email", "echo", "en", "txt", value).text == "<script>alert('x')</script> & co"
    shipped = Templates().render("email", "acknowledge", "en", "html", dict(SAMPLES["en"]) | value)
    assert "<p>Thank you" in shipped.text


@pytest.mark.parametrize(
    ("source", "line", "message"),
    [
        ("Hello\n\n{{ customer.nmae }}\n", 3, "has no attribute 'nmae'"),
        ("Hello\n{% if customer.name %}\n{{ missing }}\n{% endif %}\n", 3, "'missing' is undefined"),
        ("Hello\n{% for x in %}\n", 2, "syntax error"),
        ("Hello\n\n\n{{ 1 / 0 }}\n", 4, "ZeroDivisionError"),
        ("Hi\n{{ reply_by|deadline }}\n", 2, "has no time zone"),
        ("{{ 'x' * 200000 }}", 1, "size limit"),
    ],
)
def test_a_failing_template_names_file_and_line_and_returns_nothing(
    company: Path, write: Write, source: str, line: int, message: str
) -> None:
    path = write("email/broken.en.txt.j2", source)
    templates = Templates([company], include_defaults=False)
    context = dict(SAMPLES["en"]) | {"reply_by": datetime(2025, 1, 1)}  # noqa: DTZ001
    with pytest.raises(TemplateFailure, match=message) as caught:
        templates.render("email", "broken", "en", "txt", context)
    assert (caught.value.file, caught.value.line) == (str(path), line)
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_an_error_in_an_included_template_names_the_included_file(company: Path, write: Write) -> None:
    write("email/outer.en.txt.j2", "Dear customer,\n{% include 'email/inner.en.txt.j2' %}\n")
    inner = write("email/inner.en.txt.j2", "fine\nstill fine\n{{ nothing.here }}\n")
    with pytest.raises(TemplateFailure) as caught:
        Templates([company], include_defaults=False).render("email", "outer", "en")
    assert (caught.value.file, caught.value.line) == (str(inner), 3)


def test_a_changed_template_is_picked_up(company: Path, write: Write) -> None:
    path = write("chat/hello.en.txt.j2", "one")
    templates = Templates([company], include_defaults=False)
    assert templates.render("chat", "hello", "en").text == "one"
    path.write_text("two and more", encoding="utf-8")
    stat = path.stat()
    os.utime(path, (stat.st_atime + 5, stat.st_mtime + 5))
    assert templates.render("chat", "hello", "en").text == "two and more"


def test_a_stamp_changes_when_the_file_a_render_would_use_changes(company: Path, write: Write) -> None:
    company.mkdir()
    templates = Templates([company])
    shipped = templates.stamp("voice", "phone_greeting", "en")
    assert shipped is not None
    assert templates.stamp("voice", "phone_greeting", "en") == shipped
    path = write("default/phone_greeting.en.txt.j2", "Company default")
    own_default = templates.stamp("voice", "phone_greeting", "en")
    assert own_default not in (None, shipped)
    write("voice/phone_greeting.en.txt.j2", "Company voice")
    own_voice = templates.stamp("voice", "phone_greeting", "en")
    assert own_voice not in (None, shipped, own_default)
    path.unlink()
    assert templates.stamp("voice", "phone_greeting", "en") == own_voice
    edited = write("voice/phone_greeting.en.txt.j2", "Company VOICE")
    os.utime(edited, ns=(edited.stat().st_atime_ns, edited.stat().st_mtime_ns + 1))
    assert templates.stamp("voice", "phone_greeting", "en") not in (None, own_voice)
    edited.unlink()
    assert templates.stamp("voice", "phone_greeting", "en") == shipped
    assert Templates([company], include_defaults=False).stamp("voice", "phone_greeting", "en") is None


def test_subjects_render_as_one_line_and_never_empty(company: Path, write: Write) -> None:
    write("email/x_subject.en.txt.j2", "Re:   {{ conversation.subject }}\n\n[#{{ conversation.id }}]\n")
    write("email/empty_subject.en.txt.j2", "{{ '' }}\n")
    templates = Templates([company], include_defaults=False)
    assert (
        templates.render_subject("email", "x", "en", SAMPLES["en"]) == "Re: Replacement kettle lid [#48213]"
    )
    with pytest.raises(TemplateError, match="subject rendered empty"):
        templates.render_subject("email", "empty", "en", SAMPLES["en"])


def test_date_filters_in_both_languages(company: Path, write: Write) -> None:
    write(
        "default/dates.en.txt.j2",
        "{{ at|date }} | {{ at|date(year=False) }} | {{ at|datetime }} | {{ at|time }} | "
        "{{ at|weekday }} | {{ at|deadline }} | {{ wait|duration }}",
    )
    write(
        "default/dates.zh.txt.j2",
        "{{ at|date }} | {{ at|datetime(year=True) }} | {{ at|weekday }} | "
        "{{ at|deadline }} | {{ wait|duration }}",
    )
    templates = Templates([company], include_defaults=False)
    context = {"at": datetime(2026, 3, 29, 0, 30, tzinfo=UTC), "wait": timedelta(days=1, hours=2, minutes=5)}
    english = templates.render("chat", "dates", "en", "txt", context, tz="Europe/London")
    assert english.text == (
        "Sunday 29 March 2026 | Sunday 29 March | Sunday 29 March, 00:30 | 00:30 | "
        "Sunday | by Sunday 29 March, 00:30 | 1 day 2 hours 5 minutes"
    )
    after_dst = dict(context) | {"at": datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "wait": timedelta(minutes=1)}
    assert (
        "Sunday 29 March, 02:30"
        in templates.render("chat", "dates", "en", "txt", after_dst, tz="Europe/London").text
    )
    chinese = templates.render("chat", "dates", "zh", "txt", context, tz="Asia/Shanghai")
    assert chinese.text.split(" | ") == [
        "2026年3月29日（周日）",
        "2026年3月29日（周日）08:30",
        "周日",
        "3月29日（周日）08:30前",
        "1天2小时5分钟",
    ]
    with pytest.raises(TemplateError, match="unknown time zone"):
        templates.render("chat", "dates", "en", "txt", context, tz="Mars/Olympus")
