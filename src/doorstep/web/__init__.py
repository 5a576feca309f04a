"""web: the dashboard, the rep queue, the partner portal and the REST API, over the library."""

from doorstep.web.app import create_app

__all__ = ["create_app"]
