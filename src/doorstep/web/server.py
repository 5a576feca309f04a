"""Serving the app from several processes on one port.

Each process binds its own listening socket with SO_REUSEPORT, so the kernel spreads new
connections over the processes. With one shared socket instead (uvicorn's `--workers`), the
first process to wake up accepts every connection waiting, and keep-alive clients then stay on
it while the other cores idle. A process that dies is started again.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import multiprocessing
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from types import FrameType

log = logging.getLogger(__name__)
RESTART_PAUSE_SECONDS = 1.0
# A process that dies this soon after starting, this many times in a row, stops the server.
EARLY_DEATH_SECONDS = 10.0
EARLY_DEATHS = 3


def reuse_port_available() -> bool:
    """Whether this system can give each process a socket of its own on one port."""
    return hasattr(socket, "SO_REUSEPORT")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port) that other processes may bind as well."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:  # a name such as localhost
        family = socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _serve_one(workspace: str, host: str, port: int) -> None:
    """One server process: its own socket, the app over the workspace, until told to stop."""
    import uvicorn

    from doorstep.web.app import create_app

    sock = bind(host, port)
    config = uvicorn.Config(create_app(workspace), log_level="warning", proxy_headers=True)
    # Ctrl-C reaches every process of the group: uvicorn finishes its requests and stops, and
    # the signal it raises again on the way out is this process's normal end, not an error.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


def serve_processes(workspace: str, host: str, port: int, processes: int) -> None:
    """Run `processes` server processes on (host, port) until SIGINT or SIGTERM."""
    bind(host, port).close()  # a port taken by something else fails here, in one sentence
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> tuple[BaseProcess, float]:
        process = context.Process(target=_serve_one, args=(workspace, host, port),
                                  name="doorstep-serve", daemon=False)
        process.start()
        return process, time.monotonic()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    running = [start() for _ in range(processes)]
    early = 0
    try:
        while not stopping:
            time.sleep(0.2)
            for i, (process, started) in enumerate(running):
                if process.is_alive() or stopping:
                    continue
                early = early + 1 if time.monotonic() - started < EARLY_DEATH_SECONDS else 0
                if early >= EARLY_DEATHS:
                    raise RuntimeError(
                        f"server processes keep stopping right after they start (last exit "
                        f"code {process.exitcode}); run with --workers 1 to see why"
                    )
                log.warning("a server process stopped (exit code %s); starting another",
                            process.exitcode)
                time.sleep(RESTART_PAUSE_SECONDS)
                running[i] = start()
    finally:
        for process, _ in running:
            if process.is_alive():
                process.terminate()  # uvicorn finishes its requests on SIGTERM
        for process, _ in running:
            process.join(30)
            if process.is_alive():
                process.kill()
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)
