"""map: account mapping, matching our accounts against every partner's accounts."""

from doorstep.map.stage import POPULATIONS, MapReport, find_overlaps, map_accounts, overlap_matrix

__all__ = ["POPULATIONS", "MapReport", "find_overlaps", "map_accounts", "overlap_matrix"]
