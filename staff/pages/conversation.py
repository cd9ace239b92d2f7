"""One visitor's conversation, as the assistant had it: GET /conversation?ref=<inbox item>."""

from sanic import Blueprint
from sanic.exceptions import NotFound
from sanic.request import Request

from clinic import store
from staff import inbox
from staff.conversations import TrackerStoreUnavailable
from staff.pages.console import Console, visitor_label
from staff.rasa_api import RasaUnavailable


def blueprint(console: Console) -> Blueprint:
    pages = Blueprint("conversation")

    @pages.get("/conversation")
    async def conversation(request: Request):
        items = await store.run_blocking(inbox.find, request.args.get("ref", ""))
        if not items:
            raise NotFound("no such inbox item")
        item = items[0]
        error, events = None, []
        try:
            for event in await store.run_blocking(console.conversations.events, item.sender_id):
                if event.get("event") == "user":
                    intent = (event.get("parse_data") or {}).get("intent") or {}
                    events.append({"who": "visitor", "text": event.get("text"), "at": event.get("timestamp"),
                                   "note": f"{intent.get('name')} {intent.get('confidence', 0):.2f}" if intent.get("name") else ""})
                elif event.get("event") == "bot":
                    events.append({"who": "assistant", "text": event.get("text"), "at": event.get("timestamp"), "note": ""})
        except (RasaUnavailable, TrackerStoreUnavailable) as error_:
            error = f"The conversation could not be loaded: {error_}"
        return console.render(request, "conversation.html", item=item, events=events, error=error,
                              visitor=visitor_label(item.sender_id, item.channel))

    return pages
