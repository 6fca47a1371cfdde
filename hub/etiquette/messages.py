"""The findings' wording in the agent's language (English and Simplified Chinese)."""

from __future__ import annotations

from typing import Any

from hub.templates.dates import normalize_language

_CATALOGUE: dict[str, dict[str, str]] = {
    "subject_missing": {
        "en": "The subject is empty; write a short, accurate subject.",
        "zh": "邮件主题为空，请写一个简短准确的主题。",
    },
    "subject_too_long": {
        "en": "The subject is {length} characters as sent (with “Re: ” and the reference); "
        "above {limit} it is cut off in most mail clients.",
        "zh": "发送时主题共 {length} 个字符（含“Re: ”和编号），超过 {limit} 个字符会被多数邮件客户端截断。",
    },
    "subject_long": {
        "en": "The subject is {length} characters as sent; keep it within {limit} so that it shows in full.",
        "zh": "发送时主题共 {length} 个字符，建议不超过 {limit} 个字符，以便完整显示。",
    },
    "subject_generic": {
        "en": "“{subject}” alone does not say what the mail is about; name the issue.",
        "zh": "“{subject}”无法说明邮件内容，请写明具体事项。",
    },
    "subject_no_token": {
        "en": "A reply must keep the conversation reference {token} in the subject.",
        "zh": "回复邮件的主题必须保留会话编号 {token}。",
    },
    "subject_no_prefix": {
        "en": "A reply's subject should start with “{prefix}”.",
        "zh": "回复邮件的主题应以“{prefix}”开头。",
    },
    "body_too_many_lines": {
        "en": "The message has {count} lines; keep one mail to one page ({limit} lines) and one issue.",
        "zh": "正文共 {count} 行；一封邮件只解决一个问题，并保持在一页（{limit} 行）之内。",
    },
    "body_too_many_chars": {
        "en": "The message has {count} characters; keep one mail to one page ({limit} characters).",
        "zh": "正文共 {count} 个字符；请保持在一页（{limit} 个字符）之内。",
    },
    "body_summary_first": {
        "en": "A message this long should open with a short summary of its main point.",
        "zh": "正文较长，请在开头先用一小段话说明要点。",
    },
    "emoticon": {
        "en": "Emoticons such as “{found}” suit informal messages only, not {channel}.",
        "zh": "“{found}”等表情符号只适用于非正式消息，不适用于{channel}。",
    },
    "repeated_punctuation": {
        "en": "Repeated punctuation “{found}” looks unprofessional; use a single mark.",
        "zh": "重复的标点“{found}”显得不专业，请只用一个标点。",
    },
    "plain_text_missing": {
        "en": "An HTML message must also carry a text/plain part; not every client shows HTML.",
        "zh": "HTML 邮件必须同时带有纯文本部分，并非所有邮件客户端都能显示 HTML。",
    },
    "plain_text_unfaithful": {
        "en": "The text/plain part holds only {percent}% of the HTML part's words; "
        "it must say the same as the HTML.",
        "zh": "纯文本部分只包含 HTML 部分 {percent}% 的内容，两者内容应一致。",
    },
    "signature_missing": {
        "en": "No signature: add it after a line with “{delimiter}” (name, title, address, phone).",
        "zh": "缺少签名：请在“{delimiter}”分隔行之后添加签名（姓名、职务、地址、联系电话）。",
    },
    "signature_field_missing": {
        "en": "The signature has no {field}.",
        "zh": "签名缺少{field}。",
    },
    "attachment_channel": {
        "en": "{channel} cannot carry attachments; “{name}” cannot be sent here.",
        "zh": "{channel}不能发送附件，无法发送“{name}”。",
    },
    "attachment_type": {
        "en": "“{name}” is not a file type the recipient can be expected to open on {channel} "
        "(allowed: {allowed}).",
        "zh": "“{name}”的文件类型在{channel}上不一定能被对方打开（允许：{allowed}）。",
    },
    "attachment_empty": {
        "en": "“{name}” is empty.",
        "zh": "“{name}”是空文件。",
    },
    "attachment_mismatch": {
        "en": "“{name}” is named as {declared} but its content is {actual}.",
        "zh": "“{name}”的文件名表明是 {declared}，但内容实际是 {actual}。",
    },
    "attachment_unreadable": {
        "en": "“{name}” does not look like a valid {declared} file.",
        "zh": "“{name}”看起来不是有效的 {declared} 文件。",
    },
    "attachment_file_size": {
        "en": "“{name}” is {size}; {channel} accepts at most {limit} per file.",
        "zh": "“{name}”大小为 {size}，{channel}每个文件最多 {limit}。",
    },
    "attachment_total_size": {
        "en": "The attachments add up to {size}; {channel} accepts at most {limit} in total.",
        "zh": "附件总大小为 {size}，{channel}最多允许 {limit}。",
    },
    "attachment_count": {
        "en": "{count} attachments; {channel} accepts at most {limit}.",
        "zh": "共 {count} 个附件，{channel}最多允许 {limit} 个。",
    },
    "spelling": {
        "en": "“{word}” may be misspelt.",
        "zh": "“{word}”可能拼写有误。",
    },
    "spelling_suggestion": {
        "en": "Did you mean “{correction}”?",
        "zh": "是否应为“{correction}”？",
    },
    "L1": {
        "en": "Never just say “{phrase}”: say what you will do to find out, and when.",
        "zh": "不要只说“{phrase}”：请告诉客户您将如何查明、何时答复。",
    },
    "L2": {
        "en": "“{phrase}” passes the buck or blames colleagues; take ownership of the issue.",
        "zh": "“{phrase}”是在推卸责任或指责其他部门，请主动承担并解决问题。",
    },
    "L3": {
        "en": "“{phrase}” puts it negatively; say what the customer can do instead.",
        "zh": "“{phrase}”表达较为消极，请说明客户可以怎么做。",
    },
    "L4": {
        "en": "“{phrase}” is jargon the customer may not know.",
        "zh": "“{phrase}”是客户可能不懂的行话。",
    },
    "L5": {
        "en": "“{phrase}” argues with the customer or tells them they are wrong.",
        "zh": "“{phrase}”是在与客户争辩或指责客户错误。",
    },
    "L6": {
        "en": "“{phrase}” talks down to the customer or complains about the effort.",
        "zh": "“{phrase}”是居高临下或抱怨麻烦的说法。",
    },
    "L7": {
        "en": "A refusal that cites “{phrase}” should give the reason, show understanding and offer "
        "an alternative.",
        "zh": "以“{phrase}”为由拒绝时，请说明原因、表示理解并提供替代方案。",
    },
    "L1_suggestion": {
        "en": "Let me find that out for you; I will get back to you by …",
        "zh": "我帮您查一下，会在……之前回复您。",
    },
    "L2_suggestion": {
        "en": "I will take care of this with the team concerned and keep you updated.",
        "zh": "我会联系相关同事处理，并随时告诉您进展。",
    },
    "L5_suggestion": {
        "en": "Let me make sure I understand: …",
        "zh": "我确认一下我的理解是否正确：……",
    },
    "L6_suggestion": {
        "en": "Leave it out; explain the point plainly and politely.",
        "zh": "请删去这句话，礼貌、直接地说明。",
    },
    "L7_suggestion": {
        "en": "We cannot … because …; I understand this is inconvenient. What we can do is …",
        "zh": "因为……，我们无法……，非常理解给您带来的不便。我们可以为您……",
    },
    "L4_explain": {
        "en": "Say instead: {explanation}",
        "zh": "请改说：{explanation}",
    },
}

