"""Rasa's Socket.IO channel (the website chat's connection), with a working
session_persistence, conversation ids issued by the server, browsers'
origins checked, and the visitor's input checked like the REST channel's: a
bad or over-long message gets a clear answer, not an exception or minutes of
NLU time.

- A socket's `session_request` gets back the id it presented only if this
  server issued that id to the website chat (clinic/conversation_ids.py);
  anything else (none, a phone number, a REST id, a made-up one) gets a new
  conversation. The socket then speaks only into the conversation it was
  confirmed, whatever later messages name.
- A browser page may connect only from this server's own origin (the chat
  page, also inside other sites' iframes) or an origin listed in
  CHAT_ALLOWED_ORIGINS (pages embedding a third-party widget such as
  rasa-webchat), on the handshake and on the WebSocket alike. Rasa's channel
  turns python-socketio's origin check off altogether. CORS headers stay
  Rasa's own (`rasa run --cors`), as for every other route.
- A conversation or a client address sending far more than a person would
  gets the polite `too_many_messages` as a bot message (a notice, like an
  input error) instead of a turn (channels/rate_limits.py; the address is
  the one the socket connected from).
"""

import inspect
import logging
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels.socketio import SocketIOInput
from sanic import Blueprint

from channels.base import FailedTurn, GuardedInputChannel, Handler
from channels.chat_page import allowed_origins
from channels.checks import BadInput, checked_message, checked_metadata
from channels.rate_limits import TooManyMessages, chat_limits, client_address, too_many_messages
from clinic import conversation_ids
from clinic.facts import clinic_facts

logger = logging.getLogger(__name__)

# A refused origin is logged at most once per this many seconds.
REFUSED_ORIGIN_LOG_SECONDS = 300.0


def own_origins(environ: Dict[str, Any]) -> List[str]:
    """This server's origin as the browser sees it, directly and behind a
    proxy that sets X-Forwarded-Proto/Host (the same rule python-engineio
    applies when no list is given)."""
    scheme = environ.get("wsgi.url_scheme") or "http"
    host = environ.get("HTTP_HOST") or ""
    origins = [f"{scheme}://{host}"] if host else []
    if "HTTP_X_FORWARDED_PROTO" in environ or "HTTP_X_FORWARDED_HOST" in environ:
        forwarded_scheme = (environ.get("HTTP_X_FORWARDED_PROTO") or scheme).split(",")[0].strip()
        forwarded_host = (environ.get("HTTP_X_FORWARDED_HOST") or host).split(",")[0].strip()
        origins.append(f"{forwarded_scheme}://{forwarded_host}")
    return origins


class OriginCheck:
    """python-engineio's `cors_allowed_origins` as a callable: this server's
    own origin and CHAT_ALLOWED_ORIGINS ("*" allows any). A refused origin
    is logged, so a site owner whose widget shows nothing finds out why."""

    def __init__(self, listed: List[str]) -> None:
        self.any = "*" in listed
        self.listed = set(listed)
        self._logged: Dict[str, float] = {}

    def __call__(self, origin: Optional[str], environ: Dict[str, Any]) -> bool:
        if not origin or self.any or origin in self.listed or origin in own_origins(environ):
            return True
        now = time.monotonic()
        if now - self._logged.get(origin, -REFUSED_ORIGIN_LOG_SECONDS) >= REFUSED_ORIGIN_LOG_SECONDS:
            self._logged[origin] = now
            if len(self._logged) > 1000:  # a flood of made-up origins stays bounded
                self._logged.clear()
            logger.warning(
                "Socket.IO connection refused from origin %r: it is not this server's own, "
                "nor listed in CHAT_ALLOWED_ORIGINS (add it there to let pages on that site use the chat)",
                origin[:200],
            )
        return False


