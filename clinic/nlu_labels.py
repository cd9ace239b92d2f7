"""The intent names the NLU predicts and where a parse keeps the answer its
response selector chose: one vocabulary for the components, the actions,
the evaluation and the staff console."""

from typing import Any, Mapping, Optional, Tuple

FAQ = "faq"
NOT_COVERED = "not_covered"
# Intents whose answer a response selector chooses ("faq/safety"); the
# order is the order staff see them in.
RETRIEVAL_INTENTS = (FAQ, NOT_COVERED)
# Rasa's own fallback intent (rasa.shared.constants.DEFAULT_NLU_FALLBACK_INTENT_NAME).
FALLBACK = "nlu_fallback"
OUT_OF_SCOPE = "out_of_scope"
EMERGENCY = "report_emergency"
# Where Rasa's response selectors put their choice (rasa.shared.nlu.constants
# RESPONSE_SELECTOR and INTENT_RESPONSE_KEY).
RESPONSE_SELECTOR_KEY = "response_selector"
ANSWER_KEY = "intent_response_key"


def chosen_answer(parse: Mapping[str, Any], intent: str) -> Tuple[Optional[str], float]:
    """(label, confidence) of the answer the response selector of a
    retrieval intent chose, e.g. ("faq/safety", 0.93); (None, 0.0) when it
    chose none. `parse` is a parsed message (a dict or a Rasa Message)."""
    selectors = parse.get(RESPONSE_SELECTOR_KEY) or {}
    # a model without a selector per retrieval intent (stock Rasa) has one "default"
    selector = selectors.get(intent) or selectors.get("default") or {}
    response = selector.get("response") or {}
    return response.get(ANSWER_KEY), float(response.get("confidence") or 0.0)
