"""Reading `rasa train`'s log: which component trains, and a 0-100 estimate of how far it is."""

import re
from typing import Dict, Optional

# Rough share of the training time per component, from a full run here
# (DIET and the FAQ answer selector dominate); a cached component counts done.
COMPONENT_WEIGHTS = {"FastLoadDIETClassifier": [35], "FastLoadResponseSelector": [30, 10]}
STARTUP_WEIGHT, PACKAGING_WEIGHT, OTHER_WEIGHT = 10, 8, 1
EXPECTED_COMPONENTS = 8
ANSI = re.compile(r"\x1b\[[0-9;]*m")
STARTED = re.compile(r"Starting to train component '(\w+)'")
FINISHED = re.compile(r"(?:Finished training|Restored) component '(\w+)'")
EPOCHS = re.compile(r"Epochs:\s+(\d+)%")
NOISE = re.compile(
    r"Warning|warnings\.warn|declare_namespace|pkg_resources"
    r"|^\s+(?:from|import|self\.|Base:|VARIABLE|_VERSION|VERSION|REQUIREMENT|cli:|\)\.)|^Implementing implicit"
)


class TrainingProgress:
    """Turns Rasa's training log into a 0-100 estimate."""

    def __init__(self) -> None:
        self.seen: Dict[str, int] = {}
        self.done = 0.0
        self.current = 0.0
        self.fraction = 0.0
        self.total = STARTUP_WEIGHT + PACKAGING_WEIGHT + sum(sum(w) for w in COMPONENT_WEIGHTS.values()) + (
            EXPECTED_COMPONENTS - sum(len(w) for w in COMPONENT_WEIGHTS.values())
        ) * OTHER_WEIGHT
        self.started = False

    def _weight(self, name: str) -> float:
        weights = COMPONENT_WEIGHTS.get(name, [])
        index = self.seen.get(name, 0)
        return weights[index] if index < len(weights) else OTHER_WEIGHT

    def feed(self, line: str) -> Optional[str]:
        """Updates the estimate; returns the component being trained, if any."""
        if (match := STARTED.search(line)):
            if not self.started:
                self.started, self.done = True, STARTUP_WEIGHT
            self.current, self.fraction = self._weight(match.group(1)), 0.0
            return match.group(1)
        if (match := FINISHED.search(line)):
            if not self.started:
                self.started, self.done = True, STARTUP_WEIGHT
            self.done += self._weight(match.group(1))
            self.seen[match.group(1)] = self.seen.get(match.group(1), 0) + 1
            self.current = self.fraction = 0.0
        elif (match := EPOCHS.search(line)):
            self.fraction = int(match.group(1)) / 100
        return None

    @property
    def percent(self) -> float:
        return min(99.0, 100.0 * (self.done + self.current * self.fraction) / self.total)
