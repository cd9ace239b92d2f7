"""Runs tests/test_conversations.yml through Rasa's own story tester, which
fails on any wrong intent, answer or action."""

import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

RASA = Path(sys.executable).parent / "rasa"


def test_every_conversation_goes_as_written(trained_model, tmp_path):
    result = subprocess.run(
        [
            str(RASA), "test", "core",
            "--model", str(trained_model),
            "--stories", str(ROOT / "tests" / "test_conversations.yml"),
            "--e2e",
            "--fail-on-prediction-errors",
            "--out", str(tmp_path),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    report = json.loads((tmp_path / "story_report.json").read_text())
    assert report["conversation_accuracy"]["accuracy"] == 1.0
    # every story in the file was really run
    stories = (ROOT / "tests" / "test_conversations.yml").read_text().count("- story:")
    assert report["conversation_accuracy"]["total"] == stories
