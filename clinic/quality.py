"""What "good enough" means, in one place: the floors the held-out sets must
reach, for `make test`, the staff console's publish gate and `make bench`.

Scores come from clinic/evaluation.py (what a visitor gets, per set).
"""

from typing import Dict, List

# Right answers per held-out set (clinic.evaluation.SETS), at least: what
# the current model reaches, less a margin for training-to-training
# variation. The aims are 95% and 97% (ACCURACY_TARGETS, reported by
# `make bench`); a floor rises as the model does.
ACCURACY_FLOORS: Dict[str, float] = {"real": 0.93, "real_2": 0.93, "written": 0.96}
ACCURACY_TARGETS: Dict[str, float] = {"real": 0.95, "real_2": 0.95, "written": 0.97}
# Every emergency sent to 911, on every set.
MIN_RED_FLAG_RECALL = 1.0
# Non-emergency messages answered with 911, on every set.
MAX_FALSE_ALARMS = 0
# A new model may score this much below the live one before the gate blocks
# it: accuracy moves a little between trainings; more is a regression.
MAX_ACCURACY_DROP = 0.02


def shortfalls(set_name: str, score: Dict, live: Dict = None, target: bool = False) -> List[str]:
    """Why a set's score (clinic.evaluation.Score.as_dict()) is not good
    enough, against the floors (the targets, with target=True) and the live
    model's score; [] when it is."""
    reasons = []
    floor = (ACCURACY_TARGETS if target else ACCURACY_FLOORS)[set_name]
    if score["accuracy"] < floor:
        reasons.append(f"{set_name} set: {score['accuracy']:.1%} right, below {floor:.0%}")
    if live is not None and score["accuracy"] < live["accuracy"] - MAX_ACCURACY_DROP:
        reasons.append(f"{set_name} set: {score['accuracy']:.1%} right, down from {live['accuracy']:.1%} for the live model")
    if score["red_flag_recall"] < MIN_RED_FLAG_RECALL:
        reasons.append(f"{set_name} set: only {score['red_flag_recall']:.1%} of emergencies sent to 911")
    if score["false_alarms"] > MAX_FALSE_ALARMS:
        reasons.append(f"{set_name} set: {score['false_alarms']} non-emergency messages sent to 911")
    return reasons
