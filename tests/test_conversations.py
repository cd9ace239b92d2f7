"""Runs tests/test_conversations.yml through Rasa's own story tester, which
fails on any wrong intent, answer or action (the command the staff
console's gate runs too, from clinic/quality.py)."""

import json
import subprocess

from clinic import quality
from conftest import ROOT


def test_every_conversation_goes_as_written(trained_model, tmp_path):
    result = subprocess.run(
        quality.conversation_test_command(trained_model, quality.CONVERSATION_TESTS, tmp_path),
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    report = json.loads((tmp_path / "story_report.json").read_text())
    assert report["conversation_accuracy"]["accuracy"] == 1.0
    # every story in the file was really run
    stories = quality.CONVERSATION_TESTS.read_text().count("- story:")
    assert report["conversation_accuracy"]["total"] == stories
