"""The SMS channel's settings, and the channel alone on a Sanic server (an
echo instead of the assistant): refusing to run unsigned, the development
flag, the signed URL's connection overrides, and a retry after its server
died answered by another sharing the database."""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from channels import sms
from clinic import store

# ---- without a token ---------------------------------------------------------------------
from conftest import ROOT, free_port, process_id
from services import postgres_up, require, scratch_database
from sms_texter import PATH, PUBLIC_URL, TOKEN, messages, new_number, new_sid, signed, twilio_form


def test_settings_refuse_to_run_unsigned_unless_told_to():
    assert "TWILIO_AUTH_TOKEN" in sms.SmsSettings.from_env({}).problem
    assert "SMS_WEBHOOK_URL" in sms.SmsSettings.from_env({"TWILIO_AUTH_TOKEN": "t"}).problem
    development = sms.SmsSettings.from_env({"SMS_ALLOW_UNSIGNED": "true"})
    assert development.problem is None and development.allow_unsigned
    # a token always wins over the development flag
    signed_too = sms.SmsSettings.from_env(
        {"TWILIO_AUTH_TOKEN": "t", "SMS_WEBHOOK_URL": PUBLIC_URL, "SMS_ALLOW_UNSIGNED": "true"}
    )
    assert signed_too.problem is None and not signed_too.allow_unsigned
    assert (signed_too.rate_limit, signed_too.rate_window) == (20, 600)
    for bad in (
        {"SMS_RATE_LIMIT": "lots"}, {"SMS_RATE_LIMIT": "0"}, {"SMS_RATE_WINDOW": "-5"},
        {"SMS_WEBHOOK_URL": "sms.clinic.test/webhooks/sms/webhook"}, {"SMS_WEBHOOK_URL": "ftp://sms.clinic.test/"},
    ):
        env = {"TWILIO_AUTH_TOKEN": "t", "SMS_WEBHOOK_URL": PUBLIC_URL, **bad}
        assert list(bad)[0] in sms.SmsSettings.from_env(env).problem


# The channel alone on a Sanic server, in its own process, replying with an
# echo instead of the assistant (and never to the text HANG_ON, if set).
CHANNEL_ALONE = """
import asyncio, os, sys
from sanic import Sanic
from channels.sms import SmsInput

async def echo(message):
    if message.text == os.environ.get("HANG_ON"):
        await asyncio.sleep(3600)
    await message.output_channel.send_text_message(message.sender_id, "You said: " + message.text)

app = Sanic("sms_alone")
app.blueprint(SmsInput.from_credentials(None).blueprint(echo), url_prefix="/webhooks/sms")
app.run(host="127.0.0.1", port=int(sys.argv[1]), access_log=False)
"""


@contextlib.contextmanager
def channel_alone(tmp_path: Path, name: str = "channel", **env: str):
    """Yields (base URL, log path) of the channel started with this
    environment (several share tmp_path's database)."""
    port = free_port()
    log_path = tmp_path / f"{name}.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "SMS_"))}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", CHANNEL_ALONE, str(port)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**clean, "PYTHONPATH": str(ROOT), "DATABASE_URL": f"sqlite:///{tmp_path / 'clinic.db'}", **env},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                requests.get(url + "/webhooks/sms/", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.3)
        yield url, log_path
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(30)


def test_without_a_token_the_channel_refuses_and_says_so(tmp_path):
    with channel_alone(tmp_path) as (url, log_path):
        response = requests.post(url + PATH, data=twilio_form(new_number(), "hello", new_sid()), timeout=30)
        assert response.status_code == 503
        assert "TWILIO_AUTH_TOKEN" in response.json()["message"]
        assert requests.get(url + "/webhooks/sms/", timeout=30).status_code == 503
    assert "SMS channel OFF" in log_path.read_text()


