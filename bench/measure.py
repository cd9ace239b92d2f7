"""Measuring one served assistant for the benchmark: start time, held-out scores, load steps, one
conversation flooding, long conversations, publishing under load, and the scaled profile.

Each function takes the command line's options (bench/__main__.py) as `args`.
"""

from contextlib import nullcontext
from pathlib import Path
from typing import Optional

from bench import ROOT
from bench.accuracy import encoder_cost, held_out_scores
from bench.flood import run_flood
from bench.load import run_load, warm_up
from bench.long_conversation import CONVERSATIONS, TURNS, conversation_script, run_long_conversations
from bench.profile import Sampling
from bench.progress import say
from bench.publishing import LOAD_CONVERSATIONS, PUBLISHES, SMOKE_PUBLISHES, publish_memory
from bench.resources import machine_cpu
from bench.scaled import REDIS_URL, scratch_database, unavailable
from bench.servers import Served

# A smoke run scores this many items of each held-out set.
SMOKE_ITEMS = 40
SCALED_REPLICAS = 2
FIRST_QUESTION = "what is dry needling"
# A smoke run's long conversation: three sessions (clinic/tracker_store.py),
# not 300 turns; few enough messages a minute for the per-visitor limit, so
# it runs on the project's own server.
SMOKE_TURNS = 30
SMOKE_CONVERSATIONS = 1
# The full run's long conversations send hundreds of messages a minute in
# one conversation, far beyond channels/rate_limits.py's per-visitor limit:
# they get a server of their own with only that limit lifted.
LONG_CONVERSATION_ENV = {"VISITOR_RATE_LIMIT": "1000000"}


def _profile_path(args, label: str, what: str) -> Optional[Path]:
    """Where to keep a profile of this part, when profiling (--profile)."""
    if not args.profile:
        return None
    name = "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-")
    return args.out / "profiles" / f"{name}-{what}.txt"


def _measured_load(served: Served, webhooks, questions, level: int, args, profile: Optional[Path] = None) -> dict:
    """One load step, with the CPU the servers used meanwhile and how busy the machine was."""
    cpu_before, machine_before = served.cpu_seconds(), machine_cpu()
    with Sampling(served.rasa_servers()[0], profile) if profile else nullcontext():
        result = run_load(webhooks, questions, level, args.step_seconds)
    cpu_after, machine_after = served.cpu_seconds(), machine_cpu()
    busy, total = (after - before for after, before in zip(machine_after, machine_before))
    return {
        **result.summary(),
        "rasa_cpu_cores": (cpu_after["rasa"] - cpu_before["rasa"]) / result.seconds,
        "actions_cpu_cores": (cpu_after["actions"] - cpu_before["actions"]) / result.seconds,
        "machine_busy": busy / total if total else 0.0,
    }


def _load_steps(served: Served, questions, args, label) -> list:
    steps = []
    for level in args.concurrency:
        say(f"{label}: {level} conversation(s) at once for {args.step_seconds:g} s...")
        profile = _profile_path(args, label, f"load-{level}")
        step = _measured_load(served, served.webhooks, questions, level, args, profile)
        say(
            f"  {step['answered']} answered, {step['messages_per_second']:.1f}/s, "
            f"p50/p95/p99 {1000 * step['p50']:.0f}/{1000 * step['p95']:.0f}/{1000 * step['p99']:.0f} ms, "
            f"{step['errors']} errors {step['error_kinds'] or ''}; Rasa CPU {step['rasa_cpu_cores']:.2f} cores, "
            f"machine {100 * step['machine_busy']:.0f}% busy"
        )
        steps.append(step)
    return steps


def _start(served: Served, label: str, args) -> float:
    say(f"{label}: starting ({served.replicas} Rasa server(s) and the action server)...")
    started = served.start(FIRST_QUESTION, profile=_profile_path(args, label, "start"))
    say(f"{label}: first answer {started:.1f} s after launch")
    return started


def _flood(served: Served, questions, args, label: str) -> dict:
    say(f"{label}: one conversation flooding while others talk, {args.step_seconds:g} s without and with...")
    flood = run_flood(served.webhooks[0], questions, args.step_seconds)
    alone, flooded = flood["alone"], flood["flooded"]
    say(
        f"  others' p95 {1000 * alone['p95']:.0f} ms alone, {1000 * flooded['p95']:.0f} ms flooded, "
        f"{flooded['errors']} errors {flooded['error_kinds'] or ''}; the flood: {flood['flood']}"
    )
    return flood


