"""The benchmark's report: side-by-side tables, project/stock ratios and the issue's targets, as Markdown."""

from typing import List

from bench.figures import (
    MB, SET_TITLES, cpu, errors, latencies, latency_ratios, load_step, mb, ms, pct, ratio, seconds, table,
)
from bench.targets import targets

SETUP_NOTE = """\
Both assistants answer from the same `data/` and `domain.yml` (same rules,
answers and custom actions) and are started the same way (`scripts/serve.py`:
an action server plus `rasa run`, REST webhook, loopback only), one after
the other. What differs:

- **project**: `config.yml` (its spaCy pipeline, DIET and a ResponseSelector
  per retrieval intent, the answer-confidence gate, the red-flag detector;
  RulePolicy), `credentials.yml` (REST with input checks and the turn guard)
  and `endpoints.yml` (conversations in SQLite, the clinic's response filling);
- **stock Rasa**: Rasa 3.6's default config (what `rasa init` trains), Rasa's
  own REST channel, conversations and locks in memory (`rasa init`'s
  endpoints), plus the action server and the clinic's response filling that
  the shared domain needs to answer at all.

The project is served with `models/clinic.tar.gz` (what `make train` built);
its training time is a separate retrain of the same configuration from
scratch. Accuracy is what a visitor gets (`clinic.evaluation`): each item of
the held-out sets in `tests/held_out/` (never trained on) is a conversation
with the served assistant over its REST webhook, right when its replies are
the expected answers in order (an emergency: 911 first). "Real questions" is
reworded public questions (several at once, follow-ups, red flags in lay
words); "written" is the first version's set. Speed is
closed-loop load: N visitors at once, each asking its next question (real
visitors' phrasings from the held-out set, five per conversation) as soon as
it has its answer. An error is any reply that is not an answer: a status
other than 200, a timeout, an empty reply or the "can't answer right now"
apology. CPU is what the Rasa server(s) used during the step, in cores (the
machine has a fixed number, shared with the action server, the database and
the load generator). Memory is the resident set (RSS) after the load.

Two more, the project only: while one conversation floods (bursts of
messages at once on it, every second, the replies not awaited), the other
visitors' latency against the same visitors alone, right before; and long
conversations, a few at a time with one message in flight, each turn's
time by its place in the conversation, on the project started again with
only the per-visitor rate limit lifted (they send hundreds of messages a
minute in one conversation; a smoke run's 30 turns stay within it)."""


def side_by_side(results: dict) -> List[str]:
    project, stock, training = results["project"], results["stock"], results["training"]
    rows = []
    for name, title in SET_TITLES.items():
        p, s = project["accuracy"][name], stock["accuracy"][name]
        for key, label, fmt in [
            ("accuracy", f"held-out accuracy, {title} ({p['total']} conversations)", pct),
            ("macro_f1", f"macro F1, {title}", lambda v: f"{v:.3f}"),
            ("red_flag_recall", f"red-flag recall, {title}", pct),
            ("false_alarms", f"false 911 (non-emergencies), {title}", str),
        ]:
            rows.append([label, fmt(p[key]), fmt(s[key]), ratio(p[key], s[key])])
    p, s = project["accuracy"]["written"], stock["accuracy"]["written"]
    for key, label in [("out_of_scope_precision", "out-of-scope precision"), ("out_of_scope_recall", "out-of-scope recall")]:
        rows.append([label, pct(p[key]), pct(s[key]), ratio(p[key], s[key])])
    encoder = project.get("encoder") or {}
    rows.append([
        "sentence encoder, ms per message", f"{encoder.get('encoder_ms', float('nan')):.1f} of "
        f"{encoder.get('parse_ms', float('nan')):.1f} ms per /model/parse", "none", "—",
    ])
    def when(assistant: str) -> str:
        return f"kept from {training[assistant + '_trained_at']}" if training[assistant + "_reused"] else "this run"

    rows.append([
        f"training from scratch ({training['epochs']})",
        f"{seconds(training['project_total_seconds'])}: spaCy pipeline {training['project_spacy_seconds']:.0f} s "
        f"+ rasa train {training['project_seconds']:.0f} s ({when('project')})",
        f"{seconds(training['stock_seconds'])} ({when('stock')})",
        ratio(training["project_total_seconds"], training["stock_seconds"]),
    ])
    rows.append([
        "start to first answer", seconds(project["start_seconds"]), seconds(stock["start_seconds"]),
        ratio(project["start_seconds"], stock["start_seconds"]),
    ])
    for concurrency in results["concurrency"]:
        p, s = load_step(project, concurrency), load_step(stock, concurrency)
        rows.append([f"latency p50 / p95 / p99, {concurrency} at once", latencies(p), latencies(s), latency_ratios(p, s)])
        rows.append([
            f"messages per second, {concurrency} at once", f"{p['messages_per_second']:.1f}",
            f"{s['messages_per_second']:.1f}", ratio(p["messages_per_second"], s["messages_per_second"]),
        ])
        rows.append([f"errors, {concurrency} at once", errors(p), errors(s), "—"])
        rows.append([f"Rasa server CPU, {concurrency} at once", cpu(p), cpu(s), ratio(p["rasa_cpu_cores"], s["rasa_cpu_cores"])])
    for kind, label in (("rasa", "Rasa server memory after the load"), ("actions", "action server memory after the load")):
        p, s = max(project["memory"][kind]), max(stock["memory"][kind])
        rows.append([label, mb(p), mb(s), ratio(p, s)])
    return table(["figure", "project", "stock Rasa", "project / stock"], rows)


