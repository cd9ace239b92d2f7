"""Starts the assistant: the action server and one or more Rasa servers.

`make run` and the end-to-end tests start it the same way. It stays in the
foreground; Ctrl-C (or SIGTERM) stops every process it started. If one of
them does not start, the others are stopped; if one dies later, it is
started again while the others keep serving.

    python scripts/serve.py [--port 5005] [--replicas 1] [--action-port 5055]
                            [--endpoints endpoints.yml] [--var-dir var]

The Rasa HTTP API is always on and always needs a token: RASA_API_TOKEN, or
one generated once into var/api_token for local tools (the staff console).
With STAFF_PASSWORD set, the staff console (`python -m staff serve`) is
started too, with an account STAFF_USER (default "staff") if none exists.

`--endpoints endpoints.scaled.yml` (`make run-scaled`) is the scaled profile:
every Rasa server shares PostgreSQL (DATABASE_URL) and Redis (REDIS_URL),
which are checked before anything starts.

`--model-server URL` (MODEL_SERVER_URL), on a machine without the staff
console: each Rasa server starts from the live model fetched from the console
at URL (staff/model_server.py), and fetches it again whenever it is started
again, so a server never comes back on a model older than the others run.
Publishing then reaches it through Rasa's API like any other server.
"""

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# run as a script (`python scripts/serve.py`), from anywhere
sys.path.insert(0, str(ROOT))
from clinic.harness import answers, poll_until, stop_processes, subprocess_env  # noqa: E402

BIN = Path(sys.executable).parent


def local_secret(var_dir: Path, variable: str, file_name: str) -> str:
    """The secret in the environment variable, or one generated once into
    var/<file_name> (readable by this user only) for local use. Generated
    ones are hex: nothing a shell or an argument parser reads specially."""
    secret = os.environ.get(variable)
    if secret:
        return secret
    secret_file = var_dir / file_name
    if not secret_file.exists():
        secret_file.write_text(secrets.token_hex(32))
        secret_file.chmod(0o600)
    return secret_file.read_text().strip()


def api_token(var_dir: Path) -> str:
    """RASA_API_TOKEN, or var/api_token."""
    return local_secret(var_dir, "RASA_API_TOKEN", "api_token")


def endpoints_for(source: Path, action_port: int, var_dir: Path) -> Path:
    """The endpoints file with this run's action server port and SQLite folder."""
    endpoints = yaml.safe_load(source.read_text())
    endpoints["action_endpoint"]["url"] = f"http://127.0.0.1:{action_port}/webhook"
    store = endpoints.get("tracker_store") or {}
    if store.get("dialect") == "sqlite":
        store["db"] = str(var_dir / Path(store["db"]).name)
    handle, path = tempfile.mkstemp(prefix="endpoints-", suffix=".yml")
    with os.fdopen(handle, "w") as out:
        yaml.safe_dump(endpoints, out)
    return Path(path)


# Sanic's limit on a request body (413 beyond it) for the Rasa servers: far
# above any chat message or API call, far below Sanic's own 100 MB.
DEFAULT_REQUEST_MAX_SIZE = 1024 * 1024


def unreachable_services(endpoints_text: str, env: dict) -> list:
    """What the endpoints file needs (PostgreSQL, Redis) but cannot be reached."""
    problems = []
    if "${DATABASE_URL}" in endpoints_text:
        import sqlalchemy as sa

        url = sa.engine.url.make_url(env["DATABASE_URL"])
        connect_args = {"connect_timeout": 3} if url.get_backend_name() == "postgresql" else {}
        engine = sa.create_engine(url, connect_args=connect_args)
        try:
            with engine.connect():
                pass
        except Exception as error:  # printed for the person starting it
            problems.append(f"database {url!r}: {str(error).strip().splitlines()[0]}")
        finally:
            engine.dispose()
    if "${REDIS_URL}" in endpoints_text:
        import redis

        try:
            redis.Redis.from_url(env["REDIS_URL"], socket_connect_timeout=3).ping()
        except Exception as error:
            problems.append(f"Redis at REDIS_URL: {error}")
    return problems


