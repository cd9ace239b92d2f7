"""The base of the project's input channels: every visitor's turn goes
through the turn guard (channels/turn_guard.py), and each channel declares
what a turn that cannot run gets; what it can show (buttons or plain text
only) is declared by its name in clinic/channels.py, which the actions read.

A channel that misses either fails when its class is created, that is
when Rasa imports it from credentials.yml, never later and silently."""

import enum
from functools import partial
from typing import Any, Awaitable, Callable, ClassVar

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint

from channels.turn_guard import run_turn, with_reply_guarantee
from clinic.channels import is_declared, is_text_only

Handler = Callable[[UserMessage], Awaitable[Any]]


class FailedTurn(enum.Enum):
    """What the visitor gets when a turn cannot run at all (database or lock
    store down, a server far beyond its capacity)."""

    # An HTTP status: the channel's route raises AssistantUnavailable, which
    # Sanic answers as 503 with the apology (REST).
    STATUS_503 = "503"
    # The apology as a message, for channels without status codes (Socket.IO, SMS).
    APOLOGY_MESSAGE = "apology"


class GuardedInputChannel(InputChannel):
    """A Rasa input channel whose turns all run through the turn guard.

    A subclass sets `failed_turn` and implements `guarded_blueprint`, which
    gets the guarded handler instead of Rasa's: awaiting it runs the turn,
    with a reply within seconds. Its name() must be listed in
    clinic/channels.py. Raises TypeError at class creation otherwise."""

    failed_turn: ClassVar[FailedTurn]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not isinstance(getattr(cls, "failed_turn", None), FailedTurn):
            raise TypeError(
                f"{cls.__name__} must declare failed_turn = FailedTurn.STATUS_503 or FailedTurn.APOLOGY_MESSAGE"
            )
        if not is_declared(cls.name()):
            raise TypeError(
                f"{cls.__name__}: the channel {cls.name()!r} is not in clinic/channels.py's SHOWS_TEXT_ONLY; "
                "add it there, True if it shows plain text only"
            )

    @classmethod
    def text_only(cls) -> bool:
        """Whether the channel shows plain text only (clinic/channels.py)."""
        return is_text_only(cls.name())

    def blueprint(self, on_new_message: Handler) -> Blueprint:
        return self.guarded_blueprint(self.guarded(on_new_message))

    def guarded(self, on_new_message: Handler) -> Handler:
        """Rasa's handler behind the turn guard. With STATUS_503 it raises
        AssistantUnavailable when the turn cannot run; with APOLOGY_MESSAGE
        it sends the apology instead and returns False (True: the turn ran)."""
        if self.failed_turn is FailedTurn.STATUS_503:
            return partial(run_turn, on_new_message)
        return with_reply_guarantee(on_new_message)

    def guarded_blueprint(self, handle_turn: Handler) -> Blueprint:
        """The channel's routes; every turn goes to `handle_turn`."""
        raise NotImplementedError
