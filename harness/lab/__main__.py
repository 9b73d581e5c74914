"""Run the lab Kamailio by hand: ``python -m harness.lab --media 127.0.0.1:11000``.

Prints the SIP address and the log file, then runs until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys

from harness.kazoo.release import DEFAULT_RELEASE, RELEASE_NAMES, release
from harness.lab.kamailio import HepExport, LabKamailio, kamailio_available


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected IP:PORT, got {text!r}")
    return host, int(port)


def _hep(text: str) -> HepExport:
    """``[udp:|tcp:]IP:PORT`` of a HEP collector (the harness's receiver, a Homer on loopback)."""
    transport, _, rest = text.partition(":")
    if transport not in ("udp", "tcp"):
        transport, rest = "udp", text
    try:
        return HepExport(_address(rest), transport)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"expected [udp:|tcp:]IP:PORT, got {text!r}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.lab", description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=0, help="UDP+TCP port (0: a free one)")
    parser.add_argument("--media", type=_address, default=None, help="media role IP:PORT (none: 480s)")
    parser.add_argument("--release", choices=RELEASE_NAMES, default=DEFAULT_RELEASE.name)
    parser.add_argument("--workdir", default=None, help="config, dispatcher list, pid file and log")
    parser.add_argument("--no-sanity-drop", action="store_true", help="answer insane messages with 400")
    parser.add_argument(
        "--hep",
        type=_hep,
        default=None,
        help="mirror every SIP message as HEP3 to [udp:|tcp:]IP:PORT (siptrace)",
    )
    parser.add_argument("--check", action="store_true", help="only report whether Kamailio can run here")
    args = parser.parse_args(argv)

    reason = kamailio_available()
    if args.check or reason is not None:
        print(reason or "kamailio is available")
        return 0 if reason is None else 1

    lab = LabKamailio(
        listen_ip=args.listen,
        port=args.port,
        media=args.media,
        style=release(args.release),
        workdir=args.workdir,
        sanity_drops_request=not args.no_sanity_drop,
        keep_workdir=args.workdir is not None,
        hep=args.hep,
    )
    # SIGTERM ends the run like Ctrl-C does, so that the with-block stops Kamailio either way
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with lab:
            print(
                f"lab kamailio (pid {lab.pid}) on {lab.listen_ip}:{lab.port} udp+tcp, release {args.release}"
            )
            if args.hep is not None:
                host, port = args.hep.address
                print(f"HEP3 over {args.hep.transport} to {host}:{port}")
            print(f"log: {lab.log_path}  config: {lab.config_path}", flush=True)
            while True:
                signal.pause()  # runs until a signal handler raises
    except KeyboardInterrupt:
        pass
    return 0


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
