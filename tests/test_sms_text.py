"""SMS text shaping (channels/sms_text.py): GSM-7 and UCS-2 counting,
splitting long replies, Markdown and links, numbered options, and every
answer in data/ within SMS limits."""

import re

import pytest
import yaml

from channels import sms_text
from channels.sms_text import (
    MAX_MESSAGE_CHARS,
    TARGET_MESSAGE_CHARS,
    encoding,
    plain_text,
    segments,
    split_message,
    units,
)
from clinic import DATA_DIR, PROJECT_ROOT
from clinic.facts import clinic_facts, fill

LABEL = re.compile(r"^\((\d+)/(\d+)\) ")


def unlabelled(parts):
    """The parts without their "(i/n) " labels, checking the labels."""
    texts = []
    for number, part in enumerate(parts, start=1):
        match = LABEL.match(part)
        assert match and (int(match.group(1)), int(match.group(2))) == (number, len(parts)), part[:20]
        texts.append(part[match.end():])
    return texts


def all_answers():
    """Every answer text in domain.yml and data/nlu/, with its buttons."""
    answers = []
    files = [PROJECT_ROOT / "domain.yml"] + sorted((DATA_DIR / "nlu").glob("*.yml"))
    for path in files:
        for name, variations in (yaml.safe_load(path.read_text()).get("responses") or {}).items():
            sms = [v for v in variations if v.get("channel") == "sms"]
            for variation in sms or [v for v in variations if not v.get("channel")]:
                answers.append((name, {"text": fill(variation["text"]), "buttons": variation.get("buttons")}))
    return answers


# ---- counting ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected_encoding,expected_units,expected_segments",
    [
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("£$¥èéùìòÇØøÅåΔ_ÆæßÉÄÖÑÜ§¿äöñüà@", "GSM-7", 31, 1),
        # extension characters take two septets
        ("{" * 80, "GSM-7", 160, 1),
        ("€" * 81, "GSM-7", 162, 2),
        # an extension character is never split between two parts
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),
        # one character outside GSM-7 makes the whole message UCS-2
        ("a" * 69 + "\u2019", "UCS-2", 70, 1),
        ("a" * 70 + "\u2019", "UCS-2", 71, 2),
        ("ł" * 134, "UCS-2", 134, 2),
        ("ł" * 135, "UCS-2", 135, 3),
        # emoji take two UTF-16 units and are never split either
        ("😀" * 35, "UCS-2", 70, 1),
        ("a" * 66 + "😀" + "a" * 66, "UCS-2", 134, 3),
        ("", "GSM-7", 0, 0),
    ],
)
def test_gsm7_and_ucs2_counting(text, expected_encoding, expected_units, expected_segments):
    assert encoding(text) == expected_encoding
    assert units(text) == expected_units
    assert segments(text) == expected_segments


# ---- splitting ---------------------------------------------------------------------

GSM_REPLY = " ".join(
    fill(text) for _, message in all_answers() if (text := message["text"]) and sms_text.is_gsm7(fill(text))
)
UCS2_REPLY = (
    "Dry needling targets \u201ctrigger points\u201d \u2014 tight knots in muscle \U0001F4AA. "
    "Most people feel a twitch, then relief \U0001F60A. Some are sore for a day or two; "
    "that\u2019s normal. "
) * 12 + "Reply {HELP} for help \u20ac."


def test_the_long_test_replies_are_over_1600_characters():
    assert len(GSM_REPLY) > 1600 and encoding(GSM_REPLY) == "GSM-7"
    assert len(UCS2_REPLY) > 1600 and encoding(UCS2_REPLY) == "UCS-2"


@pytest.mark.parametrize("reply", [GSM_REPLY, UCS2_REPLY], ids=["gsm7", "ucs2"])
def test_long_replies_split_between_words_within_the_limits(reply):
    parts = split_message(reply)
    assert len(parts) > 5
    texts = unlabelled(parts)
    for part in parts:
        assert units(part) <= TARGET_MESSAGE_CHARS
        assert len(part) <= MAX_MESSAGE_CHARS
        # 320 units: at most 3 GSM-7 segments, or 5 UCS-2 ones
        assert segments(part) <= (3 if encoding(part) == "GSM-7" else 5)
    # nothing lost, nothing added, no word cut in two
    assert " ".join(texts).split() == reply.split()
    # a GSM-7 reply stays GSM-7; UCS-2 only where a part has such a character
    if reply is GSM_REPLY:
        assert {encoding(part) for part in parts} == {"GSM-7"}
    else:
        assert all(encoding(p) == ("GSM-7" if sms_text.is_gsm7(p) else "UCS-2") for p in parts)


