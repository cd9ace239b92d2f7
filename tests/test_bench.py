"""The benchmark's smoke run (`python -m bench --smoke`): every step, briefly,
against the real servers; its report must have every cell of every table
filled, and its chart must exist.
"""

import json
import os
import subprocess
import sys

from bench.figures import markdown_tables
from clinic.evaluation import SETS
from conftest import OUTPUT, ROOT

SIDE_BY_SIDE_FIGURES = [
    "held-out accuracy, real questions", "held-out accuracy, real questions, second set",
    "held-out accuracy, written set", "macro F1", "red-flag recall",
    "false 911", "out-of-scope precision", "out-of-scope recall", "sentence encoder",
    "training from scratch", "start to first answer",
    *(
        f"{figure}, {level} at once"
        for level in (1, 8, 32)
        for figure in ("latency p50 / p95 / p99", "messages per second", "errors", "Rasa server CPU")
    ),
    "Rasa server memory", "action server memory",
]
FAIRNESS_FIGURES = [
    "other visitors' latency p50 / p95 / p99, 8 at once, alone", "the same while one conversation floods",
    "other visitors' errors, alone / while flooded", "the flood's messages",
    "long conversations: latency p95, turns 1-10", "long conversations: latency p95, turns 21-30",
    "long conversations: every message kept, in order",
    "Rasa server memory before, then after each of 2 publishes", "publishes: seconds each",
]
TARGETS = 13


def test_smoke_run_fills_every_column_and_draws_the_chart(trained_model):
    out = OUTPUT / "bench-smoke"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=840,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

    report = (out / "latest.md").read_text()
    assert "| figure | project | stock Rasa | project / stock |" in run.stdout  # the table is printed too
    tables = markdown_tables(report)
    side_by_side = next(t for t in tables if t[0][0] == "figure")
    targets = next(t for t in tables if t[0][0] == "target")
    fairness = next(t for t in tables if t[0][0] == "measurement")
    for table in tables:
        assert len(table) > 1, table
        for row in table:
            assert len(row) == len(table[0]), row
            for cell in row:
                assert cell and "nan" not in cell.split() and cell != "None", f"empty cell in {row}"
    figures = [row[0] for row in side_by_side[1:]]
    for figure in SIDE_BY_SIDE_FIGURES:
        assert any(row.startswith(figure) for row in figures), f"no row for {figure}"
    measurements = [row[0] for row in fairness[1:]]
    for figure in FAIRNESS_FIGURES:
        assert any(row.startswith(figure) for row in measurements), f"no row for {figure}"
    assert len(targets) == 1 + TARGETS
    assert all(row[2] == "met" or row[2].startswith(("missed by", "not run")) for row in targets[1:])

    results = json.loads((out / "latest.json").read_text())
    for name in ("project", "stock"):
        assistant = results[name]
        assert [step["concurrency"] for step in assistant["load"]] == [1, 8, 32]
        assert all(step["answered"] > 0 and step["rasa_cpu_cores"] > 0 for step in assistant["load"]), assistant["load"]
        assert {name: score["total"] for name, score in assistant["accuracy"].items()} == {name: 40 for name in SETS}
        assert min(assistant["memory"]["rasa"]) > 100 * 1024 * 1024
        assert min(assistant["memory"]["actions"]) > 10 * 1024 * 1024
        assert assistant["start_seconds"] > 0
    assert results["training"]["stock_seconds"] > 0 and results["training"]["project_seconds"] > 0
    flood = results["project"]["flood"]
    assert flood["alone"]["answered"] > 0 and flood["flooded"]["answered"] > 0
    assert flood["flood"].get("refused (429)", 0) > 0  # the per-visitor limit turned the burst away
    long = results["long_conversations"]
    assert long["turns"] == 30 and long["kept"] == long["conversations"] == 1 and len(long["p95"]) == 3

    publishing = results["publishing"]
    assert len(publishing["after_each_publish"]) == 2 and min(publishing["after_each_publish"]) > 100 * 1024 * 1024
    assert publishing["load"]["answered"] > 0 and len(publishing["publish_seconds"]) == 2

    chart = out / "latest.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 20_000
