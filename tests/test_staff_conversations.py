"""How the staff console reads a conversation (staff/conversations.py and its
Rasa client, staff/rasa_api.py), in this process, against a real Rasa server:
every conversation opens, whatever characters its id holds. (The console's
page for such conversations: tests/test_staff_console.py.)"""

import uuid
from typing import Dict, List
from urllib.parse import quote

import pytest
import requests

from conftest import ROOT, Assistant, store_conversation
from staff.conversations import Conversations
from staff.rasa_api import RasaServers, UnroutableConversationId, conversation_path
from staff.settings import Settings


def conversation_ids() -> Dict[str, str]:
    """Ids of every kind, new for each test: an SMS conversation's phone
    number, and ids with a slash, spaces or accents (from Rasa's API,
    `rasa shell` or an older channel)."""
    tag = uuid.uuid4().hex[:10]
    return {
        "phone number": f"+1555{int(tag, 16) % 10**7:07d}",
        "slash": f"import/{tag}/2024",
        "spaces": f"walk in {tag}",
        "accents": f"José Ñandú {tag}",
    }


def console_conversations(assistant: Assistant) -> Conversations:
    servers = RasaServers([assistant.url], assistant.token)
    settings = Settings(
        project_dir=ROOT, rasa_urls=[assistant.url], rasa_token=assistant.token,
        endpoints_file=ROOT / "endpoints.yml", var_dir=assistant.var_dir,
    )
    return Conversations(servers, settings)


def texts(events: List[dict], kind: str) -> List[str]:
    return [event.get("text") for event in events if event.get("event") == kind]


def test_rasa_looks_a_conversation_up_by_its_path_as_sent_never_decoded(assistant):
    # Why the console cannot percent-encode an id: Rasa's route takes "%2B" literally.
    sender = conversation_ids()["phone number"]
    store_conversation(assistant, sender, [("how long is a session?", "About 45 minutes.")])
    for path, found in ((quote(sender, safe=""), []), (sender, ["how long is a session?"])):
        reply = requests.get(
            f"{assistant.url}/conversations/{path}/tracker", params={"token": assistant.token}, timeout=30
        )
        reply.raise_for_status()
        assert reply.json()["sender_id"] == path
        assert texts(reply.json()["events"], "user") == found


@pytest.mark.parametrize("kind", ["phone number", "slash", "spaces", "accents"])
def test_the_console_reads_every_conversation_whatever_its_id(assistant, kind):
    sender = conversation_ids()[kind]
    question, answer = f"is it safe for me? ({kind})", f"Yes, in trained hands ({kind})."
    store_conversation(assistant, sender, [(question, answer), ("thanks", "You're welcome.")])

    events = console_conversations(assistant).events(sender)

    assert texts(events, "user") == [question, "thanks"]
    assert texts(events, "bot") == [answer, "You're welcome."]
    user = next(event for event in events if event["event"] == "user")
    assert user["parse_data"]["intent"]["name"] == "faq"


@pytest.mark.parametrize("kind", ["phone number", "slash"])
def test_ids_a_url_can_name_are_read_and_answered_through_rasas_api(assistant, kind):
    sender = conversation_ids()[kind]
    assert conversation_path(sender) == f"/conversations/{sender}"
    store_conversation(assistant, sender, [("hello there", "Hi!")])
    servers = RasaServers([assistant.url], assistant.token)

    tracker = servers.tracker(sender)
    assert tracker["sender_id"] == sender
    assert texts(tracker["events"], "user") == ["hello there"]

    # a command through the API runs in that very conversation
    servers.trigger_intent(assistant.url, sender, "greet")
    assert any("virtual assistant" in text for text in texts(servers.tracker(sender)["events"], "bot"))


@pytest.mark.parametrize("kind", ["spaces", "accents"])
def test_ids_no_url_can_name_are_refused_by_the_api_client_not_sent_encoded(assistant, kind):
    sender = conversation_ids()[kind]
    servers = RasaServers([assistant.url], assistant.token)
    assert conversation_path(sender) is None
    with pytest.raises(UnroutableConversationId):
        servers.tracker(sender)
    with pytest.raises(UnroutableConversationId):
        servers.trigger_intent(assistant.url, sender, "greet")


def test_a_conversation_not_stored_shows_nothing_not_another_ones(assistant):
    conversations = console_conversations(assistant)
    for sender in conversation_ids().values():
        assert texts(conversations.events(sender), "user") == []
