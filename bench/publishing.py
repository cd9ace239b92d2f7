"""A Rasa server's memory over repeated publishes, under load.

Publishing (staff/publishing.py) makes each running Rasa server fetch a
model from the staff console (staff/model_server.py) and swap it in with
`PUT /model`. Here a freshly started project server gets PUBLISHES of them,
alternately a copy of the model it started with under a new model id (a
different model to Rasa) and the original, while LOAD_CONVERSATIONS
conversations talk to it. Its resident memory is read after each publish.
The target (bench/targets.py): at most +10% from the first publish to the
last. The models are served from loopback by a stand-in for the console
that speaks the same protocol: the token, the model id as ETag.
"""

import io
import json
import shutil
import tarfile
import threading
import time
import uuid
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterator, List

import requests

from bench.load import run_load
from bench.progress import say
from bench.resources import process_tree_rss
from bench.servers import Served

PUBLISHES = 10
SMOKE_PUBLISHES = 2
LOAD_CONVERSATIONS = 8
# Memory is read this long after a publish: the old model's memory is
# released when its last turn ends.
SETTLE_SECONDS = 3.0
LOAD_TIMEOUT_SECONDS = 300


def with_new_model_id(source: Path, target: Path) -> str:
    """Writes `source`'s archive to `target` with a new model id (its
    metadata.json changed, nothing else); returns the id."""
    new_id = uuid.uuid4().hex
    with tarfile.open(source) as archive, tarfile.open(target, "w:gz", compresslevel=1) as out:
        for member in archive:
            content = archive.extractfile(member) if member.isfile() else None
            if member.name == "metadata.json":
                metadata = json.load(content)
                metadata["model_id"] = new_id
                raw = json.dumps(metadata).encode()
                member.size, content = len(raw), io.BytesIO(raw)
            out.addfile(member, content)
    return new_id


def model_id_of(path: Path) -> str:
    with tarfile.open(path) as archive:
        return json.load(archive.extractfile("metadata.json"))["model_id"]


@contextmanager
def model_server(models: Dict[str, Path], token: str) -> Iterator[str]:
    """Serves `models` (model id -> archive) at GET <url>/models/<model id>
    to the token holder, while open; yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            model_id = self.path.split("?")[0].rsplit("/", 1)[-1]
            if f"token={token}" not in self.path:
                self.send_error(401)
            elif model_id not in models:
                self.send_error(404)
            else:
                data = models[model_id].read_bytes()
                self.send_response(200)
                for header, value in (("ETag", f'"{model_id}"'), ("filename", "model.tar.gz"),
                                      ("Content-Length", str(len(data)))):
                    self.send_header(header, value)
                self.end_headers()
                self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def publish_memory(served: Served, workdir: Path, questions: List[str], publishes: int) -> dict:
    """Publishes into `served` (already started) under load; memory in bytes
    before and after each publish, and the load's errors meanwhile."""
    workdir.mkdir(parents=True, exist_ok=True)
    original = workdir / "original.tar.gz"
    shutil.copy2(served.model, original)
    models = {model_id_of(original): original}
    copy = workdir / "renamed.tar.gz"
    models[with_new_model_id(original, copy)] = copy
    order = [model_id for model_id in models][::-1]  # the new id first
    rasa = served.rasa_servers()[0]
    memory = {"before": process_tree_rss(rasa), "after_each_publish": []}
    stop, load = threading.Event(), {}
    visitors = threading.Thread(
        target=lambda: load.update(result=run_load(served.webhooks, questions, LOAD_CONVERSATIONS, 3600, stop=stop))
    )
    seconds = []
    with model_server(models, served.token) as base_url:
        visitors.start()
        try:
            for number in range(publishes):
                model_id = order[number % 2]
                started = time.monotonic()
                body = {"model_server": {"url": f"{base_url}/models/{model_id}", "token": served.token,
                                         "wait_time_between_pulls": None}}
                reply = requests.put(f"{served.urls[0]}/model", params={"token": served.token}, json=body,
                                     timeout=LOAD_TIMEOUT_SECONDS)
                status = requests.get(f"{served.urls[0]}/status", params={"token": served.token}, timeout=30).json()
                if reply.status_code != 204 or status.get("model_id") != model_id:
                    raise RuntimeError(f"publish {number + 1} failed: {reply.status_code} {reply.text[:200]}")
                seconds.append(time.monotonic() - started)
                time.sleep(SETTLE_SECONDS)
                memory["after_each_publish"].append(process_tree_rss(rasa))
                say(f"  publish {number + 1}: {seconds[-1]:.1f} s, Rasa server "
                    f"{memory['after_each_publish'][-1] / 2**20:.0f} MB")
        finally:
            stop.set()
            visitors.join()
    after = memory["after_each_publish"]
    result = load["result"].summary()
    return {
        **memory, "publish_seconds": seconds, "growth_after_first": after[-1] / after[0] - 1,
        "load": {key: result[key] for key in ("answered", "errors", "error_kinds", "p95")},
    }
