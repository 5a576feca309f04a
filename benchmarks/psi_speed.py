"""Private overlap speed: ECDH PSI (openmined-psi) against a plain exact-key join, side by side.

    .venv/bin/python benchmarks/psi_speed.py                 # --size 100000 --overlap 0.3
    .venv/bin/python benchmarks/psi_speed.py --size 1000000

Both sides hold `size` canonical keys (as the map stage writes them: "d:domain" and
"n:name|country"), `overlap` of them in common. The PSI run is the whole protocol doorstep's
private sync runs per population pair, in one process: the client blinds its keys, the server
answers with its blinded set (a raw set, false-positive rate 1e-9) and the client's keys raised
to its secret, and the client reads the intersection. Bytes are the serialised messages each
side sends. The baseline joins the same two key sets in the clear (a Python set intersection,
which is what a third party holding both lists would run).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import private_set_intersection.python as psi

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine, measure  # noqa: E402


def key_sets(size: int, overlap: float, seed: int) -> tuple[list[str], list[str], int]:
    """Two key sets of `size` with `overlap` of them shared, in random order."""
    rng = random.Random(seed)
    common = int(size * overlap)
    shared = [f"d:common-{i}.com" if i % 2 else f"n:common venture {i}|US" for i in range(common)]
    ours = shared + [f"d:ours-{i}.com" for i in range(size - common)]
    theirs = shared + [f"n:theirs company {i}|DE" for i in range(size - common)]
    rng.shuffle(ours)
    rng.shuffle(theirs)
    return ours, theirs, common


def run_psi(ours: list[str], theirs: list[str]) -> tuple[int, int, int]:
    """The protocol end to end: (intersection size, client bytes sent, server bytes sent)."""
    client = psi.client.CreateWithNewKey(True)
    server = psi.server.CreateWithNewKey(True)
    request = client.CreateRequest(ours)
    setup = server.CreateSetupMessage(1e-9, len(ours), theirs, psi.DataStructure.RAW)
    response = server.ProcessRequest(request)
    found = client.GetIntersection(setup, response)
    sent_by_client = len(request.SerializeToString())
    sent_by_server = len(setup.SerializeToString()) + len(response.SerializeToString())
    return len(found), sent_by_client, sent_by_server


def run_join(ours: list[str], theirs: list[str]) -> int:
    return len(set(ours) & set(theirs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--overlap", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    ours, theirs, common = key_sets(args.size, args.overlap, args.seed)
    print(f"Machine: {machine()}")
    print(f"{args.size:,} keys a side, {common:,} in common")
    joined, base = measure(lambda: run_join(ours, theirs))
    (found, client_bytes, server_bytes), private = measure(lambda: run_psi(ours, theirs))
    assert joined == common and found == common, (joined, found, common)
    mib = 1024 * 1024
    print("| run | seconds | peak RSS | client sends | server sends | time vs baseline |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| baseline: exact-key join in the clear | {base.seconds:.2f} | "
          f"{base.peak_rss / 2**30:.2f} GiB | (whole list) | (whole list) | 1.00x |")
    print(f"| ECDH PSI (openmined-psi), intersection revealed to the client | "
          f"{private.seconds:.1f} | {private.peak_rss / 2**30:.2f} GiB | "
          f"{client_bytes / mib:.1f} MiB | {server_bytes / mib:.1f} MiB | "
          f"{private.seconds / base.seconds:,.0f}x |")


if __name__ == "__main__":
    main()
