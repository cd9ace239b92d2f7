"""Samples a running server with py-spy while the benchmark starts or loads it
(`--profile`), so a missed target shows where the time goes.
"""

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Optional

SAMPLES_PER_SECOND = 100


def _py_spy() -> Optional[str]:
    beside_python = Path(sys.executable).parent / "py-spy"
    return str(beside_python) if beside_python.exists() else shutil.which("py-spy")


def available() -> Optional[str]:
    """Why profiling cannot run, or None."""
    return None if _py_spy() else "py-spy is not installed (requirements-test.txt)"


class Sampling:
    """py-spy recording one process until stopped: collapsed stacks (`.txt`,
    which speedscope and flamegraph.pl read) plus a summary of the hottest
    functions (`.summary.txt`)."""

    def __init__(self, pid: int, path: Path):
        self.pid = pid
        self.path = path
        self.process: Optional[subprocess.Popen] = None

    def __enter__(self) -> "Sampling":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                _py_spy(), "record",
                "--pid", str(self.pid), "--rate", str(SAMPLES_PER_SECOND),
                # never pauses the server, so the profile does not slow what it measures
                "--nonblocking", "--format", "raw", "--output", str(self.path),
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        return self

    def __exit__(self, *_) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.path.exists():
            self.path.with_suffix(".summary.txt").write_text(summary(self.path))


# Threads waiting for work that py-spy still counts as running.
IDLE_LEAVES = ("_worker (concurrent/futures/thread.py", "wait (threading.py", "select (selectors.py")
# Where a turn's time goes: (marker in the stack, marker that must not be).
PARTS = {
    "NLU (the whole pipeline)": ("_parse_message_with_graph", None),
    "  spaCy": ("spacy/language.py", None),
    # ResponseSelector is a DIETClassifier: DIET's code under it counts for it
    "  DIETClassifier": ("diet_classifier.py", "response_selector.py"),
    "  ResponseSelector": ("response_selector.py", None),
    "  CountVectorsFeaturizer": ("count_vectors_featurizer.py", None),
    "policies (next action)": ("_predict_next_with_tracker", None),
    "validating the action server's replies (jsonschema)": ("_validate_action_result", None),
    "calling the action server": ("rasa/utils/endpoints.py", None),
    "tracker store: reading": ("retrieve", None),
    "tracker store: saving": ("save (", None),
    "lock store": ("lock_store", None),
    "response generation (NLG)": ("rasa/core/nlg/", None),
    "TensorFlow, anywhere": ("tensorflow/", None),
    "SQLAlchemy, anywhere": ("sqlalchemy/", None),
}


def summary(collapsed: Path, top: int = 30) -> str:
    """Where the samples were: by part of Rasa, then the functions most samples
    were in (anywhere on the stack) and at the top of the stack."""
    inclusive: Counter = Counter()
    own: Counter = Counter()
    parts: Counter = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        if frames[-1].startswith(IDLE_LEAVES):
            continue
        count = int(count)
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
        for part, (marker, unless) in PARTS.items():
            if marker in stack and not (unless and unless in stack):
                parts[part] += count
    if not total:
        return "no samples\n"
    lines = [f"{total} samples of running code at {SAMPLES_PER_SECOND}/s", "", "by part:"]
    lines += [f"{100 * parts[part] / total:5.1f}%  {part}" for part in PARTS]
    lines += ["", "in the function or below it:"]
    lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    lines += ["", "in the function itself:"]
    lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    return "\n".join(lines) + "\n"
