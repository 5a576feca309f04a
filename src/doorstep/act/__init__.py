"""act: route every EQL to an owner, queue and deliver the motion's messages, escalate when late."""

from doorstep.act.rep_actions import (
    REJECT_REASONS,
    LeadActionError,
    LeadChange,
    accept_lead,
    acting_rep,
    mark_intro_made,
    reassign_lead,
    reject_lead,
)
from doorstep.act.stage import ActReport, OverdueMotion, RoutedLead, UnroutedLead, act
from doorstep.act.worker import ChannelCounts, WorkerReport, deliver_due, failure_advice
from doorstep.qualify.motion import (
    MotionRouter,
    MotionRules,
    MotionVerdict,
    motion_rules,
    resolve_motion,
)

__all__ = [
    "REJECT_REASONS",
    "ActReport",
    "ChannelCounts",
    "LeadActionError",
    "LeadChange",
    "MotionRouter",
    "MotionRules",
    "MotionVerdict",
    "OverdueMotion",
    "RoutedLead",
    "UnroutedLead",
    "WorkerReport",
    "accept_lead",
    "act",
    "acting_rep",
    "deliver_due",
    "failure_advice",
    "mark_intro_made",
    "motion_rules",
    "reassign_lead",
    "reject_lead",
    "resolve_motion",
]
