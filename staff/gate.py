"""The regression gate a retrained model must pass before it can be published.

Four checks, each with its reason when it fails, each the one `make test`
runs, from clinic/quality.py: the data rules (no two answers colliding
...), `rasa data validate --fail-on-warnings`, the held-out sets
(clinic.evaluation, what a visitor gets from the candidate served on its
own: the floors, and no more than the allowed drop below the live model),
and the conversation tests run by Rasa's story tester. Rasa itself runs in
subprocesses, never in the console.
"""

import json
import re
import subprocess
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import requests

from clinic import PROJECT_ROOT, quality
from clinic.evaluation import SETS, evaluate
from clinic.harness import QUIET, RunningAssistant, subprocess_env

CHECK_TIMEOUT = 900


@dataclass
class Check:
    name: str
    title: str
    passed: Optional[bool] = None  # None: not run (yet)
    summary: str = ""
    details: List[str] = field(default_factory=list)
    seconds: float = 0.0


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
            [str(part) for part in command], cwd=self.project_dir, env=subprocess_env(**QUIET),
            capture_output=True, text=True, timeout=CHECK_TIMEOUT,
        )

    # ---- the checks ----

    def check_data(self, snapshot: Path) -> Check:
        check = Check("data", "Training data")
        # the snapshot holds the training inputs; the held-out sets are the project's
        problems = quality.data_problems(snapshot, self.project_dir / "tests" / "held_out")
        check.passed = not problems
        check.summary = (
            "No phrasing under two answers, none from the held-out set, every answer within limits."
            if not problems else problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
        )
        check.details = problems
        return check

    def check_validate(self, snapshot: Path) -> Check:
        check = Check("validate", "rasa data validate")
        result = self._run(quality.validate_command(
            snapshot / "config.yml", snapshot / "domain.yml", snapshot / "data", rasa=self.bin_dir / "rasa"
        ))
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

    def held_out_sets(self) -> Dict[str, Path]:
        """The project's held-out sets (clinic.evaluation.SETS, in this project)."""
        return {name: self.project_dir / path.relative_to(PROJECT_ROOT) for name, path in SETS.items()}

    def held_out_scores(self, model: Path) -> Dict[str, Dict]:
        """Each set's clinic.evaluation score of `model`, served on its own for
        the purpose (never through the live servers: the questions would
        reach the staff inbox), cached per model id."""
        model_id = model_metadata(model).get("model_id")
        scores = json.loads(self.scores_file.read_text()) if self.scores_file.exists() else {}
        if model_id and model_id in scores:
            return scores[model_id]
        work = self.scores_file.parent / f"serve-{model_id or 'model'}"
        self.log(f"serving {model} to score the held-out sets")
        with RunningAssistant(model, work / "var", work / "serve.log") as assistant:
            found = {
                name: evaluate(assistant.url, assistant.token, path).as_dict()
                for name, path in self.held_out_sets().items()
            }
        if model_id:
            scores = json.loads(self.scores_file.read_text()) if self.scores_file.exists() else {}
            scores[model_id] = found
            self.scores_file.parent.mkdir(parents=True, exist_ok=True)
            self.scores_file.write_text(json.dumps(scores))
        return found

    def check_held_out(self, model: Path, live_model: Optional[Path]) -> Check:
        check = Check("held_out", "Held-out questions")
        try:
            scores = self.held_out_scores(model)
            live = self.held_out_scores(live_model) if live_model and live_model.exists() else {}
        except (RuntimeError, ValueError, OSError, requests.RequestException, subprocess.TimeoutExpired) as error:
            check.passed = False
            check.summary = f"Could not score the held-out sets: {error}"
            return check
        reasons = [reason for name, score in scores.items() for reason in quality.shortfalls(name, score, live.get(name))]
        check.passed = not reasons
        check.summary = (
            "; ".join(
                f"{percent(score['accuracy'])} of the {score['total']} {name}-set conversations answered right"
                + (f" (live model: {percent(live[name]['accuracy'])})" if name in live else "")
                for name, score in scores.items()
            ) + "; every emergency sent to 911, no other message."
            if check.passed else "; ".join(reasons).capitalize() + "."
        )
        details = []
        for name, score in scores.items():
            live_missed = {error["text"] for error in live.get(name, {}).get("errors", [])}
            details += [
                f"now wrong ({name}): “{e['text']}” should get {', '.join(e['expected'])}, gets {', '.join(e['got']) or 'nothing'}"
                for e in score["errors"] if e["text"] not in live_missed
            ]
        check.details = details[:40]
        return check

    def check_conversations(self, model: Path, out_dir: Path) -> Check:
        check = Check("conversations", "Conversation tests")
        stories = self.project_dir / "tests" / "test_conversations.yml"
        result = self._run(quality.conversation_test_command(model, stories, out_dir, rasa=self.bin_dir / "rasa"))
        report_file = out_dir / "story_report.json"
        report = json.loads(report_file.read_text()) if report_file.exists() else {}
        accuracy = report.get("conversation_accuracy", {})
        total = accuracy.get("total") or stories.read_text().count("- story:")
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
        """Every check (all of them, so staff see every reason at once). The
        held-out sets, the longest, run beside `rasa data validate` and the
        conversation tests, which are processes of their own: a gate about a
        third shorter on two cores."""
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
        reporting = threading.Lock()

        def run_step(index: int) -> None:
            started = time.monotonic()
            try:
                checks[index] = steps[index]()
            except subprocess.TimeoutExpired:
                checks[index].passed = False
                checks[index].summary = "Took too long and was stopped."
            checks[index].seconds = round(time.monotonic() - started, 1)
            with reporting:
                self.log(f"{checks[index].title}: {'passed' if checks[index].passed else 'FAILED'} - {checks[index].summary}")
                on_check(checks)

        on_check(checks)
        run_step(0)
        with ThreadPoolExecutor(max_workers=2) as pool:
            beside = pool.submit(lambda: [run_step(index) for index in (1, 3)])
            run_step(2)
            beside.result()
        return checks


def as_dicts(checks: List[Check]) -> List[Dict]:
    return [asdict(check) for check in checks]