_FIELDS = {
    "name": {"en": "name", "zh": "姓名"},
    "title": {"en": "job title", "zh": "职务"},
    "address": {"en": "address", "zh": "地址"},
    "phone": {"en": "phone number", "zh": "联系电话"},
}

_CHANNELS = {
    "email": {"en": "e-mail", "zh": "电子邮件"},
    "fax": {"en": "fax", "zh": "传真"},
    "sms": {"en": "SMS", "zh": "短信"},
    "whatsapp": {"en": "WhatsApp", "zh": "WhatsApp"},
    "voice": {"en": "a call", "zh": "电话"},
    "voicemail": {"en": "voicemail", "zh": "语音信箱"},
    "chat": {"en": "web chat", "zh": "网页聊天"},
    "api": {"en": "the API channel", "zh": "API 渠道"},
}


def _lang(language: str) -> str:
    return normalize_language(language) or "en"


def say(language: str, key: str, **values: Any) -> str:
    """The message `key` in `language` (en or zh; anything else falls back to English)."""
    return _CATALOGUE[key][_lang(language)].format(**values)


def field_name(language: str, name: str) -> str:
    """A signature field's name in `language`."""
    return _FIELDS[name][_lang(language)]


def channel_name(language: str, channel: str) -> str:
    """A channel's name in `language`."""
    return _CHANNELS.get(channel, {"en": channel, "zh": channel})[_lang(language)]


_KINDS = {
    "exe": {"en": "a Windows program (exe)", "zh": "Windows 可执行程序（exe）"},
    "elf": {"en": "a Linux program (ELF)", "zh": "Linux 可执行程序（ELF）"},
    "macho": {"en": "a macOS program", "zh": "macOS 可执行程序"},
    "script": {"en": "a script", "zh": "脚本"},
    "rar": {"en": "a RAR archive", "zh": "RAR 压缩包"},
    "7z": {"en": "a 7-Zip archive", "zh": "7-Zip 压缩包"},
    "ole": {"en": "an old-format Office document", "zh": "旧版 Office 文档"},
    "text": {"en": "plain text", "zh": "纯文本"},
}


def file_kind(language: str, kind: str) -> str:
    """What a sniffed kind of content is called in `language` (file types keep their name)."""
    return _KINDS.get(kind, {"en": kind, "zh": kind})[_lang(language)]


def size_text(size: int) -> str:
    """A byte count as people read it (KiB below 1 MiB, else MiB with one decimal)."""
    if size < 1024 * 1024:
        return f"{max(1, round(size / 1024))} KB"
    return f"{size / (1024 * 1024):.1f} MB"
