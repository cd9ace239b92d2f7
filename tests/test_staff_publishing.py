"""Publishing and rolling back (staff/publishing.py) against small stand-in
Rasa servers on loopback ports: each answers PUT /model, GET /status and the
action probe as Rasa does, and one can be told to fail a load. No training
and no real model load, so every path, including putting every server back
after a failure, runs in a second."""

import io
import json
import tarfile
import threading
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import List, Optional
from urllib.parse import urlparse

import pytest

from clinic import PROJECT_ROOT, store
from conftest import serve_site
from staff import audit
from staff.publishing import PublishFailed, Publisher
from staff.registry import ModelRegistry
from staff.settings import Settings
from staff.training import Job
from staff.training_data import TrainingData

RUNNING_ID = "a" * 32
NEW_ID = "b" * 32


def model_archive(path: Path, model_id: str) -> Path:
    """A stand-in model: only the metadata.json that names it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = json.dumps({"model_id": model_id, "trained_at": 0}).encode()
    with tarfile.open(path, "w:gz") as archive:
        member = tarfile.TarInfo("metadata.json")
        member.size = len(raw)
        archive.addfile(member, io.BytesIO(raw))
    return path


def rasa_server(booking_url: str, refuse: Optional[str] = None):
    """A handler class for one stand-in Rasa server, starting on RUNNING_ID;
    it answers 500 to loading the model `refuse`."""

    class FakeRasa(BaseHTTPRequestHandler):
        model_id = RUNNING_ID
        loads: List[str] = []
        lock = threading.Lock()

        def log_message(self, *args) -> None:
            pass

        def reply(self, status: int, body=None, headers=None) -> None:
            raw = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def body(self):
            return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")

        def do_GET(self):
            if urlparse(self.path).path == "/status":
                return self.reply(200, {"model_id": type(self).model_id, "model_file": "model.tar.gz"})
            self.reply(404, {})

        def do_PUT(self):
            wanted = self.body()["model_server"]["url"].rsplit("/", 1)[1]
            with self.lock:
                type(self).loads.append(wanted)
                if wanted == refuse:
                    return self.reply(500, {"message": "could not be loaded"})
                type(self).model_id = wanted
            self.reply(204)

        def do_POST(self):
            path = urlparse(self.path).path
            self.body()
            if path == "/webhooks/rest/webhook":  # the booking details, from the custom action
                return self.reply(200, [{"text": f"Book online: {booking_url}"}], {"X-Conversation-Id": "probe-1"})
            if path == "/conversations/probe-1/trigger_intent":
                return self.reply(200, {})
            self.reply(404, {})

    return FakeRasa


class FakeConsoleModels(BaseHTTPRequestHandler):
    """The console's model server, asked as a server already holding the model asks: 304."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self):
        self.send_response(304 if self.headers.get("If-None-Match") else 404)
        self.end_headers()


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    (tmp_path / "project" / "data").mkdir(parents=True)
    (tmp_path / "project" / "data" / "clinic.yml").write_text((PROJECT_ROOT / "data" / "clinic.yml").read_text())
    model_archive(tmp_path / "project" / "models" / "clinic.tar.gz", RUNNING_ID)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'clinic.db'}")
    store.reset_engine()
    yield tmp_path / "project"
    store.reset_engine()


@contextmanager
def servers(project: Path, refuse_on_third: Optional[str] = None):
    """Three stand-in Rasa servers and the console's model server; yields (settings, handler classes)."""
    booking_url = TrainingData(project).facts()["booking_url"]
    handlers = [rasa_server(booking_url), rasa_server(booking_url), rasa_server(booking_url, refuse_on_third)]
    with ExitStack() as stack:
        running = [stack.enter_context(contextmanager(serve_site)(handler)) for handler in [*handlers, FakeConsoleModels]]
        urls = [f"http://127.0.0.1:{server.server_address[1]}" for server in running]
        yield Settings(project_dir=project, rasa_urls=urls[:3], rasa_token="token", model_server_url=urls[3]), handlers


def candidate(settings: Settings, job_id: str, model_id: str) -> Job:
    directory = settings.candidates_dir / job_id
    model_archive(directory / "model.tar.gz", model_id)
    return Job(job_id, directory, "anna", status="passed", model_id=model_id)


def test_a_publish_that_fails_on_one_server_puts_every_server_back(project):
    with servers(project, refuse_on_third=NEW_ID) as (settings, handlers):
        with pytest.raises(PublishFailed) as failed:
            Publisher(settings).publish(candidate(settings, "20260101-000000-0001", NEW_ID), "anna")
        assert "Every server was put back on the previous model." in str(failed.value)
        assert [handler.loads for handler in handlers] == [[NEW_ID, RUNNING_ID]] * 3  # the third refused it
        assert [handler.model_id for handler in handlers] == [RUNNING_ID] * 3
    registry = ModelRegistry(settings)
    assert registry.live().kind == "running"  # the model the servers started with, kept for a rollback
    assert registry.model_id_of(settings.live_model_file) == RUNNING_ID
    assert "publish" not in [entry["action"] for entry in audit.recent()]


def test_publish_then_rollback_puts_every_server_back_on_the_model_they_started_with(project):
    with servers(project) as (settings, handlers):
        publisher = Publisher(settings)
        published = publisher.publish(candidate(settings, "20260101-000000-0001", NEW_ID), "anna")
        assert (published.kind, published.candidate, published.model_id) == ("publish", "20260101-000000-0001", NEW_ID)
        assert [handler.model_id for handler in handlers] == [NEW_ID] * 3
        assert publisher.registry.model_id_of(settings.live_model_file) == NEW_ID  # what `make run` loads next
        assert publisher.registry.protected_candidates() == ["20260101-000000-0001", f"running-{RUNNING_ID[:8]}"]

        back = publisher.rollback("anna")
        assert (back.kind, back.model_id, back.candidate) == ("rollback", RUNNING_ID, f"running-{RUNNING_ID[:8]}")
        assert [handler.model_id for handler in handlers] == [RUNNING_ID] * 3
        assert publisher.registry.model_id_of(settings.live_model_file) == RUNNING_ID
        with pytest.raises(PublishFailed, match="there is no earlier model to go back to"):
            publisher.rollback("anna")
    assert [entry["action"] for entry in audit.recent()] == ["rollback", "publish"]


def test_the_same_model_is_not_published_twice(project):
    with servers(project) as (settings, handlers):
        publisher = Publisher(settings)
        with pytest.raises(PublishFailed, match="this model is already live"):
            publisher.publish(candidate(settings, "20260101-000000-0001", RUNNING_ID), "anna")
        assert [handler.loads for handler in handlers] == [[]] * 3


def test_a_candidate_that_did_not_pass_the_gate_is_refused(project):
    with servers(project) as (settings, handlers):
        job = candidate(settings, "20260101-000000-0001", NEW_ID)
        job.status, job.checks = "blocked", [{"passed": False, "summary": "held-out accuracy fell"}]
        with pytest.raises(PublishFailed, match="did not pass the gate: held-out accuracy fell"):
            Publisher(settings).publish(job, "anna")
        assert [handler.model_id for handler in handlers] == [RUNNING_ID] * 3
