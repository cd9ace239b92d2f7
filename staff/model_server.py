"""Serves the console's models to the Rasa servers: Rasa's model server protocol.

A Rasa server fetches a model over HTTP when `PUT /model` names a
`model_server` (how the console publishes: staff/publishing.py), and
`scripts/serve.py --model-server` fetches the live one before it starts a
server on a machine of its own. Nothing but model archives is served, and
only to a caller holding the Rasa API token (`?token=`, as Rasa's
EndpointConfig sends it, or `Authorization: Bearer`, which the console's
own requests use so that no URL it makes carries the token).

    GET /models/live        the model the servers run now
    GET /models/<model_id>  a published model, or a candidate that passed the gate

Replies carry the model id as the ETag (Rasa keeps it as the model's
fingerprint and sends it back as If-None-Match: 304 when unchanged), and a
`filename` header, which Rasa names the downloaded file after. Errors: 401
without the token, 404 for a model the console does not hold.
"""

import hmac
import logging
import re
import tarfile
from pathlib import Path
from typing import Optional, Tuple

from sanic import Blueprint, response
from sanic.request import Request

from clinic import store
from staff.registry import ModelRegistry
from staff.settings import Settings
from staff.training import Retrainer

logger = logging.getLogger(__name__)

PREFIX = "/models/"
LIVE = "live"
# An archive is about 70 MB: Sanic's default 4 KB chunks would take 18,000 writes.
CHUNK_BYTES = 1024 * 1024
# Rasa's model ids are uuid4 hex strings
_MODEL_ID = re.compile(r"[0-9a-f]{32}")


def _etag(model_id: str) -> str:
    return f'"{model_id}"'


def _already_held(if_none_match: str, model_id: str) -> bool:
    """If-None-Match (RFC 9110: "*", or ETags, weak or strong, comma-separated) names this model."""
    tags = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in tags or any(tag.removeprefix("W/").strip('"') == model_id for tag in tags)


def _token_matches(request: Request, expected: str) -> bool:
    given = request.args.get("token") or ""
    header = request.headers.get("authorization") or ""
    if header.lower().startswith("bearer "):
        given = header[7:].strip()
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


class ModelFiles:
    """Which archive holds a model id: only the console's own published
    models and gate-passed candidates, inside its models folder."""

    def __init__(self, settings: Settings, registry: ModelRegistry, retrainer: Retrainer):
        self.settings = settings
        self.registry = registry
        self.retrainer = retrainer

    def _inside_models(self, path: Path) -> Optional[Path]:
        resolved = path.resolve()
        models = self.settings.models_dir.resolve()
        return resolved if resolved.is_file() and models in resolved.parents else None

    def live(self) -> Optional[Tuple[str, Path]]:
        path = self.registry.live_model_file()
        try:
            model_id = self.registry.model_id_of(path) if path else None
        except (OSError, tarfile.TarError, ValueError):  # not a readable model archive
            return None
        found = self._inside_models(path) if model_id else None
        return (model_id, found) if found else None

    def find(self, model_id: str) -> Optional[Path]:
        if not _MODEL_ID.fullmatch(model_id):
            return None
        for published in self.registry.history(200):
            if published.model_id == model_id:
                found = self._inside_models(Path(published.model_path))
                if found:
                    return found
        for job in self.retrainer.jobs():
            if job.publishable and job.model_id == model_id:
                return self._inside_models(job.model)
        live = self.live()
        return live[1] if live and live[0] == model_id else None


def blueprint(settings: Settings, files: ModelFiles) -> Blueprint:
    models = Blueprint("models")

    @models.get(PREFIX + "<name>")
    async def model_archive(request: Request, name: str):
        if not _token_matches(request, settings.rasa_token):
            return response.json({"error": "the Rasa API token is required"}, status=401)
        if name == LIVE:
            live = await store.run_blocking(files.live)
            model_id, path = live if live else (None, None)
        else:
            model_id, path = name, await store.run_blocking(files.find, name)
        if path is None:
            return response.json({"error": "no such model"}, status=404)
        headers = {"ETag": _etag(model_id), "filename": "model.tar.gz", "Cache-Control": "no-cache"}
        if _already_held(request.headers.get("if-none-match") or "", model_id):
            return response.empty(status=304, headers=headers)
        # No client address or token: which model, to whom, is enough to trace a publish.
        logger.info("serving model %s", model_id)
        return await response.file_stream(path, chunk_size=CHUNK_BYTES, headers=headers, mime_type="application/gzip")

    return models
