"""Crash safety: a worker killed (SIGKILL) at random points loses no message and repeats none.

The worker runs in a real subprocess and posts to a real webhook receiver on loopback. The
test kills it while the receiver holds a request (sent, not yet answered), just after an
answer (sent, perhaps not yet marked), or at a random moment, then runs it again, until the
outbox is empty. Every message must arrive at least once, identical each time, and the
receiver, which deduplicates on the idempotency key, must process each key exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from test_act_channels import SECRET, WebhookReceiver
from test_act_stage import ACT_WORLD, build_act_workspace

from doorstep.act import act
from doorstep.store.models import Delivery, LeadEvent
from doorstep.workspace import Workspace

LEADS = 24
KILLED_ROUNDS = 9
MAX_ROUNDS = 40
WORKER = (
    "import sys\n"
    "from doorstep.act import deliver_due\n"
    "from doorstep.workspace import open_workspace\n"
    "report = deliver_due(open_workspace(sys.argv[1]))\n"
    "sys.exit(0 if report.pending == 0 and report.sending == 0 else 3)\n"
)


def crash_world() -> dict[str, list[dict[str, Any]]]:
    """Two reps with room for everything, and LEADS accounts the partner shares."""
    world = {name: [dict(r) for r in rows] for name, rows in ACT_WORLD.items()}
    for rep in world["reps"]:
        rep["capacity"] = None
    world["accounts"] = [
        {"account_id": f"c{i:02d}", "name": f"Company {i}", "owner_id": "r1" if i % 2 else "r2",
         "territory": "EMEA", "is_customer": False, "employees": 300}
        for i in range(LEADS)
    ]
    return world


def statuses(workspace: Workspace) -> dict[str, int]:
    with workspace.store.engine.connect() as conn:
        return dict(
            conn.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
        )


class Killer:
    """Kills the current worker process on the receiver's n-th request, or on a timer."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.at_request: int | None = None
        self.after_reply = False
        self.kills = 0
        self.lock = threading.Lock()

    def kill(self) -> None:
        with self.lock:
            if self.process is not None and self.process.poll() is None:
                os.kill(self.process.pid, signal.SIGKILL)
                self.kills += 1
            self.at_request = None

    def before_reply(self, number: int) -> None:
        if self.at_request is None or number < self.at_request:
            return
        if self.after_reply:  # let the answer go out first, then kill before it is marked
            threading.Timer(random.uniform(0.0, 0.01), self.kill).start()
        else:
            self.kill()


def test_killed_workers_lose_nothing_and_receivers_process_each_key_once(
    tmp_path: Path, store_url: str
) -> None:
    random.seed(20261124)
    killer = Killer()
    with WebhookReceiver(before_reply=killer.before_reply) as receiver:
        toml = (
            "[act]\n"
            'channels = { rep = ["webhook"], partner = ["webhook"], escalation = ["webhook"] }\n'
            f'webhook_url = "{receiver.url}"\n'
            f'webhook_secret = "{SECRET}"\n'
            "lease_seconds = 0\nretry_seconds = 0\nmax_attempts = 1000\nbatch_size = 4\n"
        )
        eqls = [(f"c{i:02d}", "x1", 50.0 + i) for i in range(LEADS)]
        workspace = build_act_workspace(
            tmp_path / "ws", store_url, toml=toml, world=crash_world(), eqls=eqls,
            now=datetime.now(UTC).replace(tzinfo=None),
        )
        first = act(workspace, send=False)
        assert len(first.routed) == LEADS and first.queued == {"assignment": LEADS}

        done = False
        for round_number in range(MAX_ROUNDS):
            # 0: kill while the receiver holds a request; 1: just after it answers; 2: at a
            # random moment (startup, claim, send or mark), at the latest as in 0 or 1.
            plan = round_number % 3 if round_number < KILLED_ROUNDS else None
            seen = len(receiver.requests)
            killer.after_reply = plan == 1 or (plan == 2 and random.random() < 0.5)
            killer.at_request = seen + random.randint(1, 4) if plan is not None else None
            process = subprocess.Popen(
                [sys.executable, "-c", WORKER, str(workspace.path)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            killer.process = process
            if plan == 2:
                threading.Timer(random.uniform(0.1, 1.5), killer.kill).start()
            _, stderr = process.communicate(timeout=120)
            killer.at_request = None
            if process.returncode == 0:
                done = True
                break
            assert process.returncode in (-signal.SIGKILL, 3), stderr.decode()[-2000:]
        assert done, f"the outbox was not empty after {MAX_ROUNDS} runs: {statuses(workspace)}"

        with workspace.store.engine.connect() as conn:
            keys = set(conn.execute(select(Delivery.idempotency_key)).scalars())
        assert statuses(workspace) == {"sent": LEADS}
        assert killer.kills >= 6  # every killed round stopped a worker before it was done
        assert receiver.duplicates, "no kill fell between sending and marking sent"
        # Every message arrived, each key was processed once, repeats were byte-identical.
        assert sorted(receiver.processed) == sorted(keys)
        assert len(receiver.processed) == len(set(receiver.processed)) == LEADS
        # A request cut short by a kill fails its signature and is refused, never processed.
        whole = [r for r in receiver.requests if r.complete]
        assert all(r.signature_ok for r in whole)
        for request in whole:
            assert request.key is not None
            assert request.body == receiver.first_body[request.key]

        requests = len(receiver.requests)
        with workspace.store.engine.connect() as conn:
            events = conn.execute(select(func.count()).select_from(LeadEvent)).scalar_one()
        again = act(workspace)
        assert again.routed == [] and again.queued == {}
        assert again.delivery is not None and again.delivery.sent == 0
        assert statuses(workspace) == {"sent": LEADS}
        assert len(receiver.requests) == requests
        with workspace.store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(LeadEvent)).scalar_one() == events
        workspace.store.engine.dispose()
