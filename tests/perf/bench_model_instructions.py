"""Instructions per failure call through the embedded model, counted by valgrind (a benchmark, not a test).

    .venv/bin/python tests/perf/bench_model_instructions.py [--calls 50,250] [--base DIR] [--profile P]

bench_model.py measures the model's capacity in CPU time, which on a shared machine moves by 10-30%
from one minute to the next (the same code gave 1,268/s and 1,813/s here within an hour). This counts
what does not move: the user-space instructions that one INVITE -> 604 -> ACK call costs, under
valgrind's callgrind (same figure to 0.1% run after run), so a change to the model's hot path can be
judged in one run. The kernel's share (socket calls: about a fifth of the model's CPU) is not counted.

A client in the same process places the calls one at a time from the listed carrier 127.0.0.10 to the
unknown number +14155550199 (INVITE -> 100 -> 604 -> ACK, as SIPp's uac_rejected_call.xml). Two runs
with different call counts are subtracted, so start-up (imports, the model's start) cancels out; the
client's own share (a few per cent) is included and the same in every tree. ``--base DIR`` measures
another checkout of the harness in the same run (e.g. ``git worktree add /tmp/base HEAD~3``) and prints
the ratio. Needs valgrind (Debian's ``valgrind`` package).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLIENT_IP = "127.0.0.10"  # the demo data's listed carrier
UNKNOWN = "+14155550199"  # no number document: reorder answers 604 (486 on kazoo-5) at once
CALL_DEADLINE = 30.0  # per answer, under valgrind (about 50 times slower than native)
RUN_DEADLINE = 900.0


def drive(calls: int, profile: str) -> None:
    """Place ``calls`` failure calls, one after the other, against a model started here."""
    from harness.kazoo.release import release
    from harness.model.stack import ModelConfig, start_model

    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as logs:
        config = ModelConfig(
            release=release(profile), sbc_port=0, media_port=0, esl_port=0, couch_port=0, log_dir=Path(logs)
        )
        model = start_model(config)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind((CLIENT_IP, 0))
                sock.settimeout(CALL_DEADLINE)
                for k in range(calls):
                    _call(sock, model.sbc, k)
        finally:
            model.stop()


def _call(sock: socket.socket, sbc: tuple[str, int], k: int) -> None:
    ip, port = sock.getsockname()
    host, sbc_port = sbc
    body = (
        f"v=0\r\no=sipp 53655765 2353687637 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
        "m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    caller = f"From: sipp <sip:+14155551234@{ip}:{port}>;tag={k}SIPpTag001\r\nCall-ID: {k}-bench@{ip}\r\n"
    invite = (
        f"INVITE sip:{UNKNOWN}@{host}:{sbc_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {ip}:{port};branch=z9hG4bK-{k}-1-0\r\n{caller}"
        f"To: <sip:{UNKNOWN}@{host}:{sbc_port}>\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:sipp@{ip}:{port}>\r\nMax-Forwards: 70\r\nUser-Agent: SIPp interop (kazoo-harness)\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    )
    sock.sendto(invite.encode(), sbc)
    while True:  # the 100 first, then the final (a lost datagram ends the run at the deadline)
        final = sock.recv(65535)
        if not final.startswith(b"SIP/2.0 1"):
            break
    if not final.startswith((b"SIP/2.0 604", b"SIP/2.0 486")):
        raise RuntimeError(f"call {k}: expected 604 or 486, got {final[:40]!r}")
    to = next(line for line in final.split(b"\r\n") if line.lower().startswith(b"to:")).decode()
    ack = (
        f"ACK sip:{UNKNOWN}@{host}:{sbc_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {ip}:{port};branch=z9hG4bK-{k}-1-4\r\n{caller}{to}\r\n"
        "CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    sock.sendto(ack.encode(), sbc)


def instructions(tree: Path, calls: int, profile: str) -> int:
    """Callgrind's total instruction count for a run of ``calls`` calls with the harness in ``tree``."""
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as out:
        command = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/callgrind.out",
            sys.executable, str(Path(__file__).resolve()), "--drive", str(calls), "--profile", profile,
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(tree)}
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=RUN_DEADLINE, env=env, cwd=tree
        )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"the run in {tree} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_call(tree: Path, low: int, high: int, profile: str) -> float:
    return (instructions(tree, high, profile) - instructions(tree, low, profile)) / (high - low)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", default="50,250", help="the two call counts whose runs are subtracted")
    parser.add_argument("--base", type=Path, help="another checkout of the harness, measured beside this one")
    parser.add_argument("--profile", default="kazoo-4.3")
    parser.add_argument("--drive", type=int, help=argparse.SUPPRESS)  # the run valgrind watches
    args = parser.parse_args()
    if args.drive is not None:
        drive(args.drive, args.profile)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    low, high = sorted(int(n) for n in args.calls.split(","))
    if low < 1 or high <= low:
        sys.exit("--calls: two different positive counts, e.g. 50,250")
    trees = [("this tree", ROOT)] + ([("base", args.base.resolve())] if args.base else [])
    for _, tree in trees:
        if not (tree / "harness" / "model" / "stack.py").is_file():
            sys.exit(f"{tree}: not a checkout of the harness")
    print(f"instructions per INVITE -> final -> ACK call ({args.profile}, valgrind callgrind, runs of "
          f"{low} and {high} calls subtracted; user space only):", flush=True)  # fmt: skip
    figures = {}
    for name, tree in trees:
        figures[name] = per_call(tree, low, high, args.profile)
        print(f"  {name:10s} {figures[name] / 1e6:6.3f} M  ({tree})", flush=True)
    if args.base:
        print(f"  this tree / base: {figures['this tree'] / figures['base']:.3f}")


if __name__ == "__main__":
    main()
