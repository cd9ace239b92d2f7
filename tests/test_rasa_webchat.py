"""botfront's rasa-webchat 1.0.1 (web/package.json, from the npm registry)
embedded in another site's page, in a real browser against servers started
as `make run` starts them: answers, quick replies, a reload keeping the
conversation, a fresh visitor getting a conversation of their own, and a
site that CHAT_ALLOWED_ORIGINS does not list told so in the server log."""

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, Iterator, List, Optional

import pytest
import requests
import yaml
from playwright.sync_api import Browser, Page

from clinic import DATA_DIR, conversation_ids
from clinic.facts import clinic_facts, fill
from conftest import ANSWER_TIMEOUT_MS, OUTPUT, ROOT, Assistant, serve_site, wait_until

WIDGET = ROOT / "web" / "node_modules" / "rasa-webchat" / "lib" / "index.js"
# rasa-webchat keeps its session (the id the server confirmed, the messages) here.
STORAGE_KEY = "chat_session"
SCREENSHOTS = OUTPUT / "screenshots"


def faq(topic: str) -> Dict[str, str]:
    """An FAQ's first phrasing and its answer (facts filled in), from data/."""
    content = yaml.safe_load((DATA_DIR / "nlu" / f"faq_{topic}.yml").read_text())
    return {
        "question": content["nlu"][0]["examples"].splitlines()[0].lstrip("- ").strip(),
        "answer": fill(content["responses"][f"utter_faq/{topic}"][0]["text"]),
    }


def site_page(socket_url: str) -> bytes:
    """A clinic page embedding rasa-webchat as its README shows, with the
    widget's script served by the site itself."""
    settings = {
        "socketUrl": socket_url,
        "socketPath": "/socket.io/",
        # what a visitor's first words would be: the assistant greets, with its quick replies
        "initPayload": "hello",
        "title": clinic_facts()["clinic_name"],
        "params": {"storage": "local"},
    }
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Clinic site</title></head>"
        "<body><h1>Welcome</h1><p>The clinic's own page.</p>"
        "<script src='/rasa-webchat.js'></script>"
        f"<script>WebChat.default({json.dumps(settings)}, null);</script>"
        "</body></html>"
    ).encode()


class _Site(BaseHTTPRequestHandler):
    """The clinic's site: the page, and rasa-webchat's script from node_modules."""

    page = b""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path == "/rasa-webchat.js":
            body, content_type = WIDGET.read_bytes(), "text/javascript; charset=utf-8"
        else:
            body, content_type = self.page, "text/html; charset=utf-8"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[ThreadingHTTPServer]:
    assert WIDGET.exists(), f"{WIDGET} is missing: `make setup` installs web/package-lock.json"
    yield from serve_site(_Site)


@pytest.fixture(scope="module")
def listed_origin(site) -> str:
    return f"http://127.0.0.1:{site.server_port}"


@pytest.fixture(scope="module")
def webchat_assistant(tmp_path_factory, trained_model, site, listed_origin) -> Iterator[Assistant]:
    """An assistant whose CHAT_ALLOWED_ORIGINS lists the site (as 127.0.0.1 only)."""
    running = Assistant(
        tmp_path_factory.mktemp("rasa-webchat-var"), "rasa-webchat", env={"CHAT_ALLOWED_ORIGINS": listed_origin}
    ).start()
    _Site.page = site_page(running.url)
    yield running
    running.stop()


class Visitor:
    """One browser (its own localStorage) on the site, recording what the
    widget sends on the socket."""

    def __init__(self, browser: Browser, url: str) -> None:
        self.context = browser.new_context()
        self.page: Page = self.context.new_page()
        self.url = url
        self.sent: List[str] = []  # Socket.IO packets, over long-polling and WebSocket alike
        self.console: List[str] = []
        self.page.on("console", lambda message: self.console.append(message.text))
        self.page.on("websocket", lambda socket: socket.on("framesent", self._record_frame))
        self.context.on("request", self._record_request)

    def _record_frame(self, payload) -> None:
        self.sent.append(payload if isinstance(payload, str) else payload.decode("utf-8", "replace"))

    def _record_request(self, request) -> None:
        if "/socket.io/" in request.url and request.method == "POST" and request.post_data:
            self.sent.extend(request.post_data.split("\x1e"))  # Engine.IO 4's packet separator

    def open(self) -> "Visitor":
        self.page.goto(self.url)
        return self

    def open_chat(self) -> None:
        launcher = self.page.locator(".rw-launcher")
        launcher.wait_for(timeout=ANSWER_TIMEOUT_MS)
        if self.page.locator(".rw-new-message").count() == 0:
            launcher.click()
        self.page.locator(".rw-new-message").wait_for(timeout=ANSWER_TIMEOUT_MS)

    def bot_texts(self) -> List[str]:
        return [" ".join(text.split()) for text in self.page.locator(".rw-response .rw-message-text").all_inner_texts()]

    def user_texts(self) -> List[str]:
        return [" ".join(text.split()) for text in self.page.locator(".rw-client .rw-message-text").all_inner_texts()]

    def wait_for_bot(self, expected: str, after: int = 0) -> None:
        expected = " ".join(expected.split())
        wait_until(
            lambda: any(expected in text for text in self.bot_texts()[after:]),
            lambda: f"no {expected!r}; the widget shows {self.bot_texts()[after:]!r}; console {self.console[-5:]!r}",
        )

    def ask(self, question: str, expected: str) -> None:
        before = len(self.bot_texts())
        self.page.locator(".rw-new-message").fill(question)
        self.page.locator(".rw-new-message").press("Enter")
        self.wait_for_bot(expected, before)

    def session_id(self) -> Optional[str]:
        stored = self.page.evaluate(f"localStorage.getItem('{STORAGE_KEY}')")
        return (json.loads(stored) if stored else {}).get("session_id")

    def session_requests(self) -> List[dict]:
        """The `session_request` packets sent so far, as the server got them."""
        found = []
        for packet in self.sent:
            if packet.startswith("42") and '"session_request"' in packet:
                event = json.loads(packet[packet.index("[") :])
                found.append(event[1] if len(event) > 1 else None)
        return found

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visitors(browser: Browser) -> Iterator[Callable[[str], Visitor]]:
    opened: List[Visitor] = []

    def open_visitor(url: str) -> Visitor:
        visitor = Visitor(browser, url)
        opened.append(visitor)
        return visitor.open()

    yield open_visitor
    for visitor in opened:
        visitor.close()


