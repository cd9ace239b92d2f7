"""A conversation's whole history for the console, whatever characters its id holds.

Through Rasa's HTTP API when a URL can name the id (every id the assistant's
own channels make: issued ids, phone numbers; staff/rasa_api.py says which),
else straight from the tracker store the Rasa servers use, configured as
theirs is: an id with a space, "%", "?", "#" or a non-ASCII letter (made
through Rasa's API, `rasa shell` or an older channel) is in no URL that
Rasa 3.6 reads back as that id.
"""

from pathlib import Path
from typing import Any, Dict, List

from clinic import store
from staff.rasa_api import RasaServers, conversation_path
from staff.settings import Settings


class TrackerStoreUnavailable(RuntimeError):
    pass


class Conversations:
    def __init__(self, servers: RasaServers, settings: Settings) -> None:
        self.servers = servers
        self.settings = settings

    def events(self, sender_id: str) -> List[Dict[str, Any]]:
        """Every event of the conversation, oldest first, as Rasa's API gives them."""
        if conversation_path(sender_id) is not None:
            return (self.servers.tracker(sender_id) or {}).get("events") or []
        return self.stored_events(sender_id)

    def stored_events(self, sender_id: str) -> List[Dict[str, Any]]:
        """The same, read from the tracker store."""
        from rasa.shared.core.trackers import EventVerbosity

        tracker_store = self._tracker_store()
        try:
            tracker = store.run_to_completion(tracker_store.retrieve_full_tracker(sender_id))
        except Exception as error:
            raise TrackerStoreUnavailable(f"the tracker store cannot be read ({type(error).__name__})") from None
        finally:
            engine = getattr(tracker_store, "engine", None)
            if engine is not None:
                engine.dispose()
        return tracker.current_state(EventVerbosity.ALL)["events"] if tracker else []

    def _tracker_store(self) -> Any:
        # Rasa's own classes, imported only here: most pages never need them.
        from rasa.core.tracker_store import InMemoryTrackerStore, TrackerStore
        from rasa.shared.core.domain import Domain
        from rasa.utils.endpoints import read_endpoint_config

        endpoints = self.settings.endpoints_file
        config = read_endpoint_config(str(endpoints), "tracker_store") if endpoints.exists() else None
        if config is None:
            raise TrackerStoreUnavailable(f"{endpoints} configures no tracker store (RASA_ENDPOINTS)")
        if config.kwargs.get("dialect") == "sqlite":
            # where scripts/serve.py puts it: the var folder
            database = self.settings.var_dir / Path(config.kwargs.get("db") or "rasa.db").name
            if not database.exists():  # Rasa would create an empty one
                raise TrackerStoreUnavailable(f"no conversations are stored in {database} (CLINIC_VAR_DIR)")
            config.kwargs["db"] = str(database)
        try:
            # the domain's slots, so replaying the events warns about none
            domain = Domain.load(str(self.settings.project_dir / "domain.yml"))
            tracker_store = TrackerStore.create(config, domain=domain)
        except Exception as error:
            raise TrackerStoreUnavailable(f"the tracker store cannot be opened ({type(error).__name__})") from None
        if isinstance(tracker_store, InMemoryTrackerStore):  # Rasa's stand-in for a class it could not load
            raise TrackerStoreUnavailable(f"the tracker store of {endpoints} could not be loaded")
        return tracker_store