def scaled_section(results: dict) -> List[str]:
    scaled, project = results["scaled"], results["project"]
    if "not_run" in scaled:
        return [f"Not run: {scaled['not_run']}."]
    rows = []
    for step in scaled["load"]:
        single = load_step(project, step["concurrency"])
        rows.append([
            f"{step['concurrency']} at once, round robin over {step['servers']} servers", latencies(step),
            f"{step['messages_per_second']:.1f}", errors(step), cpu(step),
            ratio(step["messages_per_second"], single["messages_per_second"]),
        ])
    one = scaled["single_server"]
    rows.append([
        f"{one['concurrency']} at once, all to one of the servers", latencies(one),
        f"{one['messages_per_second']:.1f}", errors(one), cpu(one),
        ratio(one["messages_per_second"], load_step(project, one["concurrency"])["messages_per_second"]),
    ])
    memory = ", ".join(mb(value) for value in scaled["memory"]["rasa"])
    return [
        f"{scaled['replicas']} Rasa servers (`endpoints.scaled.yml`, a throwaway PostgreSQL database, Redis), "
        f"one action server; every message goes to the next server in turn. Start to first answer on every "
        f"server: {seconds(scaled['start_seconds'])}. Memory after the load: Rasa servers {memory}, action "
        f"server {mb(max(scaled['memory']['actions']))}.",
        "",
        *table(["load", "latency p50 / p95 / p99", "messages per second", "errors", "Rasa servers' CPU",
                 "msg/s vs project, one server (SQLite)"], rows),
    ]


def _outcomes(counts: dict) -> str:
    return ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items())) or "none sent"


def fairness_section(results: dict) -> List[str]:
    flood, long = results["project"]["flood"], results["long_conversations"]
    alone, flooded = flood["alone"], flood["flooded"]
    rows = [
        [f"other visitors' latency p50 / p95 / p99, {flood['others']} at once, alone", latencies(alone)],
        [
            f"the same while one conversation floods ({flood['burst']} messages at once every "
            f"{flood['interval_seconds']:g} s)", latencies(flooded),
        ],
        ["other visitors' errors, alone / while flooded", f"{errors(alone)} / {errors(flooded)}"],
        ["the flood's messages", _outcomes(flood["flood"])],
    ]
    for window, value in long["p95"].items():
        rows.append([f"long conversations: latency p95, turns {window}", f"{ms(value)} ms"])
    rows.append([
        "long conversations: every message kept, in order",
        f"{long['kept']} of {long['conversations']} conversations of {long['turns']} turns; errors "
        f"{long['errors']}" + (f" ({_outcomes(long['error_kinds'])})" if long["error_kinds"] else ""),
    ])
    publishing = results["publishing"]
    after = publishing["after_each_publish"]
    rows += [
        [
            f"Rasa server memory before, then after each of {len(after)} publishes (MB)",
            f"{publishing['before'] / MB:.0f}, then " + ", ".join(f"{value / MB:.0f}" for value in after),
        ],
        ["publishes: seconds each, p95 of the load meanwhile, its errors",
         f"{min(publishing['publish_seconds']):.1f}-{max(publishing['publish_seconds']):.1f} s, "
         f"{ms(publishing['load']['p95'])} ms, {errors(publishing['load'])}"],
    ]
    return table(["measurement", "project"], rows)


def render(results: dict) -> str:
    machine = results["machine"]
    lines = ["# Benchmark: the clinic assistant and stock Rasa, same data", ""]
    if results["mode"] == "smoke":
        lines += [
            "**Smoke run** (`python -m bench --smoke`): trained with "
            f"{results['training']['epochs']}, both at once, and {results['step_seconds']:g} s per load step. "
            "It checks that the benchmark works; its figures mean nothing.", "",
        ]
    lines += [
        f"Run {results['started_at']} for {results['duration_seconds'] / 60:.1f} min on {machine['cpus']} cores "
        f"(load average {machine['load_average_start']:.1f} at the start, {machine['load_average_end']:.1f} at the end: "
        "other work on the machine slows everything down, so compare the ratios, which come from the same run). "
        f"Each load step: {results['step_seconds']:g} s.",
        "",
        SETUP_NOTE,
        "",
        "## Side by side",
        "",
        *side_by_side(results),
        "",
        "## One visitor flooding, and long conversations",
        "",
        *fairness_section(results),
        "",
        "## Scaled profile",
        "",
        *scaled_section(results),
        "",
        "## Targets",
        "",
        *table(["target", "measured", "result"], [list(row) for row in targets(results)]),
        "",
        f"Chart: `{results['chart']}`. Raw figures: `latest.json`. Server and training logs: `logs/`.",
        "",
    ]
    return "\n".join(lines)
