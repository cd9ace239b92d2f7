"""Scores a served model on the held-out set through the Rasa HTTP API (/model/parse), with the project's own scorer (clinic.evaluation)."""

from typing import List, Tuple

import requests

from clinic.evaluation import Score, answered_label, load_examples, score


def held_out_score(base_url: str, token: str, examples: List[Tuple[str, str]] = None) -> Score:
    """The same figures as `python -m clinic.evaluation MODEL`, from the running server's model."""
    results = []
    with requests.Session() as session:
        for text, expected in examples or load_examples():
            reply = session.post(f"{base_url}/model/parse", params={"token": token}, json={"text": text}, timeout=60)
            reply.raise_for_status()
            results.append((text, expected, answered_label(reply.json())))
    return score(results)