def test_counting_decides_where_to_split():
    # 300 characters: one GSM-7 message, but 320 UCS-2 units (with the
    # label) are passed once emoji are in it
    gsm = " ".join(["word"] * 60)[:299]
    assert split_message(gsm) == [gsm]
    ucs2 = " ".join(["w😀rd"] * 60)
    assert len(ucs2) < 320 < units(ucs2)
    parts = split_message(ucs2)
    assert len(parts) == 2 and all(units(p) <= TARGET_MESSAGE_CHARS for p in parts)
    # extension characters count twice in GSM-7 too
    braces = " ".join(["{x}"] * 75)
    assert len(braces) < 320 < units(braces)
    assert len(split_message(braces)) == 2


def test_split_prefers_paragraphs_and_sentences():
    first = "First sentence of the answer. " * 12
    reply = first.strip() + "\n\nGeneral info only, not medical advice.\n\nReply with a number:\n1) Yes\n2) No"
    parts = unlabelled(split_message(reply))
    assert all(part.endswith((".", "No")) for part in parts)
    assert parts[-1].endswith("Reply with a number:\n1) Yes\n2) No")


def test_a_long_word_is_kept_whole_unless_longer_than_a_message():
    url = "https://example.com/" + "a" * 500
    parts = unlabelled(split_message("See " + url + " for more."))
    assert url in parts
    giant = "x" * 2000
    parts = split_message(giant)
    assert all(len(p) <= MAX_MESSAGE_CHARS for p in parts)
    assert "".join(unlabelled(parts)) == giant


def test_short_replies_are_one_unlabelled_message():
    assert split_message("Hello there.") == ["Hello there."]
    assert split_message("  ") == []


# ---- plain text and options ----------------------------------------------------------


@pytest.mark.parametrize(
    "markdown,plain",
    [
        ("Book [online](https://example.com/book).", "Book online: https://example.com/book."),
        ("[https://example.com](https://example.com)", "https://example.com"),
        ("Call [us](tel:+19175550100)", "Call us (+19175550100)"),
        ("Go to <https://example.com>", "Go to https://example.com"),
        ("It is **very** _safe_ and *common*", "It is very safe and common"),
        ("## Heading\n* one\n+ two", "Heading\n- one\n- two"),
        ("line<br>next", "line\nnext"),
        ("\u201cquoted\u201d \u2014 it\u2019s fine\u2026", "\"quoted\" - it's fine..."),
        ("keep snake_case_words and 2*3*4", "keep snake_case_words and 2*3*4"),
        ("a\n\n\n\nb", "a\n\nb"),
    ],
)
def test_markdown_and_links_become_plain_text(markdown, plain):
    assert plain_text(markdown) == plain
    assert encoding(plain_text(markdown)) == "GSM-7"


BUTTONS = [
    {"title": "What is a trigger point?", "payload": "What exactly is a trigger point?"},
    {"title": "Book online", "url": "https://example.com", "payload": "https://example.com"},
    {"title": "Call", "payload": "tel:+19175550100"},
    {"title": "Book a visit", "payload": "/book_appointment"},
]


def test_buttons_become_numbered_options_and_a_number_maps_back():
    options = sms_text.numbered_options([BUTTONS, [{"title": "Book", "payload": "/book_appointment"}]])
    assert options == [
        ("What is a trigger point?", "What exactly is a trigger point?"),
        ("Book a visit", "/book_appointment"),
    ]
    assert sms_text.chosen_option("1", options) == "What exactly is a trigger point?"
    for reply in ("2", " 2. ", "#2", "2)"):
        assert sms_text.chosen_option(reply, options) == "/book_appointment"
    for reply in ("0", "3", "two", "2 please", "12"):
        assert sms_text.chosen_option(reply, options) is None


def test_a_turn_becomes_one_text_with_links_and_options_last():
    text = sms_text.compose(
        [{"text": "Here is how to book.", "buttons": BUTTONS}, {"text": "General info only."}],
        note="(a note)",
    )
    assert text == (
        "Here is how to book.\nBook online: https://example.com\nCall: tel:+19175550100"
        "\n\nGeneral info only."
        "\n\nReply with a number:\n1) What is a trigger point?\n2) Book a visit"
        "\n\n(a note)"
    )


def test_every_answer_fits_sms_limits():
    """Each answer as a texter gets it (with the SMS disclaimer and its
    options): messages of at most 320 units, plain GSM-7."""
    disclaimer = {"text": clinic_facts()["disclaimer_sms"]}
    longest = (0, None)
    for name, message in all_answers():
        parts = sms_text.sms_reply([message, disclaimer])
        assert parts, name
        assert all(units(part) <= TARGET_MESSAGE_CHARS for part in parts), name
        assert all(encoding(part) == "GSM-7" for part in parts), name
        count = sum(segments(part) for part in parts)
        longest = max(longest, (count, name), key=lambda pair: pair[0])
    print(f"longest SMS reply: {longest[1]}, {longest[0]} segments")
    assert longest[0] <= 8
