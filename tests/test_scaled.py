"""The scaled profile end to end: two Rasa servers started as `make run-scaled`
starts them, on this machine's PostgreSQL and Redis (a throwaway database),
under load. Every conversation's tracker must hold exactly the turns the
visitor was answered for, in order: none lost, none duplicated. Also: a
visitor forgotten in every store, nothing kept on the servers' disk, and
browsers' origins. Faults are tests/test_scaled_recovery.py's; both use the
same servers (tests/scaled_fixtures.py).
Each test prints what it measured (pytest -s shows it)."""

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Tuple

import redis
import requests
import sqlalchemy as sa
import yaml

from clinic import DATA_DIR, store
from clinic.facts import fill
from conftest import texts
from scaled_fixtures import ALLOWED_ORIGIN, QUESTIONS, answered, post, sender, user_turns
from services import REDIS_URL


def test_one_conversation_alternating_between_servers_keeps_every_turn_in_order(scaled):
    visitor, sent, slowest = sender("alternating"), [], 0.0
    for index in range(40):
        text = f"{QUESTIONS[index % len(QUESTIONS)]} ({index})"
        status, body, seconds = post(scaled, index % 2, visitor, text)
        assert answered(status, body), (index, status, body)
        sent.append(text)
        slowest = max(slowest, seconds)
    assert user_turns(scaled, visitor, replica=0) == sent
    assert user_turns(scaled, visitor, replica=1) == sent
    print(f"\n40 alternating messages: all 40 in order on both servers; slowest reply {slowest:.2f} s")


def test_twenty_conversations_at_once_across_both_servers_keep_their_own_turns(scaled):
    visitors = [sender(f"concurrent{n}") for n in range(20)]

    def conversation(index: int) -> Tuple[str, List[str], List[float]]:
        sent, times = [], []
        for turn in range(5):
            text = f"{QUESTIONS[(index + turn) % len(QUESTIONS)]} [{index}.{turn}]"
            status, body, seconds = post(scaled, (index + turn) % 2, visitors[index], text, timeout=60)
            assert answered(status, body), (index, turn, status, body)
            sent.append(text)
            times.append(seconds)
        return visitors[index], sent, times

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(conversation, range(20)))
    latencies = sorted(seconds for _, _, times in results for seconds in times)
    for visitor, sent, _ in results:
        assert user_turns(scaled, visitor) == sent
    print(
        f"\n20 concurrent conversations, 100 messages: every tracker exact; "
        f"median {latencies[len(latencies) // 2]:.2f} s, slowest {latencies[-1]:.2f} s"
    )


def test_messages_of_one_conversation_arriving_at_both_servers_at_once_are_each_kept_once(scaled):
    """Rasa issue #9213: two servers handling one conversation at the same
    moment lost or mixed up events. Here four messages of one conversation
    arrive at once, two at each server."""
    checked = 0
    for _ in range(5):
        visitor = sender("burst")
        burst = [f"{QUESTIONS[n]} <{n}>" for n in range(4)]
        with ThreadPoolExecutor(max_workers=4) as pool:
            replies = list(pool.map(lambda n: post(scaled, n % 2, visitor, burst[n], timeout=60), range(4)))
        assert all(answered(status, body) for status, body, _ in replies), replies
        events = scaled.tracker(visitor)["events"]
        turns = [e["text"] for e in events if e["event"] == "user"]
        assert sorted(turns) == sorted(burst)  # each exactly once, in arrival order
        # turns never interleave: each ends (action_listen) before the next starts
        names = [e["event"] if e["event"] != "action" else e["name"] for e in events]
        user_positions = [i for i, name in enumerate(names) if name == "user"]
        for start, end in zip(user_positions, user_positions[1:] + [len(names)]):
            assert "bot" in names[start:end] and names[end - 1] == "action_listen", names[start:end]
        checked += 4
    print(f"\n{checked} simultaneous same-conversation messages: each kept once, no interleaving")


def test_forget_me_leaves_nothing_about_the_visitor_in_any_store(scaled):
    visitor, other = sender("forget"), sender("keep")
    engine = sa.create_engine(scaled.database_url)
    try:
        for who in (visitor, other):
            assert answered(*post(scaled, 0, who, "how much does a session cost?")[:2])  # kept for staff
            assert answered(*post(scaled, 1, who, "what is sciatica")[:2])
        store.metadata.create_all(engine)
        sms = store.metadata.tables
        with engine.begin() as connection:  # rows the website chat and the SMS channel keep
            for who in (visitor, other):
                connection.execute(store.feedback.insert().values(
                    created_at=store.now(), sender_id=who, channel="socketio", question="q", answer="a",
                    helpful=True, status="new"))
                if "sms_opt_outs" in sms:
                    connection.execute(sms["sms_opt_outs"].insert().values(sender_id=who, created_at=store.now()))
                if "sms_messages" in sms:
                    connection.execute(sms["sms_messages"].insert().values(
                        message_sid="SM" + uuid.uuid4().hex, sender_id=who, received_at=store.now(),
                        kind="conversation", reply=json.dumps(["a"])))
        tables = [table for table in store.metadata.sorted_tables if "sender_id" in table.c]

        def rows_about(who: str) -> Dict[str, int]:
            with engine.connect() as connection:
                counts = {
                    table.name: connection.execute(
                        sa.select(sa.func.count()).select_from(table).where(table.c.sender_id == who)
                    ).scalar()
                    for table in tables
                }
                counts["events"] = connection.execute(
                    sa.text("SELECT count(*) FROM events WHERE sender_id = :who"), {"who": who}
                ).scalar()
            return counts

        before, other_before = rows_about(visitor), rows_about(other)
        assert before["fallbacks"] >= 1 and before["feedback"] == 1 and before["events"] > 0
        assert all(before[name] == 1 for name in ("sms_opt_outs", "sms_messages") if name in before)

        status, body, _ = post(scaled, 1, visitor, "please forget me")
        domain = yaml.safe_load((DATA_DIR.parent / "domain.yml").read_text())["responses"]
        assert status == 200 and texts(body) == fill(domain["utter_erasure_result"][-1]["text"])

        assert set(rows_about(visitor).values()) == {0}, rows_about(visitor)
        assert rows_about(other) == other_before
        lock_keys = redis.Redis.from_url(REDIS_URL).keys(f"*{visitor}*")
        assert lock_keys == []
        # the same visitor id starts afresh
        assert answered(*post(scaled, 0, visitor, "what is dry needling")[:2])
        assert user_turns(scaled, visitor) == ["what is dry needling"]
        print(f"\nforget me: {sum(before.values())} rows in {len(before)} tables erased, other visitor untouched")
    finally:
        engine.dispose()


def test_scaled_profile_keeps_nothing_on_the_servers_disk(scaled):
    assert not any(scaled.var_dir.glob("*.db")), list(scaled.var_dir.iterdir())


def test_only_the_configured_origin_may_call_from_a_browser(scaled):
    body = {"sender": sender("cors"), "message": "what is sciatica"}
    allowed = requests.post(
        f"{scaled.url}/webhooks/rest/webhook", json=body, headers={"Origin": ALLOWED_ORIGIN}, timeout=30
    )
    assert allowed.headers.get("Access-Control-Allow-Origin") == ALLOWED_ORIGIN
    other = requests.post(
        f"{scaled.url}/webhooks/rest/webhook", json=body, headers={"Origin": "https://elsewhere.example"}, timeout=30
    )
    assert "Access-Control-Allow-Origin" not in other.headers
