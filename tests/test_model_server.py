"""Publishing to Rasa servers that share no model files with the staff console.

Two assistants (scripts/serve.py), each started from its own copy of the
model in its own folder, with its own database, and one console (`python -m
staff serve`) on a copy of the project. The console publishes with `PUT
/model` naming its own model server (staff/model_server.py): each Rasa
server fetches the archive over HTTP with the API token. A candidate here is
the trained model under a new model id (its metadata.json rewritten):
training one takes minutes, and tests/test_staff_console_retraining.py does that part.
"""

import hashlib
import json
import os
import secrets
import shutil
import signal
import tarfile
import threading
import uuid
from pathlib import Path
from typing import List, Tuple

import pytest
import requests

from bench.publishing import with_new_model_id
from conftest import MODEL, ROOT, Assistant, Console, texts
from staff.training import Job

TOKEN = "-publish-token-" + secrets.token_hex(8)


def add_candidate(project: Path, status: str = "passed") -> Tuple[str, str]:
    """A candidate in the console's registry, as a finished retraining leaves it: (job id, model id)."""
    job_id = f"20990101-000000-{secrets.token_hex(2)}"
    directory = project / "models" / "candidates" / job_id
    directory.mkdir(parents=True)
    job = Job(job_id, directory, "test", status=status, stage="Finished")
    job.model_id = with_new_model_id(MODEL, job.model)
    job.save()
    return job_id, job.model_id


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("publish-project")
    shutil.copytree(ROOT / "data", root / "data")  # the clinic's facts: the probe's booking link
    (root / "models").mkdir()
    shutil.copy2(MODEL, root / "models" / "clinic.tar.gz")
    return root


