"""scripts/fetch_encoder.py: the sentence encoder's files are used only when
every one is byte-identical to the upstream release (scripts/encoder.yml)."""

import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import fetch_encoder  # noqa: E402

FOLDER = ROOT / "build" / "encoder" / "all-MiniLM-L6-v2"


@pytest.fixture
def copy(tmp_path):
    target = tmp_path / "encoder"
    shutil.copytree(FOLDER, target)
    return target


def verify_only(folder):
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fetch_encoder.py"), "--verify-only", str(folder)],
        capture_output=True, text=True, timeout=120,
    )


def test_the_built_encoder_is_the_upstream_release():
    spec = fetch_encoder.load_spec()
    fetch_encoder.verify(FOLDER, spec)
    assert (FOLDER / fetch_encoder.VERIFIED_STAMP).exists()
    # the upstream's published hashes, with its name and revision next to them
    assert spec["upstream"]["sha256"]["model.safetensors"].startswith("53aa5117")
    assert spec["upstream"]["name"] == "sentence-transformers/all-MiniLM-L6-v2"


@pytest.mark.parametrize("name", ["model.safetensors", "tokenizer.json", "vocab.txt", "config.json"])
def test_a_corrupted_file_is_refused_with_a_clear_message(copy, name):
    path = copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    path.write_bytes(bytes(data))
    with pytest.raises(fetch_encoder.HashMismatch, match=name):
        fetch_encoder.verify(copy, fetch_encoder.load_spec())
    result = verify_only(copy)
    assert result.returncode == fetch_encoder.MISMATCH_EXIT
    assert "Refusing the sentence encoder" in result.stderr and name in result.stderr
    assert not (copy / fetch_encoder.VERIFIED_STAMP).exists()


def test_a_missing_file_is_refused(copy):
    (copy / "vocab.txt").unlink()
    result = verify_only(copy)
    assert result.returncode == fetch_encoder.MISMATCH_EXIT and "vocab.txt is missing" in result.stderr


def test_vocab_txt_is_written_from_the_tokenizers_vocabulary(tmp_path):
    fetch_encoder.write_vocab(FOLDER / "tokenizer.json", tmp_path / "vocab.txt")
    assert fetch_encoder.sha256_of(tmp_path / "vocab.txt") == fetch_encoder.load_spec()["upstream"]["sha256"]["vocab.txt"]
