"""map: account mapping, matching our accounts against every partner's accounts."""

from doorstep.map.stage import MapReport, Matches, find_matches, find_overlaps, map_accounts

__all__ = ["MapReport", "Matches", "find_matches", "find_overlaps", "map_accounts"]
