"""The staff member's whole task in the browser: teach an unanswered
question, retrain, pass the gate and publish; memory over five publishes;
and an edit that breaks the held-out set, blocked from publishing. Real
servers, on a copy of the project (tests/staff_console_fixtures.py), shared
with tests/test_staff_console.py.
"""

import json
import re
import time
import uuid
from pathlib import Path
from typing import Dict, List

import pytest
import requests
import yaml

from clinic.evaluation import load_items
from clinic.facts import fill
from conftest import OUTPUT, Assistant, Console, texts
from staff_console_fixtures import PASSWORD, TARGET, USER

# Never taught, and worded far from every example, so the assistant is
# unlikely to answer them confidently; each means the "twitch response" that the
# muscle-tension answer explains (an "LTR" is a local twitch response, in
# physical therapists' shorthand). The test uses the first one the live model
# does not understand.
QUESTIONS = [
    "whats an LTR",
    "my PT said I had a good LTR, what does that mean",
    "what does LTR stand for",
    "whats with the jumpy thing my leg does when you poke it",
    "that little kick my thigh gave at my last visit, what was it",
    "my bum muscle jolted by itself halfway through, should i worry",
    "why did the back of my leg flinch on its own earlier",
    "explain the involuntary jerk thing",
]
TARGET_FILE = "faq_muscle_tension.yml"
# A full `rasa train` and the gate take 5-8 minutes on two shared cores.
JOB_TIMEOUT = 25 * 60
MAX_MEMORY_GROWTH = 0.15


def answer_text(project: Path, label: str) -> str:
    topic_file = project / "data" / "nlu" / f"faq_{label.split('/')[1]}.yml"
    return fill(yaml.safe_load(topic_file.read_text())["responses"][f"utter_{label}"][0]["text"])


def fallback_text(project: Path) -> str:
    return fill(yaml.safe_load((project / "domain.yml").read_text())["responses"]["utter_default"][0]["text"])


def live_model_id(assistant: Assistant) -> str:
    reply = requests.get(f"{assistant.url}/status", params={"token": assistant.token}, timeout=30)
    reply.raise_for_status()
    return reply.json()["model_id"]


def wait_for_job(console: Console, session: requests.Session, job_id: str) -> Dict:
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        state = session.get(f"{console.url}/retrain/{job_id}/state", timeout=30).json()
        if state["status"] not in ("training", "gating"):
            return state
        time.sleep(5)
    raise AssertionError(f"retraining {job_id} did not finish in {JOB_TIMEOUT} s")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def record(name: str, values: Dict) -> None:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / "staff_console.json"
    found = json.loads(path.read_text()) if path.exists() else {}
    found[name] = values
    path.write_text(json.dumps(found, indent=2))


# ---- the staff member's whole task, in the browser ----

