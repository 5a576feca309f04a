"""The operational store: SQLAlchemy models, migrations and the connection."""

from doorstep.store.db import Store, open_store

__all__ = ["Store", "open_store"]
