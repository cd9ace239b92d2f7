"""The staff console end to end, with real servers: nothing without a
session, CSRF tokens, locking an account after wrong passwords, and every
conversation opening whatever its id. Teaching, retraining and publishing in
the browser are tests/test_staff_console_retraining.py's; both files use one
assistant and one console on a copy of the project (tests/staff_console_fixtures.py).
"""

import hashlib
import html
import re
import secrets
import uuid
from datetime import datetime, timezone
from pathlib import Path

import requests
import sqlalchemy as sa
import yaml

from clinic import store
from conftest import store_conversation
from staff_console_fixtures import PASSWORD, TARGET, USER


def tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode() + file.read_bytes())
    return digest.hexdigest()


# ---- sign-in, sessions, CSRF ----

PAGES = ["/", "/inbox", "/inbox/item?refs=fallback:1", "/answers", "/answers/edit?label=faq/safety",
         "/model", "/activity", "/conversation?ref=fallback:1", "/retrain/20990101-000000-abcd",
         "/static/console.js"]
FORMS = ["/teach/phrasing", "/teach/new-answer", "/teach/status", "/answers/edit", "/retrain",
         "/publish", "/rollback", "/logout"]


def test_nothing_is_reachable_without_a_session(console, project):
    before = tree_digest(project / "data")
    forged = {"staff_session": secrets.token_urlsafe(32)}
    for cookies in ({}, forged):
        for path in PAGES:
            reply = requests.get(console.url + path, cookies=cookies, allow_redirects=False, timeout=30)
            assert reply.status_code == 303 and reply.headers["location"].startswith("/login"), path
            assert "inbox" not in reply.text.lower()
        reply = requests.get(console.url + "/retrain/20990101-000000-abcd/state", cookies=cookies, timeout=30)
        assert reply.status_code == 401
        for path in FORMS:
            reply = requests.post(
                console.url + path, cookies=cookies, allow_redirects=False, timeout=30,
                data={"label": TARGET, "text": "what about a forged request", "status": "dismissed", "refs": "fallback:1"},
            )
            assert reply.status_code == 401, path
    assert tree_digest(project / "data") == before
    # the sign-in page itself shows nothing of the console
    login = requests.get(console.url + "/login", timeout=30)
    assert login.ok and "Sign in" in login.text and "Retrain" not in login.text
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_a_form_without_the_right_csrf_token_is_refused(console, project):
    session = console.session(USER, PASSWORD)
    path = project / "data" / "nlu" / "faq_practitioner.yml"
    original = path.read_text()
    text = yaml.safe_load(original)["responses"]["utter_faq/practitioner"][0]["text"]
    changed = text.replace("licensed", "fully licensed", 1) if "licensed" in text else text + " Thanks."
    form = {"label": "faq/practitioner", "variation": "0", "text": changed}
    for token in (None, "", "not-the-token", console.csrf(session)[:-1]):
        data = dict(form, **({"csrf_token": token} if token is not None else {}))
        reply = session.post(console.url + "/answers/edit", data=data, allow_redirects=False, timeout=30)
        assert reply.status_code == 403, token
        assert "security token" in reply.text
    # the right token from another site's page is refused too
    reply = session.post(
        console.url + "/answers/edit", data=dict(form, csrf_token=console.csrf(session)),
        headers={"Origin": "https://evil.example"}, allow_redirects=False, timeout=30,
    )
    assert reply.status_code == 403
    assert path.read_text() == original
    # the same form with the session's token goes through, and back again
    token = console.csrf(session)
    reply = session.post(console.url + "/answers/edit", data=dict(form, csrf_token=token), allow_redirects=False, timeout=30)
    assert reply.status_code == 303 and path.read_text() != original
    reply = session.post(console.url + "/answers/edit", data=dict(form, text=text, csrf_token=token), allow_redirects=False, timeout=30)
    assert reply.status_code == 303 and path.read_text() == original
    # a sign-in form posted without its own token is refused as well
    reply = requests.post(console.url + "/login", data={"username": USER, "password": PASSWORD}, allow_redirects=False, timeout=30)
    assert reply.status_code == 403 and "staff_session" not in reply.headers.get("set-cookie", "")
    activity = session.get(console.url + "/activity", timeout=30).text
    assert activity.count("edit answer") >= 2 and USER in activity


def test_repeated_wrong_passwords_lock_the_account(console):
    password = secrets.token_urlsafe(18)
    assert console.cli("user", "add", "front-desk", password=password).returncode == 0
    session = requests.Session()
    for attempt in range(5):
        token = re.search(r'name="csrf_token" value="([^"]+)"', session.get(console.url + "/login", timeout=30).text).group(1)
        reply = session.post(console.url + "/login", allow_redirects=False, timeout=30, data={
            "csrf_token": token, "username": "front-desk", "password": f"guess {attempt}"})
        assert reply.status_code == 401
    assert "locked" in reply.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', session.get(console.url + "/login", timeout=30).text).group(1)
    reply = session.post(console.url + "/login", allow_redirects=False, timeout=30, data={
        "csrf_token": token, "username": "front-desk", "password": password})
    assert reply.status_code == 401 and "locked" in reply.text
    assert session.get(console.url + "/inbox", allow_redirects=False, timeout=30).status_code == 303
    # an engineer's new password unlocks it
    assert console.cli("user", "password", "front-desk", password=password + "-new").returncode == 0
    console.session("front-desk", password + "-new")


# ---- a conversation, whatever its id ----

def test_every_conversation_opens_in_the_console_whatever_characters_its_id_holds(console, staff_assistant):
    tag = uuid.uuid4().hex[:8]
    conversations = {  # id: channel
        f"+1917555{int(tag, 16) % 10**4:04d}": "sms",  # an SMS conversation: the phone number
        f"import/{tag}/2024": "rest",
        f"walk in {tag}": "rest",
        f"José Ñandú {tag}": "rest",
    }
    engine = sa.create_engine(staff_assistant.env["DATABASE_URL"])
    refs = {}
    try:
        with engine.begin() as connection:
            for number, (sender, channel) in enumerate(conversations.items()):
                question = f"can I come in on sunday? ({tag}-{number})"
                turns = [(question, "We are open Monday to Saturday."), ("see you monday then", "Take care!")]
                store_conversation(staff_assistant, sender, turns)
                # dismissed: an inbox item of its own, out of the other tests' inbox
                row = connection.execute(store.fallbacks.insert().values(
                    created_at=datetime.now(timezone.utc), sender_id=sender, channel=channel, text=question,
                    kind="low_confidence", predictions="[]", status="dismissed",
                ))
                refs[sender] = (f"fallback:{row.inserted_primary_key[0]}", question)
    finally:
        engine.dispose()
    session = console.session(USER, PASSWORD)
    for sender, (ref, question) in refs.items():
        page = session.get(f"{console.url}/conversation", params={"ref": ref}, timeout=60)
        assert page.status_code == 200, (sender, page.text[:300])
        conversation = page.text.split('<ol class="conversation">', 1)[1]
        for text in (question, "We are open Monday to Saturday.", "see you monday then", "Take care!"):
            assert html.escape(text) in conversation, (sender, text, page.text[-1500:])
        assert "Nothing is stored" not in page.text and "could not be loaded" not in page.text
        assert f"{conversations[sender]} visitor " in page.text and html.escape(sender) not in page.text
