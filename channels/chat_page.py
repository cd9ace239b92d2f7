"""The website chat's page and launcher script as served: their templates
filled with the clinic's facts and the wording of data/web_chat.yml, the
page's settings, and the headers that keep it framed only where allowed."""

import gzip
import hashlib
import html
import json
import logging
import os
import re
from functools import lru_cache
from typing import Any, Dict, List, Optional

import yaml
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels.checks import MAX_MESSAGE_CHARS
from clinic import DATA_DIR
from clinic.facts import clinic_facts, fill

logger = logging.getLogger(__name__)

TEXTS_FILE = DATA_DIR / "web_chat.yml"
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-]+(:\d+)?$|^\*$")
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d+)?$")
# {{name}} in web/chat.html and web/widget.js
_SLOT = re.compile(r"{{(\w+)}}")


@lru_cache(maxsize=1)
def page_texts() -> Dict[str, str]:
    """The chat's wording (data/web_chat.yml), keyed by name, the clinic's facts filled in."""
    raw = yaml.safe_load(TEXTS_FILE.read_text(encoding="utf-8"))
    return {key: fill(str(value)) for key, value in raw.items()}


class Asset:
    """A file's bytes, their gzip and their ETag, read once at start-up."""

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body = body
        self.gzipped = gzip.compress(body, compresslevel=9, mtime=0)
        self.content_type = content_type
        self.etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'

    def respond(self, request: Request, headers: Optional[Dict[str, str]] = None) -> HTTPResponse:
        # no-cache: browsers revalidate (a cheap 304), so a deploy shows at once.
        headers = {
            "ETag": self.etag,
            "Cache-Control": "no-cache",
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
            **(headers or {}),
        }
        if self.etag in request.headers.get("if-none-match", ""):
            return response.empty(status=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return response.raw(self.gzipped, content_type=self.content_type, headers=headers)
        return response.raw(self.body, content_type=self.content_type, headers=headers)


def allowed_origins() -> List[str]:
    """The sites allowed to embed the chat (CHAT_ALLOWED_ORIGINS, as for CORS)."""
    origins = os.environ.get("CHAT_ALLOWED_ORIGINS", "").split()
    bad = [origin for origin in origins if not _ORIGIN.match(origin)]
    if bad:
        logger.warning("CHAT_ALLOWED_ORIGINS: ignoring %s (expected e.g. https://www.example.com)", bad)
    return [origin.rstrip("/") for origin in origins if _ORIGIN.match(origin)]


def content_security_policy(request: Request) -> str:
    host = request.host if _HOST.match(request.host or "") else ""
    # 'self' covers same-host WebSockets in current browsers; older ones need them named.
    sockets = f" ws://{host} wss://{host}" if host else ""
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"connect-src 'self'{sockets}",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors " + " ".join(["'self'", *allowed_origins()]),
        ]
    )


def _json_for_html(value: Any) -> str:
    """JSON that is safe inside a <script type="application/json"> element."""
    return (
        json.dumps(value, ensure_ascii=False)
        .replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
    )


def greeting(request: Request) -> Dict[str, Any]:
    """The domain's `utter_greet` (its web variation), with the clinic's facts filled in."""
    domain = getattr(getattr(request.app.ctx, "agent", None), "domain", None)
    variations = (domain.responses.get("utter_greet") if domain else None) or []
    for variation in variations:
        if not variation.get("channel") and not variation.get("condition") and variation.get("text"):
            return {
                "text": fill(variation["text"]),
                "buttons": [
                    {"title": fill(str(b["title"])), "payload": fill(str(b.get("payload") or b["title"]))}
                    for b in variation.get("buttons") or []
                    if b.get("title")
                ],
            }
    return {"text": page_texts()["greeting_fallback"], "buttons": []}


def socket_settings(request: Request) -> Optional[Dict[str, Any]]:
    """How the page reaches the Socket.IO channel, as credentials.yml configures it."""
    for channel in getattr(request.app.ctx, "input_channels", None) or []:
        if channel.name() == "socketio":
            return {
                "path": channel.socketio_path or "/socket.io",
                "namespace": channel.namespace or "/",
                "userEvent": channel.user_message_evt,
                "botEvent": channel.bot_message_evt,
            }
    return None


def page_html(template: str, request: Request, socket: Dict[str, Any]) -> str:
    """web/chat.html filled in: the clinic's name, the wording, and the
    settings chat.js reads (the wording it shows among them)."""
    facts = clinic_facts()
    base = request.path.rstrip("/")  # where the assets and endpoints are: /chat
    config = {
        "clinicName": facts["clinic_name"],
        "greeting": greeting(request),
        "disclaimer": facts["disclaimer_short"],
        "maxLength": MAX_MESSAGE_CHARS,
        "socket": socket,
        "base": base,
        "texts": page_texts(),
    }
    slots = {"clinic_name": html.escape(facts["clinic_name"]), "base": html.escape(base), "config": _json_for_html(config)}
    slots.update((name, html.escape(text)) for name, text in page_texts().items())
    return _SLOT.sub(lambda match: slots.get(match.group(1), match.group(0)), template)


def widget_script(template: str) -> str:
    """web/widget.js with its settings filled in: the clinic's name (the
    script names whose chat it is) and the chat's wording, as one JavaScript
    object (the chat page's config has the same)."""
    settings = {"clinicName": clinic_facts()["clinic_name"], "texts": page_texts()}
    return template.replace("{{config}}", json.dumps(settings))
