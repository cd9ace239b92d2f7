"""The website chat, served by the Rasa server itself: the chat page (/chat),
the embeddable launcher script (/chat/widget.js), their assets, and the
page's two small endpoints (the conversation's history, answer feedback).
The page and the script are filled in by channels/chat_page.py.

The page talks to Rasa over the Socket.IO channel (credentials.yml). Other
sites embed it in an iframe from this server, so everything the page calls is
same-origin; CHAT_ALLOWED_ORIGINS lists the sites allowed to frame it.
"""

import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text, Tuple

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels.chat_history import chat_messages, find_answer
from channels.chat_page import Asset, content_security_policy, page_html, socket_settings, widget_script
from channels.checks import MAX_MESSAGE_CHARS, BadInput, encodable
from clinic import PROJECT_ROOT, conversation_ids, store

logger = logging.getLogger(__name__)

WEB_DIR = PROJECT_ROOT / "web"
# Everything the page loads; nothing else under web/ is served.
ASSETS = {
    "chat.js": (WEB_DIR / "chat.js", "text/javascript; charset=utf-8"),
    "links.js": (WEB_DIR / "links.js", "text/javascript; charset=utf-8"),
    "chat.css": (WEB_DIR / "chat.css", "text/css; charset=utf-8"),
    "socket.io.esm.min.js": (WEB_DIR / "vendor" / "socket.io.esm.min.js", "text/javascript; charset=utf-8"),
}
# Answers are at most a few hundred characters; a vote quoting more is not one.
MAX_ANSWER_CHARS = 4 * MAX_MESSAGE_CHARS


class UnknownConversation(BadInput):
    status_code = 403


def checked_session(session_id: Any) -> str:
    """The website conversation's id, if this server issued it to the chat:
    nobody reads or votes in a conversation by naming or guessing its id."""
    if not isinstance(session_id, str) or not session_id:
        raise BadInput("'session_id' is required: the conversation id the chat page got from the server")
    if not conversation_ids.is_issued(session_id, conversation_ids.WEB):
        raise UnknownConversation("no website conversation has this id")
    return session_id


def _error(message: str, status: int) -> HTTPResponse:
    return response.json({"message": message}, status=status)


