"""One visitor flooding its own conversation while others talk: the other
visitors' latency and errors without the flood and with it, over the REST
webhook.

The flood is the issue's: bursts of FLOOD_BURST messages at once on one
conversation, one burst every FLOOD_INTERVAL_SECONDS, not waiting for the
replies (a script in a browser's console does no less). The other visitors
are bench/load.py's closed loop, OTHERS at once (the middle load step).
"""

import asyncio
import time
from collections import Counter
from typing import Dict, Sequence

import aiohttp

from bench.load import REQUEST_TIMEOUT_SECONDS, _run

# "A burst of 40 messages on one conversation" (the issue).
FLOOD_BURST = 40
FLOOD_INTERVAL_SECONDS = 1.0
OTHERS = 8
FLOOD_QUESTION = "how many sessions will I need?"


class Flood:
    """Sends the bursts until the deadline; counts what each message got."""

    def __init__(self, webhook: str) -> None:
        self.webhook = webhook
        self.outcomes: Counter = Counter()

    async def _send(self, session: aiohttp.ClientSession, sender: str) -> None:
        try:
            async with session.post(self.webhook, json={"sender": sender, "message": FLOOD_QUESTION}) as reply:
                await reply.read()
                self.outcomes[{200: "answered", 429: "refused (429)"}.get(reply.status, f"HTTP {reply.status}")] += 1
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            self.outcomes[type(error).__name__] += 1

    async def __call__(self, deadline: float) -> None:
        connector = aiohttp.TCPConnector(limit=0)  # every message of a burst at once
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            # the conversation's id, as a visitor gets it
            async with session.post(self.webhook, json={"message": FLOOD_QUESTION}) as first:
                sender = first.headers.get("X-Conversation-Id") or "flood"
                await first.read()
            sending = []
            while True:  # one burst at least, however short the step
                sending += [asyncio.ensure_future(self._send(session, sender)) for _ in range(FLOOD_BURST)]
                if time.monotonic() + FLOOD_INTERVAL_SECONDS > deadline:
                    break
                await asyncio.sleep(FLOOD_INTERVAL_SECONDS)
            await asyncio.gather(*sending)


def run_flood(webhook: str, questions: Sequence[str], seconds: float, others: int = OTHERS) -> Dict[str, dict]:
    """The others' load step alone, then the same with the flood alongside."""
    alone = asyncio.run(_run([webhook], list(questions), others, seconds)).summary()
    flood = Flood(webhook)
    flooded = asyncio.run(_run([webhook], list(questions), others, seconds, alongside=flood)).summary()
    return {
        "others": others, "burst": FLOOD_BURST, "interval_seconds": FLOOD_INTERVAL_SECONDS,
        "alone": alone, "flooded": flooded, "flood": dict(flood.outcomes),
    }
