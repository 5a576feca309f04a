"""track: every routed lead followed to opportunity, won, lost or expired; its event log."""

from doorstep.store.events import Event, lead_history, record_events, status_from_history
from doorstep.track.outcomes import TrackReport, track_outcomes

__all__ = [
    "Event",
    "TrackReport",
    "lead_history",
    "record_events",
    "status_from_history",
    "track_outcomes",
]
