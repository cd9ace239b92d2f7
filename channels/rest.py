"""Rasa's REST channel (/webhooks/rest/webhook) with the visitor's input
checked: a missing sender, a non-text or empty message get a clear 400, an
over-long one a 413, and a client cannot pose as another channel. (Rasa's own
would put every sender-less request into one shared "default" conversation.)
Every turn goes through channels/turn_guard.py: a reply within seconds, or a
503 with the clinic's phone when the assistant cannot answer at all. Replies
always come as one JSON list (Rasa's `?stream=true` variant is not offered)."""

from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels.checks import BadInput, checked_message, checked_sender
from channels.turn_guard import run_turn


def _body(request: Request) -> Dict[Text, Any]:
    body = request.json  # Sanic answers 400 itself when this is not JSON
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object with 'sender' and 'message'")
    return body


class CheckedRestInput(RestInput):
    @classmethod
    def name(cls) -> Text:
        return "rest"

    async def _extract_sender(self, request: Request) -> Optional[Text]:
        return checked_sender(_body(request).get("sender"))

    def _extract_message(self, request: Request) -> Optional[Text]:
        return checked_message(_body(request).get("message"))

    def _extract_input_channel(self, request: Request) -> Text:
        return self.name()

    def get_metadata(self, request: Request) -> Optional[Dict[Text, Any]]:
        metadata = _body(request).get("metadata")
        return metadata if isinstance(metadata, dict) else None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            sender = await self._extract_sender(request)
            collector = CollectingOutputChannel()
            message = UserMessage(
                self._extract_message(request),
                collector,
                sender,
                input_channel=self._extract_input_channel(request),
                metadata=self.get_metadata(request),
            )
            await run_turn(on_new_message, message)
            return response.json(list(collector.messages))

        return webhook
