"""Log masking (clinic/log_privacy.py): phone numbers in any format and
tokens in URLs never reach a log handler in clear, while timestamps and ids
stay readable."""

import logging

import pytest

from clinic import log_privacy
from clinic.log_privacy import mask


@pytest.mark.parametrize(
    "text",
    [
        "from +19175550123 today",
        "call (917) 555-0123",
        "917-555-0123",
        "917.555.0123",
        "9175550123",
        "1-917-555-0123",
        "+1 917 555 0123",
        "+44 7911 123456",
        "GET /conversations/+19175550123/tracker",
        "GET /conversations/%2B19175550123/tracker",
        "whatsapp:+19175550123",
        "sender='+19175550123'",
    ],
)
def test_phone_numbers_are_masked_in_any_format(text):
    masked = mask(text)
    assert "[phone **" in masked
    assert "555" not in masked and "7911" not in masked


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-20 23:37:04,936 INFO started",
        "timestamp 1700000000.123456",
        "confidence 0.9175550123",
        "SMS SM0123456789abcdef0123456789abcdef answered",
        "http://127.0.0.1:5005/webhooks/sms/webhook",
        "pid 14947, port 40311, 2021 pages",
    ],
)
def test_what_is_not_a_phone_number_stays_readable(text):
    assert mask(text) == text


def test_tokens_in_urls_are_masked():
    assert mask("GET /conversations/x/tracker?token=s3cret&until=2") == "GET /conversations/x/tracker?token=***&until=2"


def test_installed_masking_covers_arguments_extras_and_tracebacks():
    log_privacy.install()
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Keep()
    handler.setFormatter(logging.Formatter("%(message)s %(request)s"))
    logger = logging.getLogger("test_log_privacy")
    logger.addHandler(handler)
    log_privacy.install()  # handlers added later get the filter too
    try:
        try:
            raise ValueError("bad sender +19175550123")
        except ValueError:
            logger.error("sender %s", "+19175550199", exc_info=True, extra={"request": "GET /x/+19175550188"})
    finally:
        logger.removeHandler(handler)
    [line] = records
    assert "5550199" not in line and "5550188" not in line and "5550123" not in line
    assert all(masked in line for masked in ("[phone **99]", "[phone **88]", "ValueError: bad sender [phone **23]"))
