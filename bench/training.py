"""Trains stock Rasa and the project from scratch in a temporary folder, timed
the same way, and keeps the result for reruns on unchanged inputs.
"""

import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, Optional, Sequence

import yaml

from bench import ROOT
from bench.progress import say
from bench.stock import with_epochs, write_stock_project
from clinic.harness import QUIET, subprocess_env

BIN = Path(sys.executable).parent
# Trained stock models and training times, by what they were trained from:
# stock Rasa's default training alone takes longer on two cores than the rest
# of the benchmark, so a rerun reuses each assistant's training while its
# inputs are unchanged. Stock Rasa reads only the data and its own config,
# so changing the project's config or components retrains the project alone.
CACHE = ROOT / "build" / "bench"
SHARED_INPUTS = ["data", "domain.yml", "bench/training.py"]
INPUTS = {
    "stock": SHARED_INPUTS + ["bench/stock.py"],
    "project": SHARED_INPUTS + [
        "config.yml", "components", "clinic/red_flags.py", "clinic/muscles.py", "scripts/build_spacy_pipeline.py",
    ],
}
TRAIN_TIMEOUT_SECONDS = 3600
PROGRESS_EVERY_SECONDS = 30


@dataclass
class Training:
    stock_model: str
    stock_seconds: float
    project_seconds: float  # `rasa train` with the project's config
    project_spacy_seconds: float  # building its spaCy pipeline first, as `make train` does
    epochs: str  # "epochs as configured", or the smoke run's shortcut
    stock_trained_at: str
    project_trained_at: str
    stock_reused: bool = False
    project_reused: bool = False

    @property
    def project_total_seconds(self) -> float:
        return self.project_seconds + self.project_spacy_seconds


def inputs_key(assistant: str, epochs: int) -> str:
    digest = hashlib.sha256()
    import rasa

    digest.update(f"rasa {rasa.__version__} epochs {epochs}".encode())
    for name in INPUTS[assistant]:
        path = ROOT / name
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Kept:
    """One assistant's kept training under CACHE/<assistant>/<inputs key>/:
    its times (training.json) and, for stock Rasa, its model."""

    def __init__(self, cache: Optional[Path], assistant: str, epochs: int):
        self.folder = cache / assistant / inputs_key(assistant, epochs) if cache else None

    def load(self, model: Optional[str] = None) -> Optional[dict]:
        if not self.folder or not (self.folder / "training.json").exists():
            return None
        if model and not (self.folder / model).exists():
            return None
        return json.loads((self.folder / "training.json").read_text())

    def keep(self, times: dict, model: Optional[Path] = None) -> None:
        """Keeps `times` (and a copy of `model`) in place of older inputs' training."""
        if not self.folder:
            return
        if self.folder.parent.exists():
            for old in self.folder.parent.iterdir():
                shutil.rmtree(old, ignore_errors=True)
        self.folder.mkdir(parents=True)
        if model:
            shutil.copy2(model, self.folder / model.name)
        (self.folder / "training.json").write_text(json.dumps(times, indent=2))


def _env(cache_dir: Path) -> Dict[str, str]:
    # an empty cache of its own: nothing from an earlier training helps
    return subprocess_env(**QUIET, RASA_CACHE_DIRECTORY=str(cache_dir))


def _where(log_path: Path) -> str:
    """What a running `rasa train` is doing, from the end of its log."""
    tail = log_path.read_bytes()[-20000:].decode("utf-8", "replace")
    components = re.findall(r"Starting to train component '(\w+)'", tail)
    epochs = re.findall(r"Epochs:\s+(\d+)%", tail)
    where = components[-1] if components else "reading data"
    return f"{where} {epochs[-1]}%" if epochs and components else where


def _timed(command, label: str, log_path: Path, env: Dict[str, str]) -> float:
    say(f"{label}...")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        next_report = started + PROGRESS_EVERY_SECONDS
        try:
            while process.poll() is None:
                time.sleep(0.5)
                now = time.monotonic()
                if now > started + TRAIN_TIMEOUT_SECONDS:
                    raise RuntimeError(f"{label} took over {TRAIN_TIMEOUT_SECONDS} s, see {log_path}")
                if now >= next_report:
                    say(f"  {label}: {now - started:.0f} s, {_where(log_path)}")
                    next_report += PROGRESS_EVERY_SECONDS
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    seconds = time.monotonic() - started
    if process.returncode != 0:
        raise RuntimeError(f"{label} failed (exit {process.returncode}), see {log_path}")
    say(f"{label}: done in {seconds:.0f} s")
    return seconds


def _rasa_train(config: Path, out: Path, name: str, label: str, log_path: Path, cache_dir: Path,
                data: Path = ROOT / "data", extra: Sequence[str] = ()) -> float:
    command = [
        str(BIN / "rasa"), "train", "--config", str(config), "--domain", "domain.yml",
        "--data", str(data), "--out", str(out), "--fixed-model-name", name, *extra,
    ]
    return _timed(command, label, log_path, _env(cache_dir))