class WebChatInput(InputChannel):
    """Serves the chat page; the conversation itself runs over Socket.IO."""

    @classmethod
    def name(cls) -> Text:
        return "webchat"

    def url_prefix(self) -> Text:
        # Rasa joins this onto "/webhooks/"; an absolute path puts the page at /chat.
        return "/chat"

    def __init__(self) -> None:
        self.template: Optional[str] = None
        self.widget_template: Optional[str] = None
        self.assets: Dict[str, Asset] = {}
        missing = [str(path) for path, _ in ASSETS.values() if not path.exists()]
        if missing:
            logger.warning("Website chat unavailable until `make setup` builds %s", missing)
            return
        self.template = (WEB_DIR / "chat.html").read_text(encoding="utf-8")
        self.widget_template = (WEB_DIR / "widget.js").read_text(encoding="utf-8")
        self.assets = {
            name: Asset(path.read_bytes(), content_type) for name, (path, content_type) in ASSETS.items()
        }

    def page(self, request: Request) -> Tuple[str, Optional[str]]:
        """The chat page's HTML, or an error message."""
        settings = socket_settings(request)
        if self.template is None or settings is None:
            return "", "The website chat is not set up: run `make setup` and enable socketio in credentials.yml."
        return page_html(self.template, request, settings), None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        chat = Blueprint("webchat", __name__)

        @chat.route("", methods=["GET"], strict_slashes=False)
        async def chat_page(request: Request) -> HTTPResponse:
            page, error = self.page(request)
            if error:
                return response.text(error, status=503)
            headers = {
                "Content-Security-Policy": content_security_policy(request),
                "Referrer-Policy": "no-referrer",
            }
            return Asset(page.encode("utf-8"), "text/html; charset=utf-8").respond(request, headers)

        @chat.route("/widget.js", methods=["GET"])
        async def widget(request: Request) -> HTTPResponse:
            if self.widget_template is None:
                return response.text("// the website chat is not set up: run `make setup`", status=503)
            script = widget_script(self.widget_template)
            return Asset(script.encode("utf-8"), "text/javascript; charset=utf-8").respond(
                request, {"Cross-Origin-Resource-Policy": "cross-origin"}
            )

        @chat.route("/assets/<name>", methods=["GET"])
        async def asset(request: Request, name: str) -> HTTPResponse:
            found = self.assets.get(name)
            if found is None:
                return _error("no such file", 404)
            return found.respond(request)

        @chat.route("/history", methods=["GET"])
        async def history(request: Request) -> HTTPResponse:
            try:
                sender = checked_session(request.args.get("session_id"))
            except BadInput as error:
                return _error(str(error), error.status_code)
            tracker, error = await _tracker(request, sender)
            if error:
                return error
            messages = chat_messages(tracker.events) if tracker else []
            return response.json({"messages": messages}, headers={"Cache-Control": "no-store"})

        @chat.route("/feedback", methods=["POST"])
        async def feedback(request: Request) -> HTTPResponse:
            try:
                sender, answer, helpful = _checked_feedback(request)
            except BadInput as error:
                return _error(str(error), error.status_code)
            tracker, error = await _tracker(request, sender)
            if error:
                return error
            found = find_answer(tracker.events, answer) if tracker else None
            if found is None:
                return _error("this conversation has no such answer", 404)
            question, channel = found
            try:
                recorded = await store.run_blocking(
                    _record_first_vote, sender, channel, question, answer.strip(), helpful
                )
            except Exception:
                logger.exception("could not record a visitor's feedback")
                return _error("feedback could not be saved right now; please try again later", 503)
            if not recorded:
                return response.json({"status": "already recorded"}, status=200)
            return response.json({"status": "recorded"}, status=201)

        return chat


def _record_first_vote(sender: str, channel: Optional[str], question: Optional[str], answer: str, helpful: bool) -> bool:
    """Records the vote unless this conversation already voted on this answer
    (one vote per answer keeps a replayed or scripted page from flooding staff)."""
    if store.rows(store.feedback, sender_id=sender, answer=answer):
        return False
    store.record_feedback(sender, channel, question, answer, helpful)
    return True


async def _tracker(request: Request, sender: str) -> Tuple[Any, Optional[HTTPResponse]]:
    """The conversation's tracker (None if it has none yet), or a 503 if it cannot be read."""
    agent = request.app.ctx.agent
    try:
        # Waits for a turn in progress: the page shows an answer before Rasa
        # saves it, and a visitor can vote on it at once.
        async with agent.lock_store.lock(sender, wait_time_in_seconds=0.1):
            return await agent.tracker_store.retrieve_full_tracker(sender), None
    except Exception:
        logger.exception("could not read a conversation for the website chat")
        return None, _error("the conversation cannot be read right now; please try again later", 503)


def _checked_feedback(request: Request) -> Tuple[str, str, bool]:
    try:
        body = request.json
    except Exception:  # Sanic raises its own 400 type; keep the answer in one shape
        raise BadInput("the body must be JSON")
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object with 'session_id', 'answer' and 'helpful'")
    sender = checked_session(body.get("session_id"))
    answer = body.get("answer")
    if not isinstance(answer, str) or not answer.strip():
        raise BadInput("'answer' is required: the text of the answer voted on")
    encodable(answer, "answer")
    if len(answer) > MAX_ANSWER_CHARS:
        raise BadInput(f"'answer' is too long: at most {MAX_ANSWER_CHARS} characters")
    helpful = body.get("helpful")
    if not isinstance(helpful, bool):
        raise BadInput("'helpful' is required: true or false")
    return sender, answer, helpful
