"""Closed-loop load on the REST webhook: N visitors at once, each asking its
next scripted question as soon as it has its answer, for a fixed time.
"""

import asyncio
import itertools
import math
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import aiohttp

from clinic.evaluation import SETS, texts_of
from clinic.facts import clinic_facts

# A visitor asks a few questions, then a new visitor (conversation) starts:
# conversations stay as short as real ones, so no tracker grows without end.
QUESTIONS_PER_CONVERSATION = 5
REQUEST_TIMEOUT_SECONDS = 30


def question_script(seed: int = 7) -> List[str]:
    """Visitors' messages: the held-out sets', in a fixed shuffled order."""
    questions = [text for path in SETS.values() for text in texts_of(path)]
    random.Random(seed).shuffle(questions)
    return questions


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


@dataclass
class LoadResult:
    concurrency: int
    seconds: float
    answered: int
    errors: int
    latencies: List[float] = field(default_factory=list, repr=False)
    error_kinds: Dict[str, int] = field(default_factory=dict)
    servers: int = 1

    @property
    def per_second(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0

    def latency(self, fraction: float) -> float:
        return percentile(self.latencies, fraction)

    def summary(self) -> dict:
        return {
            "concurrency": self.concurrency, "servers": self.servers, "seconds": round(self.seconds, 2),
            "answered": self.answered, "errors": self.errors, "error_kinds": self.error_kinds,
            "messages_per_second": round(self.per_second, 2),
            "p50": self.latency(0.50), "p95": self.latency(0.95), "p99": self.latency(0.99),
        }


def _problem(status: int, body) -> str:
    """Why a reply is not an answer, or "" when it is one."""
    if status != 200:
        return f"HTTP {status}"
    if not isinstance(body, list) or not body:
        return "no reply"
    # the project's turn guard answers 200 with this apology when a turn failed
    if any(clinic_facts()["assistant_unavailable"] == message.get("text") for message in body):
        return "apology"
    return ""


async def _visitor(session, webhooks, turn_counter, questions, offset, deadline, result, kinds, stop=None):
    asked = 0
    sender = ""
    while time.monotonic() < deadline and not (stop and stop.is_set()):
        if asked % QUESTIONS_PER_CONVERSATION == 0:
            # A new visitor. The project issues ids (and answers with a new
            # one for this); stock Rasa's REST channel takes the client's.
            sender = uuid.uuid4().hex
        question = questions[(offset + asked) % len(questions)]
        webhook = webhooks[next(turn_counter) % len(webhooks)]  # round robin across servers
        asked += 1
        started = time.monotonic()
        try:
            async with session.post(webhook, json={"sender": sender, "message": question}) as reply:
                body = await reply.json(content_type=None) if reply.status == 200 else None
                problem = _problem(reply.status, body)
                sender = reply.headers.get("X-Conversation-Id") or sender
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            problem = type(error).__name__
        if problem:
            result.errors += 1
            kinds[problem] += 1
        else:
            result.answered += 1
            result.latencies.append(time.monotonic() - started)


async def _run(webhooks, questions, concurrency, seconds, alongside=None, stop=None) -> LoadResult:
    """The visitors' load; `alongside(deadline)`, when given, is a coroutine
    run meanwhile (bench/flood.py's flood), its replies not counted here.
    `stop` (a threading.Event) ends it before `seconds` when set."""
    result = LoadResult(concurrency=concurrency, seconds=0.0, answered=0, errors=0, servers=len(webhooks))
    kinds: Counter = Counter()
    turn_counter = itertools.count()
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.monotonic()
        deadline = started + seconds
        # each visitor starts at a different place in the script
        step = max(1, len(questions) // concurrency)
        await asyncio.gather(
            *(
                _visitor(session, webhooks, turn_counter, questions, index * step, deadline, result, kinds, stop)
                for index in range(concurrency)
            ),
            *([alongside(deadline)] if alongside else []),
        )
        # requests sent before the deadline are waited for and counted
        result.seconds = time.monotonic() - started
    result.error_kinds = dict(kinds)
    return result


def run_load(webhooks: Sequence[str], questions: Sequence[str], concurrency: int, seconds: float,
             stop: Optional[threading.Event] = None) -> LoadResult:
    return asyncio.run(_run(list(webhooks), list(questions), concurrency, seconds, stop=stop))


async def _warm_up(webhooks, questions) -> int:
    failed = 0
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for question in questions:
            for webhook in webhooks:
                try:
                    async with session.post(webhook, json={"sender": uuid.uuid4().hex, "message": question}) as reply:
                        failed += reply.status != 200
                        await reply.read()
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    failed += 1
    return failed


def warm_up(webhooks: Sequence[str], questions: Sequence[str]) -> int:
    """Sends each question once through every server, one at a time, before
    anything is measured; how many failed."""
    return asyncio.run(_warm_up(list(webhooks), list(questions)))
