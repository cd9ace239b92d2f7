"""The staff console's test fixtures, shared by tests/test_staff_console.py and
tests/test_staff_console_retraining.py.

Everything runs on a copy of the project (data/, config, domain, the held-out
set and conversation tests, the trained model) in a temporary folder, so the
real data/ and models/clinic.tar.gz are never touched. One assistant
(scripts/serve.py, through conftest's Assistant) and one console
(`python -m staff serve`) serve both files, sharing one database. A test
file gets the fixtures `project`, `staff_assistant` and `console` as a
pytest plugin (tests/conftest.py's pytest_plugins).
"""

import json
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from clinic.evaluation import SETS
from conftest import MODEL, OUTPUT, ROOT, Assistant, Console
from staff.gate import model_metadata

USER = "reception"
PASSWORD = secrets.token_urlsafe(18)
TARGET = "faq/muscle_tension"


# For the whole session, not each file: both files use the same assistant and
# console (starting the assistant takes a minute).
@pytest.fixture(scope="session")
def project(tmp_path_factory) -> Iterator[Path]:
    with _project(tmp_path_factory) as root:
        yield root


@pytest.fixture(scope="session")
def staff_assistant(tmp_path_factory, trained_model) -> Iterator[Assistant]:
    with _staff_assistant(tmp_path_factory) as running:
        yield running


@pytest.fixture(scope="session")
def console(project, staff_assistant) -> Iterator[Console]:
    with _console(project, staff_assistant) as running:
        yield running


@contextmanager
def _project(tmp_path_factory) -> Iterator[Path]:
    """The project as `make test` sees it: the model was trained from this data."""
    root = tmp_path_factory.mktemp("staff-project")
    shutil.copytree(ROOT / "data", root / "data")
    for name in ("config.yml", "domain.yml"):
        shutil.copy2(ROOT / name, root / name)
    (root / "tests").mkdir()
    shutil.copy2(ROOT / "tests" / "test_conversations.yml", root / "tests" / "test_conversations.yml")
    shutil.copytree(ROOT / "tests" / "held_out", root / "tests" / "held_out")
    (root / "build").mkdir()
    for built in ("spacy", "encoder"):  # read only
        (root / "build" / built).symlink_to(ROOT / "build" / built)
    (root / "models").mkdir(exist_ok=True)
    shutil.copy2(MODEL, root / "models" / "clinic.tar.gz")
    # The live model's held-out scores, when tests/test_held_out.py has just
    # measured them on this very model: the gate need not serve it again.
    measured = {name: OUTPUT / f"held_out_{name}.json" for name in SETS}
    if all(path.exists() for path in measured.values()):
        candidates = root / "models" / "candidates"
        candidates.mkdir()
        scores = {name: json.loads(path.read_text()) for name, path in measured.items()}
        (candidates / "held_out_scores.json").write_text(json.dumps({model_metadata(MODEL)["model_id"]: scores}))
    yield root


@contextmanager
def _staff_assistant(tmp_path_factory) -> Iterator[Assistant]:
    var = tmp_path_factory.mktemp("staff-var")
    running = Assistant(var, "staff-assistant", env={"DATABASE_URL": f"sqlite:///{var / 'clinic.db'}"}).start()
    yield running
    running.stop()


@contextmanager
def _console(project: Path, staff_assistant: Assistant) -> Iterator[Console]:
    running = Console(project, [staff_assistant])
    created = running.cli("user", "add", USER, password=PASSWORD)
    assert created.returncode == 0, created.stderr
    running.start()
    yield running
    running.stop()
