"""The SMS channel: Twilio's Messaging webhook at /webhooks/sms/webhook.

Every request must carry a valid X-Twilio-Signature (TWILIO_AUTH_TOKEN, for
the public URL in SMS_WEBHOOK_URL); the reply goes back in the response as
TwiML, so no outbound Twilio credentials are needed. The conversation's
sender id is the phone number. Opt-out keywords and Twilio's OptOutType,
retried and replayed MessageSids and the per-number rate limit are handled
here, with their state in the project database (channels/sms_state.py,
which says why replays are refused for good); the text itself is shaped by
channels/sms_text.py.

The signed URL: Twilio signs "the Webhook URL set in Twilio" with the POST
parameters ("Secure webhooks",
https://www.twilio.com/docs/usage/webhooks/webhooks-security). That URL may
end in connection overrides (#rc=3&rp=all...), a fragment Twilio reads and
never sends; its docs do not say whether the signed URL keeps it, and
twilio-python's RequestValidator, handed the URL with it, hashes it with
it. So SMS_WEBHOOK_URL is the URL exactly as set in Twilio, and a signature
over it with or without the fragment is accepted: both take the auth token.

A retry whose first delivery died with its server: the server answering a
MessageSid renews its claim every HEARTBEAT_SECONDS; a retry that finds it
unrenewed for DEAD_AFTER_SECONDS runs the turn itself, and one that still
has no reply when Twilio must hear back gets the apology with the clinic's
phone, never an empty answer.
"""

import asyncio
import logging
import os
import re
import threading
import time
import unicodedata
import uuid
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Text, Tuple
from urllib.parse import parse_qsl, urlsplit

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.core.events import BotUttered, UserUttered
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from twilio.request_validator import RequestValidator

from channels import sms_state, sms_text
from channels.checks import BadInput, MessageTooLong, checked_sender
from channels.turn_guard import AssistantUnavailable, apology, run_turn
from clinic import log_privacy
from clinic.facts import clinic_facts, fill
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
# Twilio's OptOutType, sent when a Messaging Service's Advanced Opt-Out
# matched one of its own keywords (any language) and has already replied.
OPT_OUT_TYPES = {"STOP", "START", "HELP"}

# Twilio gives up on the webhook after 15 seconds.
REPLY_DEADLINE = 12.0
# The server answering a text renews its claim this often; one not renewed
# for DEAD_AFTER_SECONDS belonged to a server that died.
HEARTBEAT_SECONDS = 1.0
DEAD_AFTER_SECONDS = 5.0
# Twilio's form (with a 1,600-character body) is a few kilobytes.
MAX_FORM_BYTES = 64 * 1024
MAX_BODY_CHARS = sms_text.MAX_MESSAGE_CHARS
_MESSAGE_SID = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")
_STRAY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_NOT_KEYWORD = re.compile(r"[\W_]+")

# What the channel itself says; the clinic's facts come from data/clinic.yml.
HELP_TEXT = (
    "{clinic_name}'s virtual assistant answers questions about dry needling for sciatica. "
    "Not medical advice; in an emergency call 911. To talk to a person, call {clinic_phone}. "
    "Reply STOP to opt out."
)
STOP_TEXT = "You're unsubscribed: you will get no more texts from {clinic_name}'s assistant. Reply START to resume."
START_TEXT = (
    "You're subscribed again to {clinic_name}'s assistant. Ask me about dry needling for sciatica. "
    "Reply HELP for help, STOP to opt out."
)
RATE_LIMIT_TEXT = (
    "You've sent a lot of messages in a short time, so I'll pause my replies for a few minutes. "
    "To talk to a person, call {clinic_phone}."
)
TOO_LONG_NOTE = "(Your message was over 1,600 characters, so I read only the first 1,600.)"
SLOW_TEXT = "Sorry, that took me too long. Please send your message again in a minute."
ERROR_TEXT = "Sorry, something went wrong on my side. Please try again, or call {clinic_phone}."


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


class SignatureRejected(BadInput):
    status_code = 403


class UnsupportedMediaType(BadInput):
    status_code = 415


class Replayed(BadInput):
    """A MessageSid answered before whose reply is no longer kept."""

    status_code = 409