def encoder_problem() -> str:
    """Why the sentence encoder config.yml names must not be used ("" when it
    may): a file not byte-identical to the upstream release (scripts/encoder.yml)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import fetch_encoder

    config = yaml.safe_load((ROOT / "config.yml").read_text())
    for component in config.get("pipeline") or []:
        if "model_weights" in component:
            try:
                fetch_encoder.verify(ROOT / component["model_weights"], fetch_encoder.load_spec())
            except fetch_encoder.HashMismatch as error:
                return f"{error} (run `make setup` to fetch it again)"
    return ""


def fetch_live_model(base_url: str, token: str, var_dir: Path) -> Path:
    """The console's live model, kept in var/models/live.tar.gz; downloaded
    only when its model id (the ETag) changed. A console that cannot be
    reached leaves the kept copy in use; with none kept, SystemExit."""
    target = var_dir / "models" / "live.tar.gz"
    etag_file = target.with_name("live.etag")
    target.parent.mkdir(parents=True, exist_ok=True)
    url = f"{base_url.rstrip('/')}/models/live"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    if target.exists() and etag_file.exists():
        request.add_header("If-None-Match", etag_file.read_text().strip())
    try:
        with urllib.request.urlopen(request, timeout=120) as reply:
            temporary = target.with_name(f".live.{secrets.token_hex(4)}.tmp")
            with open(temporary, "wb") as out:
                while chunk := reply.read(1 << 20):
                    out.write(chunk)
            os.replace(temporary, target)
            etag_file.write_text(reply.headers.get("ETag", ""))
    except urllib.error.HTTPError as error:
        if error.code == 304:
            return target
        if error.code in (401, 403):
            raise SystemExit(f"Cannot start: the console at {base_url} refused the API token (RASA_API_TOKEN)")
        raise SystemExit(f"Cannot start: the console at {base_url} answered {error.code} for the live model")
    except OSError as error:
        if not target.exists():
            raise SystemExit(f"Cannot start: no live model from {url} ({error}) and none kept from before")
        print(f"The console at {base_url} cannot be reached ({error}): starting on the model kept from before.",
              file=sys.stderr, flush=True)
    return target


# More restarts than this within the window mean something is broken for good.
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 300


def wait_until_up(url: str, processes, timeout: float) -> bool:
    """Whether `url` answers within `timeout` seconds while every process runs."""
    def all_running() -> bool:
        return all(process.poll() is None for process in processes)

    return poll_until(lambda: all_running() and answers(url), time.monotonic() + timeout, alive=all_running)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("RASA_PORT", 5005)))
    parser.add_argument("--replicas", type=int, default=int(os.environ.get("RASA_REPLICAS", 1)))
    parser.add_argument("--action-port", type=int, default=int(os.environ.get("ACTIONS_PORT", 5055)))
    parser.add_argument("--host", default=os.environ.get("RASA_HOST", "127.0.0.1"))
    parser.add_argument("--model", default=os.environ.get("RASA_MODEL", "models/clinic.tar.gz"))
    parser.add_argument("--endpoints", default=os.environ.get("RASA_ENDPOINTS", "endpoints.yml"))
    parser.add_argument("--credentials", default="credentials.yml")
    parser.add_argument("--var-dir", default=os.environ.get("CLINIC_VAR_DIR", "var"))
    parser.add_argument("--model-server", default=os.environ.get("MODEL_SERVER_URL", ""))
    args = parser.parse_args()

    os.chdir(ROOT)
    var_dir = Path(args.var_dir).resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    env = subprocess_env()
    env.setdefault("DATABASE_URL", f"sqlite:///{var_dir / 'clinic.db'}")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    problems = unreachable_services(Path(args.endpoints).read_text(), env)
    problem = encoder_problem()
    if problem:
        problems.append(f"the sentence encoder: {problem}")
    if problems:
        for problem in problems:
            print(f"Cannot start: {problem}", file=sys.stderr)
        return 2
    endpoints = endpoints_for(Path(args.endpoints), args.action_port, var_dir)
    token = api_token(var_dir)
    # Issued conversation ids are checked against it (clinic/conversation_ids.py).
    env["CONVERSATION_ID_SECRET"] = local_secret(var_dir, "CONVERSATION_ID_SECRET", "conversation_id_secret")
    # Only the staff console needs the staff password.
    staff_password = env.pop("STAFF_PASSWORD", None)
    rasa_env = dict(env)
    rasa_env.setdefault("SANIC_REQUEST_MAX_SIZE", str(DEFAULT_REQUEST_MAX_SIZE))
    if args.model_server:
        args.model = str(fetch_live_model(args.model_server, token, var_dir))

    commands = [([sys.executable, "-m", "actions", "--port", str(args.action_port)], env)]
    ports = [args.port + i for i in range(args.replicas)]
    cors = os.environ.get("CHAT_ALLOWED_ORIGINS", "").split()
    for port in ports:
        command = [
            str(BIN / "rasa"), "run",
            "--model", args.model,
            "--interface", args.host,
            "--port", str(port),
            # "=": a token may start with "-", which would read as an option
            "--enable-api", f"--auth-token={token}",
            "--endpoints", str(endpoints),
            "--credentials", args.credentials,
        ]
        if cors:
            command += ["--cors", *cors]
        commands.append((command, rasa_env))
    if staff_password:
        # The staff console (STAFF_HOST:STAFF_PORT, default 127.0.0.1:5002):
        # publishes to these servers through their API, shares the database.
        staff_env = dict(
            env, STAFF_PASSWORD=staff_password, RASA_API_TOKEN=token,
            RASA_URL=",".join(f"http://127.0.0.1:{port}" for port in ports),
        )
        commands.append(([sys.executable, "-m", "staff", "serve", "--ensure-user"], staff_env))
    processes = [subprocess.Popen(command, env=command_env) for command, command_env in commands]

    def stop(*_):
        stop_processes(processes, grace_seconds=15)
        endpoints.unlink(missing_ok=True)

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    try:
        up = all(
            wait_until_up(f"http://127.0.0.1:{port}/", processes, timeout=180) for port in ports
        )
        if not up:
            print("A server did not start; stopping the others.", file=sys.stderr, flush=True)
            return 1
        for port in ports:
            print(f"Assistant ready: http://localhost:{port}/webhooks/rest/webhook", flush=True)
        # Once up, a server that dies is started again, as a process
        # supervisor would; the others keep serving meanwhile (the scaled
        # profile shares every conversation). Crashing again and again stops all.
        restarts: list = []
        while True:
            time.sleep(0.5)
            for index, process in enumerate(processes):
                if process.poll() is None:
                    continue
                restarts = [at for at in restarts if at > time.monotonic() - RESTART_WINDOW_SECONDS]
                if len(restarts) >= MAX_RESTARTS:
                    print("Servers keep stopping; stopping the others.", file=sys.stderr, flush=True)
                    return 1
                restarts.append(time.monotonic())
                command, command_env = commands[index]
                if args.model_server and "--model" in command:
                    try:  # what the others run now
                        fetch_live_model(args.model_server, token, var_dir)
                    except SystemExit as error:
                        print(f"{error}; starting on the model kept from before.", file=sys.stderr, flush=True)
                print(f"A server stopped (exit {process.returncode}); starting it again.", file=sys.stderr, flush=True)
                processes[index] = subprocess.Popen(command, env=command_env)
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
