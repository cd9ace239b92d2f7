"""Rasa's REST channel (/webhooks/rest/webhook) with the visitor's input
checked: a non-text or empty message gets a clear 400, an over-long one a
413, and a client cannot pose as another channel.

Conversation ids are issued by the server (clinic/conversation_ids.py): a
request without `sender`, or with one this server did not issue to the REST
channel (a phone number, another channel's id, "visitor-1"), starts a new
conversation. Every reply message's `recipient_id`, and the response's
X-Conversation-Id header, carry its id; sending that back as `sender`
continues it. (Rasa's own channel takes any sender, so anyone who knows or
guesses an id, an SMS conversation's phone number say, could read on and
erase it.)

Every turn goes through the turn guard (channels/base.py): a reply within
seconds, or a 503 with the clinic's phone when the assistant cannot answer at all. A
conversation or a client address sending far more than a person would gets
a 429 with the polite `too_many_messages` and a Retry-After instead
(channels/rate_limits.py). Replies always come as one JSON list (Rasa's
`?stream=true` variant is not offered)."""

from typing import Any, Dict, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels.base import FailedTurn, GuardedInputChannel, Handler
from channels.checks import BadInput, checked_message, checked_metadata
from channels.rate_limits import TooManyMessages, chat_limits, client_address, too_many_messages
from clinic import conversation_ids

CONVERSATION_ID_HEADER = "X-Conversation-Id"


def _body(request: Request) -> Dict[Text, Any]:
    body = request.json  # Sanic answers 400 itself when this is not JSON
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object with 'sender' and 'message'")
    return body


class CheckedRestInput(GuardedInputChannel, RestInput):
    failed_turn = FailedTurn.STATUS_503

    @classmethod
    def name(cls) -> Text:
        return "rest"

    async def _extract_sender(self, request: Request) -> Optional[Text]:
        """The conversation's id: the one presented if this server issued it
        to REST, else a new one."""
        sender = _body(request).get("sender")
        if sender is not None and not isinstance(sender, str):
            raise BadInput("'sender' must be the conversation id a previous reply gave, or left out")
        if conversation_ids.is_issued(sender, conversation_ids.REST):
            return sender
        return conversation_ids.issue(conversation_ids.REST)

    def _extract_message(self, request: Request) -> Optional[Text]:
        return checked_message(_body(request).get("message"))

    def _extract_input_channel(self, request: Request) -> Text:
        return self.name()

    def get_metadata(self, request: Request) -> Optional[Dict[Text, Any]]:
        return checked_metadata(_body(request).get("metadata")) or None

    def guarded_blueprint(self, handle_turn: Handler) -> Blueprint:
        conversation_ids.check_configured()  # refuse to start rather than fail every visitor
        limits = chat_limits()  # a bad setting stops the server here, not a visitor's message
        webhook = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            text = self._extract_message(request)  # a bad message is refused before an id is issued
            sender = await self._extract_sender(request)
            collector = CollectingOutputChannel()
            message = UserMessage(
                text,
                collector,
                sender,
                input_channel=self._extract_input_channel(request),
                metadata=self.get_metadata(request),
            )
            try:
                admission = limits.admit(sender, client_address(request))
            except TooManyMessages as refusal:
                return response.json(
                    {"message": too_many_messages()}, status=429, headers={"Retry-After": str(refusal.retry_after)}
                )
            with admission:
                await handle_turn(message)
            return response.json(list(collector.messages), headers={CONVERSATION_ID_HEADER: sender})

        return webhook
