"""How long a Rasa server waits for the action server before giving up on an action.

Rasa 3.6's RemoteAction posts to the action server with
`timeout=DEFAULT_REQUEST_TIMEOUT` (five minutes) read from its own module, and
neither endpoints.yml nor the command line can change it. A stopped or hung
action server would hold the visitor's turn (and the conversation's lock) for
five minutes. This module is the one place that shortens it, by rebinding that
name in `rasa.core.actions.action` only, so Rasa's other HTTP calls keep their
own timeout. When the call times out, Rasa logs it, drops the action's events
and carries on with the turn (channels/turn_guard.py then apologises if the
visitor got nothing).
"""

import os

# Healthy actions answer in milliseconds (a database write at most). A turn
# runs at most two custom actions, and the visitor must hear back within 5 s.
DEFAULT_SECONDS = 2.0


def seconds() -> float:
    return float(os.environ.get("ACTION_TIMEOUT_SECONDS") or DEFAULT_SECONDS)


def apply() -> float:
    """Sets the action call timeout for this process; safe to call again."""
    import rasa.core.actions.action as rasa_action

    rasa_action.DEFAULT_REQUEST_TIMEOUT = seconds()
    return rasa_action.DEFAULT_REQUEST_TIMEOUT
