"""components/questions.py and components/issued_payloads.py on their own:
how a message is cut into questions, how the parts' predictions are merged,
and which "/intent" messages stay commands."""

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.training_data.message import Message

from components.issued_payloads import IssuedPayloadGuard
from components.questions import QuestionMerger, QuestionSplitter, conjunct_variants, looks_like_question, split_parts


@pytest.mark.parametrize(
    "text,parts",
    [
        ("What is dry needling and how many sessions do people usually need?",
         ["What is dry needling", "how many sessions do people usually need?"]),
        ("does it help sciatica? and do you take insurance?", ["does it help sciatica?", "and do you take insurance?"]),
        ("is it safe, and also how long is each session?", ["is it safe", "how long is each session?"]),
        ("I sit all day. My leg hurts.\nCan dry needling help?", ["I sit all day.", "My leg hurts.", "Can dry needling help?"]),
        # "and" inside one question is not a new question
        ("can it help with the pain and the numbness?", ["can it help with the pain and the numbness?"]),
        ("does it help sciatica and piriformis syndrome", ["does it help sciatica and piriformis syndrome"]),
        # questions listed with commas; a comma inside one question is not a list
        ("is it safe, how much does it cost, and do you take insurance?",
         ["is it safe", "how much does it cost", "do you take insurance?"]),
        ("if it hurts, is that normal?", ["if it hurts, is that normal?"]),
        ("my leg hurts, can it help?", ["my leg hurts, can it help?"]),
        # one-word fragments are not parts
        ("hi! ok. is it safe?", ["is it safe?"]),
        # a lead-in before a colon, numbered lists, texting's "n" and "wat"
        ("Quick q's: is it safe, does it hurt, and how long is a session?",
         ["Quick q's:", "is it safe", "does it hurt", "how long is a session?"]),
        ("Hi! Two questions: does it hurt, and how soon will I notice a difference?",
         ["Two questions:", "does it hurt", "how soon will I notice a difference?"]),
        ("1) does it help sciatica 2) how many sessions 3) do you take aetna",
         ["does it help sciatica", "how many sessions", "do you take aetna"]),
        ("(1) is it safe (2) does it hurt", ["is it safe", "does it hurt"]),
        ("wat is dry needling, does it hurt, and how much", ["wat is dry needling", "does it hurt", "how much"]),
        ("hey how much is it n can i book for this week", ["hey how much is it", "can i book for this week"]),
        ("sounds good, how do i book and can i come this saturday?", ["how do i book", "can i come this saturday?"]),
        # a number or a time is not a list
        ("it was 10:30 when it started, is that bad?", ["it was 10:30 when it started, is that bad?"]),
        ("I had 2 sessions, is that enough?", ["I had 2 sessions, is that enough?"]),
        ("", []),
    ],
)
def test_a_message_is_cut_into_sentences_and_question_clauses(text, parts):
    assert split_parts(text) == parts


@pytest.mark.parametrize(
    "clause,variants",
    [
        ("Can it help with the pain AND the numbness?", ["Can it help with the pain", "Can it help with the numbness?"]),
        ("is dry needling good for sciatica and plantar fasciitis?",
         ["is dry needling good for sciatica", "is dry needling good for plantar fasciitis?"]),
        ("will it help me move better and bring down the inflammation?",
         ["will it help me move better", "will it help bring down the inflammation?"]),
        # not one question about two things
        ("What is dry needling and how many sessions", []),
        ("is it safe and effective?", []),
        ("my back and leg hurt", []),
    ],
)
def test_a_question_about_two_things_gets_a_variant_for_each(clause, variants):
    assert conjunct_variants(clause) == variants


def test_variants_count_as_two_questions_only_when_both_are_understood_differently():
    message, [part] = split("Can it help with the pain AND the numbness?")
    predicted(message, "faq", 0.9, "faq/numbness_tingling")
    predicted(part, "faq", 0.9, "faq/numbness_tingling")
    first, second = part.get("question_variants")
    predicted(first, "faq", 0.9, "faq/pain_relief")
    predicted(second, "faq", 0.9, "faq/numbness_tingling")
    [merged] = QuestionMerger().process([message, part, first, second])
    assert [q["answer"] for q in merged.get("questions")] == ["faq/pain_relief", "faq/numbness_tingling"]

    message, [part] = split("is dry needling good for sciatica and back pain?")
    predicted(message, "faq", 0.9, "faq/does_it_help")
    predicted(part, "faq", 0.9, "faq/does_it_help")
    first, second = part.get("question_variants")
    predicted(first, "faq", 0.9, "faq/does_it_help")
    predicted(second, "faq", 0.4, "faq/pain_relief")  # not sure: one question
    [merged] = QuestionMerger().process([message, part, first, second])
    assert merged.get("questions") is None


def test_a_question_pointing_back_at_a_muscle_is_the_same_question():
    message, parts = split("what is the piriformis and why does it pinch the sciatic nerve?")
    predicted(message, "faq", 0.9, "faq/sciatica_causes")
    predicted(parts[0], "ask_muscle", 0.95)
    predicted(parts[1], "faq", 0.9, "faq/sciatica_causes")
    [merged] = QuestionMerger().process([message, *parts])
    assert merged.get("questions") is None
    assert merged.get("intent")["name"] == "ask_muscle"

    # "it" is dry needling here: two questions
    message, parts = split("does it help piriformis syndrome and how many visits would that take")
    predicted(message, "faq", 0.9, "faq/how_many_sessions")
    predicted(parts[0], "ask_muscle", 0.95)
    predicted(parts[1], "faq", 0.9, "faq/how_many_sessions")
    [merged] = QuestionMerger().process([message, *parts])
    assert [q["intent"] for q in merged.get("questions")] == ["ask_muscle", "faq"]


