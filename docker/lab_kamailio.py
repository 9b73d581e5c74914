"""Entry point of the lab Kamailio image: fill harness/lab/kamailio.cfg.tmpl, then exec Kamailio.

Kamailio then runs in the foreground (``-DD -E``) as the container's main process, so its log (stderr)
is the container's log, which the harness streams through the docker SDK (DockerSource).
Run as: ``lab_kamailio.py --listen 127.0.0.1 --port 5060 --media 127.0.0.1:11000 --log-style pipe
--trusted 127.0.0.10/32:0 ...``; the docker target passes the knobs of the release under test
(harness.kazoo.release, through harness.lab.kamailio.style_flags) and the trusted sources, since this
image holds only the standard library and harness/lab.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.lab.kamailio import (
    LOG_STYLES,
    STYLE_SWITCHES,
    LabStyle,
    dispatcher_list_text,
    kamailio_available,
    kamailio_binary,
    kamailio_module_dir,
    parse_trusted,
    render_config,
)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host.startswith("127.") or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected a loopback IP:PORT, got {text!r}")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=5060, help="UDP+TCP port")
    parser.add_argument("--media", type=_address, default=None, help="media role IP:PORT (none: 480s)")
    parser.add_argument("--log-style", choices=LOG_STYLES, required=True, help="the release's Kamailio lines")
    for name in STYLE_SWITCHES:  # harness.kazoo.release says what each means
        parser.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--trusted", type=parse_trusted, action="append", default=[], help="IP/MASK:PORT")
    parser.add_argument("--workdir", default="/run/lab-kamailio", help="config, dispatcher list, pid file")
    parser.add_argument("--no-sanity-drop", action="store_true", help="answer insane messages with 400")
    args = parser.parse_args(argv)
    if not args.listen.startswith("127."):
        parser.error(f"--listen must be a loopback address, got {args.listen}")

    reason = kamailio_available()
    if reason is not None:
        print(f"lab kamailio cannot run: {reason}", file=sys.stderr)
        return 1
    workdir = Path(args.workdir)
    run_dir = workdir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    dispatcher_list = workdir / "dispatcher.list"
    dispatcher_list.write_text(dispatcher_list_text(args.media))
    module_dir = kamailio_module_dir()
    binary = kamailio_binary()
    assert module_dir is not None and binary is not None  # checked by kamailio_available()
    config = workdir / "kamailio.cfg"
    config.write_text(
        render_config(
            listen_ip=args.listen,
            port=args.port,
            dispatcher_list=dispatcher_list,
            module_dir=module_dir,
            style=LabStyle(
                kamailio_log_style=args.log_style,
                **{name: getattr(args, name) for name in STYLE_SWITCHES if getattr(args, name) is not None},
            ),
            sanity_drops_request=not args.no_sanity_drop,
            trusted=args.trusted,
        )
    )
    sys.stderr.flush()
    command = [binary, "-DD", "-E", "-f", str(config), "-P", str(run_dir / "kamailio.pid"),
               "-Y", str(run_dir), "-w", str(workdir), "-m", "64", "-M", "8"]  # fmt: skip
    os.execv(binary, command)


if __name__ == "__main__":
    sys.exit(main())
