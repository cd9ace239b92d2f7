"""The website chat in a real browser (Debian's Chromium driven by Playwright)
against servers started as `make run` starts them: answers, quick replies,
markup shown as text, feedback, reloads and tabs, a phone screen, the
keyboard and screen readers. The widget embedded in another site and the
server going away are in test_webchat_embedded.py."""

from typing import Callable, Iterator, List

import pytest
import requests
import sqlalchemy as sa
from playwright.sync_api import Browser, Page

from browser_chat import SCREENSHOTS, ask, bot_texts, chat_page, faq, session_of, user_texts, wait_online
from clinic import store
from clinic.facts import clinic_facts
from conftest import Assistant, wait_until

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
