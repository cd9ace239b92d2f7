"""Every custom action, on trackers built from tests/data/tracker.json."""

import copy
import json
from pathlib import Path

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import ActionCompleteAnswer
from actions.booking import ActionBookingDetails
from actions.disclaimer import ActionMedicalDisclaimer
from actions.muscles import ActionExplainMuscle
from actions.privacy import ActionEraseVisitorData
from actions.review import ActionRecordForReview
from clinic import store
from clinic.facts import clinic_facts

BASE = json.loads((Path(__file__).parent / "data" / "tracker.json").read_text())


def tracker(intent="faq", text=None, channel="socketio", slots=None, entities=None, topic=None, sender="visitor-1"):
    state = copy.deepcopy(BASE)
    state["sender_id"] = sender
    message = state["latest_message"]
    message["intent"] = {"name": intent, "confidence": 0.99}
    message["intent_ranking"][0] = message["intent"]
    if text:
        message["text"] = text
    if entities is not None:
        message["entities"] = entities
    if topic:
        message["response_selector"]["faq"]["response"]["intent_response_key"] = topic
    state["events"][-1]["input_channel"] = channel
    state["slots"].update(slots or {})
    return Tracker.from_dict(state)


async def run(action, tracker_):
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker_, {})
    return dispatcher.messages, events


async def test_booking_details_on_the_web_come_with_link_buttons():
    messages, events = await run(ActionBookingDetails(), tracker(intent="book_appointment"))
    facts = clinic_facts()
    assert len(messages) == 1
    text = messages[0]["text"]
    assert facts["clinic_phone"] in text and "$100 off" in text and facts["booking_url"] in text
    urls = [button["url"] for button in messages[0]["buttons"]]
    assert urls == [facts["booking_url"], "tel:+19178304440", "sms:+19178304440"]
    assert events == []


async def test_booking_details_by_sms_are_plain_text():
    messages, _ = await run(ActionBookingDetails(), tracker(intent="book_appointment", channel="sms"))
    assert messages[0]["buttons"] == []
    assert clinic_facts()["clinic_phone"] in messages[0]["text"]


async def test_first_health_answer_gets_the_short_disclaimer_once():
    messages, events = await run(ActionCompleteAnswer(), tracker())
    assert [m["text"] for m in messages] == [clinic_facts()["disclaimer_short"]]
    assert SlotSet("disclaimer_shown", True) in events

    messages, events = await run(ActionCompleteAnswer(), tracker(slots={"disclaimer_shown": True}))
    assert messages == [] and SlotSet("disclaimer_shown", True) not in events


async def test_answer_about_the_practitioner_needs_no_disclaimer():
    messages, events = await run(ActionCompleteAnswer(), tracker(topic="faq/practitioner"))
    assert messages == [] and SlotSet("disclaimer_shown", True) not in events


async def test_advice_about_own_case_gets_notice_and_full_disclaimer_even_if_shown_before():
    messages, events = await run(
        ActionMedicalDisclaimer(), tracker(intent="ask_personal_advice", slots={"disclaimer_shown": True})
    )
    facts = clinic_facts()
    assert [m["text"] for m in messages] == [facts["own_case_notice"], facts["disclaimer_full"]]
    assert "911" in facts["disclaimer_full"]
    assert events == [SlotSet("disclaimer_shown", True)]


async def test_disclaimer_on_request_is_shortened_for_sms():
    messages, _ = await run(ActionMedicalDisclaimer(), tracker(intent="ask_disclaimer", channel="sms"))
    assert [m["text"] for m in messages] == [clinic_facts()["disclaimer_sms"]]
    assert len(messages[0]["text"]) < 160