def test_the_development_flag_runs_it_unsigned_with_a_warning(tmp_path):
    with channel_alone(tmp_path, SMS_ALLOW_UNSIGNED="true") as (url, log_path):
        form = twilio_form(new_number(), "hello & <goodbye>", new_sid())
        response = requests.post(url + PATH, data=form, timeout=30)
        assert response.status_code == 200
    assert [m.text for m in ElementTree.fromstring(response.content)] == ["You said: hello & <goodbye>"]
    assert b"hello &amp; &lt;goodbye&gt;" in response.content
    assert "accepts UNSIGNED requests" in log_path.read_text()


SIGNED_ENV = {"TWILIO_AUTH_TOKEN": TOKEN, "SMS_WEBHOOK_URL": PUBLIC_URL}


def test_connection_overrides_in_the_webhook_url_are_signed_with_or_without_them(tmp_path):
    """Twilio reads the fragment (#rc=...) and never sends it; a signature
    over the URL with it or without it is Twilio's, any other is not."""
    configured = PUBLIC_URL + "#rc=3&rp=ct,rt&tt=15000"
    with channel_alone(tmp_path, TWILIO_AUTH_TOKEN=TOKEN, SMS_WEBHOOK_URL=configured) as (url, _):

        def post(signed_url: str, token: str = TOKEN) -> requests.Response:
            form = twilio_form(new_number(), "hello", new_sid())
            signature = RequestValidator(token).compute_signature(signed_url, form)
            return requests.post(url + PATH, data=form, headers={"X-Twilio-Signature": signature}, timeout=30)

        for signed_url in (configured, PUBLIC_URL):
            response = post(signed_url)
            assert response.status_code == 200, response.text
            assert messages(response) == ["You said: hello"]
        for forged in (PUBLIC_URL + "#rc=5", configured.replace("sms.clinic.test", "evil.test")):
            assert post(forged).status_code == 403
        assert post(PUBLIC_URL, token="not-the-token").status_code == 403


@contextlib.contextmanager
def shared_database(tmp_path: Path, kind: str):
    """The database two channels share: SQLite (the default profile) or
    PostgreSQL (the scaled one)."""
    if kind == "SQLite":
        yield f"sqlite:///{tmp_path / 'clinic.db'}"
        return
    require(postgres_up(), "PostgreSQL")
    with scratch_database("sms") as url:
        yield url


@pytest.mark.parametrize("kind", ["SQLite", "PostgreSQL"])
def test_a_retry_after_its_server_died_is_answered_by_the_other(tmp_path, kind):
    """The channel alone on two servers sharing the database: the first
    hangs in the turn and is killed, Twilio's retry goes to the other."""
    with shared_database(tmp_path, kind) as url, \
            channel_alone(tmp_path, "dying", HANG_ON="hello?", DATABASE_URL=url, **SIGNED_ENV) as (dying, _), \
            channel_alone(tmp_path, "living", DATABASE_URL=url, **SIGNED_ENV) as (living, _):
        form = twilio_form(new_number(), "hello?", new_sid())
        headers = signed(form)

        def deliver() -> None:
            with contextlib.suppress(requests.RequestException):  # dies with its server
                requests.post(dying + PATH, data=form, headers=headers, timeout=30)

        delivery = threading.Thread(target=deliver)
        delivery.start()
        time.sleep(1.5)
        os.kill(process_id(sys.executable, "-c", CHANNEL_ALONE, dying.rsplit(":", 1)[1]), signal.SIGKILL)
        delivery.join(30)
        started = time.monotonic()
        retry = requests.post(living + PATH, data=form, headers=headers, timeout=30)
        seconds = time.monotonic() - started
        assert retry.status_code == 200 and messages(retry) == ["You said: hello?"]
        assert seconds < sms.REPLY_DEADLINE
        again = requests.post(living + PATH, data=form, headers=headers, timeout=30)
        assert again.content == retry.content
        # a day later, its reply pruned: the same request is a replay
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            table = store.sms_messages
            connection.execute(table.delete().where(table.c.message_sid == form["MessageSid"]))
        engine.dispose()
        assert requests.post(living + PATH, data=form, headers=headers, timeout=30).status_code == 409
    print(f"\nretry after its server died ({kind}): answered by the other in {seconds:.1f} s")