@pytest.mark.timeout(JOB_TIMEOUT + 600)
def test_staff_teach_an_unanswered_question_retrain_and_publish_in_the_browser(browser, console, staff_assistant, project):
    visitor, question = None, None
    for candidate in QUESTIONS:
        visitor = "test-" + uuid.uuid4().hex[:12]
        if staff_assistant.say(visitor, candidate)[0]["text"] == fallback_text(project):
            question = candidate
            break
    assert question, "premise: one of QUESTIONS is not understood by the live model yet"
    before_model = live_model_id(staff_assistant)

    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(console.url + "/inbox")
        page.wait_for_url("**/login**")
        page.fill("input[name=username]", USER)
        page.fill("input[name=password]", PASSWORD)
        page.click("button:has-text('Sign in')")
        page.wait_for_url("**/inbox")

        row = page.locator("tr.inbox-item", has_text=question)
        assert row.count() == 1
        assert "not understood" in row.inner_text() and "rest" in row.inner_text()
        row.locator("a.question").click()
        page.wait_for_url("**/inbox/item**")

        # the whole conversation, from Rasa's tracker
        page.click("summary:has-text('Every message')")
        page.click("a[href^='/conversation']")
        page.wait_for_url("**/conversation**")
        conversation = page.inner_text(".conversation")
        assert question in conversation and fallback_text(project) in conversation
        page.go_back()
        page.wait_for_url("**/inbox/item**")

        # find the answer by a word visitors use, and attach the question to it
        all_answers = page.locator("label.answer-option").count()
        page.fill("#answer-search", "twitch")
        assert 0 < page.locator("label.answer-option:visible").count() < all_answers
        option = page.locator(f"label.answer-option:has(input[value='{TARGET}'])")
        assert option.is_visible()
        assert answer_text(project, TARGET)[:60] in option.inner_text()
        option.locator("input").check()
        page.click("button:has-text('Teach it this answer')")
        page.wait_for_url("**/inbox")
        assert "Taught" in page.inner_text(".flash")
        assert page.locator("tr.inbox-item", has_text=question).count() == 0
        examples = yaml.safe_load((project / "data" / "nlu" / TARGET_FILE).read_text())["nlu"][0]["examples"]
        assert f"- {question}\n" in examples

        # retrain: progress, log, then every check of the gate
        page.click("nav >> text=Retrain & publish")
        page.wait_for_url("**/model")
        clicked = time.monotonic()
        page.click("#retrain")
        page.wait_for_url("**/retrain/**")
        # the bar moves while Rasa trains (polled from here: the page's CSP allows no eval)
        deadline = time.monotonic() + JOB_TIMEOUT
        while page.eval_on_selector("#job-progress", "bar => bar.value") <= 5:
            assert time.monotonic() < deadline, "the progress bar never moved"
            time.sleep(1)
        assert "rasa train" in page.inner_text("#job-log")
        page.wait_for_selector(
            "#job-stage.status-passed, #job-stage.status-blocked, #job-stage.status-failed",
            timeout=JOB_TIMEOUT * 1000,
        )
        trained = time.monotonic()
        results = page.locator("tr.check .result").all_inner_texts()
        assert results == ["passed"] * 4, page.inner_text("#checks") + page.inner_text("#job-stage")
        job_id = page.url.rstrip("/").split("/")[-1]

        page.click("#publish")
        page.wait_for_url("**/model", timeout=600_000)
        assert "Published" in page.inner_text(".flash")
        assert job_id in page.inner_text("#live-model")
        published = time.monotonic()
    finally:
        context.close()

    # the visitor's next question gets the answer, in the same conversation
    reply = staff_assistant.say(visitor, question)
    live = time.monotonic()
    assert reply[0]["text"] == answer_text(project, TARGET)
    assert live_model_id(staff_assistant) != before_model
    user_turns = [e["text"] for e in staff_assistant.tracker(visitor)["events"] if e["event"] == "user"]
    assert user_turns == [question, question]
    # the booking details (a custom action) still come through
    booking = texts(staff_assistant.say("test-" + uuid.uuid4().hex[:12], "how do I book an appointment?"))
    assert fill("{booking_url}") in booking
    # the live model is also what `make run` would start from
    published_file = project / "models" / "candidates" / job_id / "model.tar.gz"
    assert (project / "models" / "clinic.tar.gz").stat().st_size == published_file.stat().st_size
    state = json.loads((project / "models" / "candidates" / job_id / "job.json").read_text())
    record("retrain_to_live", {
        "clicked_retrain_to_answer_live_s": round(live - clicked, 1),
        "training_and_gate_s": round(trained - clicked, 1),
        "publish_s": round(published - trained, 1),
        "job_seconds": state["seconds"],
        "checks": {c["name"]: c["summary"] for c in state["checks"]},
    })


# ---- publishing again and again ----

