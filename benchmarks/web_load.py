"""Web app under load: 20 clients at once for 60 s against `doorstep serve` on 1M leads.

Writes 1M leads (as `web_speed.py` does) into a SQLite store, then runs the real server,
`doorstep serve` in a process of its own on loopback, three times, one run after the other:

- one server process rendering every request, as `doorstep serve` ran before (the baseline);
- `--workers N` (default: one per core), still rendering every request;
- `--workers N` with the page cache (`[web] page_cache_seconds = 5`), as it runs now.

Each of the clients signs in (admins see the dashboard, reps their queue, partners call
`/api/leads` with a token: distinct users, so that no answer is another's) and then asks for its
page again and again over one keep-alive connection, for a fixed time. The load comes from one
small asyncio process speaking plain HTTP/1.1, so that it takes little of the two cores the
server needs. Each run is bounded in time and in requests, and everything stays on 127.0.0.1.

    .venv/bin/python benchmarks/web_load.py [--leads 1000000] [--clients 20] [--seconds 60]
        [--workers 0] [--cache DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from _measure import machine
from rich.console import Console
from rich.table import Table
from web_speed import PARTNERS, generate

from doorstep.config import CONFIG_FILE
from doorstep.map.parallel import available_workers
from doorstep.store import open_store
from doorstep.web.auth import add_user, find_user, issue_token

console = Console(width=120)
PASSWORD = "benchmark load password 7"
CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')
PAGES = ("dashboard", "rep queue", "API leads (partner)")
MAX_REQUESTS = 200_000  # a bound on each run, whatever the time


@dataclass
class Client:
    """One simulated user: the page it asks for and the headers that sign it in."""

    page: str
    path: str
    headers: dict[str, str]
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def configure(root: Path, page_cache_seconds: float) -> None:
    """doorstep.toml: the store, partners that may see their overlaps, the page cache."""
    url = f"sqlite:///{root / 'doorstep.db'}"
    # every partner may see the overlaps it shares with us, so its API answers hold leads
    sharing = "".join(f'[sharing.p{i}]\ncustomers = "overlaps"\nprospects = "overlaps"\n'
                      for i in range(PARTNERS))
    (root / CONFIG_FILE).write_text(
        f'[store]\nurl = "{url}"\n[web]\npage_cache_seconds = {page_cache_seconds}\n{sharing}',
        encoding="utf-8")


def prepare(root: Path, leads: int) -> None:
    """The workspace: generated leads, and the users the clients sign in as."""
    url = f"sqlite:///{root / 'doorstep.db'}"
    root.mkdir(parents=True, exist_ok=True)
    configure(root, 5)
    if not (root / "doorstep.db").exists():
        with console.status(f"writing {leads:,} leads and what surrounds them"):
            generate(url, leads)
    store = open_store(url)
    for email, role, partner, rep in users():
        if find_user(store, email) is None:
            add_user(store, email, role, PASSWORD, partner_id=partner, rep_id=rep)
    store.engine.dispose()


def users() -> list[tuple[str, str, str | None, str | None]]:
    """Admins, reps and partner users: enough distinct ones for every client."""
    out: list[tuple[str, str, str | None, str | None]] = []
    for i in range(10):
        out.append((f"admin{i}@example.com", "admin", None, None))
        out.append((f"rep{i}@example.com", "rep", None, f"r{i * 7 + 1}"))
        out.append((f"partner{i}@example.com", "partner", f"p{i}", None))
    return out


def sign_in(base: str, email: str) -> dict[str, str]:
    """The Cookie header of a fresh session for `email`."""
    with httpx.Client(base_url=base, timeout=120, follow_redirects=True) as http:
        form = http.get("/login")
        token = CSRF.search(form.text)
        assert token, "no sign-in form"
        done = http.post("/login", data={"email": email, "password": PASSWORD,
                                         "csrf_token": token.group(1)})
        assert done.status_code == 200, (email, done.status_code)
        cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    return {"Cookie": cookie}


def make_clients(base: str, root: Path, count: int) -> list[Client]:
    """`count` clients, a third on each page, each signed in as a user of its own."""
    store = open_store(f"sqlite:///{root / 'doorstep.db'}")
    clients = []
    for i in range(count):
        page = PAGES[i % len(PAGES)]
        n = i // len(PAGES)
        if page == "dashboard":
            clients.append(Client(page, "/dashboard", sign_in(base, f"admin{n}@example.com")))
        elif page == "rep queue":
            clients.append(Client(page, "/queue", sign_in(base, f"rep{n}@example.com")))
        else:
            token = issue_token(store, f"partner{n}@example.com")
            clients.append(Client(page, "/api/leads", {"Authorization": f"Bearer {token}"}))
    store.engine.dispose()
    return clients


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (Content-Length or chunked); return its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def _drive(client: Client, port: int, deadline: float, budget: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    extra = "".join(f"{k}: {v}\r\n" for k, v in client.headers.items())
    request = (f"GET {client.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n").encode()
    try:
        while time.monotonic() < deadline and budget[0] > 0:
            budget[0] -= 1
            start = time.perf_counter()
            writer.write(request)
            status = await _read_response(reader)
            elapsed = (time.perf_counter() - start) * 1000
            if status == 200:
                client.latencies.append(elapsed)
            else:
                client.errors += 1
    finally:
        writer.close()


async def _load(clients: list[Client], port: int, seconds: float) -> float:
    budget = [MAX_REQUESTS]
    start = time.monotonic()
    await asyncio.gather(*(_drive(c, port, start + seconds, budget) for c in clients))
    return time.monotonic() - start


def start_server(root: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    doorstep = Path(sys.executable).with_name("doorstep")
    process = subprocess.Popen(
        [str(doorstep), "serve", str(root), "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.3)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for_dashboard(base: str, headers: dict[str, str]) -> None:
    """Wait until the dashboard's numbers are computed, so the load measures serving them."""
    deadline = time.monotonic() + 900
    with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
        while "being computed" in http.get("/dashboard").text:
            if time.monotonic() > deadline:
                raise SystemExit("the dashboard's numbers were not computed in 15 minutes")
            time.sleep(2)


