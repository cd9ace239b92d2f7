"""A website chat visitor for tests: python-socketio's client speaking the
chat page's protocol (session_request / session_confirm, user_uttered /
bot_uttered) to a running assistant, over a WebSocket as browsers do."""

import queue
from typing import Any, Dict, List, Optional

import socketio

# A reply is complete once no message came for this long after the first.
QUIET_SECONDS = 0.8


class ChatVisitor:
    """One browser tab of the website chat."""

    def __init__(self, url: str, origin: Optional[str] = None, transports: Optional[List[str]] = None) -> None:
        self.url = url
        self.transports = transports or ["websocket"]
        # The page's origin: websocket-client sends its own Origin header
        # (the server's), so on a WebSocket it is replaced, not added.
        websocket_only = self.transports == ["websocket"]
        self.headers = {"Origin": origin} if origin and not websocket_only else {}
        options = {"origin": origin} if origin and websocket_only else {}
        self.client = socketio.Client(reconnection=False, websocket_extra_options=options)
        self.session_id: Optional[str] = None
        self.received: "queue.Queue[Dict[str, Any]]" = queue.Queue()
        self._confirmed: "queue.Queue[str]" = queue.Queue()
        self.client.on("session_confirm", self._confirmed.put)
        self.client.on("bot_uttered", self.received.put)

    def __enter__(self) -> "ChatVisitor":
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()

    def start(self, session_id: Optional[str] = None, timeout: float = 15) -> str:
        """Connects and asks for the conversation `session_id` (None: a new
        one); returns the id the server confirmed. Raises
        socketio.exceptions.ConnectionError when the server refuses."""
        self.client.connect(self.url, headers=self.headers, transports=self.transports, wait_timeout=timeout)
        self.client.emit("session_request", {"session_id": session_id})
        self.session_id = self._confirmed.get(timeout=timeout)
        return self.session_id

    def say(self, text: str, session_id: Optional[str] = None, metadata: Optional[dict] = None,
            timeout: float = 20) -> List[Dict[str, Any]]:
        """Sends a message (as the page does, naming its conversation) and
        returns the bot messages that answer it."""
        self.client.emit(
            "user_uttered",
            {"message": text, "session_id": session_id or self.session_id, "metadata": metadata or {}},
        )
        replies = [self.received.get(timeout=timeout)]
        while True:
            try:
                replies.append(self.received.get(timeout=QUIET_SECONDS))
            except queue.Empty:
                return replies

    def stop(self) -> None:
        """Leaves as a closed tab does: the close is sent, and nothing waits for
        a long-polling request in flight, which the server holds for up to its
        25 s ping interval (Engine.IO's disconnect would wait for it)."""
        if self.client.connected:
            self.client.eio.disconnect(abort=True)


def web_conversation(url: str, texts: List[str]) -> str:
    """Has a new website visitor send `texts`; returns the conversation's id."""
    with ChatVisitor(url) as visitor:
        session_id = visitor.start()
        for text in texts:
            visitor.say(text)
        return session_id
