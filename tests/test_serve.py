"""scripts/serve.py's start-up: the secrets it generates are safe on a command
line, and it refuses a sentence encoder that is not the upstream's."""

import argparse
import shutil
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import serve  # noqa: E402


def test_generated_secrets_are_never_read_as_options(tmp_path, monkeypatch):
    monkeypatch.delenv("RASA_API_TOKEN", raising=False)
    parser = argparse.ArgumentParser()
    parser.add_argument("--auth-token")
    for number in range(2000):
        folder = tmp_path / str(number)
        folder.mkdir()
        token = serve.api_token(folder)
        assert len(token) >= 32 and token.isalnum()
        # as serve.py passes it to `rasa run`
        assert parser.parse_args([f"--auth-token={token}"]).auth_token == token


def test_a_token_that_starts_with_a_dash_is_passed_whole(tmp_path, monkeypatch):
    monkeypatch.setenv("RASA_API_TOKEN", "-starts-with-a-dash")
    parser = argparse.ArgumentParser()
    parser.add_argument("--auth-token")
    token = serve.api_token(tmp_path)
    assert parser.parse_args([f"--auth-token={token}"]).auth_token == "-starts-with-a-dash"


def test_the_secret_generated_once_is_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("CONVERSATION_ID_SECRET", raising=False)
    first = serve.local_secret(tmp_path, "CONVERSATION_ID_SECRET", "conversation_id_secret")
    assert serve.local_secret(tmp_path, "CONVERSATION_ID_SECRET", "conversation_id_secret") == first
    assert (tmp_path / "conversation_id_secret").stat().st_mode & 0o077 == 0


def test_a_tampered_encoder_stops_the_start(tmp_path, monkeypatch):
    encoder = tmp_path / "encoder"
    shutil.copytree(ROOT / "build" / "encoder" / "all-MiniLM-L6-v2", encoder)
    (encoder / "config.json").write_text("{}")
    config = tmp_path / "config.yml"
    config.write_text(f"pipeline:\n- name: x\n  model_weights: {encoder}\n")
    monkeypatch.setattr(serve, "ROOT", tmp_path)
    assert "config.json" in serve.encoder_problem()
    (encoder / "config.json").write_bytes((ROOT / "build" / "encoder" / "all-MiniLM-L6-v2" / "config.json").read_bytes())
    assert serve.encoder_problem() == ""