def sampled_data(target: Path, every: int) -> Path:
    """data/ with every `every`-th example of each intent kept (at least two),
    everything else as it is: the smoke run's training, quick and complete."""
    for source in sorted((ROOT / "data").rglob("*.yml")):
        content = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
        for block in content.get("nlu") or []:
            if "intent" in block and isinstance(block.get("examples"), str):
                examples = [line for line in block["examples"].splitlines() if line.strip().startswith("- ")]
                kept = examples[::every] if len(examples[::every]) >= 2 else examples[:2]
                block["examples"] = "\n".join(kept) + "\n"
        path = target / source.relative_to(ROOT / "data")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(content, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return target


def project_config(spacy_pipeline: Path, epochs: int) -> dict:
    """config.yml, pointing at a spaCy pipeline built for this training."""
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    for item in config["pipeline"]:
        if item["name"] == "SpacyNLP":
            item["model"] = str(spacy_pipeline)
    return with_epochs(config, epochs) if epochs else config


def train_both(
    workdir: Path, logs: Path, epochs: int = 0, retrain: bool = False,
    cache: Optional[Path] = CACHE, parallel: bool = False, sample: int = 0,
) -> Training:
    """Stock Rasa's default and the project's configuration, each trained from
    scratch on data/ and domain.yml, one after the other (`parallel`: at the
    same time). The smoke run's shortcuts: `epochs` > 0 limits every trained
    part, and `sample` > 0 trains on every sample-th example of each intent,
    without story augmentation. Reuses an earlier run's training of either
    when nothing it was trained from changed, unless `retrain`."""
    epochs_note = f"{epochs} epoch per trained part" if epochs else "epochs as configured"
    data, extra = ROOT / "data", ()
    if sample:
        epochs_note += f", every {sample}th example, no augmentation"
        data, extra = sampled_data(workdir / "sampled-data", sample), ("--augmentation", "0")
    kept_stock, kept_project = Kept(cache, "stock", epochs), Kept(cache, "project", epochs)
    stock_times = None if retrain else kept_stock.load("stock.tar.gz")
    project_times = None if retrain else kept_project.load()
    for name, times in (("stock Rasa", stock_times), ("the project", project_times)):
        if times:
            say(f"Training {name}: inputs unchanged since {times['trained_at']}, reusing that run's times (--retrain to train again)")

    stock_model = (kept_stock.folder or workdir / "stock" / "models") / "stock.tar.gz"

    def train_stock() -> dict:
        stock_files = write_stock_project(workdir / "stock", epochs)
        seconds = _rasa_train(
            stock_files["config"], workdir / "stock" / "models", "stock",
            f"Training stock Rasa ({epochs_note})", logs / "train-stock.log", workdir / "stock-cache", data, extra,
        )
        times = {"seconds": seconds, "trained_at": _now()}
        kept_stock.keep(times, workdir / "stock" / "models" / "stock.tar.gz")
        return times

    def train_project() -> dict:
        spacy_pipeline = workdir / "project" / "spacy" / "clinic_en"
        spacy_seconds = _timed(
            [sys.executable, str(ROOT / "scripts" / "build_spacy_pipeline.py"), str(spacy_pipeline)],
            "Building the project's spaCy pipeline", logs / "build-spacy.log", _env(workdir / "project-cache"),
        )
        config_path = workdir / "project" / "config.yml"
        config_path.write_text(yaml.safe_dump(project_config(spacy_pipeline, epochs), sort_keys=False))
        seconds = _rasa_train(
            config_path, workdir / "project" / "models", "project",
            f"Training the project ({epochs_note})", logs / "train-project.log", workdir / "project-cache", data, extra,
        )
        times = {"seconds": seconds, "spacy_seconds": spacy_seconds, "trained_at": _now()}
        kept_project.keep(times)
        return times

    jobs = [job for job, times in ((train_stock, stock_times), (train_project, project_times)) if not times]
    if parallel and len(jobs) == 2:
        # both at once: quicker, but each slows the other, so the times mean little
        with ThreadPoolExecutor(max_workers=2) as pool:
            stock_job, project_job = pool.submit(train_stock), pool.submit(train_project)
            stock_times, project_times = stock_job.result(), project_job.result()
    else:
        stock_times = stock_times or train_stock()
        project_times = project_times or train_project()
    return Training(
        stock_model=str(stock_model),
        stock_seconds=stock_times["seconds"],
        project_seconds=project_times["seconds"],
        project_spacy_seconds=project_times["spacy_seconds"],
        epochs=epochs_note,
        stock_trained_at=stock_times["trained_at"],
        project_trained_at=project_times["trained_at"],
        stock_reused=train_stock not in jobs,
        project_reused=train_project not in jobs,
    )
