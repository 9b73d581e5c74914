"""A stand-in for Homer 7, which cannot run here (it needs PostgreSQL, heplify-server and homer-app):
a local HTTP server with the parts of homer-app's API the replay uses, following its published request
and response shapes (sipcapture/homer-app):

- ``POST /api/v3/auth`` (controller/v1/user.go LoginUser): 201 {token, scope, user: {admin}}; a wrong
  password 401 {statuscode, error: "Unauthorized", message: "incorrect password"};
- the restricted group (main.go): ``Authorization: Bearer <jwt>`` or ``Auth-Token: <api token>``,
  else 401 {"message": "Login required"};
- ``POST /api/v3/search/call/data`` (service SearchData): rows of ``hep_proto_1_call`` whose sid
  matches, within timestamp.from/to (ms), protocol and data header merged, no raw; 201 {total, data, keys};
- ``POST /api/v3/search/call/message`` (GetMessageByID): rows by id/uuid, with raw; 201 {total, data, keys};
- ``POST /api/v3/export/call/messages/pcap`` (GetTransaction + utils/exportwriter): every message of
  the Call-IDs as Ethernet/IPv4/UDP in a little-endian microsecond pcap, whatever it was captured on.

Rows are stored as heplify-server stores a HEP packet (database/header.go makeProtoHeader: protocol
header {protocolFamily, protocol, srcIp, dstIp, srcPort, dstPort, timeSeconds, timeUseconds,
payloadType, captureId (text), correlation_id}; data header {callid, method, from_user, ...}).
"""

from __future__ import annotations

import json
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness.hep import HepPacket
from harness.sip.errors import SipParseError
from harness.sip.message import Request, Response, parse_message

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VybmFtZSI6ImFkbWluIn0.c3RhbmQtaW4"  # what the stand-in issues


@dataclass
class Row:
    id: int
    sid: str
    create_date: float  # epoch seconds
    protocol_header: dict[str, Any]
    data_header: dict[str, Any]
    raw: str


