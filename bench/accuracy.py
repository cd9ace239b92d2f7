"""Scores a served assistant on the held-out sets by what a visitor gets, over
its REST webhook (clinic.evaluation), and measures the sentence encoder's own
cost per message."""

import time
from typing import Dict, Optional

import requests

from clinic import PROJECT_ROOT as ROOT
from clinic import quality
from clinic.evaluation import SETS, load_items, run, score

# Texts the encoder's cost is timed on: short and long visitor messages.
ENCODER_PROBES = [
    "is it safe?",
    "what is dry needling and how many sessions do people usually need?",
    "My partner has had sciatica on and off for years, physio, strong painkillers, an MRI, and nothing "
    "really helped for long. He sits at a desk all day. Could dry needling do anything for him?",
]


def held_out_scores(base_url: str, token: str, limit: Optional[int] = None) -> Dict[str, dict]:
    """Each held-out set's score (clinic.evaluation.Score.as_dict()), by set
    name; `limit` keeps the first items of each (a smoke run)."""
    scores = {}
    for name, path in SETS.items():
        items = load_items(path)[:limit] if limit else load_items(path)
        scores[name] = score(run(base_url, token, items)).as_dict()
    return scores


def accuracy_verdict(set_name: str, set_score: dict) -> str:
    """"met", or "missed by" and why, for a held-out set's score
    (clinic.evaluation.Score.as_dict()) against its target in clinic/quality.py."""
    problems = quality.shortfalls(set_name, set_score, target=True)
    return "met" if not problems else "missed by " + "; ".join(problems)


def encoder_milliseconds(repeats: int) -> float:
    """The sentence encoder alone (config.yml's model_weights), one message at
    a time as a server encodes them: milliseconds per message, on this machine."""
    import yaml
    from transformers import BertTokenizer, TFBertModel

    config = yaml.safe_load((ROOT / "config.yml").read_text())
    [weights] = [c["model_weights"] for c in config["pipeline"] if "model_weights" in c]
    tokenizer = BertTokenizer.from_pretrained(str(ROOT / weights))
    model = TFBertModel.from_pretrained(str(ROOT / weights))
    model(tokenizer(ENCODER_PROBES[0], return_tensors="tf"))  # first call builds the graph
    started = time.perf_counter()
    for _ in range(repeats):
        for text in ENCODER_PROBES:
            model(tokenizer(text, return_tensors="tf"))
    return 1000 * (time.perf_counter() - started) / (repeats * len(ENCODER_PROBES))


def encoder_cost(base_url: str, token: str, repeats: int = 10) -> Dict[str, float]:
    """Milliseconds per message: the served model's whole /model/parse, and
    the sentence encoder's part of it."""
    with requests.Session() as session:
        started = time.perf_counter()
        for _ in range(repeats):
            for text in ENCODER_PROBES:
                session.post(f"{base_url}/model/parse", params={"token": token}, json={"text": text}, timeout=60)
        parse = 1000 * (time.perf_counter() - started) / (repeats * len(ENCODER_PROBES))
    return {"encoder_ms": round(encoder_milliseconds(repeats), 1), "parse_ms": round(parse, 1)}
