"""What each input channel can show, by the name its messages carry
(`input_channel`): read by the actions (buttons, or numbered plain-text
options) and by channels/base.py, which refuses a project channel that is
not listed here."""

from typing import Mapping, Optional

# True: the channel shows plain text only, so options go as numbered lines.
SHOWS_TEXT_ONLY: Mapping[str, bool] = {
    "rest": False,
    "socketio": False,
    "sms": True,
    # Rasa's own Twilio channel, should someone list it in credentials.yml
    "twilio": True,
}


def is_declared(channel: str) -> bool:
    """Whether the channel's name has an entry in SHOWS_TEXT_ONLY."""
    return channel in SHOWS_TEXT_ONLY


def is_text_only(channel: Optional[str]) -> bool:
    """Whether messages from this channel get plain text only; a channel not
    listed (None, "cmdline", Rasa's shell) gets buttons."""
    return SHOWS_TEXT_ONLY.get(channel or "", False)
