"""The running Rasa servers' HTTP API, always with the API token."""

import re
from typing import Any, Dict, List, Optional, Tuple

import requests

# Loading a model reads and builds it in the server: about 10-30 s here.
LOAD_TIMEOUT = 300
TIMEOUT = 30
# a page showing what each server runs must not hang on one that does not answer
STATUS_TIMEOUT = 5
# What a conversation id may hold for Rasa's /conversations/<conversation_id>/...
# routes to read back exactly that id. Sanic 21.12 hands a route the raw path,
# never percent-decoded (Rasa's routes do not ask it to unquote), so "%2B" is
# looked up as "%2B", not "+"; and no request line carries a space, "?", "#",
# "%" or a non-ASCII letter unencoded. These characters travel unencoded and
# unchanged (requests and urllib3 only resolve "." and ".." segments).
_IN_RASA_PATH = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/]+")


class RasaUnavailable(RuntimeError):
    pass


class UnroutableConversationId(RasaUnavailable):
    """Rasa's conversation routes cannot name this conversation id."""


def conversation_path(sender_id: str) -> Optional[str]:
    """/conversations/<conversation_id> as Rasa's routes read it back, or
    None when no URL can name this id to them."""
    if not _IN_RASA_PATH.fullmatch(sender_id) or any(part in (".", "..") for part in sender_id.split("/")):
        return None
    return f"/conversations/{sender_id}"


class RasaServers:
    def __init__(self, urls: List[str], token: str):
        self.urls = urls
        self.token = token

    def _call(self, method: str, url: str, path: str, timeout: float = TIMEOUT,
              params: Optional[Dict[str, str]] = None, **kwargs) -> requests.Response:
        if not self.token:
            raise RasaUnavailable("no API token: set RASA_API_TOKEN (or start the assistant with `make run`)")
        try:
            response = requests.request(
                method, url + path, params={**(params or {}), "token": self.token}, timeout=timeout, **kwargs
            )
        except requests.RequestException as error:
            raise RasaUnavailable(f"{url} cannot be reached ({type(error).__name__})") from None
        if response.status_code in (401, 403):
            raise RasaUnavailable(f"{url} refused the API token")
        return response

    def status(self, url: str) -> Dict[str, Any]:
        """model_file and model_id of the model the server runs."""
        response = self._call("GET", url, "/status", timeout=STATUS_TIMEOUT)
        if response.status_code == 409:  # Rasa: no model loaded
            return {}
        if not response.ok:
            raise RasaUnavailable(f"{url} answered {response.status_code} to /status")
        return response.json()

    def statuses(self) -> Dict[str, Any]:
        found = {}
        for url in self.urls:
            try:
                found[url] = self.status(url)
            except RasaUnavailable as error:
                found[url] = {"error": str(error)}
        return found

    @staticmethod
    def _conversation_path(sender_id: str) -> str:
        path = conversation_path(sender_id)
        if path is None:
            raise UnroutableConversationId("Rasa's HTTP API cannot name this conversation's id in a URL")
        return path

    def tracker(self, sender_id: str) -> Optional[Dict[str, Any]]:
        """The whole conversation (every event, before restarts too), from the
        first server that answers. UnroutableConversationId when no URL can name it."""
        path = self._conversation_path(sender_id) + "/tracker"
        last_error = None
        for url in self.urls:
            try:
                response = self._call("GET", url, path, params={"include_events": "ALL"})
            except RasaUnavailable as error:
                last_error = error
                continue
            if response.ok:
                return response.json()
            last_error = RasaUnavailable(f"{url} answered {response.status_code}")
        raise last_error or RasaUnavailable("no Rasa server configured")

    def load_model(self, url: str, model_url: str) -> None:
        """PUT /model naming a model server: the server fetches the archive
        from `model_url` (staff/model_server.py) with the API token and swaps
        models between requests, without a restart. Nothing it loads comes
        from a path on the console's machine."""
        # the token as a header, not in the URL: URLs end up in logs
        model_server = {"url": model_url, "headers": {"Authorization": f"Bearer {self.token}"},
                        "wait_time_between_pulls": None}
        response = self._call("PUT", url, "/model", timeout=LOAD_TIMEOUT, json={"model_server": model_server})
        if response.status_code != 204:
            # Rasa logs why a fetch failed and answers only "could not be loaded".
            raise RasaUnavailable(
                f"{url} could not fetch or load the model from {model_url} (it answered {response.status_code}): "
                "check that it reaches the console there (STAFF_MODEL_SERVER_URL) and its log"
            )

    def say(self, url: str, text: str, sender_id: Optional[str] = None) -> Tuple[str, List[Dict[str, Any]]]:
        """A message through the REST channel, as a visitor sends it: in a new
        conversation, or in `sender_id`'s (an id the server issued). Returns
        the conversation's id and the replies."""
        body = {"message": text, **({"sender": sender_id} if sender_id else {})}
        try:
            response = requests.post(f"{url}/webhooks/rest/webhook", json=body, timeout=TIMEOUT)
        except requests.RequestException as error:
            raise RasaUnavailable(f"{url} cannot be reached ({type(error).__name__})") from None
        if not response.ok:
            raise RasaUnavailable(f"{url} answered {response.status_code} to a message")
        return response.headers.get("X-Conversation-Id") or sender_id or "", response.json()

    def trigger_intent(self, url: str, sender_id: str, intent: str) -> None:
        """Runs the turn of `intent` in a conversation, through the API (the
        token): how the console gives a command no visitor can type."""
        path = self._conversation_path(sender_id) + "/trigger_intent"
        response = self._call("POST", url, path, json={"name": intent})
        if not response.ok:
            raise RasaUnavailable(f"{url} answered {response.status_code} to {intent}")
