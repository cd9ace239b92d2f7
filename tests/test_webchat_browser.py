"""The website chat in a real browser (Debian's Chromium driven by Playwright)
against servers started as `make run` starts them: answers, quick replies,
markup shown as text, feedback, reloads and tabs, a phone screen, the server
going away and coming back, and the widget embedded in another site."""

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator, List

import pytest
import requests
import socketio
import sqlalchemy as sa
import yaml
from playwright.sync_api import Browser, Frame, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from chat_client import ChatVisitor
from clinic import DATA_DIR, store
from clinic.facts import clinic_facts, fill
from conftest import ANSWER_TIMEOUT_MS, OUTPUT, Assistant, serve_site, wait_until

SCREENSHOTS = OUTPUT / "screenshots"
SESSION_KEY = "clinic-chat:session"
OFFLINE_WORDS = "offline"
# What a visitor's browser downloads for the embedded chat, compressed.
TRANSFER_BUDGET_KB = 50


def faq(topic: str) -> dict:
    """An FAQ's first phrasing, its answer (facts filled in) and its follow-up buttons, from data/."""
    content = yaml.safe_load((DATA_DIR / "nlu" / f"faq_{topic}.yml").read_text())
    response = content["responses"][f"utter_faq/{topic}"][0]
    examples = content["nlu"][0]["examples"]
    return {
        "question": examples.splitlines()[0].lstrip("- ").strip(),
        "answer": fill(response["text"]),
        "buttons": response.get("buttons") or [],
    }


# ---- helpers


