"""The regression gate a retrained model must pass before it can be published.

Four checks, each with its reason when it fails: the training data keeps
what tests/test_data.py asks (no two answers colliding ...), `rasa data
validate --fail-on-warnings`, the held-out NLU set (clinic.evaluation: at
least 90% right, every emergency sent to 911, and no more than two points
below the live model), and the conversation tests run by Rasa's story tester.
Rasa itself runs in subprocesses, never in the console.
"""

import json
import os
import re
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from clinic import PROJECT_ROOT
from staff.training_data import TrainingData

MIN_ACCURACY = 0.90
MIN_RED_FLAG_RECALL = 1.0
# Held-out accuracy may move a little between trainings; more is a regression.
MAX_ACCURACY_DROP = 0.02
CHECK_TIMEOUT = 900


@dataclass
class Check:
    name: str
    title: str
    passed: Optional[bool] = None  # None: not run (yet)
    summary: str = ""
    details: List[str] = field(default_factory=list)
    seconds: float = 0.0


def subprocess_env() -> Dict[str, str]:
    env = dict(os.environ)
    env.update(
        RASA_TELEMETRY_ENABLED="false",
        TF_CPP_MIN_LOG_LEVEL="2",
        SQLALCHEMY_SILENCE_UBER_WARNING="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
    )
    return env


def model_metadata(path: Path) -> Dict:
    """model_id and trained_at from a Rasa model archive."""
    with tarfile.open(path) as archive:
        for member in archive:
            if member.name == "metadata.json":
                content = json.load(archive.extractfile(member))
                return {"model_id": content.get("model_id"), "trained_at": content.get("trained_at")}
    return {}


def percent(value: float) -> str:
    return f"{value * 100:.1f}%"


