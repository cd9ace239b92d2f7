"""The staff console's handlers (staff/app.py, staff/pages/), in process with
Sanic's test client, on a copy of the project and a throwaway database: no
Rasa server and no browser. The browser tests check the pages; these check
what the handlers decide."""

import re
import shutil
from pathlib import Path
from typing import Dict, Tuple

import pytest

from clinic import PROJECT_ROOT, store
from staff import audit, auth, inbox
from staff.app import create_app
from staff.settings import Settings
from staff.training_data import TrainingData

PASSWORD = "a long enough password"


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """The files the console reads and edits, and a database of its own."""
    root = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "data", root / "data")
    shutil.copy2(PROJECT_ROOT / "domain.yml", root / "domain.yml")
    shutil.copytree(PROJECT_ROOT / "tests" / "held_out", root / "tests" / "held_out")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'clinic.db'}")
    store.reset_engine()
    yield root
    store.reset_engine()


@pytest.fixture
def client(project):
    # no Rasa server listens here: the pages tested never need one
    return create_app(Settings(project_dir=project, rasa_urls=["http://127.0.0.1:9"], rasa_token="token")).test_client


def signed_in(username: str = "anna") -> Tuple[Dict[str, str], str]:
    """A session's cookie and its CSRF token, as the sign-in form would give them."""
    auth.create_account(username, PASSWORD)
    token = auth.sign_in(username, PASSWORD, 5, 15, 8).session_token
    return {auth.SESSION_COOKIE: token}, auth.session_for(token).csrf_token


def test_a_page_without_a_session_goes_to_the_sign_in_form(client):
    _, reply = client.get("/inbox", allow_redirects=False)
    assert reply.status == 303
    assert reply.headers["location"] == "/login?next=%2Finbox"


def test_a_form_or_progress_poll_without_a_session_is_401(client):
    _, reply = client.post("/answers/edit", data={"label": "faq/safety", "text": "x"}, allow_redirects=False)
    assert reply.status == 401
    assert reply.json == {"error": "sign in first"}
    _, reply = client.get("/retrain/20260101-000000-abcd/state")
    assert reply.status == 401


def test_signing_in_through_the_form_opens_a_session_and_is_logged(client):
    auth.create_account("anna", PASSWORD)
    _, page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert page.headers["x-frame-options"] == "DENY"
    _, reply = client.post(
        "/login", data={"csrf_token": token, "username": "Anna", "password": PASSWORD, "next": "/answers"},
        cookies={auth.LOGIN_COOKIE: token}, allow_redirects=False,
    )
    assert reply.status == 303
    assert reply.headers["location"] == "/answers"
    assert auth.session_for(reply.cookies[auth.SESSION_COOKIE]).username == "anna"
    assert [(entry["actor"], entry["action"]) for entry in audit.recent()] == [("anna", "sign_in")]


def test_a_wrong_password_is_401_and_logged(client):
    auth.create_account("anna", PASSWORD)
    _, page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    _, reply = client.post("/login", data={"csrf_token": token, "username": "anna", "password": "not it at all"},
                           cookies={auth.LOGIN_COOKIE: token})
    assert reply.status == 401
    assert "Wrong user name or password." in reply.text
    assert [entry["action"] for entry in audit.recent()] == ["sign_in_failed"]


def test_a_form_without_the_sessions_csrf_token_is_refused(client, project):
    cookies, _ = signed_in()
    label = TrainingData(project).answers()[0].label
    for token in (None, "not-the-token"):
        data = {"label": label, "text": "Changed.", **({"csrf_token": token} if token else {})}
        _, reply = client.post("/answers/edit", data=data, cookies=cookies, allow_redirects=False)
        assert reply.status == 403
        assert "security token is missing or wrong" in reply.text
    assert [entry["action"] for entry in audit.recent()] == []


