"""Turns the assistant's messages into text messages: plain text instead of
Markdown and links, buttons as numbered options, and replies split into
SMS-sized messages counted the way the phone network counts them."""

import re
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from clinic.facts import clinic_facts

# Twilio refuses message bodies over 1,600 characters; it recommends 320 or
# less, which most phones show as one message.
MAX_MESSAGE_CHARS = 1600
TARGET_MESSAGE_CHARS = 320
# "(12/12) " in front of each part when a reply takes several messages,
# since the network does not promise they arrive in order.
PART_LABEL_RESERVE = 8

# The GSM 03.38 alphabet: one septet each, or two for the extension table.
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("\f^{}\\[~]|€")
# One message alone, or each part of a concatenated message (the rest of
# the 140 bytes holds the part header).
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

# Typographic punctuation with a plain equivalent: one curly quote would
# otherwise make the whole message UCS-2 (70 instead of 160 per segment).
PLAIN_PUNCTUATION = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2032": "'", "\u2033": '"',
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-",
    "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2007": " ",
    "\u2022": "-", "\u00b7": "-", "\u2026": "...",
})


# ---- counting ---------------------------------------------------------------

def is_gsm7(text: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def encoding(text: str) -> str:
    """"GSM-7", or "UCS-2" as soon as one character is outside GSM-7."""
    return "GSM-7" if is_gsm7(text) else "UCS-2"


def _char_units(char: str, gsm: bool) -> int:
    if gsm:
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1  # UTF-16: astral characters take two


def units(text: str, gsm: Optional[bool] = None) -> int:
    """Length as the network counts it: septets for GSM-7 (extension
    characters take two), UTF-16 code units for UCS-2 (emoji take two)."""
    gsm = is_gsm7(text) if gsm is None else gsm
    return sum(_char_units(char, gsm) for char in text)


def segments(text: str) -> int:
    """How many SMS segments a message takes. An extension character or an
    emoji is never split between two segments, so parts can hold less."""
    gsm = is_gsm7(text)
    single, part = (GSM7_SINGLE, GSM7_PART) if gsm else (UCS2_SINGLE, UCS2_PART)
    if units(text, gsm) <= single:
        return 1 if text else 0
    count, used = 1, 0
    for char in text:
        size = _char_units(char, gsm)
        if used + size > part:
            count, used = count + 1, 0
        used += size
    return count


# ---- Markdown, links and punctuation ----------------------------------------

_MD_LINK = re.compile(r"\[([^\]\n]+)\]\((\S+?)\)")
_AUTOLINK = re.compile(r"<((?:https?|mailto|tel|sms):[^>\s]+)>")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![\w*])([*_])(?=\S)([^*_\n]+?)(?<=\S)\1(?![\w*])")
_CODE = re.compile(r"`([^`\n]+)`")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_BULLET = re.compile(r"^(\s*)[*+•]\s+", re.MULTILINE)
_LINE_BREAK_TAG = re.compile(r"<br\s*/?>|</p>\s*<p>", re.IGNORECASE)
_TAG = re.compile(r"</?(?:p|b|strong|i|em|u|span|div)\b[^>]*>", re.IGNORECASE)
_STRAY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _link(match: "re.Match") -> str:
    title, url = match.group(1).strip(), match.group(2)
    bare = re.sub(r"^(?:https?://|mailto:|tel:|sms:)", "", url).rstrip("/")
    if title.rstrip("/") in (url.rstrip("/"), bare):
        return url
    if url.startswith(("tel:", "sms:")):
        return f"{title} ({url.split(':', 1)[1]})"
    return f"{title}: {url}"


