"""What staff may teach: a visitor's phrasing, an answer's text and a new
topic's name, cleaned, or refused with a reason staff can act on."""

import re
from typing import Dict, Iterable

from clinic import quality
from clinic.facts import PLACEHOLDER, fill

# SMS (issue 4): aim at one 320-character message, never above 1,600.
SMS_AIM_CHARS = 320
SMS_MAX_CHARS = 1600
MAX_PHRASING_CHARS = 300
TOPIC = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
MIN_TOPIC_CHARS, MAX_TOPIC_CHARS = 3, 40
# Personal details must not become training data (it ends up in the repository).
PHONE = re.compile(r"\+?\d[\d\s().-]{5,}\d")
EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[a-z]{2,}", re.IGNORECASE)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
STOPWORDS = set(
    """a an the is are was were be been am do does did can could will would should shall
    may might must i me my mine you your yours we our us it its this that these those
    to of for in on at by with from about as and or but if so not no any some there
    what how when where why who whom which whose get got have has had just really
    please pls hi hello hey thanks also very much many too up out into than then
    im i'm ive i've dont don't""".split()
)


class EditRefused(ValueError):
    """A change that would break the data, with a reason staff can act on."""


def clean_phrasing(text: str) -> str:
    """One line of visitor text, safe inside a Rasa examples block; raises
    EditRefused when it is empty, too long or holds personal details."""
    # Square brackets would be read as an entity annotation by Rasa.
    text = CONTROL.sub(" ", text or "").replace("[", " ").replace("]", " ")
    text = " ".join(text.split())
    if text.startswith("- "):
        text = text[2:].strip()
    if not text:
        raise EditRefused("The phrasing is empty.")
    if len(text) > MAX_PHRASING_CHARS:
        raise EditRefused(
            f"The phrasing is {len(text)} characters long; keep it to the question itself "
            f"(at most {MAX_PHRASING_CHARS})."
        )
    if PHONE.search(text) or EMAIL.search(text):
        raise EditRefused(
            "The phrasing contains what looks like a phone number or email address. "
            "Remove personal details before teaching it."
        )
    return text


def clean_answer(text: str, facts: Dict[str, str]) -> str:
    """An answer's text, trimmed; raises EditRefused when it is empty, writes
    a phone number out, uses a placeholder that is no clinic fact (`facts`)
    or is too long with the facts filled in (clinic.quality.MAX_ANSWER_CHARS)."""
    text = (text or "").replace("\r\n", "\n").strip()
    if not text:
        raise EditRefused("The answer is empty.")
    if PHONE.search(text):
        raise EditRefused(
            "Write {clinic_phone} instead of a phone number: the number is kept in one place "
            "(data/clinic.yml) and filled into every answer."
        )
    unknown = sorted(set(PLACEHOLDER.findall(text)) - set(facts))
    if unknown:
        raise EditRefused(
            "Unknown placeholder(s) " + ", ".join("{" + name + "}" for name in unknown)
            + ". Known ones: " + ", ".join("{" + name + "}" for name in sorted(facts)) + "."
        )
    length = len(fill(text, facts))
    if length > quality.MAX_ANSWER_CHARS:
        raise EditRefused(
            f"The answer is {length} characters with the clinic's details filled in; "
            f"keep it to {quality.MAX_ANSWER_CHARS} (a text message aims at {SMS_AIM_CHARS})."
        )
    return text


def topic_title(label: str) -> str:
    """How staff read an answer's label: "faq/how_many_sessions" -> "How many sessions"."""
    topic = label.split("/", 1)[-1]
    return topic.replace("_", " ").capitalize()


def suggested_topic(question: str, taken: Iterable[str]) -> str:
    """A topic name from the question's main words, none of `taken`."""
    words = [w for w in re.findall(r"[a-z0-9]+", (question or "").lower()) if w not in STOPWORDS]
    base = "_".join(words[:4])[:MAX_TOPIC_CHARS].strip("_") or "new_question"
    if not base[0].isalpha():
        base = "q_" + base
    taken = set(taken)
    topic, number = base, 2
    while topic in taken:
        topic = f"{base[:MAX_TOPIC_CHARS - 3]}_{number}"
        number += 1
    return topic


def clean_topic(topic: str, taken: Iterable[str]) -> str:
    """A new topic's name, trimmed; raises EditRefused when it is no valid
    name or one of `taken`."""
    topic = (topic or "").strip()
    if not (MIN_TOPIC_CHARS <= len(topic) <= MAX_TOPIC_CHARS) or not TOPIC.match(topic):
        raise EditRefused(
            f"“{topic}” is not a valid topic name: use {MIN_TOPIC_CHARS}-{MAX_TOPIC_CHARS} "
            "lowercase letters and digits in words joined by underscores, like how_long_it_lasts."
        )
    if topic in set(taken):
        raise EditRefused(f"The topic name “{topic}” is already used; choose another.")
    return topic
