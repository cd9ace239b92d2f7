"""Custom parts of Rasa training (see config.yml): NLU pipeline components and the data importer."""
