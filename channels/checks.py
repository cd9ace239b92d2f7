"""What a chat channel accepts from a visitor, checked before Rasa sees it."""

import re
from typing import Any, Dict, Text

from sanic.exceptions import SanicException

# What a chat page shows for a message the visitor tapped (a button's title).
MAX_SHOWN_CHARS = 200
# Longer than any real question; much longer input only costs the NLU time.
MAX_MESSAGE_CHARS = 2000
MAX_SENDER_CHARS = 128
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Control characters other than line breaks and tabs; PostgreSQL cannot even store NUL.
_STRAY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class BadInput(SanicException):
    """A clear 4xx with a JSON body saying what is wrong."""

    status_code = 400
    quiet = True


class MessageTooLong(BadInput):
    status_code = 413


def encodable(text: str, name: str) -> str:
    """The text, if it can be stored and sent as UTF-8; a clear 400 otherwise.

    JSON can carry a lone UTF-16 surrogate ("\\udc00"); Python decodes it
    into a str that no database, log or socket can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"'{name}' is not valid Unicode text (it holds a lone surrogate)")
    return text


def checked_sender(sender: Any) -> str:
    if not isinstance(sender, str) or not sender.strip():
        raise BadInput("'sender' is required: a non-empty string identifying the conversation")
    if len(sender) > MAX_SENDER_CHARS or _CONTROL.search(sender):
        raise BadInput(f"'sender' must be at most {MAX_SENDER_CHARS} printable characters")
    return encodable(sender, "sender")


def checked_message(message: Any) -> str:
    """The message without stray control characters."""
    if not isinstance(message, str):
        raise BadInput("'message' is required: the visitor's text")
    message = _STRAY_CONTROL.sub("", encodable(message, "message"))
    if not message.strip():
        raise BadInput("'message' is empty")
    if len(message) > MAX_MESSAGE_CHARS:
        raise MessageTooLong(f"'message' is too long: at most {MAX_MESSAGE_CHARS} characters")
    return message


def checked_metadata(metadata: Any) -> Dict[Text, Any]:
    """Only the metadata the assistant uses: the text a chat page showed for a
    tapped button (`shown`). Anything else a client sends is dropped, so it
    is neither stored with every event nor passed to the actions."""
    if not isinstance(metadata, dict):
        return {}
    shown = metadata.get("shown")
    if isinstance(shown, str) and shown.strip():
        return {"shown": encodable(shown.strip()[:MAX_SHOWN_CHARS], "metadata.shown")}
    return {}
