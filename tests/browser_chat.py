"""What the browser tests of the website chat share: a chat page in a fresh
browser context, waiting for it to be online, asking and reading answers,
and an FAQ's phrasing, answer and buttons as written in data/."""

from typing import List

import yaml
from playwright.sync_api import Browser, Page

from clinic import DATA_DIR
from clinic.facts import fill
from conftest import ANSWER_TIMEOUT_MS, OUTPUT, wait_until

SCREENSHOTS = OUTPUT / "screenshots"
SESSION_KEY = "clinic-chat:session"


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
