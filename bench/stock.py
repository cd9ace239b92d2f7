"""Stock Rasa as a team would get it from `rasa init` (Rasa 3.6): its default
pipeline and policies, channel and endpoints, written into a folder of its
own.
"""

import copy
from pathlib import Path
from typing import Any, Dict

import yaml

# Rasa 3.6's default configuration (rasa/engine/recipes/config_files/
# default_config.yml), which `rasa init` trains with: no spaCy, no custom
# components, no project importer.
STOCK_CONFIG: Dict[str, Any] = {
    "recipe": "default.v1",
    "assistant_id": "stock_rasa_default",
    "language": "en",
    "pipeline": [
        {"name": "WhitespaceTokenizer"},
        {"name": "RegexFeaturizer"},
        {"name": "LexicalSyntacticFeaturizer"},
        {"name": "CountVectorsFeaturizer"},
        {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4},
        {"name": "DIETClassifier", "epochs": 100, "constrain_similarities": True},
        {"name": "EntitySynonymMapper"},
        {"name": "ResponseSelector", "epochs": 100, "constrain_similarities": True},
        {"name": "FallbackClassifier", "threshold": 0.3, "ambiguity_threshold": 0.1},
    ],
    "policies": [
        {"name": "MemoizationPolicy"},
        {"name": "RulePolicy"},
        {"name": "UnexpecTEDIntentPolicy", "max_history": 5, "epochs": 100},
        {"name": "TEDPolicy", "max_history": 5, "epochs": 100, "constrain_similarities": True},
    ],
}

# `rasa init`'s channel: Rasa's own REST webhook, at the same URL as the project's.
STOCK_CREDENTIALS: Dict[str, Any] = {"rest": None}

# `rasa init`'s endpoints (conversations and locks in memory) plus what the
# shared domain needs to answer at all: the action server, since the same
# rules call the same custom actions, and the response filling, since the
# same answers say {clinic_phone} (without it Rasa would send the
# placeholders and log an error for every answer).
STOCK_ENDPOINTS: Dict[str, Any] = {
    "action_endpoint": {"url": "http://127.0.0.1:5055/webhook"},
    "nlg": {"type": "clinic.nlg.ClinicNLG"},
}


def with_epochs(config: Dict[str, Any], epochs: int) -> Dict[str, Any]:
    """The configuration with every trained component and policy limited to `epochs`."""
    config = copy.deepcopy(config)
    for item in config.get("pipeline", []) + config.get("policies", []):
        if "epochs" in item or item["name"] in ("DIETClassifier", "ResponseSelector", "TEDPolicy", "UnexpecTEDIntentPolicy"):
            item["epochs"] = epochs
    return config


def write_stock_project(folder: Path, epochs: int = 0) -> Dict[str, Path]:
    """Writes stock Rasa's config, credentials and endpoints into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    config = with_epochs(STOCK_CONFIG, epochs) if epochs else STOCK_CONFIG
    files = {
        "config": (folder / "config.yml", config),
        "credentials": (folder / "credentials.yml", STOCK_CREDENTIALS),
        "endpoints": (folder / "endpoints.yml", STOCK_ENDPOINTS),
    }
    for path, content in files.values():
        path.write_text(yaml.safe_dump(content, sort_keys=False))
    return {name: path for name, (path, _) in files.items()}
