"""The lead lifecycle, defined once: statuses, gate order, open and closed, overdue, the funnel.

Every stage, the web app and the report import these names; none restates them (DESIGN §4):

    candidate -> warmth_requested -> eql -> routed -> accepted -> intro_requested
              -> intro_made -> opportunity -> won | lost,   with rejected and expired as exits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

CANDIDATE = "candidate"
WARMTH_REQUESTED = "warmth_requested"
EQL = "eql"
ROUTED = "routed"
ACCEPTED = "accepted"
INTRO_REQUESTED = "intro_requested"
INTRO_MADE = "intro_made"
OPPORTUNITY = "opportunity"
WON = "won"
LOST = "lost"
REJECTED = "rejected"
EXPIRED = "expired"

# The main line of a lead's life, in order; rejected and expired are exits from it.
LIFECYCLE = (
    CANDIDATE,
    WARMTH_REQUESTED,
    EQL,
    ROUTED,
    ACCEPTED,
    INTRO_REQUESTED,
    INTRO_MADE,
    OPPORTUNITY,
    WON,
    LOST,
)
EXITS = (REJECTED, EXPIRED)
STATUSES = (*LIFECYCLE, *EXITS)

# The statuses the qualify stage decides; past these, act, the owner and track move the lead.
QUALIFY_STATUSES = (CANDIDATE, WARMTH_REQUESTED, EQL)
# Not (yet) an EQL: a partner has not surfaced these leads.
PRE_EQL = (CANDIDATE, WARMTH_REQUESTED)
# An owner is working these leads: they count against the owner's capacity, and track follows
# them in the CRM's opportunities.
OPEN_STATUSES = (ROUTED, ACCEPTED, INTRO_REQUESTED, INTRO_MADE, OPPORTUNITY)
# A rep's to-do list: leads routed to them that they have not finished.
QUEUE_STATUSES = (ROUTED, ACCEPTED, INTRO_REQUESTED)
# Finished, one way or another.
CLOSED_STATUSES = (WON, LOST, REJECTED, EXPIRED)

# The four gates, in the order they are checked and listed.
GATES = ("overlap", "warmth", "fit", "motion")

# The actions a motion can take, and their words.
PARTNER_INTRO = "partner_intro"
CO_SELL = "co_sell"
REP_OUTREACH = "rep_outreach"
ACTIONS = (PARTNER_INTRO, CO_SELL, REP_OUTREACH)
ACTION_LABELS = {
    PARTNER_INTRO: "partner introduction",
    CO_SELL: "co-sell",
    REP_OUTREACH: "rep outreach",
}
# The status at which each action's motion is done; before it, a passed deadline is overdue.
MOTION_DONE = {PARTNER_INTRO: INTRO_MADE, CO_SELL: ACCEPTED, REP_OUTREACH: ACCEPTED}
# Actions whose motion needs the partner: the partner gets a request once the rep accepts.
PARTNER_ACTIONS = (PARTNER_INTRO, CO_SELL)


def is_surfaced(status: str) -> bool:
    """Whether a lead in this status was surfaced by its partner: it is (or was) an EQL."""
    return status not in PRE_EQL


def overdue_statuses(action: str | None) -> tuple[str, ...]:
    """The statuses in which a motion with this action is late once its deadline passed."""
    done = MOTION_DONE.get(action or "")
    if done is None:
        return ()
    return LIFECYCLE[LIFECYCLE.index(ROUTED) : LIFECYCLE.index(done)]


def late_actions(status: str) -> list[str]:
    """The actions whose motion is late in this status once the deadline passed."""
    return [action for action in MOTION_DONE if status in overdue_statuses(action)]


def is_overdue(status: str, action: str | None, due_at: datetime | None, now: datetime) -> bool:
    """Whether a lead's motion is past its deadline and not done yet."""
    return due_at is not None and due_at < now and status in overdue_statuses(action)


def failed_gate_list(failed_gates: str | None) -> list[str]:
    """The gates named in a lead's `failed_gates` text, in gate order."""
    named = {g for g in (failed_gates or "").split(";") if g}
    return [g for g in GATES if g in named] + sorted(named - set(GATES))


def failed_gates_text(gates: Iterable[str]) -> str:
    """Gates as a lead's `failed_gates` text: `;`-separated, in gate order."""
    return ";".join(failed_gate_list(";".join(gates)))


# --- the funnel --------------------------------------------------------------------------

# Leads still in after each gate, then the EQLs.
FUNNEL_STEPS = (*GATES, EQL)


@dataclass(frozen=True)
class FunnelStep:
    """One step of the qualify funnel: leads still in after this gate, and the share it lost."""

    step: str
    count: int
    lost: int
    share_lost: float


def funnel_steps(groups: Iterable[tuple[str, str | None, int]]) -> list[FunnelStep]:
    """The funnel from (status, failed_gates, leads) groups: leads still in after each gate,
    then the EQLs (surfaced leads), each with the share the step lost.

    Leads that moved past qualify count as having passed every gate they passed when qualified.
    """
    counts = dict.fromkeys(FUNNEL_STEPS, 0)
    for status, failed_gates, n in groups:
        failed = set(failed_gate_list(failed_gates))
        still_in = True
        for gate in GATES:
            still_in = still_in and gate not in failed
            counts[gate] += n if still_in else 0
        if still_in and is_surfaced(status):
            counts[EQL] += n
    steps: list[FunnelStep] = []
    previous: int | None = None
    for step, count in counts.items():
        lost = 0 if previous is None else previous - count
        share = lost / previous if previous else 0.0
        steps.append(FunnelStep(step, count, lost, round(share, 4)))
        previous = count
    return steps