def _long_conversations(served: Served, args, label: str) -> dict:
    turns, conversations = (SMOKE_TURNS, SMOKE_CONVERSATIONS) if args.smoke else (TURNS, CONVERSATIONS)
    say(f"{label}: {conversations} long conversation(s), {turns} turns each, one message at a time...")
    profile = _profile_path(args, label, "long-conversations")
    with Sampling(served.rasa_servers()[0], profile) if profile else nullcontext():
        result = run_long_conversations(
            served.urls[0], served.token, conversation_script(), turns=turns, conversations=conversations
        )
    say(
        "  p95 " + ", ".join(f"turns {name}: {1000 * value:.0f} ms" for name, value in result["p95"].items())
        + f"; {result['errors']} errors; every message kept in {result['kept']} of {result['conversations']}"
    )
    return result


def measure_long_conversations(args, workdir: Path) -> dict:
    """The project started again with the per-visitor rate lifted, then its long conversations."""
    label = "project, long conversations"
    served = Served(
        label, args.model, workdir / "var-long", args.out / "logs" / "long-conversations.log", env=LONG_CONVERSATION_ENV,
    )
    try:
        _start(served, label, args)
        return _long_conversations(served, args, label)
    finally:
        served.stop()


def _publishing(served: Served, workdir: Path, questions, args, label: str) -> dict:
    count = SMOKE_PUBLISHES if args.smoke else PUBLISHES
    say(f"{label}: {count} publishes while {LOAD_CONVERSATIONS} conversations talk...")
    return publish_memory(served, workdir / "publishing", questions, count)


def measure_publishing(args, workdir: Path, questions) -> dict:
    """The project started again, then published into under load (bench/publishing.py)."""
    label = "project, publishing"
    served = Served(label, args.model, workdir / "var-publishing", args.out / "logs" / "publishing.log")
    try:
        _start(served, label, args)
        return _publishing(served, workdir, questions, args, label)
    finally:
        served.stop()


def measure(served: Served, label: str, questions, args, workdir: Path, flood: bool = False) -> dict:
    """Start time, held-out score, load steps and memory of one assistant
    (and, with `flood`, one conversation flooding while others talk)."""
    try:
        start_seconds = _start(served, label, args)
        say(f"{label}: scoring the held-out sets...")
        scores = held_out_scores(served.urls[0], served.token, limit=SMOKE_ITEMS if args.smoke else None)
        for name, score in scores.items():
            say(
                f"  {name}: accuracy {100 * score['accuracy']:.1f}% of {score['total']}, macro F1 {score['macro_f1']:.3f}, "
                f"red-flag recall {100 * score['red_flag_recall']:.1f}%, false 911: {score['false_alarms']}"
            )
        warm_up(served.webhooks, questions[: args.warm_up])
        load = _load_steps(served, questions, args, label)
        memory = served.memory()
        extra = {}
        if flood:
            extra["flood"] = _flood(served, questions, args, label)
            if args.smoke:  # on this server: two more to start would double the smoke run's time
                extra["long_conversations"] = _long_conversations(served, args, label)
                extra["publishing"] = _publishing(served, workdir, questions, args, label)
        cost = encoder_cost(served.urls[0], served.token) if label == "project" else None
        return {
            "start_seconds": start_seconds, "accuracy": scores, "load": load, "memory": memory, "encoder": cost,
            **extra,
        }
    finally:
        served.stop()


def measure_scaled(workdir: Path, questions, args) -> dict:
    # two more Rasa servers to start would double the smoke run's time
    reason = "a smoke run leaves it out (add --scaled)" if args.smoke and not args.scaled else unavailable()
    if reason:
        say(f"Scaled profile: not run, {reason}")
        return {"not_run": reason}
    label = f"project, scaled ({SCALED_REPLICAS} servers)"
    with scratch_database() as database_url:
        served = Served(
            label, args.model, workdir / "var-scaled", args.out / "logs" / "scaled.log",
            endpoints=ROOT / "endpoints.scaled.yml", replicas=SCALED_REPLICAS,
            env={"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL},
        )
        try:
            start_seconds = _start(served, label, args)
            warm_up(served.webhooks, questions[: args.warm_up])
            load = _load_steps(served, questions, args, label)
            # the same servers, all traffic to one: what the second one adds
            top = max(args.concurrency)
            say(f"{label}: {top} at once, all to one server, for {args.step_seconds:g} s...")
            one = _measured_load(served, served.webhooks[:1], questions, top, args)
            say(f"  {one['answered']} answered, {one['messages_per_second']:.1f}/s, {one['errors']} errors")
            memory = served.memory()
        finally:
            served.stop()
    return {
        "replicas": SCALED_REPLICAS, "start_seconds": start_seconds, "load": load,
        "single_server": one, "memory": memory,
    }