@dataclass
class HomerStandIn:
    username: str = "admin"
    password: str = "sipcapture"
    api_token: str = "homer-api-token-1"
    rows: list[Row] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)  # path, headers, body
    _server: ThreadingHTTPServer | None = None

    # -- data ------------------------------------------------------------------------------------

    def add_hep(self, packet: HepPacket, *, protocol: bool = True) -> Row:
        """Store a captured SIP message as heplify-server would; ``protocol=False`` leaves the IP
        protocol out of the protocol header (as for an agent that does not send chunk 0x0002)."""
        assert packet.src is not None and packet.dst is not None and packet.seconds is not None
        header: dict[str, Any] = {
            "protocolFamily": packet.family or 2,
            "protocol": packet.ip_protocol or 0,
            "srcIp": packet.src[0],
            "dstIp": packet.dst[0],
            "srcPort": packet.src[1],
            "dstPort": packet.dst[1],
            "timeSeconds": packet.seconds,
            "timeUseconds": packet.microseconds or 0,
            "payloadType": packet.protocol_type or 1,
            "captureId": str(packet.capture_id or 0),
            "correlation_id": "",
        }
        if not protocol:
            del header["protocol"]
        raw = packet.payload.decode("utf-8", "replace")
        data_header = _data_header(packet.payload)
        row = Row(
            len(self.rows) + 1,
            data_header.get("callid", ""),
            packet.timestamp or 0.0,
            header,
            data_header,
            raw,
        )
        self.rows.append(row)
        return row

    # -- server ----------------------------------------------------------------------------------

    def start(self) -> HomerStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._json(400, {"data": {}, "message": "request format is not correct"})
                    return
                standin.requests.append((self.path, dict(self.headers), body))
                standin.handle(self, body)

            def _json(self, code: int, data: Any) -> None:
                payload = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _blob(self, data: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Disposition", "attachment; filename=export-now.pcap")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="homer-standin", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- the API ---------------------------------------------------------------------------------

    def handle(self, http: Any, body: dict[str, Any]) -> None:
        path = http.path
        if path == "/api/v3/auth":
            if body.get("username") == self.username and body.get("password") == self.password:
                http._json(
                    201,
                    {"token": JWT, "scope": "a-user-guid", "user": {"admin": True, "force_password": False}},
                )
            else:
                http._json(401, {"statuscode": 401, "error": "Unauthorized", "message": "incorrect password"})
            return
        bearer = http.headers.get("Authorization") == f"Bearer {JWT}"
        if not bearer and http.headers.get("Auth-Token") != self.api_token:
            http._json(401, {"message": "Login required"})
            return
        search = (body.get("param") or {}).get("search") or {}
        since = body.get("timestamp", {}).get("from", 0) / 1000
        until = body.get("timestamp", {}).get("to", 0) / 1000
        in_time = [r for r in self.rows if since <= r.create_date <= until]
        if path == "/api/v3/search/call/data":
            wanted = {e["value"] for e in search.get("1_call") or [] if e.get("name") == "sid"}
            rows = [r for r in in_time if r.sid in wanted]
            data = [self._element(r, raw=False) for r in sorted(rows, key=lambda r: r.create_date)]
            http._json(201, {"total": len(data), "data": data, "keys": sorted({k for d in data for k in d})})
        elif path == "/api/v3/search/call/message":
            query = search.get("1_call") or {}
            if "id" not in query and "uuid" not in query:
                http._json(400, {"data": {}, "message": "no ID or UUID has been provided"})
                return
            ids = {int(query["id"])} if "id" in query else {int(i) for i in query["uuid"]}
            data = [self._element(r, raw=True) for r in in_time if r.id in ids]
            http._json(201, {"total": len(data), "data": data, "keys": sorted({k for d in data for k in d})})
        elif path == "/api/v3/export/call/messages/pcap":
            call_ids = {c for value in search.values() for c in value.get("callid") or []}
            rows = sorted((r for r in in_time if r.sid in call_ids), key=lambda r: r.create_date)
            http._blob(export_pcap(rows))
        else:
            http._json(404, {"message": "Not Found"})

    @staticmethod
    def _element(row: Row, *, raw: bool) -> dict[str, Any]:
        out: dict[str, Any] = {**row.data_header, **row.protocol_header, "id": row.id, "sid": row.sid}
        out.update({"node": "localnode", "dbnode": "localnode", "uuid": row.id})
        ms = int(row.create_date * 1000)
        if raw:
            out.update({"raw": row.raw, "create_ts": ms, "micro_ts": ms})
        else:
            h = row.protocol_header
            src, dst = f"{h['srcIp']}:{h['srcPort']}", f"{h['dstIp']}:{h['dstPort']}"
            out.update({"table": "hep_proto_1_call", "create_date": ms, "aliasSrc": src, "aliasDst": dst})
        return out


def _data_header(payload: bytes) -> dict[str, Any]:
    try:
        msg = parse_message(payload)
    except SipParseError:
        return {}
    out: dict[str, Any] = {"callid": msg.get("Call-ID") or "", "user_agent": msg.get("User-Agent") or ""}
    if isinstance(msg, Request):
        out["method"] = msg.method
        try:
            out["ruri_user"] = msg.uri.user or ""
        except SipParseError:
            pass
    elif isinstance(msg, Response):
        out["method"] = str(msg.code)
    return out


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def export_pcap(rows: list[Row]) -> bytes:
    """As homer-app's exportwriter: a v2.4 little-endian microsecond pcap, link type 1, each message in
    Ethernet (02:5d:69:74:20:12 -> 06:3d:20:12:10:20) / IPv4 (TTL 54, TOS 124) / UDP with checksums."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65536, 1)]
    for row in rows:
        h = row.protocol_header
        payload = row.raw.encode("utf-8")
        src, dst = bytes(int(x) for x in h["srcIp"].split(".")), bytes(int(x) for x in h["dstIp"].split("."))
        length = 8 + len(payload)
        pseudo = src + dst + struct.pack("!BBH", 0, 17, length)
        udp = struct.pack("!HHHH", h["srcPort"], h["dstPort"], length, 0) + payload
        udp = udp[:6] + struct.pack("!H", _checksum(pseudo + udp) or 0xFFFF) + udp[8:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 124, 20 + length, 0, 0, 54, 17, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        frame = bytes.fromhex("063d20121020025d69742012") + b"\x08\x00" + ip + udp
        seconds, micro = int(row.create_date), round((row.create_date % 1) * 1e6) % 1_000_000
        out.append(struct.pack("<IIII", seconds, micro, len(frame), len(frame)) + frame)
    return b"".join(out)