def plain_text(text: str) -> str:
    """Text a phone shows well: no Markdown or HTML markup, links written
    out, plain punctuation, no runs of blank lines."""
    text = _STRAY_CONTROL.sub("", text.replace("\r\n", "\n"))
    text = _LINE_BREAK_TAG.sub("\n", text)
    text = _TAG.sub("", text)
    text = _MD_LINK.sub(_link, text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _CODE.sub(r"\1", text)
    text = _BOLD.sub(r"\2", text)
    text = _ITALIC.sub(r"\2", text)
    text = _HEADING.sub("", text)
    text = _BULLET.sub(r"\1- ", text)
    text = text.translate(PLAIN_PUNCTUATION)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


# ---- buttons ------------------------------------------------------------------

_LINK_PAYLOAD = re.compile(r"^(?:https?://|tel:|sms:|mailto:)", re.IGNORECASE)


def is_link_button(button: Dict[str, Any]) -> bool:
    return bool(button.get("url")) or bool(_LINK_PAYLOAD.match(str(button.get("payload") or "")))


def numbered_options(button_lists: Iterable[Optional[Sequence[Dict[str, Any]]]]) -> List[Tuple[str, str]]:
    """(title, payload) of the buttons a visitor can answer with a number, in
    order across the turn's messages, each payload once. The channel numbers
    the reply with this and reads a number back with this, so both agree."""
    options: List[Tuple[str, str]] = []
    seen = set()
    for buttons in button_lists:
        for button in buttons or []:
            payload = str(button.get("payload") or "").strip()
            title = plain_text(str(button.get("title") or payload))
            if not payload or is_link_button(button) or payload in seen:
                continue
            seen.add(payload)
            options.append((title, payload))
    return options


def options_text(options: Sequence[Tuple[str, str]]) -> str:
    lines = [f"{number}) {title}" for number, (title, _) in enumerate(options, start=1)]
    return clinic_facts()["sms_options_intro"] + "\n" + "\n".join(lines)


_OPTION_REPLY = re.compile(r"^\s*#?\s*(\d{1,2})\s*[.)]?\s*$")


def option_number(text: str) -> Optional[int]:
    """The number in a reply like "2", "2." or "#2"; None for anything else."""
    match = _OPTION_REPLY.match(text)
    return int(match.group(1)) if match else None


def chosen_option(text: str, options: Sequence[Tuple[str, str]]) -> Optional[str]:
    """The payload of the option a reply like "2" picks, if it picks one."""
    number = option_number(text)
    return options[number - 1][1] if number and number <= len(options) else None


def compose(messages: Iterable[Dict[str, Any]], note: Optional[str] = None) -> str:
    """One SMS-friendly text from the assistant's messages of a turn: their
    texts, link buttons written out, then the numbered options."""
    messages = list(messages)
    paragraphs: List[str] = []
    for message in messages:
        parts = []
        if message.get("text"):
            parts.append(plain_text(str(message["text"])))
        for button in message.get("buttons") or []:
            if is_link_button(button):
                url = button.get("url") or button.get("payload")
                parts.append(plain_text(f"{button.get('title') or ''}: {url}".lstrip(": ")))
        for key in ("image", "attachment"):
            if isinstance(message.get(key), str):
                parts.append(message[key])
        if parts:
            paragraphs.append("\n".join(part for part in parts if part))
    options = numbered_options(message.get("buttons") for message in messages)
    if options:
        paragraphs.append(options_text(options))
    if note:
        paragraphs.append(note)
    return "\n\n".join(paragraph for paragraph in paragraphs if paragraph)


# ---- splitting ------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+")


def _paragraph_pieces(paragraph: str) -> List[Tuple[str, str]]:
    """(separator before it, piece): the paragraph's sentences, with its
    line breaks kept as separators."""
    pieces: List[Tuple[str, str]] = []
    for l_index, line in enumerate(paragraph.split("\n")):
        for s_index, sentence in enumerate(_SENTENCE_END.split(line.strip())):
            if sentence:
                pieces.append(("\n" if s_index == 0 and l_index else " ", sentence))
    return pieces


def _words(sentence: str) -> List[Tuple[str, str]]:
    words = sentence.split()
    return [("" if index == 0 else " ", word) for index, word in enumerate(words)]


def _cut_word(word: str, limit: int, gsm: bool) -> List[str]:
    """Only for a "word" longer than a whole message (a giant URL)."""
    parts, current, used = [], "", 0
    for char in word:
        size = _char_units(char, gsm)
        if used + size > limit:
            parts.append(current)
            current, used = "", 0
        current += char
        used += size
    return parts + ([current] if current else [])


def split_message(
    text: str,
    target: int = TARGET_MESSAGE_CHARS,
    limit: int = MAX_MESSAGE_CHARS,
) -> List[str]:
    """The text as messages of at most `target` units where it can be (the
    length the network counts; see `units`), always at most `limit`, split
    between paragraphs, lines or sentences, else between words, never inside
    a word (unless one word is longer than `limit`). Several parts are
    labelled "(1/3) ", "(2/3) "... in order."""
    text = text.strip()
    gsm = is_gsm7(text)
    if units(text, gsm) <= target:
        return [text] if text else []
    budget = target - PART_LABEL_RESERVE
    hard = limit - PART_LABEL_RESERVE
    messages: List[str] = []
    current, used = "", 0

    def add(separator: str, piece: str, ceiling: int) -> bool:
        nonlocal current, used
        joint = separator if current else ""
        size = units(joint + piece, gsm)
        if used + size > ceiling:
            return False
        current, used = current + joint + piece, used + size
        return True

    def flush() -> None:
        nonlocal current, used
        if current:
            messages.append(current)
        current, used = "", 0

    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        # A paragraph that fits in a message is never split (the options
        # stay together); one that does not is split between sentences.
        if units(paragraph, gsm) <= budget:
            if not add("\n\n", paragraph, budget):
                flush()
                add("", paragraph, budget)
            continue
        for index, (separator, sentence) in enumerate(_paragraph_pieces(paragraph)):
            if add("\n\n" if index == 0 else separator, sentence, budget):
                continue
            flush()
            if add("", sentence, budget):
                continue
            # A sentence longer than a message: word by word.
            for word_separator, word in _words(sentence):
                if add(word_separator, word, budget):
                    continue
                flush()
                if add("", word, hard):  # one long word, e.g. a URL
                    continue
                for chunk in _cut_word(word, hard, gsm):
                    add("", chunk, hard)
                    flush()
    flush()
    total = len(messages)
    if total == 1:
        return messages
    return [f"({number}/{total}) {message}" for number, message in enumerate(messages, start=1)]


def sms_reply(messages: Iterable[Dict[str, Any]], note: Optional[str] = None) -> List[str]:
    """What the visitor receives for a turn: the texts to put in TwiML."""
    return split_message(compose(messages, note))
