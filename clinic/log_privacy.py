"""Keeps personal data out of the logs: masking functions, and a log filter
plus record factory that every process of the assistant installs once.

Phone numbers, and names visitors give ("my name is ...", "I'm <Name>"), are
masked wherever they appear (messages, arguments, tracebacks, and extra
fields such as Sanic's access-log request line).
Other kinds of personal data can be added with `add_masker()`.
"""

import logging
import re
import threading
from typing import Callable, List

# Something that looks like a phone number: +<8-15 digits> with light
# separators (also URL-encoded, %2B), a North American number in any usual
# format, or a bare run of 10-15 digits. Not part of a word or identifier
# (Twilio's MessageSid stays readable), not a decimal fraction (timestamps
# such as 1700000000.25 stay readable).
PHONE_NUMBER = re.compile(
    r"""
    (?:
        (?<!\d)(?:\+|%2[Bb])(?:\d[\s.()-]{0,2}){7,14}\d
      | (?<![\w.])(?:1[\s.-]?)?(?:\(\d{3}\)|\d{3})[\s.-]?\d{3}[\s.-]?\d{4}
      | (?<![\w.])\d{10,15}
    )
    (?!\w)(?!\.\d)
    """,
    re.VERBOSE,
)

Masker = Callable[[str], str]


def mask_phone_number(number: str) -> str:
    """A number reduced to its last two digits, enough to tell lines apart."""
    digits = re.sub(r"\D", "", number)
    return f"[phone **{digits[-2:]}]"


def mask_phone_numbers(text: str) -> str:
    return PHONE_NUMBER.sub(lambda match: mask_phone_number(match.group(0)), text)


# A name the visitor gives: after "my name is", "call me", "name:" (any
# case: visitors type lowercase), or after "I'm", "I am", "this is" when it is
# capitalised ("I'm Dana", not "I'm having pain"). Up to three words.
_NAME_WORD = r"[^\W\d_](?:[\w'-]*\w)?"
_CAPITALISED_WORD = r"[^\W\d_a-z](?:[\w'-]*\w)?"
_NOT_A_NAME = r"(?!(?i:and|but|or|i|i'm|im|from|here|please|my|is|so|ok|thanks|with|in|at)\b)"
NAME = re.compile(
    rf"""
    (?P<intro>\b(?i:my\s+(?:full\s+|first\s+|last\s+)?name\s+is|my\s+name['’]s|name\s*:|call\s+me)\s+)
        (?P<name>{_NAME_WORD}(?:\s+{_NOT_A_NAME}{_NAME_WORD}){{0,2}})
  | (?P<intro2>\b(?i:i['’]m|i\s+am|im|this\s+is|it['’]s)\s+)
        (?P<name2>{_CAPITALISED_WORD}(?:\s+{_CAPITALISED_WORD}){{0,2}})
    """,
    re.VERBOSE,
)


def mask_names(text: str) -> str:
    """"my name is Dana Smith" -> "my name is [name]"."""

    def masked(match: "re.Match[str]") -> str:
        intro = match.group("intro") or match.group("intro2")
        return f"{intro}[name]"

    return NAME.sub(masked, text)


# An API token in a logged URL (Sanic's access log shows Rasa's ?token=...).
_URL_SECRET = re.compile(r"([?&](?:token|auth_token|access_token)=)[^&\s\"']+", re.IGNORECASE)


def mask_url_secrets(text: str) -> str:
    return _URL_SECRET.sub(r"\1***", text)


_maskers: List[Masker] = [mask_phone_numbers, mask_names, mask_url_secrets]


def add_masker(masker: Masker) -> None:
    """Adds a text -> masked text function applied to every log line."""
    if masker not in _maskers:
        _maskers.append(masker)


def mask(text: str) -> str:
    for masker in _maskers:
        text = masker(text)
    return text


# Attributes every LogRecord has; anything else was passed as `extra`.
_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def mask_record(record: logging.LogRecord) -> None:
    """Masks a record in place: message with its arguments, traceback, extras."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: logging reports it itself
        message = None
    if message is not None:
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        record.exc_text = mask(text)
    elif record.exc_text:
        record.exc_text = mask(record.exc_text)
    if record.stack_info:
        record.stack_info = mask(record.stack_info)
    for name, value in list(vars(record).items()):
        if name not in _STANDARD_ATTRIBUTES and isinstance(value, str):
            setattr(record, name, mask(value))


class MaskingFilter(logging.Filter):
    """Masks personal data in every record a handler writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


_FILTER = MaskingFilter()
_install_lock = threading.Lock()
_factory_installed = False


def _all_handlers() -> List[logging.Handler]:
    loggers = [logging.getLogger()] + [
        entry for entry in logging.Logger.manager.loggerDict.values()
        if isinstance(entry, logging.Logger)
    ]
    return [handler for each in loggers for handler in each.handlers]


def install() -> None:
    """Masks every log record of this process from now on. Safe to call
    again (it should be, after a library adds its own handlers)."""
    global _factory_installed
    with _install_lock:
        if not _factory_installed:
            # Covers records of every logger, whatever handler writes them.
            make_record = logging.getLogRecordFactory()

            def masked_record(*args, **kwargs) -> logging.LogRecord:
                record = make_record(*args, **kwargs)
                mask_record(record)
                return record

            logging.setLogRecordFactory(masked_record)
            _factory_installed = True
        # `extra` fields are set after the factory ran: handlers mask those.
        for handler in _all_handlers():
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
