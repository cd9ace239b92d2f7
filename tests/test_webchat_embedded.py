"""The website chat embedded in another site, in a real browser (Debian's
Chromium driven by Playwright), against an assistant of this module's own:
the widget snippet, sites allowed or not to frame the chat and to open its
socket, and the server going away and coming back."""

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, List

import pytest
import socketio
from playwright.sync_api import Frame, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from browser_chat import SCREENSHOTS, ask, bot_texts, faq, wait_online
from chat_client import ChatVisitor
from clinic.facts import clinic_facts
from conftest import ANSWER_TIMEOUT_MS, OUTPUT, Assistant, serve_site

OFFLINE_WORDS = "offline"
# What a visitor's browser downloads for the embedded chat, compressed.
TRANSFER_BUDGET_KB = 50


class _PlainSite(BaseHTTPRequestHandler):
    """A clinic web page on another port that embeds the widget."""

    page = b""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def plain_site() -> Iterator[ThreadingHTTPServer]:
    yield from serve_site(_PlainSite)


@pytest.fixture(scope="module")
def embedding_assistant(tmp_path_factory, trained_model, plain_site) -> Iterator[Assistant]:
    """An assistant that lets the plain site (and only it) embed the chat."""
    origin = f"http://127.0.0.1:{plain_site.server_port}"
    running = Assistant(
        tmp_path_factory.mktemp("webchat-var"), "webchat", env={"CHAT_ALLOWED_ORIGINS": origin}
    ).start()
    snippet = f'<script src="{running.url}/chat/widget.js" data-server="{running.url}" defer></script>'
    _PlainSite.page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Clinic site</title>"
        "<style>button { background: red !important; } iframe { border: 5px solid red; }</style></head>"
        f"<body><h1>Welcome</h1><p>The clinic's own page.</p>{snippet}</body></html>"
    ).encode()
    yield running
    running.stop()


def open_widget(page: Page) -> Frame:
    launcher = page.get_by_role("button", name=f"Chat with {clinic_facts()['clinic_name']}")
    launcher.wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert launcher.get_attribute("aria-expanded") == "false"
    launcher.click()
    assert launcher.get_attribute("aria-expanded") == "true"
    iframe = page.locator("iframe[title^='Chat with']")
    iframe.wait_for(timeout=ANSWER_TIMEOUT_MS)
    frame = iframe.element_handle().content_frame()
    assert frame is not None
    frame.wait_for_load_state()
    return frame


def test_embed_snippet_puts_a_working_chat_on_another_sites_page(browser, embedding_assistant, plain_site):
    what_is = faq("what_is_dry_needling")
    site = f"http://127.0.0.1:{plain_site.server_port}/"
    context = browser.new_context()
    transferred: List[dict] = []
    context.on(
        "requestfinished",
        lambda request: transferred.append({"url": request.url, **request.sizes()})
        if request.url.startswith(embedding_assistant.url)
        else None,
    )
    try:
        page = context.new_page()
        dialogs: List[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(site)
        frame = open_widget(page)
        wait_online(frame)
        assert frame.evaluate("document.activeElement.id") == "chat-input"
        ask(frame, what_is["question"], what_is["answer"])
        assert dialogs == []

        # What a visitor downloads for the chat, compressed.
        total = sum(r["responseBodySize"] + r["responseHeadersSize"] for r in transferred)
        report = {"total_kb": round(total / 1024, 1), "requests": transferred}
        (OUTPUT / "webchat-transfer.json").write_text(json.dumps(report, indent=2))
        assert total < TRANSFER_BUDGET_KB * 1024, report

        # Escape closes the panel and gives focus back to the launcher.
        frame.locator("#chat-input").press("Escape")
        page.locator("iframe[title^='Chat with']").wait_for(state="hidden", timeout=10_000)
        assert page.evaluate(
            "document.activeElement.shadowRoot && document.activeElement.shadowRoot.activeElement.className"
        ) == "launcher"
        # Open again: the same conversation.
        frame = open_widget(page)
        assert what_is["answer"] in bot_texts(frame)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "embedded.png"))
    finally:
        context.close()


def test_a_site_not_in_chat_allowed_origins_cannot_frame_the_chat(browser, embedding_assistant, plain_site):
    # Same page, other origin: localhost is not the allowed 127.0.0.1.
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://localhost:{plain_site.server_port}/")
        launcher = page.get_by_role("button", name=f"Chat with {clinic_facts()['clinic_name']}")
        with page.expect_response(lambda response: "/chat?embed=1" in response.url) as refused:
            launcher.click()
        assert "frame-ancestors 'self' http://127.0.0.1:" in refused.value.headers["content-security-policy"]
        frame = page.locator("iframe[title^='Chat with']").element_handle().content_frame()
        page.wait_for_timeout(1000)
        assert frame is None or frame.locator("#chat-input").count() == 0
    finally:
        context.close()


def test_offline_message_then_reconnects_and_answers(browser, embedding_assistant):
    sessions = faq("how_many_sessions")
    safety = faq("safety")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{embedding_assistant.url}/chat")
        wait_online(page)
        ask(page, sessions["question"], sessions["answer"])

        embedding_assistant.stop()
        status = page.locator("#chat-status")
        try:
            page.wait_for_function(
                "word => document.getElementById('chat-status').textContent.includes(word)",
                arg=OFFLINE_WORDS,
                timeout=15_000,
            )
        except PlaywrightTimeout:
            raise AssertionError(f"no offline message; status is {status.text_content()!r}")
        assert page.locator("#chat-send").is_disabled()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "offline.png"))

        embedding_assistant.start()
        wait_online(page)
        assert status.text_content() == ""
        assert sessions["answer"] in bot_texts(page)  # the conversation is still there
        ask(page, safety["question"], safety["answer"])
    finally:
        context.close()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_the_socket_takes_listed_origins_only(embedding_assistant, plain_site, transport):
    listed = f"http://127.0.0.1:{plain_site.server_port}"
    with ChatVisitor(embedding_assistant.url, origin=listed, transports=[transport]) as visitor:
        visitor.start()
        assert visitor.say("what is sciatica")[0]["text"]
    for origin in (f"http://127.0.0.1:{plain_site.server_port + 1}", "https://127.0.0.1", "null"):
        with ChatVisitor(embedding_assistant.url, origin=origin, transports=[transport]) as visitor:
            with pytest.raises(socketio.exceptions.ConnectionError):
                visitor.start(timeout=3)
