"""The SMS channel: Twilio's Messaging webhook at /webhooks/sms/webhook.

Every request must carry a valid X-Twilio-Signature (TWILIO_AUTH_TOKEN, for
the public URL in SMS_WEBHOOK_URL: channels/sms_settings.py,
channels/twilio_request.py); the reply goes back in the response as TwiML,
so no outbound Twilio credentials are needed. The conversation's sender id
is the phone number. Opt-out keywords and Twilio's OptOutType and the
per-number rate limit are handled here, retried and replayed MessageSids in
channels/sms_retries.py, with their state in the project database
(channels/sms_state.py); the text itself is shaped by channels/sms_text.py.
What the channel says is in data/clinic.yml (`sms_help`, `sms_stop`...).
"""

import logging
import re
import time
import unicodedata
from functools import partial
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.core.events import BotUttered, UserUttered
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from twilio.request_validator import RequestValidator

from channels import sms_state, sms_text
from channels.base import FailedTurn, GuardedInputChannel, Handler
from channels.checks import BadInput
from channels.sms_retries import Answer, OneAnswerPerText, Replayed
from channels.sms_settings import SmsSettings
from channels.turn_guard import apology
from channels.twilio_request import IncomingText, checked_fields, twiml, verified_form
from clinic import log_privacy
from clinic.facts import clinic_facts
from clinic.store import run_blocking

logger = logging.getLogger(__name__)

# Twilio's default opt-out keywords (REVOKE and OPTOUT since May 2025, for
# the FCC's rule on revoking consent, which also names "opt out"), opt-in and
# help keywords: the whole text, read by `keyword`, so "Opt out", "opt-out."
# and "stop all" count too (https://help.twilio.com/articles/223134027,
# https://www.twilio.com/en-us/blog/update-to-fcc-s-sms-opt-out-keywords).
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
START_WORDS = {"START", "UNSTOP"}
START_WORDS_WHEN_OPTED_OUT = {"YES"}  # otherwise "yes" is just an answer
HELP_WORDS = {"HELP", "INFO"}

# Twilio gives up on the webhook after 15 seconds.
REPLY_DEADLINE = 12.0
MAX_BODY_CHARS = sms_text.MAX_MESSAGE_CHARS
_NOT_KEYWORD = re.compile(r"[\W_]+")

# What the channel itself says (data/clinic.yml, the clinic's facts filled in).
HELP_TEXT = clinic_facts()["sms_help"]
STOP_TEXT = clinic_facts()["sms_stop"]
START_TEXT = clinic_facts()["sms_start"]
RATE_LIMIT_TEXT = clinic_facts()["sms_rate_limit"]
TOO_LONG_NOTE = clinic_facts()["sms_too_long"]
SLOW_TEXT = clinic_facts()["sms_too_slow"]
ERROR_TEXT = clinic_facts()["sms_error"]


def media_only_text() -> str:
    """The answer to a picture or file without text (data/clinic.yml)."""
    return clinic_facts()["sms_media_only"]


def media_note() -> str:
    """Added to the answer of a text that came with a picture or file."""
    return clinic_facts()["sms_media_not_read"]


class SmsOutput(CollectingOutputChannel):
    """Collects a turn's replies for the TwiML answer. Named "sms", so a
    response's `channel: sms` variation is the one a texter gets (Rasa's
    collector calls itself "collector", which no variation names)."""

    @classmethod
    def name(cls) -> Text:
        return "sms"


def keyword(body: str) -> str:
    """The whole text as a keyword: compatible forms folded (NFKC), without
    spaces, punctuation or case, so "Opt-out." reads OPTOUT and "stop all"
    STOPALL."""
    return _NOT_KEYWORD.sub("", unicodedata.normalize("NFKC", body)).upper()


def cut_body(body: str) -> Tuple[str, bool]:
    """The body cut to 1,600 characters (at a word break when there is one
    near the end), and whether it was cut."""
    if len(body) <= MAX_BODY_CHARS:
        return body, False
    cut = body[:MAX_BODY_CHARS]
    if not body[MAX_BODY_CHARS].isspace():
        head = cut.rsplit(None, 1)[0]
        if len(head) > MAX_BODY_CHARS - 100:
            cut = head
    return cut, True


