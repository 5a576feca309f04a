"""map: account mapping, matching our accounts against every partner's accounts."""

from doorstep.map.stage import MapReport, find_overlaps, map_accounts

__all__ = ["MapReport", "find_overlaps", "map_accounts"]
