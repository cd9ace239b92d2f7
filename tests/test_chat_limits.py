"""Per-visitor and per-address limits on REST and the website chat
(channels/rate_limits.py), and one visitor's flood not starving the others
(channels/turn_guard.py): the limits on their own, then end to end on the
assistant as `make run` starts it (defaults), and on one started with low
limits behind a trusted proxy. Every load here is a few dozen messages."""

import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import requests
from sanic import Sanic
from sanic.compat import Header
from sanic.request import Request

from channels import rate_limits
from channels.rate_limits import ChatLimits, Limit, LimitSettings, TooManyMessages, client_address
from chat_client import ChatVisitor
from clinic.facts import clinic_facts
from conftest import Assistant, texts

POLITE = clinic_facts()["too_many_messages"]


def limits(rate=3, window=60, at_once=2, address_rate=5, address_at_once=4, exempt=("127.0.0.1/32",)):
    return ChatLimits(LimitSettings(
        visitor=Limit(rate, window, at_once),
        address=Limit(address_rate, window, address_at_once),
        exempt=tuple(rate_limits._network(text) for text in exempt),
    ))


def test_the_polite_message_names_the_clinics_phone():
    assert clinic_facts()["clinic_phone"] in POLITE and "{" not in POLITE


def test_a_visitor_gets_its_rate_and_then_waits_for_the_window(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(rate_limits.time, "monotonic", lambda: now[0])
    chat = limits(rate=3, window=60)
    for _ in range(3):
        chat.admit("visitor", "203.0.113.1").done()
        now[0] += 1
    with pytest.raises(TooManyMessages) as refused:
        chat.admit("visitor", "203.0.113.1")
    assert refused.value.retry_after == 57  # the first message leaves the window then
    chat.admit("another visitor", "203.0.113.1").done()  # others are not affected
    now[0] += 57
    chat.admit("visitor", "203.0.113.1").done()


def test_a_refused_message_does_not_count(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(rate_limits.time, "monotonic", lambda: now[0])
    chat = limits(rate=2, window=10)
    chat.admit("visitor", None).done()
    chat.admit("visitor", None).done()
    for _ in range(20):  # a visitor who keeps trying
        with pytest.raises(TooManyMessages):
            chat.admit("visitor", None)
    now[0] += 10.01
    chat.admit("visitor", None).done()


def test_a_burst_is_refused_beyond_the_messages_at_once():
    chat = limits(rate=100, at_once=2)
    first, second = chat.admit("visitor", None), chat.admit("visitor", None)
    with pytest.raises(TooManyMessages) as refused:
        chat.admit("visitor", None)
    assert refused.value.retry_after == 1
    first.done()
    with chat.admit("visitor", None):  # a place again once one is answered
        pass
    second.done()
    assert chat.visitors.in_progress == {}


def test_an_address_is_limited_across_its_conversations_unless_exempt():
    chat = limits(rate=100, address_rate=3)
    for n in range(3):
        chat.admit(f"new conversation {n}", "203.0.113.7").done()
    with pytest.raises(TooManyMessages):
        chat.admit("yet another", "203.0.113.7")
    chat.admit("yet another", "203.0.113.8").done()
    for n in range(10):  # this machine (the tests, the benchmark) is exempt from the address limit
        chat.admit(f"local {n}", "127.0.0.1").done()
    assert chat.is_exempt("127.0.0.1") and not chat.is_exempt("203.0.113.7") and not chat.is_exempt("not an ip")


def test_idle_visitors_are_forgotten(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(rate_limits.time, "monotonic", lambda: now[0])
    chat = limits(rate=5, window=10)
    for n in range(50):
        chat.admit(f"visitor {n}", None).done()
        now[0] += 1
    assert len(chat.visitors.recent) <= 12  # those of the last window, and a little
    monkeypatch.setattr(rate_limits, "MAX_KEYS", 20)
    for n in range(200):
        chat.admit(f"made-up id {n}", None).done()
    assert len(chat.visitors.recent) <= 21


def test_settings_come_from_the_environment_and_a_bad_one_stops_the_server():
    settings = LimitSettings.from_env({})
    assert (settings.visitor, settings.address) == (Limit(60, 60, 3), Limit(120, 60, 8))
    assert [str(n) for n in settings.exempt] == ["127.0.0.1/32", "::1/128"]
    settings = LimitSettings.from_env({"VISITOR_RATE_LIMIT": "10", "ADDRESS_AT_ONCE": "2", "LIMITS_EXEMPT_ADDRESSES": ""})
    assert settings.visitor.rate == 10 and settings.address.at_once == 2 and settings.exempt == ()
    for bad in ({"VISITOR_RATE_LIMIT": "0"}, {"ADDRESS_RATE_WINDOW": "ten"}, {"LIMITS_EXEMPT_ADDRESSES": "localhost"}):
        with pytest.raises(SystemExit):
            LimitSettings.from_env(bad)


APP = Sanic("test_chat_limits")


def request_from(peer: str, headers: dict) -> Request:
    request = Request(b"/webhooks/rest/webhook", Header(headers), "1.1", "POST", None, APP)
    request.conn_info = SimpleNamespace(client_ip=peer)
    return request


def test_x_forwarded_for_is_not_believed_unless_a_proxy_is_configured(monkeypatch, caplog):
    monkeypatch.setattr(APP.config, "PROXIES_COUNT", None)
    monkeypatch.setattr(rate_limits, "_last_proxy_warning", [-rate_limits.PROXY_WARNING_SECONDS])
    assert client_address(request_from("203.0.113.5", {"X-Forwarded-For": "198.51.100.7"})) == "203.0.113.5"
    assert "SANIC_PROXIES_COUNT" in caplog.text  # the operator is told why every visitor shares an address
    monkeypatch.setattr(APP.config, "PROXIES_COUNT", 1)
    # the proxy appends the address it saw; whatever the client put before it is ignored
    forwarded = request_from("10.0.0.2", {"X-Forwarded-For": "198.51.100.7, 192.0.2.1"})
    assert client_address(forwarded) == "192.0.2.1"
    assert client_address(request_from("10.0.0.2", {"X-Forwarded-For": "2001:db8::1"})) == "2001:db8::1"
    assert client_address(request_from("10.0.0.2", {})) == "10.0.0.2"  # not through the proxy


# ---- end to end, as `make run` starts it --------------------------------

def post(url: str, body: dict, headers=None, timeout: float = 40):
    started = time.monotonic()
    response = requests.post(f"{url}/webhooks/rest/webhook", json=body, headers=headers or {}, timeout=timeout)
    return response, time.monotonic() - started


def test_a_flooded_conversation_leaves_another_visitor_answered_promptly(assistant: Assistant):
    """The issue: 40 messages at once on one conversation took every turn
    place; another visitor waited 25 s for a 503."""
    first, _ = post(assistant.url, {"message": "what is dry needling?"})
    flooder = first.headers["X-Conversation-Id"]
    with ThreadPoolExecutor(max_workers=40) as pool:
        flood = [pool.submit(post, assistant.url, {"sender": flooder, "message": f"what is sciatica? ({n})"})
                 for n in range(40)]
        time.sleep(0.3)
        other, seconds = post(assistant.url, {"message": "how many sessions will I need?"})
        results = [future.result()[0] for future in flood]
    assert other.status_code == 200 and seconds < 5, (other.status_code, seconds)
    assert texts(other.json()) and clinic_facts()["assistant_unavailable"] not in texts(other.json())
    statuses = [response.status_code for response in results]
    assert set(statuses) <= {200, 429} and statuses.count(429) > 0, statuses
    refused = next(response for response in results if response.status_code == 429)
    assert refused.json() == {"message": POLITE} and int(refused.headers["Retry-After"]) >= 1
    # what was answered is in the conversation once each; what was refused never reached it
    answered = {n for n, response in enumerate(results) if response.status_code == 200}
    kept = [e["text"] for e in assistant.tracker(flooder)["events"] if e["event"] == "user"][1:]
    assert sorted(kept) == sorted(f"what is sciatica? ({n})" for n in answered)


def test_a_website_chat_burst_gets_the_polite_message_as_a_bot_message(assistant: Assistant):
    with ChatVisitor(assistant.url) as visitor:
        visitor.start()
        for n in range(8):  # at once, as a script would
            visitor.client.emit("user_uttered", {"message": f"what is sciatica? [{n}]", "session_id": visitor.session_id})
        received = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(m.get("text") == POLITE for m in received):
            try:
                received.append(visitor.received.get(timeout=1))
            except Exception:
                pass
    notice = next((m for m in received if m.get("text") == POLITE), None)
    assert notice is not None and notice.get("error") is True, received


LOW_LIMITS = {
    "VISITOR_RATE_LIMIT": "3", "VISITOR_RATE_WINDOW": "600",
    "ADDRESS_RATE_LIMIT": "4", "ADDRESS_RATE_WINDOW": "600",
    "LIMITS_EXEMPT_ADDRESSES": "",  # loopback limited too
    "SANIC_PROXIES_COUNT": "1",  # Sanic's own setting: one proxy in front, whose X-Forwarded-For is believed
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory, trained_model):
    running = Assistant(tmp_path_factory.mktemp("limited"), "limited", env=LOW_LIMITS).start()
    yield running
    running.stop()


def from_address(address: str) -> dict:
    return {"X-Forwarded-For": address}


def test_a_visitor_beyond_its_rate_gets_429_with_the_polite_message(limited: Assistant):
    first, _ = post(limited.url, {"message": "what is dry needling?"}, from_address("203.0.113.1"))
    sender = first.headers["X-Conversation-Id"]
    for text in ("is it safe?", "does it hurt?"):
        assert post(limited.url, {"sender": sender, "message": text}, from_address("203.0.113.1"))[0].status_code == 200
    refused, seconds = post(limited.url, {"sender": sender, "message": "how many sessions?"}, from_address("203.0.113.1"))
    assert refused.status_code == 429 and refused.json() == {"message": POLITE} and seconds < 2
    assert 1 <= int(refused.headers["Retry-After"]) <= 600
    # the conversation holds the answered messages only
    assert [e["text"] for e in limited.tracker(sender)["events"] if e["event"] == "user"] == [
        "what is dry needling?", "is it safe?", "does it hurt?"]


def test_an_address_beyond_its_rate_gets_429_whatever_conversations_it_starts(limited: Assistant):
    for n in range(4):
        assert post(limited.url, {"message": f"what is sciatica? {n}"}, from_address("203.0.113.2"))[0].status_code == 200
    refused, _ = post(limited.url, {"message": "what is sciatica?"}, from_address("203.0.113.2"))
    assert refused.status_code == 429 and refused.json() == {"message": POLITE}
    # a client cannot pass as another address: the proxy's own entry is the last one
    spoofed, _ = post(limited.url, {"message": "what is sciatica?"}, from_address("198.51.100.9, 203.0.113.2"))
    assert spoofed.status_code == 429
    assert post(limited.url, {"message": "what is sciatica?"}, from_address("203.0.113.3"))[0].status_code == 200


def test_a_website_chat_beyond_its_rate_gets_the_polite_message(limited: Assistant):
    with ChatVisitor(limited.url) as visitor:
        visitor.headers = from_address("203.0.113.4")  # the socket's address, as the proxy forwards it
        visitor.start()
        for n in range(3):
            assert POLITE not in texts(visitor.say(f"what is dry needling? ({n})"))
        reply = visitor.say("what is sciatica?")
    assert [m.get("text") for m in reply] == [POLITE] and reply[0].get("error") is True
