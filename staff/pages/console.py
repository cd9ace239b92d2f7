"""What every page of the console shares: its services, templates, flash messages and the activity log."""

import hashlib
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import response
from sanic.exceptions import SanicException
from sanic.request import Request

from clinic import store
from staff import audit, inbox
from staff.conversations import Conversations
from staff.publishing import Publisher
from staff.settings import Settings
from staff.training import Retrainer
from staff.training_data import MAX_ANSWER_CHARS, SMS_AIM_CHARS, SMS_MAX_CHARS, Change, TrainingData, topic_title

STAFF_DIR = Path(__file__).resolve().parent.parent
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make browsers send Origin: null
    "Cache-Control": "no-store",
}


class Refused(SanicException):
    status_code = 403
    quiet = True


def visitor_label(sender_id: str, channel: Optional[str]) -> str:
    """Staff see which conversation, never the visitor's number or name."""
    return f"{channel or 'unknown'} visitor {hashlib.sha256(sender_id.encode()).hexdigest()[:8]}"


def redirect(location: str) -> response.HTTPResponse:
    """After a form: 303, so reloading the page does not post it again."""
    return response.redirect(location, status=303)


def actor(request: Request) -> str:
    """Who is signed in, as the activity log names them."""
    return request.ctx.session.username


def templates() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(str(STAFF_DIR / "templates")),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = lambda moment: moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""
    environment.filters["percent"] = lambda value: f"{value * 100:.1f}%" if value is not None else ""
    environment.globals.update(
        kind_labels=inbox.KIND_LABELS, topic_title=topic_title,
        sms_aim=SMS_AIM_CHARS, sms_max=SMS_MAX_CHARS, max_answer=MAX_ANSWER_CHARS,
    )
    return environment


class Console:
    """One console's services (training data, retraining, publishing, the
    model registry, conversations) and the flash messages waiting per session."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.templates = templates()
        self.data = TrainingData(settings.project_dir)
        self.retrainer = Retrainer(settings)
        self.publisher = Publisher(settings)
        self.registry = self.publisher.registry
        self.conversations = Conversations(self.publisher.servers, settings)
        self._flashes: Dict[str, List[str]] = defaultdict(list)

    def render(self, request: Request, name: str, http_status: int = 200, **context) -> response.HTTPResponse:
        """The template `name` with the session, its CSRF token and the messages flashed to it."""
        session = getattr(request.ctx, "session", None)
        key = getattr(request.ctx, "session_key", None)
        messages = self._flashes.pop(key, []) if key else []
        html = self.templates.get_template(name).render(
            session=session, csrf=session.csrf_token if session else "", messages=messages,
            path=request.path, **context,
        )
        return response.html(html, status=http_status)

    def flash(self, request: Request, message: str) -> None:
        """A message shown on the session's next page."""
        self._flashes[request.ctx.session_key].append(message)

    def set_cookie(self, reply: response.HTTPResponse, name: str, value: str, max_age: int) -> None:
        reply.cookies[name] = value
        cookie = reply.cookies[name]
        cookie["httponly"] = True
        cookie["samesite"] = "Strict"
        cookie["path"] = "/"
        cookie["max-age"] = max_age
        if self.settings.secure_cookie:
            cookie["secure"] = True


async def record(who: str, action: str, target: Optional[str] = None, **detail: Any) -> None:
    """Adds an entry to the activity log (staff/audit.py), off the event loop."""
    await store.run_blocking(audit.record, who, action, target, **detail)


async def record_change(request: Request, change: Change, **detail: Any) -> None:
    """Records an edit of the training data by whoever is signed in: the file, its diff and what changed."""
    await store.run_blocking(audit.record_change, actor(request), change, **detail)
