"""Putting a model live on the running Rasa server(s), and rolling it back.

`PUT /model` swaps the model inside the running server: no restart, and
conversations carry on (they live in the tracker store). The server fetches
the archive from the console (Rasa's model server protocol,
staff/model_server.py), so a server on another machine needs no shared
files. After the swap every server must report the new model id and still
reach the action server (Rasa issue #3634: a reloaded agent once lost its
action endpoint): a probe conversation asks for the booking details, which
a custom action gives, and is then erased ("forget me"). If anything fails,
every server already switched goes back to the previous model.
"""

import os
import secrets
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Optional

import requests
from filelock import FileLock

from staff import audit
from staff.rasa_api import RasaServers, RasaUnavailable
from staff.registry import ModelRegistry, Published
from staff.settings import Settings
from staff.training import Job, Retrainer
from staff.training_data import TrainingData

# Intent payloads skip the NLU: the booking intent's rule runs action_booking_details
# (a custom action), and "forget me" erases the probe conversation afterwards.
# The "Book a visit" button's payload: a command the assistant issues itself.
CHECK_MESSAGE = "/book_appointment"
ERASE_INTENT = "request_data_erasure"
_in_process = threading.Lock()


class PublishFailed(RuntimeError):
    pass


class Publisher:
    """Puts a candidate live on every Rasa server, or the previous model back;
    both raise PublishFailed (or RasaUnavailable) with the reason."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.servers = RasaServers(settings.rasa_urls, settings.rasa_token)
        self.registry = ModelRegistry(settings)

    def server_states(self) -> Dict[str, Dict]:
        """What each server reports, with the model named when it is one of ours."""
        states = self.servers.statuses()
        known = {row.model_id: row for row in self.registry.history(50)}
        for state in states.values():
            published = known.get(state.get("model_id"))
            state["candidate"] = published.candidate if published else None
        return states

    # ---- publishing ----

    @contextmanager
    def _exclusive(self):
        """One publish or rollback at a time, from the console and the command line."""
        with _in_process, FileLock(self.settings.models_dir / ".staff-publish.lock"):
            yield

    def _record_running_model(self, actor: str) -> Optional[Published]:
        """Before the first publish: keep the model the servers started with, so
        the first publish can be rolled back too."""
        live = self.registry.live()
        if live is not None:
            return live
        state = self.servers.status(self.settings.rasa_urls[0])
        running_id = state.get("model_id")
        source = self.settings.live_model_file
        if not running_id or self.registry.metadata(source).get("model_id") != running_id:
            return None  # started from a file we do not know: nothing to roll back to
        keep = self.settings.candidates_dir / f"running-{running_id[:8]}"
        keep.mkdir(parents=True, exist_ok=True)
        kept_model = keep / "model.tar.gz"
        if not kept_model.exists():
            shutil.copy2(source, kept_model)
        return self.registry.add(actor, running_id, kept_model, keep.name, "running", None)

    def _check_actions(self, url: str) -> None:
        """A custom action answers through the reloaded server (issue #3634)."""
        probe = None
        expected = TrainingData(self.settings.project_dir).facts().get("booking_url", "")
        try:
            probe, messages = self.servers.say(url, CHECK_MESSAGE)
            texts = " ".join(message.get("text") or "" for message in messages)
            if not expected or expected not in texts:
                raise PublishFailed(
                    f"{url} no longer reaches the action server: the booking details (a custom action) did not come"
                )
        except RasaUnavailable as error:
            raise PublishFailed(f"{url} no longer reaches the action server ({error})") from None
        finally:
            try:  # the probe conversation is not a visitor's: erase it
                if probe:
                    self.servers.trigger_intent(url, probe, ERASE_INTENT)
            except RasaUnavailable:
                pass

    def _check_served(self, model_id: str) -> None:
        """Before any server switches: the console serves the archive where the
        servers will fetch it (a wrong STAFF_MODEL_SERVER_URL fails here).
        Asked as a server holding it would ask, so nothing is downloaded: 304."""
        url = self.settings.model_url(model_id)
        try:
            reply = requests.get(url, timeout=10, headers={
                "Authorization": f"Bearer {self.settings.rasa_token}", "If-None-Match": f'"{model_id}"'})
        except requests.RequestException as error:
            raise PublishFailed(f"the console cannot be reached at {url} ({type(error).__name__}); "
                                "start it (make staff), or set STAFF_MODEL_SERVER_URL to where the Rasa servers "
                                "reach it") from None
        if reply.status_code != 304:
            raise PublishFailed(f"the console does not serve model {model_id} at {url} ({reply.status_code})")

    def _switch(self, url: str, model_id: str) -> None:
        self.servers.load_model(url, self.settings.model_url(model_id))
        running = self.servers.status(url).get("model_id")
        if running != model_id:
            raise PublishFailed(f"{url} reports model {running} after loading {model_id}")

    def _put_live(self, model_id: str) -> None:
        """Every server fetches the model from the console and switches, one at
        a time (the others keep answering); then every server is probed. If
        any step fails on any server, every switched server goes back to the
        model they all ran before, fetched from the console the same way."""
        previous = self.registry.live_model_file()
        previous_id = self.registry.model_id_of(previous) if previous else None
        self._check_served(model_id)
        switched = []
        try:
            for url in self.settings.rasa_urls:
                switched.append(url)
                self._switch(url, model_id)
            for url in self.settings.rasa_urls:
                self._check_actions(url)
        except (PublishFailed, RasaUnavailable) as error:
            restored = bool(previous_id)
            for url in switched if previous_id else []:
                try:
                    self._switch(url, previous_id)
                except (PublishFailed, RasaUnavailable):
                    restored = False
            raise PublishFailed(
                f"{error}. " + ("Every server was put back on the previous model." if restored else
                                "The previous model could not be put back on every server: see /model.")
            ) from None

    def _mirror_to_live_file(self, path: Path) -> None:
        """`make run` starts from models/clinic.tar.gz: make that the live model too."""
        target = self.settings.live_model_file
        if target.exists() and self.registry.metadata(target).get("model_id") == self.registry.metadata(path).get("model_id"):
            return
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        shutil.copy2(path, temporary)
        os.replace(temporary, target)
        # newer than data/: make sees it is up to date and does not retrain it
        os.utime(target)

    def publish(self, job: Job, actor: str) -> Published:
        if not job.publishable:
            reason = next((c["summary"] for c in job.checks if c.get("passed") is False), job.error or job.status)
            raise PublishFailed(f"candidate {job.id} did not pass the gate: {reason}")
        with self._exclusive():
            before = self._record_running_model(actor)
            if before is not None and before.model_id == job.model_id:
                raise PublishFailed("this model is already live")
            self._put_live(job.model_id)
            published = self.registry.add(actor, job.model_id, job.model, job.id, "publish", before.id if before else None)
            self._mirror_to_live_file(job.model)
        audit.record(actor, "publish", job.id, model_id=job.model_id, servers=self.settings.rasa_urls,
                     previous=before.candidate if before else None)
        return published

    def rollback(self, actor: str) -> Published:
        with self._exclusive():
            live = self.registry.live()
            target = self.registry.previous()
            if live is None or target is None:
                raise PublishFailed("there is no earlier model to go back to")
            if not Path(target.model_path).exists():
                raise PublishFailed(f"the earlier model's file is gone ({target.model_path})")
            self._put_live(target.model_id)
            published = self.registry.add(
                actor, target.model_id, target.model_path, target.candidate, "rollback", target.previous_id
            )
            self._mirror_to_live_file(Path(target.model_path))
        audit.record(actor, "rollback", target.candidate, model_id=target.model_id, from_candidate=live.candidate)
        return published


def find_job(settings: Settings, job_id: Optional[str]) -> Job:
    """A candidate by id, or the newest one that passed the gate."""
    retrainer = Retrainer(settings)
    if job_id:
        job = retrainer.job(job_id)
        if job is None:
            raise PublishFailed(f"there is no candidate {job_id}")
        return job
    for job in retrainer.jobs():
        if job.publishable:
            return job
    raise PublishFailed("no candidate has passed the gate yet: retrain first")