@pytest.mark.timeout(JOB_TIMEOUT + 900)
def test_rasa_memory_after_five_publishes_stays_within_15_percent_of_the_first(console, staff_assistant):
    status = console.cli("status")
    assert status.returncode == 0, status.stderr
    if "Rollback would go to" not in status.stdout:
        # the browser test did not publish: put a fresh candidate live first
        assert console.cli("retrain", timeout=JOB_TIMEOUT).returncode == 0
        assert console.cli("publish", timeout=600).returncode == 0
    pid = staff_assistant.rasa_server_pid()
    before = round(rss_mb(pid), 1)
    memory: List[float] = []
    model_ids = []
    for number in range(5):
        # alternately the previous model and the newest candidate
        command = ("rollback",) if number % 2 == 0 else ("publish",)
        result = console.cli(*command, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
        model_ids.append(live_model_id(staff_assistant))
        # a conversation after each swap, so the new model has really served
        assert staff_assistant.say("test-" + uuid.uuid4().hex[:12], "is dry needling safe?")
        time.sleep(3)
        memory.append(round(rss_mb(pid), 1))
    assert staff_assistant.rasa_server_pid() == pid  # no restart
    assert len(set(model_ids)) == 2 and model_ids[0] != model_ids[1]
    record("publish_memory_mb", {
        "before": before, "after_each_publish": memory, "growth_after_5": round(memory[4] / memory[0] - 1, 3),
    })
    assert memory[4] <= memory[0] * (1 + MAX_MEMORY_GROWTH), memory
    booking = texts(staff_assistant.say("test-" + uuid.uuid4().hex[:12], "how do I book an appointment?"))
    assert fill("{booking_url}") in booking


# ---- the gate ----

def held_out_variants(project: Path) -> List[str]:
    """The held-out FAQ questions, each without its first word: taught as out
    of scope (a staff member declining a batch of real questions), they make
    the assistant decline the originals too. (A word added to each would not
    do: the model would learn that word instead.)"""
    variants = []
    for item in load_items(project / "tests" / "held_out" / "written.yml"):
        words = item.text.split()
        if item.expect[0].startswith("faq/") and len(words) >= 3:
            variants.append(" ".join(words[1:]))
    return variants


@pytest.mark.timeout(JOB_TIMEOUT + 600)
def test_an_edit_that_breaks_the_held_out_set_is_blocked_from_publishing(console, staff_assistant, project):
    session = console.session(USER, PASSWORD)
    token = console.csrf(session)
    taught = 0
    for text in held_out_variants(project):
        reply = session.post(
            console.url + "/teach/phrasing", data={"csrf_token": token, "refs": "", "label": "out_of_scope", "text": text},
            allow_redirects=False, timeout=30,
        )
        taught += reply.status_code == 303
    assert taught >= 75
    live_before = live_model_id(staff_assistant)

    reply = session.post(console.url + "/retrain", data={"csrf_token": token}, allow_redirects=False, timeout=30)
    assert reply.status_code == 303 and reply.headers["location"].startswith("/retrain/")
    job_id = reply.headers["location"].rsplit("/", 1)[1]
    state = wait_for_job(console, session, job_id)

    assert state["status"] == "blocked", state
    assert not state["publishable"]
    held_out = next(check for check in state["checks"] if check["name"] == "held_out")
    assert held_out["passed"] is False
    assert re.search(r"written set: [\d.]+% right, (below [\d.]+%|down from [\d.]+%)", held_out["summary"], re.I), held_out
    page = session.get(f"{console.url}/retrain/{job_id}", timeout=30).text
    assert "cannot be published" in page and 'id="publish"' not in page
    # publishing it anyway is refused, and the live model stays
    reply = session.post(console.url + "/publish", data={"csrf_token": token, "job": job_id}, timeout=60)
    assert "Not published" in reply.text and "did not pass the gate" in reply.text
    assert console.cli("publish", job_id).returncode == 1
    assert live_model_id(staff_assistant) == live_before
    record("blocked_edit", {"held_out": held_out["summary"], "job_seconds": state["seconds"]})
