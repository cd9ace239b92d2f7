"""The staff console's settings, read once from the environment."""

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

from clinic import PROJECT_ROOT


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def _rasa_urls() -> List[str]:
    urls = os.environ.get("RASA_URL", "")
    if urls.strip():
        return [url.strip().rstrip("/") for url in urls.split(",") if url.strip()]
    return [f"http://127.0.0.1:{_int('RASA_PORT', 5005)}"]


def _api_token(var_dir: Path) -> str:
    # Same source as scripts/serve.py: the environment, or the file it generates.
    token = os.environ.get("RASA_API_TOKEN", "").strip()
    if token:
        return token
    token_file = var_dir / "api_token"
    return token_file.read_text().strip() if token_file.exists() else ""


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 5002
    # The project the console edits and trains: data/, domain.yml, config.yml,
    # tests/ (the held-out set and conversation tests) and models/.
    project_dir: Path = PROJECT_ROOT
    rasa_urls: List[str] = field(default_factory=lambda: ["http://127.0.0.1:5005"])
    rasa_token: str = ""
    # Where `rasa train`, `rasa data validate` and `rasa test` are found.
    bin_dir: Path = Path(sys.executable).parent
    session_hours: int = 8
    max_failed_logins: int = 5
    lockout_minutes: int = 15
    # Set STAFF_COOKIE_SECURE=1 when the console is served over HTTPS.
    secure_cookie: bool = False
    # Where the Rasa servers keep conversations, as scripts/serve.py configures
    # them (RASA_ENDPOINTS, CLINIC_VAR_DIR): read for ids their API cannot name.
    endpoints_file: Path = PROJECT_ROOT / "endpoints.yml"
    var_dir: Path = PROJECT_ROOT / "var"
    # Where the Rasa servers reach this console to fetch models
    # (staff/model_server.py); by default this machine's console.
    model_server_url: str = ""

    def model_url(self, model_id: str) -> str:
        """Where a Rasa server fetches `model_id` (or "live") from this console."""
        base = (self.model_server_url or f"http://127.0.0.1:{self.port}").rstrip("/")
        return f"{base}/models/{model_id}"

    @property
    def models_dir(self) -> Path:
        return self.project_dir / "models"

    @property
    def candidates_dir(self) -> Path:
        return self.models_dir / "candidates"

    @property
    def live_model_file(self) -> Path:
        """What `make run` loads on start: kept equal to the published model."""
        return self.models_dir / "clinic.tar.gz"


def from_environment() -> Settings:
    project_dir = Path(os.environ.get("STAFF_PROJECT_DIR") or PROJECT_ROOT).resolve()
    # relative to the project, as scripts/serve.py reads them
    var_dir = PROJECT_ROOT / (os.environ.get("CLINIC_VAR_DIR") or "var")
    endpoints_file = PROJECT_ROOT / (os.environ.get("RASA_ENDPOINTS") or "endpoints.yml")
    return Settings(
        host=os.environ.get("STAFF_HOST") or "127.0.0.1",
        port=_int("STAFF_PORT", 5002),
        project_dir=project_dir,
        rasa_urls=_rasa_urls(),
        rasa_token=_api_token(var_dir),
        session_hours=_int("STAFF_SESSION_HOURS", 8),
        max_failed_logins=_int("STAFF_MAX_FAILED_LOGINS", 5),
        lockout_minutes=_int("STAFF_LOCKOUT_MINUTES", 15),
        secure_cookie=os.environ.get("STAFF_COOKIE_SECURE", "").lower() in ("1", "true", "yes"),
        endpoints_file=endpoints_file,
        var_dir=var_dir,
        model_server_url=os.environ.get("STAFF_MODEL_SERVER_URL", "").strip(),
    )
