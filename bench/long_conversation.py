"""Long conversations over the REST webhook: TURNS messages in each of a few
conversations, one message at a time, to show whether a turn's time grows
with the conversation's history.

The issue measured one conversation of 300 turns: p95 42 ms over turns 1-10,
518 ms over turns 291-300. A p95 of ten turns is their slowest one, so here
CONVERSATIONS conversations take turns (one message in flight at any time,
as in the issue) and each window's p95 is over all of them. At the end each
conversation's stored tracker (Rasa's HTTP API, every session) must hold
every message, in order: a long conversation loses nothing.
"""

import asyncio
import time
from collections import Counter
from typing import Dict, List, Sequence

import aiohttp

from bench.load import REQUEST_TIMEOUT_SECONDS, _problem, percentile
from clinic.answers import MUSCLE, label_kind
from clinic.evaluation import SETS, load_items
from clinic.nlu_labels import FAQ, NOT_COVERED

TURNS = 300
CONVERSATIONS = 3
WINDOW = 10
# Questions only: no request to erase the conversation being measured (nor
# anything a model could take for one), no emergencies.
QUESTION_ANSWERS = (FAQ, MUSCLE, NOT_COVERED)


def conversation_script() -> List[str]:
    """Visitors' questions (the held-out sets', with the messages before them)."""
    return [
        text
        for path in SETS.values()
        for item in load_items(path)
        if all(label_kind(label) in QUESTION_ANSWERS for label in item.expect)
        for text in item.context + [item.text]
    ]


def windows(turns: int) -> Dict[str, slice]:
    """The first, middle and last WINDOW turns, named as people count them ("1-10")."""
    starts = sorted({0, max(0, (turns - WINDOW) // 2 // WINDOW * WINDOW), max(0, turns - WINDOW)})
    return {f"{start + 1}-{min(turns, start + WINDOW)}": slice(start, start + WINDOW) for start in starts}


async def _run(url: str, token: str, questions: Sequence[str], turns: int, conversations: int) -> dict:
    webhook = f"{url}/webhooks/rest/webhook"
    senders: List[str] = [""] * conversations
    sent: List[List[str]] = [[] for _ in range(conversations)]
    latencies: List[List[float]] = [[] for _ in range(conversations)]
    kinds: Counter = Counter()
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for turn in range(turns):
            for index in range(conversations):
                # each conversation its own place in the script, a number making every message unique
                text = f"{questions[(index * 97 + turn) % len(questions)]} ({turn + 1})"
                body = {"message": text, **({"sender": senders[index]} if senders[index] else {})}
                started = time.monotonic()
                try:
                    async with session.post(webhook, json=body) as reply:
                        answer = await reply.json(content_type=None) if reply.status == 200 else None
                        problem = _problem(reply.status, answer)
                        senders[index] = senders[index] or reply.headers.get("X-Conversation-Id", "")
                except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
                    problem = type(error).__name__
                latencies[index].append(time.monotonic() - started)
                sent[index].append(text)
                if problem:
                    kinds[problem] += 1
        kept = 0
        for index, sender in enumerate(senders):
            async with session.get(f"{url}/conversations/{sender}/tracker", params={"token": token}) as reply:
                events = (await reply.json()).get("events", []) if reply.status == 200 else []
            kept += [event.get("text") for event in events if event.get("event") == "user"] == sent[index]
    return {
        "turns": turns, "conversations": conversations, "errors": sum(kinds.values()), "error_kinds": dict(kinds),
        "kept": kept,
        "p95": {
            name: percentile([seconds for each in latencies for seconds in each[window]], 0.95)
            for name, window in windows(turns).items()
        },
    }


def run_long_conversations(url: str, token: str, questions: Sequence[str], turns: int = TURNS,
                           conversations: int = CONVERSATIONS) -> dict:
    """Each window's p95 over every conversation, errors, and how many
    conversations kept every message."""
    return asyncio.run(_run(url, token, list(questions), turns, conversations))
