"""The benchmark's report: side-by-side tables, project/stock ratios and the issue's targets, as Markdown."""

import math
from typing import List, Tuple

from clinic import quality

MB = 1024 * 1024

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


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value))


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def seconds(value: float) -> str:
    if value >= 120:
        return f"{value / 60:.1f} min ({value:.0f} s)"
    return f"{value:.1f} s"


def ms(value: float) -> str:
    return f"{1000 * value:.0f}" if _number(value) else "no answers"


def mb(value: float) -> str:
    return f"{value / MB:.0f} MB"


def ratio(project, stock) -> str:
    if not (_number(project) and _number(stock)) or stock == 0:
        return "—"
    return f"{project / stock:.2f}"


def latencies(step: dict) -> str:
    return f"{ms(step['p50'])} / {ms(step['p95'])} / {ms(step['p99'])} ms"


def latency_ratios(project: dict, stock: dict) -> str:
    return " / ".join(ratio(project[p], stock[p]) for p in ("p50", "p95", "p99"))


def cpu(step: dict) -> str:
    return f"{step['rasa_cpu_cores']:.2f} cores (machine {100 * step['machine_busy']:.0f}% busy)"


def errors(step: dict) -> str:
    total = step["answered"] + step["errors"]
    text = f"{step['errors']} of {total}"
    if step["error_kinds"]:
        text += " (" + ", ".join(f"{kind}: {count}" for kind, count in sorted(step["error_kinds"].items())) + ")"
    return text


