"""What the SMS tests share: texts signed exactly as Twilio signs them, the
Twilio form they post, reading the TwiML back, and the assistant with the
SMS channel on as two Rasa servers sharing the database, started once for
every SMS test file (a pytest plugin: tests/conftest.py's pytest_plugins)."""

import contextlib
import random
import re
import secrets
import uuid
import xml.etree.ElementTree as ElementTree
from typing import Dict, Iterator, List, Optional

import pytest
import requests
import sqlalchemy as sa
import yaml
from conftest import Assistant
from twilio.request_validator import RequestValidator

from clinic import DATA_DIR
from clinic.facts import fill

PATH = "/webhooks/sms/webhook"
# The URL Twilio calls (behind a proxy), which is what it signs.
PUBLIC_URL = "https://sms.clinic.test/webhooks/sms/webhook"
TOKEN = secrets.token_hex(16)
RATE_LIMIT = 8
CLINIC_NUMBER = "+19178304440"
NUMBERS_USED: List[str] = []


def new_number() -> str:
    """A fresh fictional number (555-01xx) for each test's texter."""
    while True:
        number = f"+1{random.randint(201, 989)}55501{random.randint(0, 99):02d}"
        if number not in NUMBERS_USED:
            NUMBERS_USED.append(number)
            return number


def new_sid() -> str:
    return "SM" + uuid.uuid4().hex


def twilio_form(number: str, body: Optional[str], sid: str, **fields: str) -> Dict[str, str]:
    """The fields Twilio posts for an incoming SMS (no Body when None)."""
    form = {
        "ToCountry": "US", "ToState": "NY", "SmsMessageSid": sid, "NumMedia": "0",
        "ToCity": "NEW YORK", "FromZip": "", "SmsSid": sid, "FromState": "NY",
        "SmsStatus": "received", "FromCity": "NEW YORK", "Body": body, "FromCountry": "US",
        "To": CLINIC_NUMBER, "MessagingServiceSid": "", "ToZip": "", "NumSegments": "1",
        "MessageSid": sid, "AccountSid": "AC" + "0" * 32, "From": number, "ApiVersion": "2010-04-01",
        **fields,
    }
    return {name: value for name, value in form.items() if value is not None}


def mms_fields(sid: str, count: int) -> Dict[str, str]:
    """What Twilio adds for pictures or files (an MMS's MessageSid starts with MM)."""
    fields = {"NumMedia": str(count)}
    for index in range(count):
        fields[f"MediaContentType{index}"] = "image/jpeg"
        fields[f"MediaUrl{index}"] = (
            f"https://api.twilio.com/2010-04-01/Accounts/AC{'0' * 32}/Messages/{sid}/Media/ME{uuid.uuid4().hex}"
        )
    return fields


def answer(response_name: str, path: str) -> str:
    responses = yaml.safe_load((DATA_DIR / "nlu" / path).read_text())["responses"]
    return fill(responses[response_name][0]["text"])


def buttons(response_name: str, path: str) -> List[dict]:
    responses = yaml.safe_load((DATA_DIR / "nlu" / path).read_text())["responses"]
    return responses[response_name][0]["buttons"]


def flat(text: str) -> str:
    return " ".join(text.split())


class Texter:
    """Sends texts to the channel the way Twilio does."""

    def __init__(self, assistant: Assistant, number: Optional[str] = None):
        self.assistant = assistant
        self.number = number or new_number()

    def post(self, form: Dict[str, str], signature: Optional[str], replica: int = 0) -> requests.Response:
        headers = {"X-Twilio-Signature": signature} if signature is not None else {}
        url = self.assistant.replica_url(replica) + PATH
        return requests.post(url, data=form, headers=headers, timeout=30)

    def send(
        self, body: Optional[str], sid: Optional[str] = None, replica: int = 0, **fields: str
    ) -> requests.Response:
        response = self.signed_post(twilio_form(self.number, body, sid or new_sid(), **fields), replica)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/xml")
        return response

    def signed_post(self, form: Dict[str, str], replica: int = 0) -> requests.Response:
        return self.post(form, RequestValidator(TOKEN).compute_signature(PUBLIC_URL, form), replica)

    def text(self, body: Optional[str], sid: Optional[str] = None, replica: int = 0, **fields: str) -> List[str]:
        """The messages sent back, in order."""
        return messages(self.send(body, sid, replica, **fields))

    def opted_out(self) -> bool:
        with database(self.assistant).connect() as connection:
            return bool(connection.execute(
                sa.text("SELECT count(*) FROM sms_opt_outs WHERE sender_id = :n"), {"n": self.number}
            ).scalar())

    def user_turns(self) -> List[str]:
        events = self.assistant.tracker(self.number)["events"]
        return [e["text"] for e in events if e["event"] == "user"]


def messages(response: requests.Response) -> List[str]:
    root = ElementTree.fromstring(response.content)
    assert root.tag == "Response"
    assert all(child.tag == "Message" for child in root)
    return [child.text or "" for child in root]


def joined(parts: List[str]) -> str:
    """The messages read in order, without their "(1/2) " labels."""
    return flat(" ".join(re.sub(r"^\(\d+/\d+\) ", "", part) for part in parts))


# For the whole session, not each file: starting two servers takes a minute.
@pytest.fixture(scope="session")
def sms_assistant(tmp_path_factory, trained_model) -> Iterator[Assistant]:
    with running_sms_assistant(tmp_path_factory) as running:
        yield running


@contextlib.contextmanager
def running_sms_assistant(tmp_path_factory) -> Iterator[Assistant]:
    """The assistant with the SMS channel on, as two Rasa servers sharing
    the database (Twilio may call either). Debug logging, so that every line
    mentioning a conversation is written, and checked for numbers."""
    running = Assistant(
        tmp_path_factory.mktemp("sms-var"),
        "sms",
        replicas=2,
        env={
            "TWILIO_AUTH_TOKEN": TOKEN,
            "SMS_WEBHOOK_URL": PUBLIC_URL,
            "SMS_RATE_LIMIT": str(RATE_LIMIT),
            "SMS_RATE_WINDOW": "600",
            "LOG_LEVEL": "DEBUG",
            "LOG_LEVEL_LIBRARIES": "INFO",
        },
    )
    running.log_offset = running.log_path.stat().st_size if running.log_path.exists() else 0
    running.start()
    try:
        yield running
    finally:
        running.stop()


def database(assistant: Assistant) -> sa.engine.Engine:
    url = assistant.env.get("DATABASE_URL") or f"sqlite:///{assistant.var_dir / 'clinic.db'}"
    return sa.create_engine(url)


def signed(form: Dict[str, str]) -> Dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(PUBLIC_URL, form)}

