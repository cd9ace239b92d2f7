"""A conversation as the chat page shows it, read from the tracker's events:
the replayed history, and which question a visitor's vote on an answer is about."""

from typing import Any, Dict, Iterable, List, Optional, Tuple

from rasa.shared.core.events import BotUttered, Event, UserUttered

# More than a visitor scrolls back through; older turns stay in the tracker.
MAX_HISTORY_MESSAGES = 200


def shown_text(event: UserUttered) -> Optional[str]:
    """What the visitor saw themselves send: a tapped button's title, else the text."""
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    shown = metadata.get("shown")
    return shown if isinstance(shown, str) and shown else event.text


def bot_parts(text: str) -> List[str]:
    """A bot text cut into the messages Rasa's Socket.IO channel sends for it."""
    return text.strip().split("\n\n")


def _buttons(data: Dict[str, Any]) -> List[Dict[str, str]]:
    buttons = []
    for button in data.get("buttons") or data.get("quick_replies") or []:
        if not isinstance(button, dict) or not button.get("title"):
            continue
        kept = {"title": str(button["title"]), "payload": str(button.get("payload") or "")}
        if button.get("url"):
            kept["url"] = str(button["url"])
        buttons.append(kept)
    return buttons


def chat_messages(events: Iterable[Event]) -> List[Dict[str, Any]]:
    """The visitor's and the bot's messages, oldest first, in the shape the page renders."""
    messages: List[Dict[str, Any]] = []
    for event in events:
        if isinstance(event, UserUttered) and event.text:
            messages.append({"from": "user", "text": shown_text(event), "time": event.timestamp})
        elif isinstance(event, BotUttered) and event.text:
            parts = bot_parts(event.text)
            for index, part in enumerate(parts):
                message = {"from": "bot", "text": part, "time": event.timestamp}
                if index == len(parts) - 1:
                    message["buttons"] = _buttons(event.data or {})
                messages.append(message)
    return messages[-MAX_HISTORY_MESSAGES:]


def find_answer(events: Iterable[Event], answer: str) -> Optional[Tuple[Optional[str], Optional[str]]]:
    """(question, channel) of the latest bot message showing `answer`, or
    None when the conversation never had that answer."""
    answer = answer.strip()
    found = False
    for event in reversed(list(events)):
        if not found:
            found = isinstance(event, BotUttered) and bool(event.text) and (
                answer in (part.strip() for part in bot_parts(event.text))
            )
        elif isinstance(event, UserUttered) and event.text:
            return shown_text(event), event.input_channel
    return (None, None) if found else None
