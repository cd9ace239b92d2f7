"""Rasa's Socket.IO channel (the website chat's connection), with a working
session_persistence and the visitor's input checked like the REST channel's:
a bad or over-long message gets a clear answer, not an exception or minutes
of NLU time."""

import inspect
import uuid
from typing import Any, Awaitable, Callable, Dict, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketIOInput
from sanic import Blueprint

from channels.checks import BadInput, checked_message, checked_sender
from channels.turn_guard import with_reply_guarantee

# What the chat page shows for a message the visitor tapped (a button's title).
MAX_SHOWN_CHARS = 200


def checked_metadata(metadata: Any) -> Dict[Text, Any]:
    """Only the metadata the chat page sends: the text shown for a tapped button."""
    if not isinstance(metadata, dict):
        return {}
    shown = metadata.get("shown")
    if isinstance(shown, str) and shown.strip():
        return {"shown": shown.strip()[:MAX_SHOWN_CHARS]}
    return {}


class CheckedSocketIOInput(SocketIOInput):
    @classmethod
    def name(cls) -> Text:
        return "socketio"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        # A turn that fails or stalls still gets a reply (channels/turn_guard.py).
        blueprint = super().blueprint(with_reply_guarantee(on_new_message))
        sio = self.sio
        namespace = self.namespace or "/"
        # Rasa's handler stays in charge of messages; this one runs first and
        # passes on only input it can handle.
        handle_message = sio.handlers[namespace][self.user_message_evt]

        async def session_request(sid: Text, data: Any = None) -> None:
            # Replaces Rasa's, which does not await python-socketio 5.10+'s
            # coroutine enter_room: the socket never joins the conversation's
            # room and no answer reaches the page (RasaHQ/rasa#13027).
            session_id = data.get("session_id") if isinstance(data, dict) else None
            try:
                session_id = checked_sender(session_id) if session_id is not None else None
            except BadInput:
                session_id = None  # a new conversation rather than none at all
            session_id = session_id or uuid.uuid4().hex
            if self.session_persistence:
                joined = sio.enter_room(sid, session_id, namespace=namespace)
                if inspect.isawaitable(joined):
                    await joined
            await sio.emit("session_confirm", session_id, room=sid, namespace=namespace)

        async def checked_handle_message(sid: Text, data: Any = None) -> None:
            try:
                if not isinstance(data, dict):
                    raise BadInput("a message must be an object with 'message' and 'session_id'")
                checked = {
                    "message": checked_message(data.get("message")),
                    self.metadata_key: checked_metadata(data.get(self.metadata_key)),
                }
                if self.session_persistence:
                    checked["session_id"] = checked_sender(data.get("session_id"))
            except BadInput as error:
                await sio.emit(
                    self.bot_message_evt, {"text": str(error), "error": True}, room=sid, namespace=namespace
                )
                return
            await handle_message(sid, checked)

        sio.on("session_request", session_request, namespace=self.namespace)
        sio.on(self.user_message_evt, checked_handle_message, namespace=self.namespace)
        return blueprint
