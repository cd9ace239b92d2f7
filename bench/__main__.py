"""Runs the benchmark (`make bench`): trains stock Rasa and the project, serves each in turn under the same load, and writes the report.

    python -m bench [--retrain] [--profile] [--step-seconds S] [--out DIR]
    python -m bench --smoke [--scaled]     (what `make test` runs)

Besides the load steps: one conversation flooding while others talk
(bench/flood.py), long conversations on the project started again
(bench/long_conversation.py), and its memory over ten publishes under load
(bench/publishing.py).

Writes DIR/latest.md (the tables, also printed), DIR/latest.png (the chart)
and DIR/latest.json (every figure), DIR being bench/results by default.
Traffic goes to 127.0.0.1 only.
"""

import argparse
import json
import os
import sys
import tempfile
from contextlib import nullcontext
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from bench import RESULTS, ROOT
from bench.accuracy import encoder_cost, held_out_scores
from bench.chart import draw
from bench.flood import run_flood
from bench.load import question_script, run_load, warm_up
from bench.long_conversation import CONVERSATIONS, TURNS, conversation_script, run_long_conversations
from bench.profile import Sampling, available as profiling_unavailable
from bench.publishing import LOAD_CONVERSATIONS, PUBLISHES, SMOKE_PUBLISHES, publish_memory
from bench.progress import elapsed, say
from bench.resources import machine_cpu
from bench.report import missed, render
from bench.scaled import REDIS_URL, scratch_database, unavailable
from bench.servers import Served
from bench.stock import write_stock_project
from bench.training import CACHE, train_both

CONCURRENCY = [1, 8, 32]
# A smoke run scores this many items of each held-out set, and trains on
# every SMOKE_SAMPLE-th example of each intent.
SMOKE_ITEMS = 40
SMOKE_SAMPLE = 5
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true",
                        help="a quick check that it works: 1 training epoch on a fifth of the examples, short steps")
    parser.add_argument("--retrain", action="store_true", help="train again even when the inputs did not change")
    parser.add_argument("--step-seconds", type=float, help="length of each load step (20 s; smoke 2.5 s)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=CONCURRENCY)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "clinic.tar.gz")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--scaled", action="store_true", help="include the scaled profile in a smoke run too")
    parser.add_argument("--profile", action="store_true",
                        help="sample each Rasa server with py-spy while it starts and under load (OUT/profiles/)")
    args = parser.parse_args()
    if args.profile and profiling_unavailable():
        sys.exit(f"Cannot profile: {profiling_unavailable()}")
    args.step_seconds = args.step_seconds or (2.5 if args.smoke else 20.0)
    args.warm_up = 3 if args.smoke else 10
    args.model = args.model.resolve()
    args.out = args.out.resolve()
    if not args.model.exists():
        sys.exit(f"No model at {args.model}: run `make train` (or `make bench`, which trains it).")
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    for old in [*(args.out / "logs").glob("*.log"), *(args.out / "profiles").glob("*.txt")]:
        old.unlink()

    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load_start = os.getloadavg()[0]
    say(
        f"Benchmark ({'smoke' if args.smoke else 'full'}): training, then stock Rasa, the project and the "
        f"scaled profile, each under {len(args.concurrency)} load steps of {args.step_seconds:g} s"
    )
    questions = question_script()
    with tempfile.TemporaryDirectory(prefix="clinic-bench-") as temporary:
        workdir = Path(temporary)
        # the smoke run always trains (quickly, both at once) and never touches the kept models
        training = train_both(
            workdir / "training", args.out / "logs", epochs=1 if args.smoke else 0,
            retrain=args.retrain, cache=None if args.smoke else CACHE, parallel=args.smoke,
            sample=SMOKE_SAMPLE if args.smoke else 0,
        )
        stock_files = write_stock_project(workdir / "stock-serving")
        stock = measure(
            Served(
                "stock Rasa", Path(training.stock_model), workdir / "var-stock", args.out / "logs" / "stock.log",
                endpoints=stock_files["endpoints"], credentials=stock_files["credentials"],
            ),
            "stock Rasa", questions, args, workdir,
        )
        project = measure(
            Served("project", args.model, workdir / "var-project", args.out / "logs" / "project.log"),
            "project", questions, args, workdir, flood=True,
        )
        long_conversations = project.pop("long_conversations", None) or measure_long_conversations(args, workdir)
        publishing = project.pop("publishing", None) or measure_publishing(args, workdir, questions)
        scaled = measure_scaled(workdir, questions, args)

    results = {
        "mode": "smoke" if args.smoke else "full",
        "started_at": started_at,
        "duration_seconds": elapsed(),
        "machine": {"cpus": os.cpu_count(), "load_average_start": load_start, "load_average_end": os.getloadavg()[0]},
        "step_seconds": args.step_seconds,
        "concurrency": args.concurrency,
        "training": {**asdict(training), "project_total_seconds": training.project_total_seconds},
        "stock": stock,
        "project": project,
        "long_conversations": long_conversations,
        "publishing": publishing,
        "scaled": scaled,
        "chart": str((args.out / "latest.png").relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out / "latest.png"),
    }
    draw(results, args.out / "latest.png")
    report = render(results)
    (args.out / "latest.md").write_text(report)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2, default=str))
    print()
    print(report)
    say(f"Wrote {args.out / 'latest.md'} and {args.out / 'latest.png'} in {elapsed() / 60:.1f} min")
    for line in missed(results):
        say(f"Target not met (or not run): {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
