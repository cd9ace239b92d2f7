"""The clinic assistant's shared code: facts, records, safety checks.

Used by the Rasa server (channels, NLU components), the action server and the
staff console alike, so nothing here opens a connection at import time.
"""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
