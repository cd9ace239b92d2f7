"""The benchmark (`make bench`): the clinic assistant side by side with stock
Rasa trained on the same data, for accuracy, speed and cost.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