@dataclass
class Run:
    label: str
    seconds: float
    clients: list[Client]

    def latencies(self, page: str | None = None) -> list[float]:
        return [x for c in self.clients if page in (None, c.page) for x in c.latencies]

    @property
    def requests(self) -> int:
        return len(self.latencies()) + self.errors

    @property
    def errors(self) -> int:
        return sum(c.errors for c in self.clients)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))] if values else 0.0


def run_once(root: Path, workers: int, cache: float, clients: int, seconds: float,
             label: str) -> Run:
    configure(root, cache)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(root, port, workers)
    try:
        signed = make_clients(base, root, clients)
        wait_for_dashboard(base, signed[0].headers)
        for c in signed:  # one request each before the clock starts
            httpx.get(base + c.path, headers=c.headers, timeout=120)
        elapsed = asyncio.run(_load(signed, port, seconds))
    finally:
        stop_server(server)
    return Run(label, elapsed, signed)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=0, help="0: one per core")
    parser.add_argument("--cache", type=Path, help="keep the generated workspace here, reuse it")
    args = parser.parse_args()
    workers = args.workers or available_workers()
    root = args.cache or Path(tempfile.mkdtemp(prefix="doorstep-bench-load-"))
    try:
        prepare(root, args.leads)
        console.print(f"{machine()}; {args.clients} clients for {args.seconds:.0f} s per run")
        runs = []
        plans = (("before: 1 process, no cache", 1, 0.0),
                 (f"{workers} processes, no cache", workers, 0.0),
                 (f"now: {workers} processes + cache", workers, 5.0))
        for label, n, cache in plans:
            with console.status(f"{label}: {args.clients} clients for {args.seconds:.0f} s"):
                runs.append(run_once(root, n, cache, args.clients, args.seconds, label))
        base = runs[0]
        table = Table(title=f"doorstep serve under load ({args.clients} clients, "
                            f"{args.seconds:.0f} s, {args.leads:,} leads, SQLite)",
                      title_justify="left")
        for col in ("run", "page", "requests", "req/s", "median ms", "p95 ms", "errors",
                    "req/s vs before"):
            table.add_column(col, justify="left" if col in ("run", "page") else "right")
        for run in runs:
            for page in (*PAGES, None):
                lat = run.latencies(page)
                errors = sum(c.errors for c in run.clients if page in (None, c.page))
                rate = (len(lat) + errors) / run.seconds
                base_rate = (len(base.latencies(page)) + sum(
                    c.errors for c in base.clients if page in (None, c.page))) / base.seconds
                table.add_row(
                    run.label if page is None else "", page or "all",
                    f"{len(lat) + errors:,}", f"{rate:,.0f}",
                    f"{statistics.median(lat):,.1f}" if lat else "-", f"{p95(lat):,.1f}",
                    f"{errors:,}", f"{rate / base_rate:,.2f}x" if base_rate else "-",
                )
        console.print(table)
    finally:
        if args.cache is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
