"""The staff inbox (staff/inbox.py) over a real SQLite database: what it
shows, how near-duplicates are grouped, ordered and filtered."""

from datetime import timedelta

import pytest

from clinic import store
from staff import inbox


# every test on a database of its own (conftest.py)
pytestmark = pytest.mark.usefixtures("database")


def fallback(text: str, kind: str = "low_confidence", channel: str = "rest", minutes_ago: int = 0) -> None:
    store.record_fallback(
        "sender-" + text[:8], channel, text, kind,
        [{"name": "nlu_fallback", "confidence": 0.5}, {"name": "faq", "confidence": 0.9},
         {"name": "faq/how_many_sessions", "confidence": 0.31}, {"name": "faq/safety", "confidence": 0.2}],
    )
    if minutes_ago:
        with store.engine().begin() as connection:
            table = store.fallbacks
            last = max(row["id"] for row in store.rows(table))
            connection.execute(
                table.update().where(table.c.id == last).values(created_at=store.now() - timedelta(minutes=minutes_ago))
            )


def test_near_duplicates_are_one_group_with_a_count():
    fallback("How many sessions will I need?", minutes_ago=30)
    fallback("how many sessions will i need", channel="sms", minutes_ago=20)
    fallback("how many sesions will i need??", minutes_ago=10)
    fallback("do you take insurance", kind="unknown_topic")
    groups = inbox.inbox()
    assert [group.count for group in groups] == [1, 3]  # newest first
    sessions = groups[1]
    assert sessions.text == "how many sesions will i need??"  # the latest wording
    assert set(sessions.channels) == {"rest", "sms"}
    assert len(sessions.refs.split(",")) == 3
    assert groups[0].kinds == ["unknown_topic"]


def test_most_frequent_first_and_the_guesses_leave_out_the_fallback():
    fallback("is it safe", minutes_ago=5)
    fallback("how many sessions will i need", minutes_ago=60)
    fallback("how many sessions will i need", minutes_ago=50)
    groups = inbox.inbox(order="frequent")
    assert [group.text for group in groups] == ["how many sessions will i need", "is it safe"]
    assert [g["name"] for g in groups[0].guesses] == ["faq/how_many_sessions", "faq/safety"]


def test_answers_marked_not_helpful_are_in_the_inbox_and_helpful_ones_are_not():
    store.record_feedback("visitor-1", "socketio", "can needling fix my posture", "Dry needling ...", helpful=False)
    store.record_feedback("visitor-2", "socketio", "what is dry needling", "Dry needling ...", helpful=True)
    groups = inbox.inbox()
    assert [(g.text, g.kinds) for g in groups] == [("can needling fix my posture", ["not_helpful"])]
    assert groups[0].items[0].answer == "Dry needling ..."


def test_status_changes_move_a_group_between_filters():
    fallback("how many sessions will i need")
    fallback("how many sessions will i need?")
    store.record_feedback("visitor-1", "rest", "how many sessions will i need!", "...", helpful=False)
    group = inbox.inbox()[0]
    assert group.count == 3
    assert inbox.set_status(group.refs, "taught") == 3
    assert inbox.inbox("new") == []
    assert inbox.inbox("taught")[0].count == 3
    assert inbox.inbox(None)[0].statuses == ["taught"]
    with pytest.raises(ValueError):
        inbox.set_status(group.refs, "deleted")


def test_refs_from_a_form_only_name_real_rows():
    fallback("is it safe")
    assert inbox.parse_refs("fallback:1, feedback:x, other:3, fallback:; drop table") == [("fallback", 1)]
    assert [item.text for item in inbox.find("fallback:1,fallback:99")] == ["is it safe"]
    assert inbox.set_status("fallback:99", "dismissed") == 0