def without_cors_headers(handle_request: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Engine.IO's request handler, minus the CORS headers it adds once it
    checks origins. Rasa answers CORS itself, on every route including
    /socket.io (Sanic-CORS, `rasa run --cors`, which scripts/serve.py fills
    from CHAT_ALLOWED_ORIGINS): both at once gave a listed site's long-polling
    two Access-Control-Allow-Origin values, which browsers refuse, so a
    widget such as rasa-webchat never connected."""

    async def handle(*args: Any, **kwargs: Any) -> Any:
        reply = await handle_request(*args, **kwargs)
        headers = getattr(reply, "headers", None)  # a WebSocket's reply has none
        if headers is not None:
            for name in {name.lower() for name in headers if name.lower().startswith("access-control-")}:
                headers.popall(name, None)
        return reply

    return handle


class CheckedSocketIOInput(GuardedInputChannel, SocketIOInput):
    # Socket.IO has no status codes: the apology comes as a bot message.
    failed_turn = FailedTurn.APOLOGY_MESSAGE

    @classmethod
    def name(cls) -> Text:
        return "socketio"

    def guarded_blueprint(self, handle_turn: Handler) -> Blueprint:
        conversation_ids.check_configured()  # refuse to start rather than fail every visitor
        limits = chat_limits()  # a bad setting stops the server here, not a visitor's message
        blueprint = SocketIOInput.blueprint(self, handle_turn)
        sio = self.sio
        sio.eio.cors_allowed_origins = OriginCheck(allowed_origins())
        sio.eio.handle_request = without_cors_headers(sio.eio.handle_request)
        namespace = self.namespace or "/"
        # Rasa's handler stays in charge of messages; this one runs first and
        # passes on only input it can handle.
        handle_message = sio.handlers[namespace][self.user_message_evt]
        # Each socket's confirmed conversation.
        confirmed: Dict[Text, Text] = {}

        async def session_request(sid: Text, data: Any = None) -> None:
            # Replaces Rasa's, which takes any id a client names and does not
            # await python-socketio 5.10+'s coroutine enter_room: the socket
            # never joins the conversation's room and no answer reaches the
            # page (RasaHQ/rasa#13027).
            presented = data.get("session_id") if isinstance(data, dict) else None
            if conversation_ids.is_issued(presented, conversation_ids.WEB):
                session_id = presented
            else:
                session_id = conversation_ids.issue(conversation_ids.WEB)
            previous = confirmed.get(sid)
            if previous and previous != session_id and self.session_persistence:
                left = sio.leave_room(sid, previous, namespace=namespace)
                if inspect.isawaitable(left):
                    await left
            confirmed[sid] = session_id
            if self.session_persistence:
                joined = sio.enter_room(sid, session_id, namespace=namespace)
                if inspect.isawaitable(joined):
                    await joined
            await sio.emit("session_confirm", session_id, room=sid, namespace=namespace)

        async def disconnect(sid: Text, *reason: Any) -> None:
            confirmed.pop(sid, None)

        async def checked_handle_message(sid: Text, data: Any = None) -> None:
            try:
                if not isinstance(data, dict):
                    raise BadInput("a message must be an object with 'message' and 'session_id'")
                checked = {
                    "message": checked_message(data.get("message")),
                    self.metadata_key: checked_metadata(data.get(self.metadata_key)),
                }
                if self.session_persistence:
                    session_id = confirmed.get(sid)
                    if session_id is None or data.get("session_id") != session_id:
                        raise BadInput(clinic_facts()["chat_unknown_conversation"])
                    checked["session_id"] = session_id
            except BadInput as error:
                await sio.emit(
                    self.bot_message_evt, {"text": str(error), "error": True}, room=sid, namespace=namespace
                )
                return
            try:
                # Rasa's handler speaks as the confirmed conversation, or as the socket without persistence
                admission = limits.admit(checked.get("session_id") or sid, socket_address(sid))
            except TooManyMessages:
                await sio.emit(
                    self.bot_message_evt, {"text": too_many_messages(), "error": True}, room=sid, namespace=namespace
                )
                return
            with admission:
                await handle_message(sid, checked)

        def socket_address(sid: Text) -> Optional[Text]:
            environ = sio.get_environ(sid, namespace=namespace) or {}
            request = environ.get("sanic.request")
            return client_address(request) if request is not None else None

        sio.on("session_request", session_request, namespace=self.namespace)
        sio.on("disconnect", disconnect, namespace=self.namespace)
        sio.on(self.user_message_evt, checked_handle_message, namespace=self.namespace)
        return blueprint