def _table(header: List[str], rows: List[List[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return lines


def _step(assistant: dict, concurrency: int) -> dict:
    return next(step for step in assistant["load"] if step["concurrency"] == concurrency)


# every held-out set of clinic.evaluation.SETS, in the report's words
SET_TITLES = {"real": "real questions", "real_2": "real questions, second set", "written": "written set"}


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
        p, s = _step(project, concurrency), _step(stock, concurrency)
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
    return _table(["figure", "project", "stock Rasa", "project / stock"], rows)


def scaled_section(results: dict) -> List[str]:
    scaled, project = results["scaled"], results["project"]
    if "not_run" in scaled:
        return [f"Not run: {scaled['not_run']}."]
    rows = []
    for step in scaled["load"]:
        single = _step(project, step["concurrency"])
        rows.append([
            f"{step['concurrency']} at once, round robin over {step['servers']} servers", latencies(step),
            f"{step['messages_per_second']:.1f}", errors(step), cpu(step),
            ratio(step["messages_per_second"], single["messages_per_second"]),
        ])
    one = scaled["single_server"]
    rows.append([
        f"{one['concurrency']} at once, all to one of the servers", latencies(one),
        f"{one['messages_per_second']:.1f}", errors(one), cpu(one),
        ratio(one["messages_per_second"], _step(project, one["concurrency"])["messages_per_second"]),
    ])
    memory = ", ".join(mb(value) for value in scaled["memory"]["rasa"])
    return [
        f"{scaled['replicas']} Rasa servers (`endpoints.scaled.yml`, a throwaway PostgreSQL database, Redis), "
        f"one action server; every message goes to the next server in turn. Start to first answer on every "
        f"server: {seconds(scaled['start_seconds'])}. Memory after the load: Rasa servers {memory}, action "
        f"server {mb(max(scaled['memory']['actions']))}.",
        "",
        *_table(["load", "latency p50 / p95 / p99", "messages per second", "errors", "Rasa servers' CPU",
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
    return _table(["measurement", "project"], rows)


def _verdict(ok: bool, miss: str) -> str:
    return "met" if ok else f"missed by {miss}"


def targets(results: dict) -> List[Tuple[str, str, str]]:
    """(target, measured, met / missed by / not run) for each target of the issue."""
    project, stock, training, scaled = results["project"], results["stock"], results["training"], results["scaled"]
    top = max(results["concurrency"])
    found = []
    for name, title in SET_TITLES.items():
        score = project["accuracy"][name]
        problems = quality.shortfalls(name, score, target=True)
        found.append((
            f"{title}: at least {pct(quality.ACCURACY_TARGETS[name])} right, every emergency to 911, no false 911",
            f"{pct(score['accuracy'])} (stock {pct(stock['accuracy'][name]['accuracy'])}), red-flag recall "
            f"{pct(score['red_flag_recall'])}, {score['false_alarms']} false 911",
            "met" if not problems else "missed by " + "; ".join(problems),
        ))
    oos = project["accuracy"]["written"]["out_of_scope_precision"]
    found.append(("out-of-scope precision at least 95%", pct(oos), _verdict(oos >= 0.95, f"{100 * (0.95 - oos):.1f} points")))
    p95, s95 = _step(project, 1)["p95"], _step(stock, 1)["p95"]
    times = p95 / s95 if _number(p95) and _number(s95) and s95 else float("inf")
    found.append((
        "p95 latency at 1 conversation within 1.5x stock",
        f"{times:.2f}x ({ms(p95)} ms vs {ms(s95)} ms)", _verdict(times <= 1.5, f"{times - 1.5:.2f}x"),
    ))
    at_top = [("project", _step(project, top))]
    if "not_run" not in scaled:
        at_top.append((f"scaled, {scaled['replicas']} servers", _step(scaled, top)))
    failed = sum(step["errors"] for _, step in at_top)
    found.append((
        f"no errors at {top} concurrent conversations",
        "; ".join(f"{name}: {errors(step)}" for name, step in at_top),
        _verdict(failed == 0, f"{failed} errors"),
    ))
    if "not_run" in scaled:
        found.append((f"{2} replicas give at least 1.6x one server's throughput", "—", f"not run: {scaled['not_run']}"))
    else:
        both, one = _step(scaled, top)["messages_per_second"], scaled["single_server"]["messages_per_second"]
        gain = both / one if one else float("inf")
        found.append((
            f"{scaled['replicas']} replicas give at least 1.6x one server's throughput",
            f"{gain:.2f}x at {top} at once ({both:.1f} vs {one:.1f} msg/s, same servers)",
            _verdict(gain >= 1.6, f"{1.6 - gain:.2f}x"),
        ))
    flood = project["flood"]
    alone, flooded = flood["alone"]["p95"], flood["flooded"]["p95"]
    slower = flooded / alone if _number(alone) and _number(flooded) and alone else float("inf")
    others_failed = flood["flooded"]["errors"]
    found.append((
        "other visitors' p95 while one conversation floods within 1.5x of without, no errors",
        f"{slower:.2f}x ({ms(flooded)} ms vs {ms(alone)} ms), {others_failed} errors",
        _verdict(slower <= 1.5 and others_failed == 0, "; ".join(
            ([f"{slower - 1.5:.2f}x"] if slower > 1.5 else []) + ([f"{others_failed} errors"] if others_failed else [])
        )),
    ))
    long = results["long_conversations"]
    (first, first_p95), *_, (last, last_p95) = long["p95"].items()
    grown = last_p95 / first_p95 if _number(first_p95) and _number(last_p95) and first_p95 else float("inf")
    lost = long["conversations"] - long["kept"]
    found.append((
        "long conversations: the last turns' p95 at most 1.5x the first ten's, every message kept",
        f"{grown:.2f}x (turns {last}: {ms(last_p95)} ms, turns {first}: {ms(first_p95)} ms); "
        f"{long['kept']} of {long['conversations']} kept, {long['errors']} errors",
        _verdict(grown <= 1.5 and lost == 0 and long["errors"] == 0, "; ".join(
            ([f"{grown - 1.5:.2f}x"] if grown > 1.5 else []) + ([f"{lost} conversations lost messages"] if lost else [])
            + ([f"{long['errors']} errors"] if long["errors"] else [])
        )),
    ))
    publishing = results["publishing"]
    growth, count = publishing["growth_after_first"], len(publishing["after_each_publish"])
    found.append((
        f"memory over {count} publishes under load: at most +10% from the first to the last",
        f"{100 * growth:+.1f}% ({publishing['after_each_publish'][0] / MB:.0f} -> "
        f"{publishing['after_each_publish'][-1] / MB:.0f} MB; {publishing['before'] / MB:.0f} MB before the first)",
        _verdict(growth <= 0.10, f"{100 * (growth - 0.10):.1f} points"),
    ))
    rasa_memory = max(project["memory"]["rasa"] + ([] if "not_run" in scaled else scaled["memory"]["rasa"]))
    found.append((
        "Rasa server memory under 1.2 GB", f"{rasa_memory / 1024 ** 3:.2f} GB (largest server)",
        _verdict(rasa_memory < 1.2 * 1024 ** 3, f"{(rasa_memory - 1.2 * 1024 ** 3) / MB:.0f} MB"),
    ))
    start = project["start_seconds"]
    found.append(("start to first answer under 30 s", seconds(start), _verdict(start < 30, f"{start - 30:.1f} s")))
    retrain = training["project_total_seconds"]
    found.append((
        "full retrain under 3 minutes on 2 cores",
        f"{seconds(retrain)} (spaCy pipeline + rasa train, {results['machine']['cpus']} cores)",
        _verdict(retrain < 180, f"{retrain - 180:.0f} s"),
    ))
    return found


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
        *_table(["target", "measured", "result"], [list(row) for row in targets(results)]),
        "",
        f"Chart: `{results['chart']}`. Raw figures: `latest.json`. Server and training logs: `logs/`.",
        "",
    ]
    return "\n".join(lines)


def missed(results: dict) -> List[str]:
    return [f"{target}: {result} ({measured})" for target, measured, result in targets(results) if result != "met"]


def markdown_tables(text: str) -> List[List[List[str]]]:
    """Every table in a Markdown text, as rows of cells, header first (for checking the report)."""
    tables: List[List[List[str]]] = []
    in_table = False
    for line in text.splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        if not in_table:
            tables.append([])
            in_table = True
        if not line.startswith("|---"):
            tables[-1].append([cell.strip() for cell in line.strip()[1:-1].split("|")])
    return tables
