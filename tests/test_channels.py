"""The channel contract (channels/base.py): every channel in credentials.yml
that takes visitors' messages runs its turns through the turn guard and
declares what a failed turn gets, what each can show is declared once in
clinic/channels.py for the actions too, and a channel missing either fails
when its class is created."""

import asyncio
import importlib

import pytest
import yaml
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa_sdk import Tracker
from sanic import Blueprint

from actions.channels import has_buttons
from channels.base import FailedTurn, GuardedInputChannel
from channels.turn_guard import AssistantUnavailable, apology
from clinic import PROJECT_ROOT
from clinic.channels import SHOWS_TEXT_ONLY

# Serves the chat page and its assets; its messages come over Socket.IO.
TAKES_NO_MESSAGES = {"channels.webchat.WebChatInput"}


def credentials_channels():
    listed = yaml.safe_load((PROJECT_ROOT / "credentials.yml").read_text())
    found = {}
    for path in listed:
        module, name = path.rsplit(".", 1)
        found[path] = getattr(importlib.import_module(module), name)
    return found


def test_every_channel_taking_messages_is_guarded_and_declares_both():
    channels = credentials_channels()
    assert set(TAKES_NO_MESSAGES) <= set(channels)
    for path, channel in channels.items():
        assert issubclass(channel, InputChannel), path
        if path in TAKES_NO_MESSAGES:
            continue
        assert issubclass(channel, GuardedInputChannel), f"{path} must derive from channels.base.GuardedInputChannel"
        assert isinstance(channel.failed_turn, FailedTurn), path
        assert channel.name() in SHOWS_TEXT_ONLY, path


def test_what_each_channel_declares():
    channels = {channel.name(): channel for channel in credentials_channels().values()}
    assert channels["rest"].failed_turn is FailedTurn.STATUS_503
    assert channels["socketio"].failed_turn is FailedTurn.APOLOGY_MESSAGE
    assert channels["sms"].failed_turn is FailedTurn.APOLOGY_MESSAGE
    assert [name for name in ("rest", "socketio", "sms") if channels[name].text_only()] == ["sms"]


@pytest.mark.parametrize("channel", sorted(SHOWS_TEXT_ONLY))
def test_the_actions_show_buttons_where_the_channel_can(channel):
    tracker = Tracker.from_dict(
        {"sender_id": "visitor", "slots": {}, "latest_message": {}, "paused": False,
         "events": [{"event": "user", "text": "hi", "input_channel": channel}]}
    )
    assert has_buttons(tracker) is not SHOWS_TEXT_ONLY[channel]


def test_a_channel_that_does_not_say_what_a_failed_turn_gets_is_refused():
    with pytest.raises(TypeError, match="failed_turn"):

        class Forgetful(GuardedInputChannel):
            @classmethod
            def name(cls):
                return "rest"


def test_a_channel_not_declared_in_clinic_channels_is_refused():
    with pytest.raises(TypeError, match="clinic/channels.py"):

        class Unknown(GuardedInputChannel):
            failed_turn = FailedTurn.APOLOGY_MESSAGE

            @classmethod
            def name(cls):
                return "carrier-pigeon"


def guarded_handler(declared: FailedTurn):
    """The handler a channel declaring `declared` hands its turns to,
    around a Rasa handler that cannot run the turn."""

    class Channel(GuardedInputChannel):
        failed_turn = declared

        @classmethod
        def name(cls):
            return "rest"

        def guarded_blueprint(self, handle_turn):
            self.handle_turn = handle_turn
            return Blueprint("test_channel")

    async def unavailable(message):
        raise AssistantUnavailable()

    channel = Channel()
    channel.blueprint(unavailable)
    return channel.handle_turn


def test_a_failed_turn_is_a_503_or_the_apology_as_the_channel_declares():
    output = CollectingOutputChannel()
    with pytest.raises(AssistantUnavailable) as raised:
        asyncio.run(guarded_handler(FailedTurn.STATUS_503)(UserMessage("hi", output, "visitor")))
    assert raised.value.status_code == 503 and str(raised.value) == apology()
    assert output.messages == []

    ran = asyncio.run(guarded_handler(FailedTurn.APOLOGY_MESSAGE)(UserMessage("hi", output, "visitor")))
    assert ran is False and [message["text"] for message in output.messages] == [apology()]