def chat_page(browser: Browser, url: str, **context_options) -> Page:
    """A page in a fresh browser context (its own localStorage), failing on any dialog."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    page.dialogs = []  # type: ignore[attr-defined]

    def on_dialog(dialog):
        page.dialogs.append(dialog.message)  # type: ignore[attr-defined]
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(url)
    return page


def wait_online(target) -> None:
    """Connected and the conversation replayed: the send button is enabled."""
    target.locator("#chat-send:enabled").wait_for(timeout=ANSWER_TIMEOUT_MS)


def bot_texts(target) -> List[str]:
    return target.locator(".msg-bot .msg-text").all_text_contents()


def user_texts(target) -> List[str]:
    return target.locator(".msg-user .msg-text").all_text_contents()


def ask(target, question: str, expected: str) -> None:
    """Types the question, presses Enter, waits for `expected` as a new bot message."""
    before = len(bot_texts(target))
    target.locator("#chat-input").fill(question)
    target.locator("#chat-input").press("Enter")
    wait_until(
        lambda: expected in bot_texts(target)[before:],
        lambda: f"no answer {expected!r} to {question!r}; the bot said {bot_texts(target)[before:]!r}",
    )


def session_of(page: Page) -> str:
    return page.evaluate(f"localStorage.getItem('{SESSION_KEY}')")


def feedback_rows(assistant: Assistant, sender: str) -> List[dict]:
    url = assistant.env.get("DATABASE_URL") or f"sqlite:///{assistant.var_dir / 'clinic.db'}"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            query = store.feedback.select().where(store.feedback.c.sender_id == sender)
            return [dict(row._mapping) for row in connection.execute(query)]
    finally:
        engine.dispose()


@pytest.fixture
def open_chat(browser: Browser, assistant: Assistant) -> Iterator[Callable[..., Page]]:
    """Opens the chat page of the shared assistant; closes every context afterwards."""
    pages: List[Page] = []

    def opener(**context_options) -> Page:
        page = chat_page(browser, f"{assistant.url}/chat", **context_options)
        pages.append(page)
        return page

    yield opener
    for page in pages:
        page.context.close()


# ---- the shared assistant


def test_faq_answer_follow_up_and_booking_quick_reply(open_chat, assistant):
    what_is = faq("what_is_dry_needling")
    facts = clinic_facts()
    page = open_chat(viewport={"width": 900, "height": 1300})  # tall enough for the screenshot
    assert page.get_by_role("heading", level=1).text_content() == facts["clinic_name"]
    assert "virtual assistant" in bot_texts(page)[0]
    assert facts["disclaimer_short"] in bot_texts(page)
    wait_online(page)
    # Any moment the typing indicator is shown counts, however short.
    page.evaluate(
        """() => { const typing = document.getElementById('chat-typing');
        new MutationObserver(() => { if (!typing.hidden) window.typingShown = true; })
          .observe(typing, { attributes: true }); }"""
    )

    ask(page, what_is["question"], what_is["answer"])
    assert page.evaluate("window.typingShown === true")
    answer = page.locator(".msg-bot", has=page.get_by_text(what_is["answer"], exact=True))
    follow_ups = answer.locator(".replies button").all_text_contents()
    assert follow_ups == [button["title"] for button in what_is["buttons"]]
    assert answer.get_by_role("button", name="Helpful", exact=True).is_visible()

    # A follow-up sends its payload; the visitor sees the button's title.
    trigger_points = faq("trigger_points")
    before = len(bot_texts(page))
    answer.get_by_role("button", name=what_is["buttons"][0]["title"]).click()
    wait_until(
        lambda: trigger_points["answer"] in bot_texts(page)[before:],
        lambda: f"follow-up got {bot_texts(page)[before:]!r}",
    )
    assert user_texts(page)[-1] == what_is["buttons"][0]["title"]

    # "Book a visit" in the greeting: booking details with the phone number,
    # and the booking buttons open as links.
    before = len(bot_texts(page))
    page.locator(".msg-bot").first.get_by_role("button", name="Book a visit").click()
    wait_until(
        lambda: facts["booking_details"] in bot_texts(page)[before:],
        lambda: f"booking got {bot_texts(page)[before:]!r}",
    )
    booking = page.locator(".msg-bot", has=page.get_by_text(facts["booking_details"], exact=True))
    assert facts["clinic_phone"] in booking.locator(".msg-text").text_content()
    assert booking.get_by_role("link", name="Book online").get_attribute("href") == facts["booking_url"]
    assert booking.get_by_role("link", name=f"Call {facts['clinic_phone']}").get_attribute("href").startswith("tel:+1")
    # the phone number inside the text is a tap-to-call link too
    assert booking.locator(".msg-text a[href^='tel:']").text_content() == facts["clinic_phone"]
    assert user_texts(page)[-1] == "Book a visit"

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "conversation.png"))


def test_markup_from_visitor_and_bot_is_shown_as_text(open_chat, assistant):
    attack = "<img src=x onerror=alert(1)>"
    bot_markup = "<b>bold</b> and <img src=x onerror=alert(2)> and <script>alert(3)</script>"
    page = open_chat()
    wait_online(page)
    before = len(bot_texts(page))
    page.locator("#chat-input").fill(attack)
    page.locator("#chat-input").press("Enter")
    wait_until(lambda: len(bot_texts(page)) > before, lambda: "no reply to the markup message")
    assert user_texts(page)[-1] == attack

    # A bot message with markup, sent through Rasa's token-protected API to the open page.
    response = requests.post(
        f"{assistant.url}/conversations/{session_of(page)}/tracker/events",
        params={"token": assistant.token, "output_channel": "latest", "execute_side_effects": "true"},
        json={"event": "bot", "text": bot_markup},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    wait_until(lambda: bot_markup in bot_texts(page), lambda: f"injected message not shown: {bot_texts(page)!r}")

    def assert_inert() -> None:
        assert page.locator("#chat-log img, #chat-log b, #chat-log script").count() == 0
        assert page.dialogs == []
        assert attack in user_texts(page) and bot_markup in bot_texts(page)

    page.wait_for_timeout(500)  # an onerror handler would have run by now
    assert_inert()
    page.reload()  # the replayed history is text too
    wait_online(page)
    assert_inert()


def test_feedback_on_an_answer_is_stored_for_staff(open_chat, assistant):
    safety = faq("safety")
    page = open_chat()
    wait_online(page)
    ask(page, safety["question"], safety["answer"])
    answer = page.locator(".msg-bot", has=page.get_by_text(safety["answer"], exact=True))
    answer.get_by_role("button", name="Not helpful").click()
    answer.get_by_text("Thanks for your feedback.").wait_for(timeout=10_000)
    rows = feedback_rows(assistant, session_of(page))
    assert [(row["question"], row["answer"], row["helpful"], row["status"]) for row in rows] == [
        (safety["question"], safety["answer"], False, "new")
    ]
    # The disclaimer is a note, not an answer to vote on.
    disclaimer = page.locator(".msg-bot", has=page.get_by_text(clinic_facts()["disclaimer_short"], exact=True))
    assert disclaimer.locator(".feedback").count() == 0
    # After a reload the vote is remembered, not offered again.
    page.reload()
    wait_online(page)
    answer = page.locator(".msg-bot", has=page.get_by_text(safety["answer"], exact=True))
    assert answer.get_by_role("button", name="Not helpful").count() == 0


def test_reload_and_tabs_keep_the_conversation_a_new_visitor_gets_their_own(open_chat, browser, assistant):
    sessions = faq("how_many_sessions")
    page = open_chat()
    wait_online(page)
    ask(page, sessions["question"], sessions["answer"])
    session = session_of(page)

    page.reload()
    wait_online(page)
    assert session_of(page) == session
    assert sessions["question"] in user_texts(page)
    assert sessions["answer"] in bot_texts(page)

    # A second tab of the same browser joins the same conversation, both ways.
    other_tab = page.context.new_page()
    other_tab.goto(f"{assistant.url}/chat")
    wait_online(other_tab)
    assert sessions["answer"] in bot_texts(other_tab)
    safety = faq("safety")
    ask(other_tab, safety["question"], safety["answer"])
    wait_until(
        lambda: safety["question"] in user_texts(page) and safety["answer"] in bot_texts(page),
        lambda: f"first tab did not follow: {user_texts(page)!r}",
    )

    # Another visitor (a new browser context) starts with nothing but the greeting.
    stranger = open_chat()
    wait_online(stranger)
    assert session_of(stranger) not in (None, session)
    assert user_texts(stranger) == []
    assert sessions["answer"] not in bot_texts(stranger)


def test_phone_screen_shows_input_and_send_without_horizontal_scrolling(open_chat):
    facts = clinic_facts()
    page = open_chat(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True, device_scale_factor=2)
    wait_online(page)
    ask(page, "how do I book an appointment?", facts["booking_details"])
    for selector in ("#chat-input", "#chat-send"):
        box = page.locator(selector).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 375, (selector, box)
        assert box["y"] >= 0 and box["y"] + box["height"] <= 667, (selector, box)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.evaluate("document.querySelector('.chat-log').scrollWidth <= document.querySelector('.chat-log').clientWidth")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "phone.png"))


def test_keyboard_and_screen_reader_basics(open_chat):
    page = open_chat()
    wait_online(page)
    assert page.get_by_role("log", name="Conversation").count() == 1
    assert page.evaluate("document.activeElement.id") == "chat-input"
    assert page.get_by_role("textbox", name="Your question").count() == 1
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "chat-send"
    assert page.get_by_role("button", name="Send").is_enabled()
    assert page.locator("#chat-typing").get_attribute("role") == "status"
    # Quick replies are real buttons, reachable and usable from the keyboard.
    reply = page.locator(".msg-bot").first.get_by_role("button", name="How many sessions?")
    reply.focus()
    before = len(bot_texts(page))
    page.keyboard.press("Enter")
    wait_until(
        lambda: faq("how_many_sessions")["answer"] in bot_texts(page)[before:],
        lambda: f"keyboard quick reply got {bot_texts(page)[before:]!r}",
    )


def test_over_long_message_on_the_socket_gets_a_clear_answer(open_chat):
    page = open_chat()
    wait_online(page)
    # The input stops at the limit; a client that ignores it is told why.
    assert page.locator("#chat-input").get_attribute("maxlength") == "2000"
    reply = page.evaluate(
        """async () => {
          const { io } = await import('/chat/assets/socket.io.esm.min.js');
          const socket = io({ path: '/socket.io', transports: ['websocket'] });
          const answer = new Promise((resolve) => socket.on('bot_uttered', resolve));
          socket.emit('user_uttered', { message: 'a'.repeat(5000), session_id: 'long-' + Date.now() });
          const result = await answer;
          socket.close();
          return result;
        }"""
    )
    assert "too long" in reply["text"] and reply.get("error") is True


# ---- an assistant of this module's own: another site embedding it, and a restart


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
