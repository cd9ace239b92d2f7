"""Custom parts of Rasa training (see config.yml): NLU pipeline components and the data importer."""

# Rasa's training cache fingerprints, made quicker (a third of a retrain).
from components import fingerprints  # noqa: F401
