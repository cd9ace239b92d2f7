"""The staff console (`python -m staff serve`) as the tests start it: against
a copy of the project and assistants the tests started."""

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

import requests

from clinic import PROJECT_ROOT
from clinic.harness import RunningAssistant, answers, free_port, poll_until, start_process, stop_process_group, subprocess_env


class Console:
    """`python -m staff serve` against a copy of the project and the test
    assistants (the first one's database and conversations; one API token).
    Its log sits beside the first assistant's."""

    def __init__(self, project: Path, assistants: List[RunningAssistant], log_name: str = "staff-console"):
        assistant = assistants[0]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.project = project
        self.env = subprocess_env(
            STAFF_PROJECT_DIR=str(project),
            STAFF_PORT=str(self.port),
            RASA_URL=",".join(each.url for each in assistants),
            RASA_API_TOKEN=assistant.token,
            DATABASE_URL=assistant.env["DATABASE_URL"],
            # where the assistant keeps conversations (its tracker store's SQLite file)
            CLINIC_VAR_DIR=str(assistant.var_dir),
        )
        self.env.pop("STAFF_PASSWORD", None)
        self.log_path = assistant.log_path.parent / f"{log_name}.log"
        self.process: Optional[subprocess.Popen] = None

    def cli(self, *args: str, password: Optional[str] = None, timeout: float = 120) -> subprocess.CompletedProcess:
        env = dict(self.env, **({"STAFF_PASSWORD": password} if password else {}))
        return subprocess.run(
            [sys.executable, "-m", "staff", *args], cwd=PROJECT_ROOT, env=env,
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )

    def start(self) -> "Console":
        self.process = start_process([sys.executable, "-m", "staff", "serve"], self.env, self.log_path)
        if poll_until(lambda: answers(self.url + "/login"), time.monotonic() + 60, alive=self.running, interval=0.3):
            return self
        exited = not self.running()
        self.stop()
        raise RuntimeError(f"the console {'exited' if exited else 'did not start'}, see {self.log_path}")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        stop_process_group(self.process, grace_seconds=20)

    def session(self, username: str, password: str) -> requests.Session:
        """Signed in through the real form, as a browser would."""
        session = requests.Session()
        page = session.get(self.url + "/login", timeout=30)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        reply = session.post(
            self.url + "/login", data={"csrf_token": token, "username": username, "password": password},
            allow_redirects=False, timeout=30,
        )
        assert reply.status_code == 303, reply.text[:500]
        return session

    def csrf(self, session: requests.Session, path: str = "/inbox") -> str:
        return re.search(r'name="csrf_token" value="([^"]+)"', session.get(self.url + path, timeout=30).text).group(1)

