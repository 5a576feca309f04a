"""Page notices: what a page says after an action, chosen from a fixed set of codes.

A redirect after an action carries only a code (`?notice=lead_done`); the sentence comes from
`NOTICES`, so a link cannot make a page say anything else. Details (which lead, the reason an
action was refused) travel in the signed session cookie, for the next page only, and are shown
only beside the code they were given with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Notice:
    """A notice's sentence with its details, and the sentence without them."""

    text: str
    plain: str
    problem: bool = False


NOTICES = {
    "signed_out": Notice("You are signed out.", "You are signed out."),
    "recomputing": Notice("The numbers are being recomputed.",
                          "The numbers are being recomputed."),
    "lead_done": Notice("Lead {lead_id} {done}.", "Done."),
    "lead_reassigned": Notice("Lead {lead_id} reassigned to {owner_id}; they get its message "
                              "on the next act run.", "Lead reassigned."),
    "lead_refused": Notice("{reason}", "That action could not be done.", problem=True),
    "answer_saved": Notice("Thank you: your answer on {partner_account_id} is saved.",
                           "Thank you: your answer is saved."),
    "answers_saved": Notice("Thank you: {answers} saved as {answer}.",
                            "Thank you: your answers are saved."),
    "answer_refused": Notice("{reason}", "That answer could not be saved.", problem=True),
    "user_saved": Notice("User {email} {verb}.", "User saved."),
    "user_state": Notice("User {email} {state}.", "User changed."),
    "user_refused": Notice("{reason}", "That change could not be made.", problem=True),
    "cannot_deactivate_self": Notice("You cannot deactivate yourself.",
                                     "You cannot deactivate yourself.", problem=True),
}
FLASH = "f"  # the session key holding the details of the next page's notice


def flash(code: str, details: dict[str, str]) -> dict[str, Any]:
    """The session entry that carries a notice's details to the next page."""
    if code not in NOTICES:
        raise KeyError(f"no notice {code!r}")
    return {"code": code, "details": details}


def notice_text(code: str | None, flashed: Any) -> tuple[str | None, bool]:
    """The sentence for the notice `code` (None for an unknown code) and whether it is a
    problem; with the details flashed for that same code, the detailed sentence."""
    notice = NOTICES.get(code or "")
    if notice is None:
        return None, False
    if isinstance(flashed, dict) and flashed.get("code") == code:
        details = flashed.get("details")
        if isinstance(details, dict):
            try:
                return notice.text.format(**{k: str(v) for k, v in details.items()}), \
                    notice.problem
            except (KeyError, IndexError, ValueError):
                pass
    return notice.plain, notice.problem
