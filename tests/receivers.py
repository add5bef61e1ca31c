"""Real receivers for the notification channels' tests, written apart from the product:
a webhook endpoint that checks the HMAC signature and its timestamp, a syslog collector
that reads octet-counted frames and parses RFC 5424 and CEF as a SIEM does, and an SMTP
server (aiosmtpd). Each keeps what it received; run as a module (inside a lab namespace)
they write it as JSON lines::

    python -m tests.receivers --webhook 8080 --syslog 6514 --smtp 2525 --secret S --out DIR
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import re
import signal
import socketserver
import ssl
import sys
import threading
import time
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SYSLOG_RE = re.compile(r"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) "
                       r"(?P<proc>\S+) (?P<msgid>\S+) (?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+) ?"
                       r"(?P<msg>.*)$", re.DOTALL)
SD_PARAM_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_cef(text: str) -> dict[str, Any]:
    """A CEF message as a SIEM reads it: seven header fields split on unescaped pipes, then
    key=value extensions split before each unescaped ``key=``."""
    if not text.startswith("CEF:"):
        raise ValueError("not CEF")
    fields: list[str] = []
    current, escaped = "", False
    rest = text[4:]
    index = 0
    while index < len(rest) and len(fields) < 7:
        ch = rest[index]
        if escaped:
            current += ch
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "|":
            fields.append(current)
            current = ""
        else:
            current += ch
        index += 1
    if len(fields) != 7:
        raise ValueError(f"CEF header has {len(fields)} fields")
    extension = rest[index:]
    keys = list(re.finditer(r"(?:^| )(\w+)=", extension))
    ext: dict[str, str] = {}
    for number, key in enumerate(keys):
        # a key starts only where the '=' is not escaped
        if key.start(1) > 0 and extension[key.start(1) - 1] == "\\":
            continue
        end = keys[number + 1].start() if number + 1 < len(keys) else len(extension)
        raw = extension[key.end():end]
        ext[key.group(1)] = (raw.replace("\\=", "=").replace("\\n", "\n")
                             .replace("\\r", "\r").replace("\\\\", "\\"))
    names = ("version", "vendor", "product", "device_version", "signature", "name", "severity")
    return {**dict(zip(names, fields, strict=True)), "extension": ext}


def parse_syslog(line: str) -> dict[str, Any]:
    match = SYSLOG_RE.match(line)
    if match is None:
        raise ValueError(f"not RFC 5424: {line[:80]!r}")
    found = match.groupdict()
    found["params"] = {k: re.sub(r"\\(.)", r"\1", v) for k, v in SD_PARAM_RE.findall(found["sd"])}
    if found["msg"].startswith("CEF:"):
        found["cef"] = parse_cef(found["msg"])
    return found


def self_signed(folder: Path, host: str = "127.0.0.1") -> tuple[Path, ssl.SSLContext]:
    """A certificate for ``host`` (its own CA): the file a client trusts, and the server's
    context."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
                ipaddress.ip_address(host))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "receiver.crt", folder / "receiver.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return cert_file, context


class Webhook:
    """An HTTPS-less webhook endpoint (loopback or a lab namespace) that verifies each
    delivery's signature; ``deliveries`` holds the accepted ones, repeats included."""

    def __init__(self, host: str, port: int, secret: bytes, *, out: Path | None = None) -> None:
        self.secret, self.out = secret, out
        self.deliveries: list[dict[str, Any]] = []
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                stamp = self.headers.get("X-Netvagt-Timestamp", "")
                given = self.headers.get("X-Netvagt-Signature", "")
                wanted = "sha256=" + hmac.new(receiver.secret, stamp.encode() + b"." + body,
                                              hashlib.sha256).hexdigest()
                fresh = stamp.isdigit() and abs(time.time() - int(stamp)) < 300
                if not (fresh and hmac.compare_digest(given, wanted)):
                    receiver.refused += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                record = {"key": self.headers.get("X-Netvagt-Delivery"),
                          "body": json.loads(body)}
                receiver.deliveries.append(record)
                receiver.write("webhook", record)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def write(self, kind: str, record: dict[str, Any]) -> None:
        if self.out is not None:
            with (self.out / f"{kind}.jsonl").open("a") as handle:
                handle.write(json.dumps(record) + "\n")

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


