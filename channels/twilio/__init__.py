"""Twilio: phone calls (voice), with signed webhooks, TwiML and the async REST client."""

from channels.twilio import messaging, voicemail
from channels.twilio.settings import Line, TwilioSettings
from channels.twilio.voice import TwilioVoiceChannel, create

TwilioVoiceChannel.extensions += [messaging.routes, voicemail.routes]

__all__ = ["Line", "TwilioSettings", "TwilioVoiceChannel", "create"]
