"""What the visitor's channel can show."""

from rasa_sdk import Tracker

from clinic.channels import is_text_only


def has_buttons(tracker: Tracker) -> bool:
    """False on a channel that shows plain text only (clinic/channels.py):
    there, options go as numbered lines."""
    return not is_text_only(tracker.get_latest_input_channel())