def _positive_int(env: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ValueError(f"{name} must be a whole number from 1 to {maximum}, not {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class SmsSettings:
    """The channel's settings, read once from the environment."""

    auth_token: Optional[str]
    webhook_url: Optional[str]
    allow_unsigned: bool
    rate_limit: int
    rate_window: int
    # Why the channel refuses to serve, when it does.
    problem: Optional[str]

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "SmsSettings":
        token = env.get("TWILIO_AUTH_TOKEN", "").strip() or None
        url = env.get("SMS_WEBHOOK_URL", "").strip() or None
        allow_unsigned = env.get("SMS_ALLOW_UNSIGNED", "").strip().lower() in ("1", "true", "yes")
        problem = None
        try:
            limit = _positive_int(env, "SMS_RATE_LIMIT", 20, 10_000)
            window = _positive_int(env, "SMS_RATE_WINDOW", 600, int(sms_state.KEEP_REPLIES.total_seconds()))
        except ValueError as error:
            limit, window, problem = 20, 600, str(error)
        if token and not url:
            problem = (
                "SMS_WEBHOOK_URL is not set: it must be the exact public URL configured in "
                "Twilio, which Twilio's signature covers"
            )
        elif url and not _is_web_url(url):
            problem = f"SMS_WEBHOOK_URL must be the http(s) URL set in Twilio, not {url!r}"
        elif not token and not allow_unsigned:
            problem = (
                "TWILIO_AUTH_TOKEN is not set, so Twilio's signature cannot be checked "
                "(SMS_ALLOW_UNSIGNED=true runs it unchecked, for local development only)"
            )
        return cls(token, url, allow_unsigned and not token, limit, window, problem)

    def signed_urls(self) -> List[str]:
        """The URL Twilio may have signed: as set, and without its fragment
        of connection overrides (see the module's docstring)."""
        url = self.webhook_url or ""
        bare = url.split("#", 1)[0]
        return [url] if bare == url else [url, bare]


def _is_web_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def twiml(texts: List[str]) -> str:
    """A TwiML answer sending each text as one message (none: no reply)."""
    root = ElementTree.Element("Response")
    for text in texts:
        ElementTree.SubElement(root, "Message").text = _NOT_XML.sub("", text)
    return '<?xml version="1.0" encoding="UTF-8"?>' + ElementTree.tostring(root, encoding="unicode")


class FormParams(dict):
    """Form fields as lists of values, the way RequestValidator reads a multidict."""

    def getlist(self, name: str) -> List[str]:
        return self[name]

    def first(self, name: str) -> Optional[str]:
        values = self.get(name)
        return values[0] if values else None


def parse_form(body: bytes) -> FormParams:
    try:
        fields = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=200
        )
    except (UnicodeDecodeError, ValueError):
        raise BadInput("the body must be UTF-8 form data (at most 200 fields)")
    params = FormParams()
    for name, value in fields:
        params.setdefault(name, []).append(value)
    return params


def keyword(body: str) -> str:
    """The whole text as a keyword: compatible forms folded (NFKC), without
    spaces, punctuation or case, so "Opt-out." reads OPTOUT and "stop all"
    STOPALL."""
    return _NOT_KEYWORD.sub("", unicodedata.normalize("NFKC", body)).upper()


@dataclass(frozen=True)
class IncomingText:
    """The fields of Twilio's form the channel uses, in Twilio's names."""

    sender: str  # From
    message_sid: str
    body: str
    num_media: int
    # STOP, START or HELP when Twilio's Advanced Opt-Out handled the text
    opt_out_type: Optional[str]


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


class SmsInput(InputChannel):
    """Twilio's Messaging webhook, signed, answered with TwiML."""

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
        # This server's name in the claims it holds, and the turns it is answering.
        self.server_id = uuid.uuid4().hex
        self.answering: Dict[str, "asyncio.Future[Tuple[List[str], str]]"] = {}
        self.renewer: Optional[threading.Thread] = None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
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
                text = self.checked_fields(self.verified_form(request))
            except BadInput as error:
                logger.info("SMS webhook refused (%d): %s", error.status_code, error)
                return response.json({"message": str(error)}, status=error.status_code)
            try:
                texts, kind = await self.answer(request, on_new_message, text, started)
            except Replayed as error:
                logger.info("SMS webhook refused (%d): %s", error.status_code, error)
                return response.json({"message": str(error)}, status=error.status_code)
            except Exception:  # e.g. the database is down: the texter still hears back
                logger.exception("SMS %s could not be answered", text.message_sid)
                texts, kind = [fill(ERROR_TEXT)], "error"
            logger.info(
                "SMS %s from %s: %s, %d message(s), %d segment(s), %.2f s",
                text.message_sid, log_privacy.mask_phone_number(text.sender), kind, len(texts),
                sum(sms_text.segments(part) for part in texts), time.monotonic() - started,
            )
            return response.text(twiml(texts), content_type="text/xml; charset=utf-8")

        return sms

    # ---- the request -------------------------------------------------------

    def verified_form(self, request: Request) -> FormParams:
        """The POSTed form, once Twilio's signature over it checks out."""
        if len(request.body or b"") > MAX_FORM_BYTES:
            raise MessageTooLong(f"the form is too large: at most {MAX_FORM_BYTES} bytes")
        signature = request.headers.get("X-Twilio-Signature")
        if self.validator and not signature:
            raise SignatureRejected("missing X-Twilio-Signature")
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise UnsupportedMediaType("Twilio posts application/x-www-form-urlencoded")
        form = parse_form(request.body or b"")
        if self.validator and not any(
            self.validator.validate(url, form, signature) for url in self.settings.signed_urls()
        ):
            raise SignatureRejected("invalid X-Twilio-Signature")
        return form

    @staticmethod
    def checked_fields(form: FormParams) -> IncomingText:
        """The fields of Twilio's form the channel uses; a clear 400 otherwise."""
        sender = form.first("From")
        if sender is None:
            raise BadInput("'From' is required: the sender's phone number")
        try:
            sender = checked_sender(sender.strip())
        except BadInput:
            raise BadInput("'From' must be the sender's phone number")
        message_sid = form.first("MessageSid") or form.first("SmsMessageSid")
        if not message_sid or not _MESSAGE_SID.match(message_sid):
            raise BadInput("'MessageSid' is required: Twilio's 34-character message id")
        num_media = (form.first("NumMedia") or "0").strip()
        if not num_media.isdigit() or len(num_media) > 2:
            raise BadInput("'NumMedia' must be the number of pictures or files sent, e.g. 0")
        body = form.first("Body")
        # A picture or file alone may come without a Body at all.
        if body is None and int(num_media) == 0:
            raise BadInput("'Body' is required: the text of the message")
        opt_out_type = (form.first("OptOutType") or "").strip().upper() or None
        if opt_out_type and opt_out_type not in OPT_OUT_TYPES:
            logger.info("SMS %s: OptOutType %r is not one it knows; read as text", message_sid, opt_out_type[:20])
            opt_out_type = None
        return IncomingText(sender, message_sid, _STRAY_CONTROL.sub("", body or ""), int(num_media), opt_out_type)

    # ---- the answer ----------------------------------------------------------

    async def answer(
        self,
        request: Request,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        text: IncomingText,
        started: float,
    ) -> Tuple[List[str], str]:
        """The texts to send back, and what kind of answer they are."""
        status, cached = await run_blocking(
            sms_state.claim, text.message_sid, text.sender, self.server_id, DEAD_AFTER_SECONDS
        )
        if status == sms_state.ANSWERED:
            return cached, "retry answered from cache"
        if status == sms_state.REPLAYED:
            raise Replayed(f"MessageSid {text.message_sid} was answered before: a replay is not answered again")
        if status == sms_state.PENDING:
            return await self.wait_for_first_answer(request, on_new_message, text, started)
        return await self.answer_now(request, on_new_message, text, started)

    async def answer_now(
        self,
        request: Request,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        text: IncomingText,
        started: float,
    ) -> Tuple[List[str], str]:
        """Answers a text this server has claimed, renewing the claim meanwhile."""
        task = asyncio.ensure_future(self.respond(request, on_new_message, text))
        self.answering[text.message_sid] = task
        task.add_done_callback(lambda _: self.answering.pop(text.message_sid, None))
        if self.renewer is None:
            self.renewer = threading.Thread(target=self.renew_claims, name="sms-claims", daemon=True)
            self.renewer.start()
        # Past the deadline Twilio gets an apology, but the turn (not
        # cancelled) still finishes and its reply is kept for a retry.
        done, _ = await asyncio.wait({task}, timeout=max(0.1, REPLY_DEADLINE - (time.monotonic() - started)))
        if task in done:
            return task.result()
        logger.warning("SMS %s: no reply within %.0f s", text.message_sid, REPLY_DEADLINE)
        return [SLOW_TEXT], "too slow"

    def renew_claims(self) -> None:
        """While this server answers texts, tells the others it is alive. A
        thread, so that a turn holding the event loop (a first parse takes
        seconds) does not make a live server look dead."""
        while True:
            time.sleep(HEARTBEAT_SECONDS)
            answering = list(self.answering)
            if not answering:
                continue
            try:
                sms_state.still_answering(answering, self.server_id)
            except Exception:  # the database is down: the turns report it themselves
                logger.warning("SMS: could not renew the claims on %d text(s)", len(answering))

    async def wait_for_first_answer(
        self,
        request: Request,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        text: IncomingText,
        started: float,
    ) -> Tuple[List[str], str]:
        """A retry while the text is being answered: the first answer, or the
        turn run here once the server answering it has died; never nothing."""
        while True:
            left = REPLY_DEADLINE - (time.monotonic() - started)
            if left <= 0:
                return [apology()], "retry of a text still being answered"
            running_here = self.answering.get(text.message_sid)
            if running_here is not None:
                done, _ = await asyncio.wait({running_here}, timeout=left)
                if running_here in done:
                    texts, kind = running_here.result()
                    return texts, f"retry of a text being answered: {kind}"
                continue
            await asyncio.sleep(min(0.25, left))
            status, cached = await run_blocking(
                sms_state.recheck, text.message_sid, self.server_id, DEAD_AFTER_SECONDS
            )
            if status is None:  # the first answer failed and gave its claim up
                status, cached = await run_blocking(
                    sms_state.claim, text.message_sid, text.sender, self.server_id, DEAD_AFTER_SECONDS
                )
            if status == sms_state.ANSWERED:
                return cached, "retry of a text being answered"
            if status == sms_state.REPLAYED:  # erased ("forget me") while answered
                return [apology()], "retry of a text erased meanwhile"
            if status == sms_state.NEW:
                logger.warning("SMS %s: its first delivery stopped unanswered; answering it here", text.message_sid)
                texts, kind = await self.answer_now(request, on_new_message, text, started)
                return texts, f"retry after a dead first delivery: {kind}"

    async def respond(
        self,
        request: Request,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        text: IncomingText,
    ) -> Tuple[List[str], str]:
        """Decides the answer and keeps it for retries of the same MessageSid."""
        try:
            texts, kind = await self.decide(request, on_new_message, text)
        except Exception:
            logger.exception("SMS %s could not be answered", text.message_sid)
            await run_blocking(sms_state.release, text.message_sid, self.server_id)
            return [fill(ERROR_TEXT)], "error"
        await run_blocking(sms_state.save_reply, text.message_sid, kind, texts)
        return texts, kind

    async def decide(
        self,
        request: Request,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        text: IncomingText,
    ) -> Tuple[List[str], str]:
        sender, message_sid, body = text.sender, text.message_sid, text.body
        word = keyword(body)
        # Twilio's Advanced Opt-Out has replied already: only its effect is kept.
        handled = text.opt_out_type
        if handled == "STOP" or (not handled and word in STOP_WORDS):
            await run_blocking(sms_state.opt_out, sender)
            return ([] if handled else [fill(STOP_TEXT)]), "stop"
        opted_out = await run_blocking(sms_state.is_opted_out, sender)
        if handled == "START" or (
            not handled and (word in START_WORDS or (opted_out and word in START_WORDS_WHEN_OPTED_OUT))
        ):
            await run_blocking(sms_state.opt_in, sender)
            return ([] if handled else [fill(START_TEXT)]), "start"
        if handled == "HELP":
            return [], "help"
        # An opted-out number gets nothing, except an answer to HELP.
        if opted_out and word not in HELP_WORDS:
            return [], "opted_out"
        verdict = await run_blocking(
            sms_state.rate_verdict, sender, message_sid, self.settings.rate_limit, self.settings.rate_window
        )
        if verdict == sms_state.RATE_NOTICE:
            return [fill(RATE_LIMIT_TEXT)], verdict
        if verdict == sms_state.RATE_QUIET:
            return [], verdict
        if word in HELP_WORDS:
            return sms_text.split_message(fill(HELP_TEXT)), "help"
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
        try:
            # a reply within seconds, an apology when the turn gave none
            await run_turn(on_new_message, message)
        except AssistantUnavailable:
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