def test_a_form_from_another_site_is_refused(client):
    cookies, csrf = signed_in()
    _, reply = client.post("/logout", data={"csrf_token": csrf}, cookies=cookies,
                           headers={"Origin": "https://elsewhere.example"}, allow_redirects=False)
    assert reply.status == 403
    assert "not sent from the console" in reply.text


def test_the_inbox_lists_an_unanswered_question(client):
    cookies, _ = signed_in()
    store.record_fallback("visitor-1", "rest", "do you treat migraines in children", "low_confidence",
                          [{"name": "faq/safety", "confidence": 0.41}])
    _, reply = client.get("/inbox", cookies=cookies)
    assert reply.status == 200
    assert "do you treat migraines in children" in reply.text
    _, answered = client.get("/inbox?status=taught", cookies=cookies)
    assert "do you treat migraines in children" not in answered.text


def test_an_answer_edit_is_written_and_recorded_in_the_activity_log(client, project):
    cookies, csrf = signed_in()
    answer = TrainingData(project).answers()[0]
    new_text = answer.text.strip() + " Ask us anything."
    _, reply = client.post("/answers/edit", data={"csrf_token": csrf, "label": answer.label, "text": new_text},
                           cookies=cookies, allow_redirects=False)
    assert reply.status == 303
    assert reply.headers["location"] == "/answers"
    assert TrainingData(project).answer(answer.label).text == new_text
    [entry] = audit.recent()
    assert (entry["actor"], entry["action"], entry["target"]) == ("anna", "edit_answer", answer.label)
    assert "+" in entry["detail"]["diff"] and "Ask us anything." in entry["detail"]["diff"]
    assert entry["detail"]["file"].endswith(".yml")
    _, activity = client.get("/activity", cookies=cookies)
    assert answer.label in activity.text and "edit answer" in activity.text


def test_a_refused_edit_shows_the_form_again_with_the_reason(client, project):
    cookies, csrf = signed_in()
    label = TrainingData(project).answers()[0].label
    _, reply = client.post("/answers/edit", data={"csrf_token": csrf, "label": label, "text": "Call {nobody}."},
                           cookies=cookies)
    assert reply.status == 422
    assert "Unknown placeholder(s) {nobody}" in reply.text
    assert audit.recent() == []


def test_an_unknown_page_is_404(client):
    cookies, _ = signed_in()
    _, reply = client.get("/answers/edit?label=faq/no_such_answer", cookies=cookies)
    assert reply.status == 404
    assert "There is no such page." in reply.text


def test_a_rollback_with_nothing_to_go_back_to_is_explained_and_logged(client):
    cookies, csrf = signed_in()
    _, reply = client.post("/rollback", data={"csrf_token": csrf}, cookies=cookies, allow_redirects=False)
    assert (reply.status, reply.headers["location"]) == (303, "/model")
    [entry] = audit.recent()
    assert (entry["action"], entry["detail"]) == ("rollback_failed", {"reason": "there is no earlier model to go back to"})
    _, page = client.get("/model", cookies=cookies)
    assert "Not rolled back: there is no earlier model to go back to" in page.text


def test_teaching_a_phrasing_marks_the_item_taught_and_logs_it(client, project):
    cookies, csrf = signed_in()
    text = "can i get needled the week i have a head cold"
    store.record_fallback("visitor-2", "sms", text, "low_confidence", [{"name": "faq/safety", "confidence": 0.4}])
    _, reply = client.post("/teach/phrasing", data={"csrf_token": csrf, "refs": "fallback:1", "label": "faq/safety",
                                                    "text": text}, cookies=cookies, allow_redirects=False)
    assert (reply.status, reply.headers["location"]) == (303, "/inbox")
    assert text in TrainingData(project).answer("faq/safety").examples
    [entry] = audit.recent()
    assert (entry["action"], entry["target"], entry["detail"]["items"]) == ("add_phrasing", "faq/safety", "fallback:1")
    _, page = client.get("/inbox", cookies=cookies)
    assert "Retrain and publish to put it live." in page.text
    assert inbox.inbox() == [] and [group.text for group in inbox.inbox("taught")] == [text]