MISP_ANSWERS = {  # what PyMISP asks when it connects
    "/servers/getVersion": {"version": "2.5.0", "pymisp_recommended_version": "2.5.0",
                            "perm_sync": False},
    "/servers/getPyMISPVersion": {"version": "2.5.0"},
    "/users/view/me": {"User": {"id": "1", "email": "netvagt@kommune.dk", "org_id": "1",
                                "role_id": "3"}, "Role": {"id": "3", "name": "User"},
                       "UserSetting": []},
}


class _MispHandler(BaseHTTPRequestHandler):
    server: Any  # the stand-in's server, carrying ``stand_in``

    def reply(self, code: int, data: object) -> None:
        body = json.dumps(data).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def authorised(self) -> bool:
        stand_in = self.server.stand_in
        if self.headers.get("Authorization") == stand_in.key:
            return True
        stand_in.unauthorised += 1
        self.reply(403, {"errors": "Authentication failed"})
        return False

    def do_GET(self) -> None:
        if not self.authorised():
            return
        answer = next((a for path, a in MISP_ANSWERS.items() if self.path.startswith(path)),
                      None)
        self.reply(200, answer) if answer else self.reply(404, {"errors": "not here"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not self.authorised():
            return
        if not self.path.startswith("/events/add"):
            self.reply(404, {"errors": f"no {self.path} here"})
            return
        events = self.server.stand_in.events
        event = json.loads(body)
        event = event.get("Event", event)
        if any(e.get("uuid") == event.get("uuid") for e in events):
            self.reply(403, {"errors": ["Event with this uuid already exists."]})
            return
        events.append(event)
        self.reply(200, {"Event": {**event, "id": str(len(events))}})

    def log_message(self, *args: object) -> None:
        pass


class MispStandIn:
    """A MISP server as far as PyMISP's requests go: it answers the version and user
    questions PyMISP asks when it connects, checks the API key on every request, and keeps
    each event posted to ``events/add`` (a repeated uuid is refused, as MISP does)."""

    def __init__(self, host: str, port: int, key: str) -> None:
        self.key = key
        self.events: list[dict[str, Any]] = []
        self.unauthorised = 0
        self.server = ThreadingHTTPServer((host, port), _MispHandler)
        self.server.stand_in = self  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> MispStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Syslog:
    """A syslog collector over TCP: octet-counted frames (RFC 6587), each parsed."""

    def __init__(self, host: str, port: int, *, out: Path | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.lines: list[dict[str, Any]] = []
        self.out = out
        collector = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while True:
                    size = b""
                    while (ch := self.rfile.read(1)) not in (b" ", b""):
                        size += ch
                    if not size.isdigit():
                        return
                    line = self.rfile.read(int(size)).decode("utf-8")
                    parsed = parse_syslog(line)
                    collector.lines.append(parsed)
                    if collector.out is not None:
                        with (collector.out / "syslog.jsonl").open("a") as handle:
                            handle.write(json.dumps(parsed) + "\n")

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True

            def get_request(self) -> tuple[Any, Any]:
                sock, address = super().get_request()
                if tls is not None:  # RFC 5425: syslog over TLS
                    sock = tls.wrap_socket(sock, server_side=True)
                return sock, address

        self.server = Server((host, port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Syslog:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """An SMTP server (aiosmtpd) that keeps each message."""

    def __init__(self, host: str, port: int, *, out: Path | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Message] = []
        self.out = out
        box = self

        class Handler:
            async def handle_DATA(self, server: object, session: object,
                                  envelope: Any) -> str:
                message = message_from_bytes(envelope.content)
                box.messages.append(message)
                if box.out is not None:
                    with (box.out / "smtp.jsonl").open("a") as handle:
                        handle.write(json.dumps({"subject": message["Subject"],
                                                 "to": envelope.rcpt_tos}) + "\n")
                return "250 OK"

        self.controller = Controller(Handler(), hostname=host, port=port, tls_context=tls,
                                     require_starttls=tls is not None)
        self.port = port

    def __enter__(self) -> Mailbox:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.receivers")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--webhook", type=int)
    parser.add_argument("--syslog", type=int)
    parser.add_argument("--smtp", type=int)
    parser.add_argument("--secret", default="")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    running: list[Any] = []
    if args.webhook:
        running.append(Webhook(args.host, args.webhook, args.secret.encode(), out=args.out))
    if args.syslog:
        running.append(Syslog(args.host, args.syslog, out=args.out))
    if args.smtp:
        running.append(Mailbox(args.host, args.smtp, out=args.out))
    for receiver in running:
        receiver.__enter__()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    for receiver in running:
        receiver.__exit__()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
