"""track: the append-only event log of every lead's life."""

from doorstep.track.events import Event, lead_history, record_events, status_from_history

__all__ = ["Event", "lead_history", "record_events", "status_from_history"]