def test_a_pasted_essay_is_cut_into_a_bounded_number_of_parts():
    assert len(split_parts("My back hurts a lot. " * 50)) == 6


@pytest.mark.parametrize("text,expected", [
    ("is it safe", True), ("how many sessions?", True), ("my leg hurts?", True),
    ("tell me about the QL", True), ("I sit all day.", False), ("my back hurts", False),
])
def test_what_looks_like_a_question(text, expected):
    assert looks_like_question(text) is expected


def predicted(message: Message, intent: str, confidence: float, answer: str = None) -> Message:
    message.set("intent", {"name": intent, "confidence": confidence})
    message.set("intent_ranking", [{"name": intent, "confidence": confidence}])
    if answer:
        message.set("response_selector", {intent: {"response": {"intent_response_key": answer, "confidence": confidence}}})
    return message


def split(text: str):
    message = Message(data={"text": text})
    QuestionSplitter().process([message])
    return message, message.get("question_parts")


def test_several_confident_questions_become_the_questions_in_order():
    message, parts = split("What is dry needling and how many sessions do people usually need?")
    predicted(message, "faq", 0.9, "faq/how_many_sessions")
    predicted(parts[0], "faq", 0.95, "faq/what_is_dry_needling")
    predicted(parts[1], "faq", 0.9, "faq/how_many_sessions")
    [merged] = QuestionMerger().process([message, *parts])
    assert [q["answer"] for q in merged.get("questions")] == ["faq/what_is_dry_needling", "faq/how_many_sessions"]
    # Rasa's rule answers the first question first
    assert merged.get("response_selector")["faq"]["response"]["intent_response_key"] == "faq/what_is_dry_needling"
    assert merged.get("question_parts") is None


def test_the_question_after_context_is_the_one_answered():
    message, parts = split("I have a desk job and sitting sets off my leg. Can dry needling make everyday stuff more bearable?")
    predicted(message, "not_covered", 0.6, "not_covered/prices")
    predicted(parts[0], "faq", 0.55, "faq/sciatica_causes")
    predicted(parts[1], "faq", 0.9, "faq/pain_relief")
    [merged] = QuestionMerger().process([message, *parts])
    assert merged.get("intent")["name"] == "faq"
    assert merged.get("response_selector")["faq"]["response"]["intent_response_key"] == "faq/pain_relief"
    assert merged.get("questions") is None


def test_an_emergency_in_any_part_wins():
    message, parts = split("What is dry needling? Also I cannot feel my legs since this morning.")
    predicted(message, "faq", 0.9, "faq/what_is_dry_needling")
    predicted(parts[0], "faq", 0.9, "faq/what_is_dry_needling")
    predicted(parts[1], "report_emergency", 1.0)
    [merged] = QuestionMerger().process([message, *parts])
    assert merged.get("intent")["name"] == "report_emergency"


def test_unsure_or_short_parts_are_not_questions_of_their_own():
    message, parts = split("can someone explain dry needling like im 5. needles in muscles?? for sciatica??")
    predicted(message, "faq", 0.9, "faq/what_is_dry_needling")
    predicted(parts[0], "faq", 0.9, "faq/what_is_dry_needling")
    predicted(parts[1], "faq", 0.45, "faq/muscles_involved")
    for part in parts[2:]:
        predicted(part, "faq", 0.8, "faq/does_it_help")
    [merged] = QuestionMerger().process([message, *parts])
    assert merged.get("questions") is None
    assert merged.get("response_selector")["faq"]["response"]["intent_response_key"] == "faq/what_is_dry_needling"


# ---- "/intent" commands ---------------------------------------------------------------

DOMAIN = Domain.from_dict({
    "intents": ["book_appointment", "greet", "faq"],
    "responses": {"utter_greet": [{"text": "hi", "buttons": [{"title": "Book", "payload": "/book_appointment"}]}]},
})


def guarded(text: str, tracker: DialogueStateTracker = None) -> str:
    [message] = IssuedPayloadGuard().process([Message(data={"text": text})], DOMAIN, tracker)
    return message.get("text")


@pytest.mark.parametrize("text", ["/book_appointment", " /book_appointment "])
def test_a_button_the_assistant_offers_stays_a_command(text):
    assert guarded(text) == text


@pytest.mark.parametrize(
    "text,read_as",
    [
        ("/greet@1 I lost bladder control after needling", "greet@1 I lost bladder control after needling"),
        ("/faq", "faq"),
        ("/faq@0.1", "faq@0.1"),
        ("/not_covered", "not_covered"),
        ('/ask_muscle{"muscle": 42}', 'ask_muscle{"muscle": 42}'),
        ("/request_data_erasure", "request_data_erasure"),
        ("//book_appointment", "book_appointment"),
        ("/", "/"),
    ],
)
def test_any_other_command_is_read_as_text(text, read_as):
    assert guarded(text) == read_as


def test_a_button_an_action_sent_in_this_conversation_stays_a_command():
    tracker = DialogueStateTracker.from_events("v", [
        ActionExecuted("action_listen"), UserUttered("hello"),
        BotUttered("pick one", data={"buttons": [{"title": "Human", "payload": "/request_human"}]}),
    ])
    assert guarded("/request_human", tracker) == "/request_human"
    assert guarded("/request_human") == "request_human"