def user_turns(assistant: Assistant, session_id: str) -> List[str]:
    reply = requests.get(
        f"{assistant.url}/conversations/{session_id}/tracker", params={"token": assistant.token}, timeout=30
    )
    reply.raise_for_status()
    return [event["text"] for event in reply.json()["events"] if event["event"] == "user"]


def test_rasa_webchat_answers_takes_quick_replies_and_keeps_the_conversation_on_reload(
    visitors, webchat_assistant, listed_origin
):
    sessions, what_is = faq("how_many_sessions"), faq("what_is_dry_needling")
    visitor = visitors(f"{listed_origin}/")
    visitor.open_chat()
    # The init payload's answer: the greeting, with its quick replies.
    visitor.wait_for_bot("virtual assistant")
    session_id = visitor.session_id()
    # A fresh visitor asks for no conversation and gets one the server issued.
    assert visitor.session_requests()[0] == {"session_id": None}, visitor.sent
    assert conversation_ids.is_issued(session_id, conversation_ids.WEB), session_id

    # A quick reply of the greeting sends its payload; the visitor sees its title.
    before = len(visitor.bot_texts())
    visitor.page.locator(".rw-reply", has_text="How many sessions?").click()
    visitor.wait_for_bot(sessions["answer"], before)
    assert visitor.user_texts()[-1] == "How many sessions?"

    visitor.ask(what_is["question"], what_is["answer"])

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    visitor.page.screenshot(path=str(SCREENSHOTS / "rasa-webchat.png"))

    # A reload presents the issued id again: the same conversation, shown and continued.
    visitor.page.reload()
    visitor.open_chat()
    wait_until(
        lambda: visitor.session_requests()[-1:] == [{"session_id": session_id}],
        lambda: f"after the reload the widget sent {visitor.session_requests()!r}",
    )
    assert visitor.session_id() == session_id
    assert what_is["question"] in visitor.user_texts()
    visitor.wait_for_bot(sessions["answer"])
    safety = faq("safety")
    visitor.ask(safety["question"], safety["answer"])
    assert user_turns(webchat_assistant, session_id) == [
        "hello", "How many sessions will I need?", what_is["question"], safety["question"]
    ]

    # Another visitor (another browser) gets a conversation of their own.
    stranger = visitors(f"{listed_origin}/")
    stranger.open_chat()
    stranger.wait_for_bot("virtual assistant")
    assert stranger.session_id() not in (None, session_id)
    assert conversation_ids.is_issued(stranger.session_id(), conversation_ids.WEB)
    assert what_is["question"] not in stranger.user_texts()


def test_a_site_not_in_chat_allowed_origins_is_named_in_the_server_log(visitors, webchat_assistant, site):
    # The same page from another origin: localhost is not the listed 127.0.0.1.
    refused = f"http://localhost:{site.server_port}"
    offset = webchat_assistant.log_path.stat().st_size
    visitor = visitors(f"{refused}/")

    def logged() -> str:
        with open(webchat_assistant.log_path, encoding="utf-8", errors="replace") as log:
            log.seek(offset)
            return next((line for line in log if refused in line), "")

    wait_until(lambda: bool(logged()), lambda: f"nothing about {refused} in {webchat_assistant.log_path}", 20_000)
    line = logged()
    assert "refused" in line and "CHAT_ALLOWED_ORIGINS" in line, line
    # and the widget got no conversation
    assert visitor.session_id() is None
    assert visitor.page.locator(".rw-response").count() == 0


def test_long_polling_from_a_listed_site_gets_one_allow_origin(webchat_assistant, listed_origin):
    # Two values (Engine.IO's and Rasa's CORS both answering) and browsers refuse the reply.
    reply = requests.get(
        f"{webchat_assistant.url}/socket.io/", params={"EIO": "4", "transport": "polling"},
        headers={"Origin": listed_origin}, timeout=30,
    )
    assert reply.status_code == 200, reply.text
    assert reply.raw.headers.getlist("Access-Control-Allow-Origin") == [listed_origin]


def test_engine_io_3_clients_such_as_rasa_webchat_1_0_0_are_refused(webchat_assistant, listed_origin):
    # What the README says of rasa-webchat 1.0.0 and older: Rasa 3.6 needs python-engineio 4.
    reply = requests.get(
        f"{webchat_assistant.url}/socket.io/", params={"EIO": "3", "transport": "polling"},
        headers={"Origin": listed_origin}, timeout=30,
    )
    assert reply.status_code == 400 and "unsupported version" in reply.text.lower(), reply.text
