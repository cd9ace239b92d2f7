"""What the visitor's channel can show."""

from rasa_sdk import Tracker

# Channels that show plain text only (SMS); everything else gets buttons.
TEXT_ONLY_CHANNELS = {"sms", "twilio"}


def has_buttons(tracker: Tracker) -> bool:
    return tracker.get_latest_input_channel() not in TEXT_ONLY_CHANNELS
