"""Twilio's Messaging webhook request, checked: the signature over the
POSTed form (channels/sms_settings.py says which URL it covers), the fields
the SMS channel uses, each with a clear 4xx when wrong; and the TwiML answer."""

import logging
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import List, Optional
from urllib.parse import parse_qsl

from sanic.request import Request
from twilio.request_validator import RequestValidator

from channels.checks import BadInput, MessageTooLong, checked_sender
from channels.sms_settings import SmsSettings

logger = logging.getLogger(__name__)

# Twilio's form (with a 1,600-character body) is a few kilobytes.
MAX_FORM_BYTES = 64 * 1024
# Twilio's OptOutType, sent when a Messaging Service's Advanced Opt-Out
# matched one of its own keywords (any language) and has already replied.
OPT_OUT_TYPES = {"STOP", "START", "HELP"}
_MESSAGE_SID = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")
_STRAY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class SignatureRejected(BadInput):
    status_code = 403


class UnsupportedMediaType(BadInput):
    status_code = 415


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


@dataclass(frozen=True)
class IncomingText:
    """The fields of Twilio's form the channel uses, in Twilio's names."""

    sender: str  # From
    message_sid: str
    body: str
    num_media: int
    # STOP, START or HELP when Twilio's Advanced Opt-Out handled the text
    opt_out_type: Optional[str]


def verified_form(request: Request, settings: SmsSettings, validator: Optional[RequestValidator]) -> FormParams:
    """The POSTed form, once Twilio's signature over it checks out (no
    validator: unsigned development mode). Raises BadInput's 4xx kinds."""
    if len(request.body or b"") > MAX_FORM_BYTES:
        raise MessageTooLong(f"the form is too large: at most {MAX_FORM_BYTES} bytes")
    signature = request.headers.get("X-Twilio-Signature")
    if validator and not signature:
        raise SignatureRejected("missing X-Twilio-Signature")
    content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("Twilio posts application/x-www-form-urlencoded")
    form = parse_form(request.body or b"")
    if validator and not any(validator.validate(url, form, signature) for url in settings.signed_urls()):
        raise SignatureRejected("invalid X-Twilio-Signature")
    return form


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
