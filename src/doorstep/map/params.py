"""Settings of the probabilistic name matcher."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MatchParams:
    """Settings of the matcher; log ratios are natural logs."""

    # A word seen in no other name counts this many times in its frequency estimate.
    unseen_token_count: float = 0.25
    # Share of companies with a different, similarly named company in the other list (a
    # subsidiary abroad, a look-alike): caps what a name can prove, so a country or domain
    # can veto.
    name_twin_rate: float = 0.02
    # country: P(same country | match); domain: P(same domain), P(same label, other suffix)
    country_m: float = 0.98
    domain_m: float = 0.85
    domain_label_m: float = 0.12
    # expected share of the smaller list that has a match, before the data says more
    initial_overlap: float = 0.5
    max_overlap: float = 0.95
    iterations: int = 5
    estimate_m: bool = False
    prior_strength: float = 200.0
    candidates_per_profile: int = 6
    max_key_pairs: int = 20_000
    u_sample: int = 20_000
    u_pairs: int = 25_000
    u_prior_pairs: float = 500.0
    seed: int = 7


DEFAULT_PARAMS = MatchParams()