class Gate:
    def __init__(
        self,
        project_dir: Path,
        bin_dir: Path,
        scores_file: Path,
        log: Callable[[str], None] = lambda line: None,
    ):
        self.project_dir = Path(project_dir)
        self.bin_dir = Path(bin_dir)
        self.scores_file = Path(scores_file)
        self.log = log

    def _run(self, command: List[str]) -> subprocess.CompletedProcess:
        self.log("$ " + " ".join(str(part) for part in command))
        return subprocess.run(
            [str(part) for part in command], cwd=self.project_dir, env=subprocess_env(),
            capture_output=True, text=True, timeout=CHECK_TIMEOUT,
        )

    # ---- the checks ----

    def check_data(self, snapshot: Path) -> Check:
        check = Check("data", "Training data")
        # the snapshot holds the training inputs; the held-out set is the project's
        held_out = self.project_dir / "tests" / "nlu_held_out.yml"
        problems = TrainingData(snapshot, held_out_file=held_out).problems()
        if not held_out.exists():
            problems.append("The held-out set tests/nlu_held_out.yml is missing.")
        check.passed = not problems
        check.summary = (
            "No phrasing under two answers, none from the held-out set, every answer within limits."
            if not problems else problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
        )
        check.details = problems
        return check

    def check_validate(self, snapshot: Path) -> Check:
        check = Check("validate", "rasa data validate")
        result = self._run(
            [self.bin_dir / "rasa", "data", "validate", "--fail-on-warnings",
             "--config", snapshot / "config.yml", "--domain", snapshot / "domain.yml", "--data", snapshot / "data"]
        )
        check.passed = result.returncode == 0
        output = (result.stdout + result.stderr).splitlines()
        warnings = [
            re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
            for index, line in enumerate(output)
            if re.search(r"UserWarning|ERROR|error:", line) and "Deprecat" not in line
        ]
        check.summary = "No warnings." if check.passed else (warnings[0] if warnings else "Rasa found problems in the data.")
        check.details = warnings[:20] if not check.passed else []
        return check

    def held_out_score(self, model: Path) -> Dict:
        """clinic.evaluation's score, cached per model id."""
        model_id = model_metadata(model).get("model_id")
        scores = json.loads(self.scores_file.read_text()) if self.scores_file.exists() else {}
        if model_id and model_id in scores:
            return scores[model_id]
        result = self._run(
            [sys.executable, "-m", "clinic.evaluation", model, self.project_dir / "tests" / "nlu_held_out.yml"]
        )
        if result.returncode != 0:
            raise RuntimeError("scoring failed: " + (result.stderr.strip().splitlines() or ["?"])[-1])
        score = json.loads(result.stdout)
        if model_id:
            scores = json.loads(self.scores_file.read_text()) if self.scores_file.exists() else {}
            scores[model_id] = score
            self.scores_file.parent.mkdir(parents=True, exist_ok=True)
            self.scores_file.write_text(json.dumps(scores))
        return score

    def check_held_out(self, model: Path, live_model: Optional[Path]) -> Check:
        check = Check("held_out", "Held-out questions")
        try:
            score = self.held_out_score(model)
            live = self.held_out_score(live_model) if live_model and live_model.exists() else None
        except (RuntimeError, ValueError, OSError, subprocess.TimeoutExpired) as error:
            check.passed = False
            check.summary = f"Could not score the held-out set: {error}"
            return check
        accuracy, red_flags = score["accuracy"], score["red_flag_recall"]
        reasons = []
        if live is not None and accuracy < live["accuracy"] - MAX_ACCURACY_DROP:
            reasons.append(
                f"held-out accuracy fell from {percent(live['accuracy'])} to {percent(accuracy)}"
            )
        if accuracy < MIN_ACCURACY:
            reasons.append(f"held-out accuracy is {percent(accuracy)}, below {percent(MIN_ACCURACY)}")
        if red_flags < MIN_RED_FLAG_RECALL:
            reasons.append(f"only {percent(red_flags)} of emergencies would be sent to 911")
        check.passed = not reasons
        compared = f" (live model: {percent(live['accuracy'])})" if live else ""
        check.summary = (
            f"{percent(accuracy)} of {score['total']} held-out questions answered right{compared}; "
            f"every emergency sent to 911."
            if check.passed else "; ".join(reasons).capitalize() + "."
        )
        live_misses = {(e["text"], e["predicted"]) for e in (live or {}).get("errors", [])}
        live_missed_texts = {text for text, _ in live_misses}
        newly_wrong = [e for e in score["errors"] if e["text"] not in live_missed_texts]
        check.details = [
            f"now wrong: “{e['text']}” should be {e['expected']}, gets {e['predicted']}" for e in newly_wrong
        ][:40]
        return check

    def check_conversations(self, model: Path, out_dir: Path) -> Check:
        check = Check("conversations", "Conversation tests")
        stories = self.project_dir / "tests" / "test_conversations.yml"
        result = self._run(
            [self.bin_dir / "rasa", "test", "core", "--model", model, "--stories", stories,
             "--e2e", "--fail-on-prediction-errors", "--out", out_dir]
        )
        report_file = out_dir / "story_report.json"
        report = json.loads(report_file.read_text()) if report_file.exists() else {}
        accuracy = report.get("conversation_accuracy", {})
        total = accuracy.get("total") or stories.read_text().count("- story:")
        correct = accuracy.get("correct", 0)
        check.passed = result.returncode == 0 and accuracy.get("accuracy") == 1.0
        output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
        # --fail-on-prediction-errors stops at the first wrong turn and prints that story
        failed_story = output.split("Failed Story:", 1)[1] if "Failed Story:" in output else ""
        failed_file = out_dir / "failed_test_stories.yml"
        failed_text = failed_story or (failed_file.read_text() if failed_file.exists() else "")
        failed = re.findall(r"- story: (.+)", failed_text)
        wrong_turns = re.findall(r"^\s*- (.+#\s*predicted: .+)$", failed_text, re.MULTILINE)
        if check.passed:
            check.summary = f"All {total} conversations went as written."
        elif failed:
            check.summary = (
                "The conversation “" + "”, “".join(failed[:3]) + "” now goes wrong"
                + (f": {wrong_turns[0].strip()}" if wrong_turns else "") + "."
            )
        else:
            tail = [line for line in output.splitlines() if line.strip()][-3:]
            check.summary = f"The conversation tests did not complete: {' '.join(tail)[:300]}"
        check.details = [line for line in failed_text.strip().splitlines() if line.strip()][:40]
        return check

    def run(self, snapshot: Path, model: Path, live_model: Optional[Path], out_dir: Path,
            on_check: Callable[[List[Check]], None] = lambda checks: None) -> List[Check]:
        """Every check in turn (all of them, so staff see every reason at once)."""
        checks = [
            Check("data", "Training data"),
            Check("validate", "rasa data validate"),
            Check("held_out", "Held-out questions"),
            Check("conversations", "Conversation tests"),
        ]
        steps = [
            lambda: self.check_data(snapshot),
            lambda: self.check_validate(snapshot),
            lambda: self.check_held_out(model, live_model),
            lambda: self.check_conversations(model, out_dir),
        ]
        for index, step in enumerate(steps):
            on_check(checks)
            started = time.monotonic()
            try:
                checks[index] = step()
            except subprocess.TimeoutExpired:
                checks[index].passed = False
                checks[index].summary = "Took too long and was stopped."
            checks[index].seconds = round(time.monotonic() - started, 1)
            self.log(f"{checks[index].title}: {'passed' if checks[index].passed else 'FAILED'} - {checks[index].summary}")
        on_check(checks)
        return checks


def as_dicts(checks: List[Check]) -> List[Dict]:
    return [asdict(check) for check in checks]