class SmsInput(GuardedInputChannel):
    """Twilio's Messaging webhook, signed, answered with TwiML."""

    # A webhook answer must be TwiML: a failed turn gets the apology as a text.
    failed_turn = FailedTurn.APOLOGY_MESSAGE

    @classmethod
    def name(cls) -> Text:
        return "sms"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        # Secrets come from the environment only, never from credentials.yml.
        return cls(SmsSettings.from_env())

    def __init__(self, settings: SmsSettings) -> None:
        self.settings = settings
        self.validator = RequestValidator(settings.auth_token) if settings.auth_token else None
        self.answers = OneAnswerPerText(REPLY_DEADLINE, too_slow=SLOW_TEXT, failed=ERROR_TEXT)

    def guarded_blueprint(self, handle_turn: Handler) -> Blueprint:
        # Sanic has set up its own log handlers by now: mask those too.
        log_privacy.install()
        sms = Blueprint("sms_webhook", __name__)
        settings = self.settings
        if settings.problem:
            logger.error("SMS channel OFF, /webhooks/sms/webhook answers 503: %s.", settings.problem)
        elif settings.allow_unsigned:
            logger.warning(
                "SMS channel accepts UNSIGNED requests (SMS_ALLOW_UNSIGNED=true, no "
                "TWILIO_AUTH_TOKEN): anyone who finds the URL can make it text people. "
                "Development only."
            )
        else:
            logger.info(
                "SMS channel on: Twilio signatures checked for %s; at most %d texts per number per %d s.",
                settings.webhook_url, settings.rate_limit, settings.rate_window,
            )

        @sms.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            if settings.problem:
                return response.json({"status": "off", "message": settings.problem}, status=503)
            return response.json({"status": "ok"})

        @sms.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if settings.problem:
                return response.json({"message": f"SMS channel is off: {settings.problem}"}, status=503)
            started = time.monotonic()
            try:
                text = checked_fields(verified_form(request, settings, self.validator))
            except BadInput as error:
                logger.info("SMS webhook refused (%d): %s", error.status_code, error)
                return response.json({"message": str(error)}, status=error.status_code)
            try:
                texts, kind = await self.answers.answer(text, partial(self.decide, request, handle_turn), started)
            except Replayed as error:
                logger.info("SMS webhook refused (%d): %s", error.status_code, error)
                return response.json({"message": str(error)}, status=error.status_code)
            except Exception:  # e.g. the database is down: the texter still hears back
                logger.exception("SMS %s could not be answered", text.message_sid)
                texts, kind = [ERROR_TEXT], "error"
            logger.info(
                "SMS %s from %s: %s, %d message(s), %d segment(s), %.2f s",
                text.message_sid, log_privacy.mask_phone_number(text.sender), kind, len(texts),
                sum(sms_text.segments(part) for part in texts), time.monotonic() - started,
            )
            return response.text(twiml(texts), content_type="text/xml; charset=utf-8")

        return sms

    async def decide(self, request: Request, handle_turn: Handler, text: IncomingText) -> Answer:
        """What a text gets: a keyword's confirmation, silence for an opted-out
        or rate-limited number, or the conversation's turn."""
        sender, message_sid, body = text.sender, text.message_sid, text.body
        word = keyword(body)
        # Twilio's Advanced Opt-Out has replied already: only its effect is kept.
        handled = text.opt_out_type
        if handled == "STOP" or (not handled and word in STOP_WORDS):
            await run_blocking(sms_state.opt_out, sender)
            return ([] if handled else [STOP_TEXT]), "stop"
        opted_out = await run_blocking(sms_state.is_opted_out, sender)
        if handled == "START" or (
            not handled and (word in START_WORDS or (opted_out and word in START_WORDS_WHEN_OPTED_OUT))
        ):
            await run_blocking(sms_state.opt_in, sender)
            return ([] if handled else [START_TEXT]), "start"
        if handled == "HELP":
            return [], "help"
        # An opted-out number gets nothing, except an answer to HELP.
        if opted_out and word not in HELP_WORDS:
            return [], "opted_out"
        verdict = await run_blocking(
            sms_state.rate_verdict, sender, message_sid, self.settings.rate_limit, self.settings.rate_window
        )
        if verdict == sms_state.RATE_NOTICE:
            return [RATE_LIMIT_TEXT], verdict
        if verdict == sms_state.RATE_QUIET:
            return [], verdict
        if word in HELP_WORDS:
            return sms_text.split_message(HELP_TEXT), "help"
        if not body.strip():
            return [media_only_text()], "not_text"
        body, cut = cut_body(body)
        notes = [TOO_LONG_NOTE] if cut else []
        if text.num_media:
            notes.append(media_note())
        user_text, metadata = body, {}
        if sms_text.option_number(body) is not None:
            payload = sms_text.chosen_option(body, await self.last_options(request, sender))
            if payload:
                user_text, metadata = payload, {"sms_option": sms_text.option_number(body)}
        collector = SmsOutput()
        message = UserMessage(
            user_text, collector, sender, input_channel=self.name(), message_id=message_sid,
            metadata=metadata or None,
        )
        # a reply within seconds; the apology when the turn could not run
        if not await handle_turn(message):
            return [apology()], "unavailable"
        return sms_text.sms_reply(collector.messages, "\n\n".join(notes) or None), "conversation"

    @staticmethod
    async def last_options(request: Request, sender: str) -> List[Tuple[str, str]]:
        """The numbered options of the assistant's last turn with this number,
        read from the shared tracker store, so any server can map a reply."""
        agent = getattr(request.app.ctx, "agent", None)
        tracker_store = getattr(agent, "tracker_store", None)
        if tracker_store is None:
            return []
        tracker = await tracker_store.retrieve(sender)
        if tracker is None:
            return []
        button_lists = []
        for event in reversed(tracker.events):
            if isinstance(event, UserUttered):
                break
            if isinstance(event, BotUttered):
                button_lists.append(event.data.get("buttons"))
        return sms_text.numbered_options(reversed(button_lists))
