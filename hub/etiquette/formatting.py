"""E5: no emoticons or repeated punctuation on formal channels; an HTML mail carries the same text."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from hub.etiquette.config import FormattingRule
from hub.etiquette.findings import Draft, Finding
from hub.etiquette.messages import channel_name, say

_EMOTICON = re.compile(
    r"(?<![\w:/])(?:[:;=][-o^']?[)(\]\[dDpP/\\|*3]|:'\(|<3|\^[_\-.]?\^|T_T|QAQ|orz|OTL)(?![\w])"
    r"|[\U0001F300-\U0001FAFF\u2639\u263a\u263b\u2764\u270c]"
    r"|\[(?:微笑|呲牙|偷笑|可爱|玫瑰|抱拳|害羞|可怜|大哭|笑脸|奸笑|捂脸|耶|强|握手|爱心|鼓掌|坏笑|调皮|憨笑)\]"
)
_REPEATED = re.compile(r"[!！?？]{2,}|。{2,}|[,，]{2,}")
_WORDS = re.compile(r"[^\W\d_]+|[\u3400-\u9fff]", re.UNICODE)


def check_formatting(draft: Draft, rule: FormattingRule, own_text: str, language: str) -> list[Finding]:
    """E5 findings: emoticons and repeated punctuation in the agent's words; the text/plain part."""
    if not rule.enabled:
        return []
    findings = []
    if draft.channel in rule.formal_channels:
        channel = channel_name(language, draft.channel.value)
        if rule.emoticons:
            for match in _EMOTICON.finditer(own_text):
                message = say(language, "emoticon", found=match.group(), channel=channel)
                findings.append(Finding("E5", rule.severity, message, match.span(), "body"))
        if rule.repeated_punctuation:
            for match in _REPEATED.finditer(own_text):
                message = say(language, "repeated_punctuation", found=match.group())
                findings.append(Finding("E5", rule.severity, message, match.span(), "body", match.group()[0]))
    if draft.html is not None and rule.plain_text_required_with_html:
        findings.extend(_plain_text_part(draft, rule, language))
    return findings


def _plain_text_part(draft: Draft, rule: FormattingRule, language: str) -> list[Finding]:
    if not draft.text.strip():
        return [Finding("E5", rule.plain_text_severity, say(language, "plain_text_missing"), None, "body")]
    html_words = {w.casefold() for w in _WORDS.findall(html_text(draft.html or ""))}
    if not html_words:
        return []
    text_words = {w.casefold() for w in _WORDS.findall(draft.text)}
    coverage = len(html_words & text_words) / len(html_words)
    if coverage >= rule.plain_text_min_coverage:
        return []
    message = say(language, "plain_text_unfaithful", percent=int(coverage * 100))
    return [Finding("E5", rule.severity, message, None, "html")]


class _TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_text(html: str) -> str:
    """The visible text of an HTML body."""
    parser = _TextOf()
    parser.feed(html)
    parser.close()
    return " ".join(parser.parts)