@pytest.mark.parametrize(
    "mention,expected",
    [
        ("calf", "gastrocnemius"),
        ("calves", "gastrocnemius"),
        ("ql", "quadratus_lumborum"),
        ("piriformus", "piriformis"),
        ("glutes", "glutes"),
        ("gluteus minimus", "gluteus_minimus"),
        ("hammies", "hamstrings"),
    ],
)
async def test_muscle_named_by_the_visitor_selects_its_answer(mention, expected):
    entities = [{"entity": "muscle", "value": mention, "start": 0, "end": len(mention)}]
    messages, events = await run(ActionExplainMuscle(), tracker(intent="ask_muscle", entities=entities))
    assert messages == []
    assert events == [SlotSet("muscle_id", expected)]


async def test_muscle_remembered_from_earlier_is_used_when_none_is_named():
    messages, events = await run(ActionExplainMuscle(), tracker(intent="ask_muscle", entities=[], slots={"muscle": "QL"}))
    assert events == [SlotSet("muscle_id", "quadratus_lumborum")]


async def test_unknown_muscle_clears_the_answer_choice():
    entities = [{"entity": "muscle", "value": "biceps", "start": 0, "end": 6}]
    _, events = await run(ActionExplainMuscle(), tracker(intent="ask_muscle", entities=entities))
    assert events == [SlotSet("muscle_id", None)]


async def test_every_muscle_answer_variation_exists():
    import yaml

    from clinic import DATA_DIR
    from clinic.muscles import answer_ids

    variations = yaml.safe_load((DATA_DIR / "nlu" / "muscles.yml").read_text())["responses"]["utter_muscle"]
    conditioned = [v["condition"][0]["value"] for v in variations if "condition" in v]
    assert sorted(conditioned) == sorted(answer_ids())
    assert len(answer_ids()) == 11  # nine muscles and two groups
    assert any("condition" not in v for v in variations)  # a default when none is recognised


async def test_not_understood_message_is_recorded_with_its_predictions(database):
    messages, events = await run(
        ActionRecordForReview(), tracker(intent="nlu_fallback", text="do you do cupping", channel="socketio")
    )
    assert messages == [] and events == []
    [row] = store.rows(store.fallbacks)
    assert row["text"] == "do you do cupping"
    assert row["kind"] == "low_confidence"
    assert row["channel"] == "socketio"
    assert row["status"] == "new"
    predictions = json.loads(row["predictions"])
    assert predictions[0] == {"name": "nlu_fallback", "confidence": 0.99}
    assert {"name": "faq/what_is_dry_needling", "confidence": 0.93} in predictions


async def test_question_the_posts_do_not_answer_is_recorded_as_unknown_topic(database):
    await run(ActionRecordForReview(), tracker(intent="not_covered", text="do you take aetna"))
    [row] = store.rows(store.fallbacks)
    assert row["kind"] == "unknown_topic"


@pytest.fixture
def unreachable_database(monkeypatch):
    """A database URL nothing answers on."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    store.reset_engine()
    yield
    store.reset_engine()


async def test_recording_never_breaks_the_conversation(unreachable_database):
    messages, events = await run(ActionRecordForReview(), tracker(intent="nlu_fallback"))
    assert messages == [] and events == []


async def test_forget_me_erases_every_project_row_of_that_visitor_only(database):
    store.record_fallback("visitor-1", "rest", "hello?", "low_confidence", [])
    store.record_feedback("visitor-1", "socketio", "q", "a", False)
    store.record_fallback("visitor-2", "rest", "other", "low_confidence", [])
    messages, events = await run(ActionEraseVisitorData(), tracker(intent="request_data_erasure"))
    assert events == [SlotSet("erasure_failed", False)]
    assert store.rows(store.fallbacks, sender_id="visitor-1") == []
    assert store.rows(store.feedback, sender_id="visitor-1") == []
    assert len(store.rows(store.fallbacks, sender_id="visitor-2")) == 1


async def test_forget_me_says_so_when_it_could_not_erase(unreachable_database):
    _, events = await run(ActionEraseVisitorData(), tracker(intent="request_data_erasure"))
    assert events == [SlotSet("erasure_failed", True)]
