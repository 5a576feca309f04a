"""qualify: the four gates (overlap, warmth, fit, motion) that turn overlaps into EQLs."""

from doorstep.lifecycle import FunnelStep
from doorstep.qualify.gates import GateResult, fit_verdict, warmth_verdict
from doorstep.qualify.motion import resolve_motion
from doorstep.qualify.stage import QualifyReport, funnel, qualify_leads
from doorstep.qualify.warmth import warmth_score

__all__ = [
    "FunnelStep",
    "GateResult",
    "QualifyReport",
    "fit_verdict",
    "funnel",
    "qualify_leads",
    "resolve_motion",
    "warmth_score",
    "warmth_verdict",
]
