"""What a web-chat account is configured with: texts in both languages, opening hours, limits."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.sla.calendar import BusinessCalendar

ALWAYS = {day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


class Texts(BaseModel):
    """The widget's words in one language; `hold` asks the visitor to wait (etiquette P3)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(max_length=200)
    greeting: str = Field(max_length=2000)
    hold: str = Field(max_length=2000)
    offline: str = Field(max_length=2000)
    thanks: str = Field(max_length=2000)


DEFAULT_TEXTS = {
    "en": Texts(
        title="Chat with us",
        greeting="Hello! How can we help you today?",
        hold="Thank you for your message. Please hold on a moment: an agent will be with you shortly.",
        offline="We are closed right now. Leave your e-mail address and message, and we will reply "
        "by e-mail within one business day.",
        thanks="Thank you. We have your message and will reply by e-mail within one business day.",
    ),
    "zh": Texts(
        title="在线咨询",
        greeting="您好!请问有什么可以帮您?",
        hold="感谢您的留言,请稍候,客服马上为您服务。",
        offline="我们现在不在工作时间。请留下您的邮箱和留言,我们会在一个工作日内通过邮件回复您。",
        thanks="谢谢!我们已收到您的留言,会在一个工作日内通过邮件回复您。",
    ),
}


class WebchatSettings(BaseModel):
    """Settings of a web-chat account.

    `hours` are the opening hours per weekday (`mon`..`sun`, ranges like `09:00-17:30`) in
    `timezone`; outside them the widget shows the offline form. `texts` override the
    default title, offline and thanks texts per language (`en`, `zh`); the greeting and hold
    message come from the templates `chat_greeting` and `chat_hold`, and these texts only
    stand in when a template cannot be rendered.
    `allowed_origins` limits the sites that may embed the widget (empty: any site).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    hours: dict[str, list[str]] = Field(default_factory=lambda: dict(ALWAYS))
    country: str | None = None
    texts: dict[str, Texts] = Field(default_factory=dict)
    allowed_origins: list[str] = Field(default_factory=list)
    max_messages_per_minute: int = Field(20, ge=1, le=600)
    max_connections_per_address: int = Field(20, ge=1, le=10_000)
    max_text_length: int = Field(4000, ge=1, le=100_000)

    @model_validator(mode="after")
    def _valid_calendar(self) -> WebchatSettings:
        try:
            self.calendar()
        except (ValueError, KeyError) as err:
            raise ValueError(f"hours/timezone: {err}") from None
        return self

    def calendar(self) -> BusinessCalendar:
        """The opening hours as a business calendar."""
        return BusinessCalendar.build("webchat", self.timezone, self.hours, country=self.country)

    def texts_for(self, language: str) -> Texts:
        """The widget's words in a language (`zh` or English)."""
        language = "zh" if language.lower().startswith("zh") else "en"
        return self.texts.get(language, DEFAULT_TEXTS[language])