@pytest.fixture(scope="module")
def servers(tmp_path_factory, trained_model) -> List[Assistant]:
    """Two assistants, each with a model file of its own, started side by side."""
    assistants = []
    for name in ("machine-a", "machine-b"):
        var = tmp_path_factory.mktemp(name)
        (var / "model").mkdir()
        own_model = var / "model" / "clinic.tar.gz"
        shutil.copy2(MODEL, own_model)
        env = {"RASA_API_TOKEN": TOKEN, "DATABASE_URL": f"sqlite:///{var / 'clinic.db'}"}
        assistants.append(Assistant(var, f"publish-{name}", env=env, model=own_model))
    errors = []
    threads = [threading.Thread(target=lambda a=a: _start(a, errors)) for a in assistants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    yield assistants
    for assistant in assistants:
        assistant.stop()


def _start(assistant: Assistant, errors: list) -> None:
    try:
        assistant.start()
    except Exception as error:  # reported by the fixture
        errors.append(f"{assistant.name}: {error}")


@pytest.fixture(scope="module")
def console(project, servers) -> Console:
    running = Console(project, servers, log_name="publish-console").start()
    yield running
    running.stop()


def status(assistant: Assistant) -> dict:
    reply = requests.get(f"{assistant.url}/status", params={"token": TOKEN}, timeout=30)
    reply.raise_for_status()
    return reply.json()


def served_count(console: Console, model_id: str) -> int:
    return console.log_path.read_text().count(f"serving model {model_id}")


def test_models_are_served_to_the_token_holder_only_and_nothing_else(console, project):
    live_file = project / "models" / "clinic.tar.gz"
    with tarfile.open(live_file) as archive:
        live_id = json.load(archive.extractfile("metadata.json"))["model_id"]
    live = f"{console.url}/models/live"
    assert requests.get(live, timeout=30).status_code == 401
    assert requests.get(live, params={"token": TOKEN + "x"}, timeout=30).status_code == 401
    assert requests.get(live, headers={"Authorization": "Bearer wrong"}, timeout=30).status_code == 401

    reply = requests.get(live, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    assert reply.status_code == 200 and reply.headers["ETag"] == f'"{live_id}"', reply.headers
    assert hashlib.sha256(reply.content).hexdigest() == hashlib.sha256(live_file.read_bytes()).hexdigest()
    for held in (f'"{live_id}"', live_id, f'W/"{live_id}"', f'"{uuid.uuid4().hex}", "{live_id}"', "*"):
        unchanged = requests.get(live, params={"token": TOKEN}, headers={"If-None-Match": held}, timeout=30)
        assert unchanged.status_code == 304 and not unchanged.content, held

    # a live file that is not a model archive: nothing to serve, never a 500
    kept = live_file.with_name("kept.tar.gz")
    live_file.rename(kept)
    try:
        for broken in ("junk", "folder"):
            if broken == "junk":
                live_file.write_bytes(b"not a model archive" * 100)
            else:
                live_file.mkdir()
            reply = requests.get(live, params={"token": TOKEN}, timeout=30)
            assert reply.status_code == 404, (broken, reply.status_code)
            live_file.unlink() if broken == "junk" else live_file.rmdir()
    finally:
        kept.rename(live_file)

    blocked_job, blocked_id = add_candidate(project, status="blocked")
    for name in (blocked_id, uuid.uuid4().hex, "..%2F..%2Fdata%2Fclinic.yml", "clinic.tar.gz", blocked_job):
        reply = requests.get(f"{console.url}/models/{name}", params={"token": TOKEN}, timeout=30)
        assert reply.status_code == 404, (name, reply.status_code)
    for path in ("/models/", "/models/live/../../data/clinic.yml", "/data/clinic.yml"):
        reply = requests.get(console.url + path, params={"token": TOKEN}, timeout=30, allow_redirects=False)
        assert reply.status_code in (303, 404), (path, reply.status_code)  # 303: to the sign-in page


def test_publishing_reaches_servers_that_share_no_model_files(console, project, servers, tmp_path):
    job_id, model_id = add_candidate(project)
    published = console.cli("publish", job_id, timeout=600)
    assert published.returncode == 0, published.stdout + published.stderr
    for assistant in servers:
        running = status(assistant)
        assert running["model_id"] == model_id
        # loaded from Rasa's download folder, not from a path of the console's
        assert str(project) not in running["model_file"] and str(assistant.var_dir) not in running["model_file"]
        assert "(917) 830-4440" in texts(assistant.say(f"after-publish-{assistant.name}", "/book_appointment"))
    # each server fetched it once for the switch (the probe conversations need no more)
    assert served_count(console, model_id) == len(servers)

    # A server started later on a machine of its own starts from the live
    # model, fetched from the console, not from the model file it was given.
    joining = Assistant(
        tmp_path, "publish-machine-c", model=tmp_path / "no-such-model.tar.gz",
        env={"RASA_API_TOKEN": TOKEN, "MODEL_SERVER_URL": console.url,
             "DATABASE_URL": f"sqlite:///{tmp_path / 'clinic.db'}"},
    ).start()
    try:
        assert status(joining)["model_id"] == model_id
        assert "(917) 830-4440" in texts(joining.say("joining", "/book_appointment"))
    finally:
        joining.stop()


def test_a_server_that_fails_its_check_sends_every_server_back(console, project, servers):
    before = {status(assistant)["model_id"] for assistant in servers}
    assert len(before) == 1
    job_id, model_id = add_candidate(project)
    # The second machine's action server stops answering: its probe after
    # the switch cannot get the booking details (a custom action).
    actions = servers[1].action_server_pid()
    os.kill(actions, signal.SIGSTOP)
    try:
        published = console.cli("publish", job_id, timeout=600)
    finally:
        os.kill(actions, signal.SIGCONT)
    assert published.returncode == 1, published.stdout + published.stderr
    assert "booking details" in published.stderr and "put back on the previous model" in published.stderr
    assert [status(assistant)["model_id"] for assistant in servers] == [before.pop()] * len(servers)
    assert served_count(console, model_id) == len(servers)  # both had switched before the probes



def test_the_token_is_in_no_log(console, servers):
    """Last: after every fetch, publish and failure above."""
    logs = [console.log_path] + [assistant.log_path for assistant in servers]
    assert all(path.exists() for path in logs)
    for path in logs:
        assert TOKEN not in path.read_text(errors="replace"), path
