"""The demo: a realistic synthetic workspace a new user can run every stage on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from doorstep.config import CONFIG_FILE, DEFAULT_TOML, ConfigError
from doorstep.demo_world import WorldSummary, generate_world
from doorstep.store.models import Lead, Partner
from doorstep.workspace import Workspace

DEMO_ICP = """\
[icp]
# Ideal customer profile. An empty list means "any".
industries = ["software", "fintech", "healthcare", "logistics", "manufacturing"]
countries = []          # ISO alpha-2 codes, e.g. ["US", "GB", "DE"]
employees_min = 50
employees_max = 5000
"""


def demo_config(partners: int = 4) -> str:
    """The demo's doorstep.toml: the defaults, with an ICP that some accounts miss, and each
    demo partner allowed to see its overlaps with our accounts (sharing is hidden by default)."""
    start = DEFAULT_TOML.index("[icp]")
    end = DEFAULT_TOML.index("\n[", start) + 1
    sharing = "".join(
        f'\n[sharing.P{k:02d}]   # what partner P{k:02d} may see of each population of ours\n'
        'customers = "overlaps"\nopen_opportunities = "overlaps"\nprospects = "overlaps"\n'
        for k in range(1, partners + 1)
    )
    return DEFAULT_TOML[:start] + DEMO_ICP + DEFAULT_TOML[end:] + sharing


def create_demo_workspace(
    path: Path,
    *,
    accounts: int = 5000,
    partners: int = 4,
    seed: int = 7,
    today: date | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> WorldSummary:
    """Write a synthetic workspace (config, data/ and truth/) to `path`.

    Refuses a folder that holds anything but an earlier demo, so real data is never overwritten.
    """
    if path.exists() and any(path.iterdir()) and not (path / "truth").is_dir():
        raise ConfigError(
            f"{path} is not empty and is not a demo workspace: pick a new folder for the demo."
        )
    path.mkdir(parents=True, exist_ok=True)
    summary = generate_world(
        path, accounts=accounts, partners=partners, seed=seed, today=today, progress=progress
    )
    (path / CONFIG_FILE).write_text(demo_config(partners), encoding="utf-8")
    return summary


DEMO_PASSWORD = "doorstep-demo"


def create_demo_users(workspace: Workspace) -> list[tuple[str, str, str]]:
    """One web user of each role (the busiest rep, the first partner); returns (email, role, scope).

    Re-running resets their passwords to DEMO_PASSWORD and creates no second user.
    """
    from doorstep.web.auth import add_user

    with workspace.store.engine.connect() as conn:
        rep_id = conn.execute(
            select(Lead.owner_id)
            .where(Lead.owner_id.is_not(None))
            .group_by(Lead.owner_id)
            .order_by(func.count().desc(), Lead.owner_id)
            .limit(1)
        ).scalar()
        partner_id = conn.execute(select(func.min(Partner.partner_id))).scalar()
    users: list[tuple[str, str, str | None, str | None, str]] = [
        ("admin@demo.example", "admin", None, None, "everything"),
        ("alliances@demo.example", "partner_manager", None, None, "all partners"),
    ]
    if rep_id:
        users.append(("rep@demo.example", "rep", None, rep_id, f"rep {rep_id}'s queue"))
    if partner_id:
        users.append(
            ("partner@demo.example", "partner", partner_id, None, f"partner {partner_id}'s portal")
        )
    for email, role, partner, rep, _ in users:
        add_user(workspace.store, email, role, DEMO_PASSWORD, partner_id=partner, rep_id=rep)
    return [(email, role, scope) for email, role, _, _, scope in users]
