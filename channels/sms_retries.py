"""Each text (MessageSid) answered once across the Rasa servers sharing the
database, also when Twilio retries it, with its state in channels/sms_state.py
(which says why replays are refused for good).

A retry whose first delivery died with its server: the server answering a
MessageSid renews its claim every HEARTBEAT_SECONDS; a retry that finds it
unrenewed for DEAD_AFTER_SECONDS runs the turn itself, and one that still
has no reply when Twilio must hear back gets the apology with the clinic's
phone, never an empty answer.
"""

import asyncio
import logging
import threading
import time
import uuid
from typing import Awaitable, Callable, Dict, List, Optional, Tuple

from channels import sms_state
from channels.checks import BadInput
from channels.turn_guard import apology
from channels.twilio_request import IncomingText
from clinic.store import run_blocking

logger = logging.getLogger(__name__)

# The server answering a text renews its claim this often; one not renewed
# for DEAD_AFTER_SECONDS belonged to a server that died.
HEARTBEAT_SECONDS = 1.0
DEAD_AFTER_SECONDS = 5.0

# The texts to send back and what kind of answer they are ("conversation", "stop"...).
Answer = Tuple[List[str], str]
Decide = Callable[[IncomingText], Awaitable[Answer]]


class Replayed(BadInput):
    """A MessageSid answered before whose reply is no longer kept."""

    status_code = 409


class OneAnswerPerText:
    """Runs `decide` at most once per MessageSid and keeps its answer for
    Twilio's retries. `deadline`: seconds from the request's start within
    which Twilio must hear back; `too_slow` is sent when the answer is not
    ready by then, `failed` when deciding raised."""

    def __init__(self, deadline: float, too_slow: str, failed: str) -> None:
        self.deadline = deadline
        self.too_slow = too_slow
        self.failed = failed
        # This server's name in the claims it holds, and the turns it is answering.
        self.server_id = uuid.uuid4().hex
        self.answering: Dict[str, "asyncio.Future[Answer]"] = {}
        self.renewer: Optional[threading.Thread] = None

    async def answer(self, text: IncomingText, decide: Decide, started: float) -> Answer:
        """The texts to send back, and what kind of answer they are. Raises
        Replayed for a MessageSid answered long ago."""
        status, cached = await run_blocking(
            sms_state.claim, text.message_sid, text.sender, self.server_id, DEAD_AFTER_SECONDS
        )
        if status == sms_state.ANSWERED:
            return cached, "retry answered from cache"
        if status == sms_state.REPLAYED:
            raise Replayed(f"MessageSid {text.message_sid} was answered before: a replay is not answered again")
        if status == sms_state.PENDING:
            return await self.wait_for_first_answer(text, decide, started)
        return await self.answer_now(text, decide, started)

    async def answer_now(self, text: IncomingText, decide: Decide, started: float) -> Answer:
        """Answers a text this server has claimed, renewing the claim meanwhile."""
        task = asyncio.ensure_future(self.respond(text, decide))
        self.answering[text.message_sid] = task
        task.add_done_callback(lambda _: self.answering.pop(text.message_sid, None))
        if self.renewer is None:
            self.renewer = threading.Thread(target=self.renew_claims, name="sms-claims", daemon=True)
            self.renewer.start()
        # Past the deadline Twilio gets an apology, but the turn (not
        # cancelled) still finishes and its reply is kept for a retry.
        done, _ = await asyncio.wait({task}, timeout=max(0.1, self.deadline - (time.monotonic() - started)))
        if task in done:
            return task.result()
        logger.warning("SMS %s: no reply within %.0f s", text.message_sid, self.deadline)
        return [self.too_slow], "too slow"

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

    async def wait_for_first_answer(self, text: IncomingText, decide: Decide, started: float) -> Answer:
        """A retry while the text is being answered: the first answer, or the
        turn run here once the server answering it has died; never nothing."""
        while True:
            left = self.deadline - (time.monotonic() - started)
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
                texts, kind = await self.answer_now(text, decide, started)
                return texts, f"retry after a dead first delivery: {kind}"

    async def respond(self, text: IncomingText, decide: Decide) -> Answer:
        """Decides the answer and keeps it for retries of the same MessageSid."""
        try:
            texts, kind = await decide(text)
        except Exception:
            logger.exception("SMS %s could not be answered", text.message_sid)
            await run_blocking(sms_state.release, text.message_sid, self.server_id)
            return [self.failed], "error"
        await run_blocking(sms_state.save_reply, text.message_sid, kind, texts)
        return texts, kind
