"""How a tracker's events become the chat page's replayed history, and which
question a vote on an answer belongs to."""

from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered

from channels.chat_history import MAX_HISTORY_MESSAGES, chat_messages, find_answer
from channels.socketio import checked_metadata

BUTTONS = [{"title": "Book online", "payload": "https://example.org/", "url": "https://example.org/"}]


def conversation():
    return [
        ActionExecuted("action_listen"),
        UserUttered("/book_appointment", metadata={"shown": "Book a visit"}, input_channel="socketio"),
        BotUttered("Here is how to book.", data={"buttons": BUTTONS}),
        SlotSet("disclaimer_shown", True),
        UserUttered("is it safe?", input_channel="socketio"),
        BotUttered("First part.\n\nSecond part.", data={"buttons": [{"title": "More", "payload": "more"}]}),
        BotUttered(None, data={"custom": {"x": 1}}),
    ]


def test_history_shows_what_the_visitor_saw_and_splits_like_the_socket_channel():
    messages = [{k: v for k, v in m.items() if k != "time"} for m in chat_messages(conversation())]
    assert messages == [
        {"from": "user", "text": "Book a visit"},
        {"from": "bot", "text": "Here is how to book.", "buttons": BUTTONS},
        {"from": "user", "text": "is it safe?"},
        {"from": "bot", "text": "First part."},
        {"from": "bot", "text": "Second part.", "buttons": [{"title": "More", "payload": "more"}]},
    ]


def test_history_is_capped_to_the_latest_messages():
    events = [UserUttered(f"question {i}") for i in range(MAX_HISTORY_MESSAGES + 10)]
    messages = chat_messages(events)
    assert len(messages) == MAX_HISTORY_MESSAGES and messages[-1]["text"] == f"question {MAX_HISTORY_MESSAGES + 9}"


def test_a_vote_belongs_to_the_question_before_the_answer():
    assert find_answer(conversation(), "Here is how to book.") == ("Book a visit", "socketio")
    assert find_answer(conversation(), " Second part. ") == ("is it safe?", "socketio")
    assert find_answer(conversation(), "Something the bot never said.") is None
    assert find_answer(conversation(), "First part.\n\nSecond") is None


def test_socket_metadata_keeps_only_the_shown_text():
    assert checked_metadata({"shown": " Book a visit ", "is_admin": True}) == {"shown": "Book a visit"}
    assert checked_metadata({"shown": "x" * 1000}) == {"shown": "x" * 200}
    assert checked_metadata("{\"shown\": 1}") == {} and checked_metadata(None) == {}
