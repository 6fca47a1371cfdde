"""Each etiquette rule family on its own (E3-E8, L3, L4, L7): findings, spans, severities, languages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.etiquette import Draft, DraftAttachment, EtiquetteRules, Finding, check, has_errors, load_etiquette
from hub.etiquette.config import SignatureRule
from hub.etiquette.messages import channel_name, field_name
from hub.etiquette.signature import signature_fields, signature_words
from hub.models import ChannelKind

RULES = Path(__file__).resolve().parent.parent / "rules"
SIGNATURE_EN = (
    "\n-- \nAnna Schmidt\nCustomer Support Specialist\nAcme GmbH, 12 Harbour Street, Hamburg 20457\n"
    "Tel: +49 40 1234 5678\n"
)
SIGNATURE_ZH = "\n-- \n王丽\n客服专员\n上海市浦东新区世纪大道100号\n电话：021-5888 6666\n"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


@pytest.fixture(scope="module")
def rules() -> EtiquetteRules:
    return EtiquetteRules.from_dir(RULES)


def _mail(text: str, subject: str = "Your refund for order 44871", **kwargs: Any) -> Draft:
    return Draft(ChannelKind.EMAIL, subject, text, **kwargs)


def _only(findings: list[Finding], rule_id: str) -> list[Finding]:
    return [f for f in findings if f.rule_id == rule_id]


def _under(text: str, finding: Finding) -> str:
    assert finding.span is not None
    return text[finding.span[0] : finding.span[1]]


GOOD_EN = "Dear Ms Wang,\n\nYour refund of 34.90 EUR was sent today.\n\nBest regards," + SIGNATURE_EN
GOOD_ZH = "王女士您好：\n\n34.90元退款今天已经发出，3到5个工作日内到账。\n\n祝好" + SIGNATURE_ZH


@pytest.mark.parametrize("text", [GOOD_EN, GOOD_ZH])
def test_a_good_mail_has_no_findings(rules: EtiquetteRules, text: str) -> None:
    assert check(_mail(text), rules, "en") == []


# E3: subject


def test_e3_empty_subject_is_an_error_in_the_agents_language(rules: EtiquetteRules) -> None:
    [en] = _only(check(_mail(GOOD_EN, subject="  "), rules, "en"), "E3")
    [zh] = _only(check(_mail(GOOD_EN, subject=None), rules, "zh"), "E3")
    assert en.severity == zh.severity == "error" and en.field == "subject"
    assert "subject is empty" in en.message and "主题为空" in zh.message


def test_e3_length_counts_re_and_the_reference_token_warns_above_50_and_fails_above_78(
    rules: EtiquetteRules,
) -> None:
    subject = "Refund for your order 44871 placed on 3 May 2026"  # 48 characters
    assert len(subject) == 48
    assert _only(check(_mail(GOOD_EN, subject=subject), rules, "en"), "E3") == []
    reply = _mail(GOOD_EN, subject=f"Re: {subject} [#1234]", is_reply=True, conversation_id=1234)
    [warning] = _only(check(reply, rules, "en"), "E3")
    assert warning.severity == "warning" and "60 characters" in warning.message
    long_subject = "Re: " + "x" * 70 + " [#1234]"
    [error] = _only(
        check(_mail(GOOD_EN, subject=long_subject, is_reply=True, conversation_id=1234), rules, "en"), "E3"
    )
    assert error.severity == "error" and error.span == (78, len(long_subject))


def test_e3_a_reply_without_re_and_token_is_told_both_and_the_length_counts_what_will_be_added(
    rules: EtiquetteRules,
) -> None:
    subject = "Your refund for order 44871 and the voucher"  # 43 + "Re: " + " [#1234]" = 55
    findings = _only(
        check(_mail(GOOD_EN, subject=subject, is_reply=True, conversation_id=1234), rules, "zh"), "E3"
    )
    assert [(f.severity, f.suggestion) for f in findings] == [
        ("warning", f"Re: {subject}"),
        ("error", f"Re: {subject} [#1234]"),
        ("warning", None),
    ]
    assert "会话编号 [#1234]" in findings[1].message and "55" in findings[2].message


@pytest.mark.parametrize("subject", ["Question", "hello!", "Re: 问题", "回复：咨询 [#7]", "  FYI  "])
def test_e3_a_generic_subject_alone_is_a_warning(rules: EtiquetteRules, subject: str) -> None:
    findings = _only(check(_mail(GOOD_EN, subject=subject), rules, "en"), "E3")
    assert [f.severity for f in findings] == ["warning"]
    assert _under(subject, findings[0]) == subject.strip()


def test_e3_applies_to_mail_and_fax_only(rules: EtiquetteRules) -> None:
    assert _only(check(Draft(ChannelKind.SMS, None, "Your parcel is on its way."), rules, "en"), "E3") == []


# E4: body length and summary first


def test_e4_more_than_one_page_is_an_error_and_a_long_mail_without_summary_a_warning(
    rules: EtiquetteRules,
) -> None:
    paragraph = "\n".join(
        f"Line {i}: the parcel was scanned at the depot and left for delivery." for i in range(8)
    )
    text = "Dear Ms Wang,\n\n" + "\n\n".join([paragraph] * 7) + "\n" + SIGNATURE_EN
    findings = _only(check(_mail(text), rules, "en"), "E4")
    assert [f.severity for f in findings] == ["error", "error", "warning"]
    assert "57 lines" in findings[0].message and _under(text, findings[0]).startswith("Line 1:")
    assert "Anna Schmidt" not in _under(text, findings[1])


def test_e4_a_long_mail_that_opens_with_a_summary_passes(rules: EtiquetteRules) -> None:
    body = "\n".join(f"第{i}步：请按照说明操作。" for i in range(25))
    text = "您好：\n\n简而言之：退款已发出，三天内到账。\n\n" + body + "\n" + SIGNATURE_ZH
    assert _only(check(_mail(text), rules, "zh"), "E4") == []
    no_summary = "您好：\n\n" + body + "\n" + SIGNATURE_ZH
    [finding] = _only(check(_mail(no_summary), rules, "zh"), "E4")
    assert finding.severity == "warning" and "要点" in finding.message


def test_e4_quoted_mail_does_not_count(rules: EtiquetteRules) -> None:
    quoted = "\n".join("> an earlier line of the customer's mail" for _ in range(80))
    text = GOOD_EN + "\nOn Mon, 3 May 2026, Li Wang wrote:\n" + quoted
    assert _only(check(_mail(text), rules, "en"), "E4") == []


def test_e4_inline_quotes_between_answers_do_not_count(rules: EtiquetteRules) -> None:
    answer = "\n".join(f"Answer line {i}." for i in range(30))
    quote = "\n".join(f"> question line {i}" for i in range(40))
    text = f"{answer}\n{quote}\n{answer}\n" + SIGNATURE_EN
    messages = [f.message for f in _only(check(_mail(text), rules, "en"), "E4")]
    assert messages[0].startswith("The message has 60 lines")


# E5: formatting


def test_e5_emoticons_and_repeated_punctuation_on_mail_with_spans(rules: EtiquetteRules) -> None:
    text = (
        "Dear Ms Wang,\n\nIt is fixed!!! Thanks :) 谢谢😊 好的？？ See 10:30) and https://x.example/:p"
        + SIGNATURE_EN
    )
    findings = _only(check(_mail(text), rules, "en"), "E5")
    assert sorted(_under(text, f) for f in findings) == sorted(["!!!", ":)", "😊", "？？"])
    assert all(f.severity == "warning" for f in findings)


def test_e5_emoticons_are_fine_in_chat(rules: EtiquetteRules) -> None:
    assert _only(check(Draft(ChannelKind.CHAT, None, "Done :) enjoy!!"), rules, "en"), "E5") == []


def test_e5_html_without_text_part_is_an_error_and_an_unfaithful_text_part_a_warning(
    rules: EtiquetteRules,
) -> None:
    html = "<p>Your refund of <b>34.90 EUR</b> was sent today and reaches your card within five days.</p>"
    [missing] = _only(check(_mail("", html=html), rules, "zh"), "E5")
    assert missing.severity == "error" and "纯文本" in missing.message
    unfaithful = _only(check(_mail("Refund sent." + SIGNATURE_EN, html=html), rules, "en"), "E5")
    assert [(f.severity, f.field) for f in unfaithful] == [("warning", "html")]
    faithful = (
        "Your refund of 34.90 EUR was sent today and reaches your card within five days." + SIGNATURE_EN
    )
    assert _only(check(_mail(faithful, html=html), rules, "en"), "E5") == []


# E6: signature


def test_e6_no_signature_is_an_error(rules: EtiquetteRules) -> None:
    [finding] = _only(check(_mail("Your refund was sent today."), rules, "zh"), "E6")
    assert finding.severity == "error" and "缺少签名" in finding.message and finding.field == "signature"


@pytest.mark.parametrize(
    ("signature", "missing"),
    [
        ("Anna Schmidt\nTel: +49 40 1234 5678", ["job title", "address"]),
        ("Anna Schmidt | Support Specialist\n12 Harbour Street, Hamburg", ["phone number"]),
        ("Customer Support Specialist\n12 Harbour Street, Hamburg 20457\n+49 40 1234 5678", ["name"]),
        ("王丽 · 客服专员\n电话：021-5888 6666", ["address"]),
    ],
)
def test_e6_names_each_missing_field_with_the_signature_as_span(
    rules: EtiquetteRules, signature: str, missing: list[str]
) -> None:
    text = "Your refund was sent today.\n-- \n" + signature + "\n"
    findings = _only(check(_mail(text), rules, "en"), "E6")
    assert [f.message.removeprefix("The signature has no ").rstrip(".") for f in findings] == missing
    assert all(_under(text, f).startswith("-- \n") for f in findings)


@pytest.mark.parametrize(
    ("signature", "fields"),
    [
        ("Tom Lee\nSupport Team Lead, Acme Inc.\n350 Fifth Avenue, New York, NY 10118\n+1 212-555-0100",
         {"name", "title", "address", "phone"}),
        ("Maria Garcia\nCustomer Care Advisor\nAcme Ltd · Unit 4, Riverside Park, Leeds LS1 4AP\n"
         "T +44 113 496 0000 · www.acme.example", {"name", "title", "address", "phone"}),
        ("张伟\n售后服务部 客服经理\n北京市朝阳区建国路88号SOHO现代城A座1201室\n手机：138 0013 8000",
         {"name", "title", "address", "phone"}),
        ("李娜\n地址：广州市天河区体育西路\n电话 020 3888 0000", {"name", "address", "phone"}),
        ("Best wishes from the whole team!", set()),
        ("Order 12345678 shipped", set()),
    ],
)  # fmt: skip
def test_e6_recognises_the_fields_of_real_signatures(signature: str, fields: set[str]) -> None:
    words = signature_words(SignatureRule())
    assert signature_fields(signature, words) - {"contact"} == fields


def test_e6_the_last_delimiter_before_quoted_mail_starts_the_signature(rules: EtiquetteRules) -> None:
    text = GOOD_ZH + "\n在 2026年5月3日，李先生 写道：\n> -- \n> 李先生\n"
    assert _only(check(_mail(text), rules, "zh"), "E6") == []


# E7: attachments


def _attach(
    name: str, head: bytes, size: int = 20_000, content_type: str = "application/octet-stream"
) -> DraftAttachment:
    return DraftAttachment(name, content_type, size, head)


def test_e7_real_files_of_allowed_types_pass(rules: EtiquetteRules) -> None:
    files = [
        _attach("invoice.pdf", PDF),
        _attach("photo.png", PNG),
        _attach("scan.JPG", b"\xff\xd8\xff\xe0\x00\x10JFIF"),
        _attach("report.docx", b"PK\x03\x04\x14\x00\x06\x00"),
        _attach("notes.txt", "退款说明 refund notes\n".encode()),
    ]
    assert _only(check(_mail(GOOD_EN, attachments=files), rules, "en"), "E7") == []


@pytest.mark.parametrize(
    ("attachment", "words"),
    [
        (_attach("invoice.pdf", b"MZ\x90\x00\x03"), "Windows program"),
        (_attach("invoice.pdf", b"\x7fELF\x02\x01"), "Linux program"),
        (_attach("photo.png", PDF), "content is pdf"),
        (_attach("data.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1"), "old-format Office"),
        (_attach("notes.txt", b"\x00\x01\x02binary"), "not look like a valid text"),
        (_attach("setup.exe", b"MZ\x90\x00"), "not a file type"),
        (_attach("empty.pdf", b"", size=0), "is empty"),
        (_attach("big.pdf", PDF, size=11 * 1024 * 1024), "11.0 MB"),
    ],
)
def test_e7_problems_are_errors_naming_the_file(
    rules: EtiquetteRules, attachment: DraftAttachment, words: str
) -> None:
    findings = _only(check(_mail(GOOD_EN, attachments=[attachment]), rules, "en"), "E7")
    assert findings and all(f.severity == "error" and f.attachment == attachment.filename for f in findings)
    assert any(words in f.message for f in findings), [f.message for f in findings]


def test_e7_limits_are_per_channel_total_and_count(rules: EtiquetteRules) -> None:
    fax = Draft(ChannelKind.FAX, "Invoice 2026-0017", GOOD_EN, attachments=[_attach("photo.png", PNG)])
    [wrong_type] = _only(check(fax, rules, "zh"), "E7")
    assert "传真" in wrong_type.message and "pdf, tiff" in wrong_type.message
    many = [_attach(f"part{i}.pdf", PDF, size=4 * 1024 * 1024) for i in range(6)]
    [total] = _only(check(_mail(GOOD_EN, attachments=many), rules, "en"), "E7")
    assert total.attachment is None and "24.0 MB" in total.message
    whatsapp = Draft(
        ChannelKind.WHATSAPP, None, "Here you go", attachments=[_attach("a.pdf", PDF), _attach("b.pdf", PDF)]
    )
    assert ["2 attachments" in f.message for f in _only(check(whatsapp, rules, "en"), "E7")] == [True]
    voice = Draft(ChannelKind.VOICE, None, "script", attachments=[_attach("a.pdf", PDF)])
    assert "cannot carry attachments" in _only(check(voice, rules, "en"), "E7")[0].message


# E8: spelling


def test_e8_flags_misspellings_with_a_correction_and_skips_what_is_not_prose(rules: EtiquetteRules) -> None:
    text = (
        "Dear Ms Wang,\n\nWe have recieved your retrun and the refund is on its way. "
        "See https://shop.example.com/retrun or write to retrun@example.com about order AB12cd. "
        "Acme's Wonderphone ships with Qwertyx. Sorry for the inconvenience.\n"
        "On Mon, 3 May, Li wrote:\n> I hav not recieved it\n" + SIGNATURE_EN
    )
    findings = _only(check(_mail(text), rules, "zh"), "E8")
    assert [(_under(text, f), f.suggestion) for f in findings] == [
        ("recieved", "是否应为“received”？"),
        ("retrun", "是否应为“return”？"),
    ]
    assert all(f.severity == "warning" for f in findings)


def test_e8_custom_words_and_chinese_text_are_not_flagged(rules: EtiquetteRules) -> None:
    text = "您好，我们已经收到退货。We apologise for the colour mix-up; your voucher is in the app."
    assert _only(check(Draft(ChannelKind.CHAT, None, text), rules, "en"), "E8") == []


# L3, L4, L7 details (L1, L2, L5, L6 are covered by the labelled set and the matching tests)


def test_l3_suggests_the_rewrite_from_the_rule_file_unless_an_alternative_follows(
    rules: EtiquetteRules,
) -> None:
    text = "We only keep parcels at the counter until 6 pm."
    [finding] = _only(check(Draft(ChannelKind.CHAT, None, text), rules, "en"), "L3")
    assert _under(text, finding) == "We only keep"
    assert finding.suggestion is not None and finding.suggestion.startswith("Happy to keep it for you")
    constructive = text + " I can ask a colleague to keep it for you until 8 instead."
    assert _only(check(Draft(ChannelKind.CHAT, None, constructive), rules, "en"), "L3") == []


def test_l4_explains_the_jargon_in_the_agents_language(rules: EtiquetteRules) -> None:
    text = "包裹已妥投，请查收。"
    [finding] = check(Draft(ChannelKind.CHAT, None, text), rules, "zh")
    assert (finding.rule_id, finding.severity, _under(text, finding)) == ("L4", "warning", "妥投")
    assert finding.suggestion == "请改说：已送达"


def test_l7_policy_refusals_need_a_reason_nearby(rules: EtiquetteRules) -> None:
    bare = "Due to company policy, we cannot refund opened items."
    [finding] = check(Draft(ChannelKind.CHAT, None, bare), rules, "en")
    assert (finding.rule_id, _under(bare, finding)) == ("L7", "policy")
    reasoned = bare + " This is because opened items cannot be resold as new."
    assert _only(check(Draft(ChannelKind.CHAT, None, reasoned), rules, "en"), "L7") == []
    not_a_refusal = "Our returns policy gives you 60 days."
    assert check(Draft(ChannelKind.CHAT, None, not_a_refusal), rules, "en") == []


def test_phrases_in_the_subject_are_reported_on_the_subject(rules: EtiquetteRules) -> None:
    findings = check(_mail(GOOD_EN, subject="I don't know about order 44871"), rules, "en")
    assert [(f.rule_id, f.field, f.span) for f in findings] == [("L1", "subject", (0, 12))]


def test_quoted_mail_and_the_signature_are_not_checked_for_wording(rules: EtiquetteRules) -> None:
    text = GOOD_EN + "\nOn Mon, 3 May 2026, Li Wang wrote:\n> I don't know what you mean, you're wrong!!!\n"
    assert check(_mail(text), rules, "en") == []


# severities and switches come from the configuration


def test_severities_and_switches_come_from_etiquette_yaml() -> None:
    phrases = {"phrases/x.yaml": {"language": "en", "entries": [
        {"rule": "L1", "phrases": ["no idea"]},
        {"rule": "L1", "phrases": ["dunno"], "severity": "warning"},
        {"rule": "L6", "phrases": ["you know?"]},
    ]}}  # fmt: skip
    config = {"phrases": {"L1": {"severity": "error"}, "L6": {"enabled": False}}, "E5": {"severity": "error"}}
    rules = load_etiquette(config, phrases)
    text = "No idea, dunno, you know?"
    findings = check(Draft(ChannelKind.CHAT, None, text), rules, "en")
    assert [(f.rule_id, f.severity, _under(text, f)) for f in findings] == [
        ("L1", "error", "No idea"),
        ("L1", "warning", "dunno"),
    ]
    assert has_errors(findings) and not has_errors(findings[1:])
    mail = Draft(ChannelKind.EMAIL, "Your order", "Thanks!!" + SIGNATURE_EN)
    assert [f.severity for f in _only(check(mail, rules, "en"), "E5")] == ["error"]
    disabled = load_etiquette({"E6": {"enabled": False}, "E3": {"channels": ["fax"]}}, {})
    assert check(Draft(ChannelKind.EMAIL, None, "Thanks."), disabled, "en") == []


def test_finding_to_dict_is_json_ready(rules: EtiquetteRules) -> None:
    [finding] = _only(check(Draft(ChannelKind.CHAT, None, "idk"), rules, "en"), "L1")
    assert finding.to_dict() == {
        "rule_id": "L1",
        "severity": "error",
        "message": "Never just say “idk”: say what you will do to find out, and when.",
        "field": "body",
        "span": [0, 3],
        "suggestion": "Let me find that out for you; I will get back to you by …",
        "attachment": None,
    }


def test_findings_are_worded_in_english_or_chinese_by_the_language_tag() -> None:
    assert channel_name("zh-CN", "fax") == channel_name("zh_Hans", "fax") == "传真"
    assert channel_name("en-GB", "fax") == channel_name("fr", "fax") == channel_name("", "fax") == "fax"
    assert field_name("ZH", "phone") == "联系电话"
