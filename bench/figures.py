"""The benchmark's figures as report text: numbers, latencies, errors, and Markdown tables (written and read back)."""

import math
from typing import List

MB = 1024 * 1024

# every held-out set of clinic.evaluation.SETS, in the report's words
SET_TITLES = {"real": "real questions", "real_2": "real questions, second set", "written": "written set"}


def is_number(value) -> bool:
    """A measured figure: an int or a float other than NaN (no answers, nothing measured)."""
    return isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value))


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def seconds(value: float) -> str:
    if value >= 120:
        return f"{value / 60:.1f} min ({value:.0f} s)"
    return f"{value:.1f} s"


def ms(value: float) -> str:
    return f"{1000 * value:.0f}" if is_number(value) else "no answers"


def mb(value: float) -> str:
    return f"{value / MB:.0f} MB"


def ratio(project, stock) -> str:
    if not (is_number(project) and is_number(stock)) or stock == 0:
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


def load_step(assistant: dict, concurrency: int) -> dict:
    """An assistant's load step (bench/load.py's summary) at this many conversations at once."""
    return next(step for step in assistant["load"] if step["concurrency"] == concurrency)


def table(header: List[str], rows: List[List[str]]) -> List[str]:
    """The lines of a Markdown table; a "|" inside a cell becomes "/"."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return lines


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
