"""Targeted identification parsers on real bytes."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from central.lab.devices import tls_context
from fingerprints.classify import classify
from fingerprints.databases import without_recog
from fingerprints.observation import Observation
from scanners import identify
from scanners.identify import parse_banner, parse_http, parse_rtsp

# GET / answered by a Hikvision camera's web server (App-webs), a redirecting page
HIKVISION = (b"HTTP/1.1 200 OK\r\nDate: Sun, 22 Nov 2026 05:00:00 GMT\r\nServer: App-webs/\r\n"
             b"Content-Type: text/html\r\nContent-Length: 94\r\nConnection: close\r\n\r\n"
             b"<!DOCTYPE html><html><head><title></title></head><body><script>window.location"
             b".href='/doc/page/login.asp'</script></body></html>")
# GET / answered by an Axis camera: 401 with a Basic realm, a title, no Server header
AXIS = (b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"AXIS_ACCC8E103022\"\r\n"
        b"Content-Length: 60\r\n\r\n<html><head><TITLE>\n  AXIS\n</TITLE></head></html>")
# OPTIONS answered by a Dahua recorder
DAHUA_RTSP = (b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nServer: Rtsp Server/3.0\r\n"
              b"Public: OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN\r\n\r\n")
# A Telnet greeting: option negotiation (IAC WILL ECHO, ...) then the prompt
TELNET = b"\xff\xfb\x01\xff\xfb\x03\xff\xfd\x18\xff\xfd\x1f\r\nKamstrup OMNIPOWER\r\nlogin: "


def test_http_server_realm_and_title() -> None:
    assert parse_http(HIKVISION) == [("http.server", "App-webs/")]
    assert parse_http(AXIS) == [("http.www_authenticate", "AXIS_ACCC8E103022"),
                                ("http.title", "AXIS")]
    assert parse_http(b"garbage") == []


def test_rtsp_server() -> None:
    assert parse_rtsp(DAHUA_RTSP) == [("rtsp.server", "Rtsp Server/3.0")]
    assert parse_rtsp(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n") == []


def test_banners_drop_telnet_negotiation_and_keep_the_first_ssh_line() -> None:
    # a Telnet greeting stays whole, as recog's patterns read it; FTP's first line only
    assert parse_banner(23, TELNET) == [("telnet.banner", "Kamstrup OMNIPOWER\r\nlogin:")]
    assert parse_banner(21, b"220-ProFTPD Server ready.\r\n220 Local time is 02:14\r\n") == [
        ("ftp.banner", "220-ProFTPD Server ready.")]
    assert parse_banner(22, b"SSH-2.0-dropbear_2019.78\r\n") == [
        ("ssh.banner", "SSH-2.0-dropbear_2019.78")]
    assert parse_banner(8080, b"whatever") == []
    assert parse_banner(21, b"\r\n") == []


def test_the_built_in_rules_read_a_whole_greeting_on_one_line() -> None:
    """The sensor keeps a Telnet greeting whole (for recog); the built-in rules, written
    for one line, still read it, its lines joined."""
    meter = classify(Observation(k, v) for k, v in parse_banner(23, TELNET))
    assert (meter.vendor, meter.device_type, meter.model) == ("Kamstrup", "meter", "OMNIPOWER")
    with without_recog():  # the built-in rule alone
        cisco = classify(Observation(k, v) for k, v in parse_banner(
            23, b"\xff\xfb\x01\r\n\r\nUser Access Verification\r\n\r\nUsername: "))
    assert (cisco.vendor, cisco.product) == ("Cisco", "IOS")
    camera = classify(Observation(k, v) for k, v in parse_banner(
        21, b"220-AXIS P1375 Network Camera 10.12.114 (2023) ready.\r\n220 more\r\n"))
    assert (camera.device_type, camera.model) == ("camera", "P1375")


def test_snmp_system_group_from_a_get_response() -> None:
    from scanners import snmp

    values = {snmp.SYSDESCR: "KONICA MINOLTA bizhub C360", snmp.SYSOBJECTID: "1.3.6.1.4.1.18334.1",
              snmp.SYSNAME: "KM-C360-2.sal"}
    message = snmp.get_response(b"public", 7, values)
    assert snmp.parse_response(message) == values
    assert snmp.parse_response(message[:-5]) == {}  # truncated
    assert snmp.parse_response(b"\x30\x84\xff\xff\xff\xff") == {}  # absurd length
    assert snmp.parse_response(b"") == {}
    assert snmp.parse_response(snmp.get_request("public")) == {}  # a request is no answer
    nested = b"\x30\x02" * 20  # deeper than the reader goes
    assert snmp.parse_response(nested) == {}


def test_snmp_request_is_the_read_only_get_of_the_system_group() -> None:
    from scanners import snmp

    # the bytes of "snmpget -v2c -c public HOST 1.3.6.1.2.1.1.1.0" (request id 1)
    assert snmp.get_request("public", (snmp.SYSDESCR,)).hex() == (
        "3026020101040670756" "26c6963a019020101020100020100300e300c06082b060102010101000500")
    assert snmp.parse_request(snmp.get_request("x", snmp.SYSTEM_OIDS, 5)) == (
        1, b"x", 5, snmp.SYSTEM_OIDS)
    assert snmp.oid("1.3.6.1.4.1.13742.6").hex() == "06082b06010401eb2e06"  # multi-byte arc


def test_snmpv3_discovery_names_the_engine() -> None:
    from scanners import snmp

    request = snmp.discovery_request(42)
    assert snmp.message_id(request) == 42
    assert snmp.parse_engine_id(request) is None  # the request carries no engine id
    engine = bytes.fromhex("800007c703001b1b104032")  # enterprise 1991 format, MAC based
    report = snmp.discovery_report(42, engine)
    assert snmp.parse_engine_id(report) == engine.hex()
    assert snmp.parse_engine_id(report[:20]) is None
    assert snmp.parse_engine_id(snmp.get_response(b"public", 1, {})) is None  # v2c


def test_sip_answer_names_the_phone() -> None:
    from scanners.identify import parse_sip

    answer = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP nm;branch=z9hG4bK-netvagt\r\n"
              b"From: <sip:nm@nm>;tag=netvagt\r\nCall-ID: 50000\r\nCSeq: 42 OPTIONS\r\n"
              b"User-Agent: Yealink SIP-T46S 66.86.0.15\r\nAllow: INVITE, ACK, OPTIONS\r\n"
              b"Content-Length: 0\r\n\r\n")
    assert parse_sip(answer) == [("sip.user_agent", "Yealink SIP-T46S 66.86.0.15")]
    assert parse_sip(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n") == []


def _nbstat(names: list[tuple[str, int, int]]) -> bytes:
    """A node status answer as Windows sends it: header, the queried name, then the table."""
    import struct

    header = bytes.fromhex("80f0840000000001000000")[:12].ljust(12, b"\x00")
    name = b"\x20" + b"CK" + b"A" * 30 + b"\x00"
    table = b"".join(n.encode().ljust(15, b" ") + bytes([suffix]) + struct.pack("!H", flags)
                     for n, suffix, flags in names)
    rdata = bytes([len(names)]) + table + bytes(6) + bytes(40)  # MAC, then statistics
    return header + name + struct.pack("!HHIH", 0x21, 1, 0, len(rdata)) + rdata


def test_netbios_node_status_gives_the_computer_name_and_workgroup() -> None:
    from scanners.identify import parse_netbios

    answer = _nbstat([("KOMMUNE-PC042", 0x00, 0x0400), ("KOMMUNE", 0x00, 0x8400),
                      ("KOMMUNE-PC042", 0x20, 0x0400)])
    assert parse_netbios(answer) == [("netbios.name", "KOMMUNE-PC042"),
                                     ("netbios.group", "KOMMUNE")]
    assert parse_netbios(answer[:40]) == []
    assert parse_netbios(b"") == []
    huge = _nbstat([])[:12 + 34 + 10] + b"\xff"  # claims 255 names, carries none
    assert parse_netbios(huge) == []


def test_pjl_id_is_the_line_after_the_echoed_command() -> None:
    from scanners.identify import parse_pjl

    assert parse_pjl(b'@PJL INFO ID\r\n"HP LaserJet M402dne"\r\n\x0c') == [
        ("pjl.id", "HP LaserJet M402dne")]
    assert parse_pjl(b"garbage") == []


def test_certificate_subject_and_fingerprint_feed_the_tls_rules() -> None:

    from cryptography.x509.oid import NameOID

    from fingerprints.classify import match
    from scanners.identify import parse_certificate

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Texas"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Round Rock"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Dell Inc."),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Remote Access Group"),
        x509.NameAttribute(NameOID.COMMON_NAME, "idrac-5XK2Q53"),
    ])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    found = dict(parse_certificate(cert.public_bytes(serialization.Encoding.DER)))
    assert found["tls.subject"].startswith("CN=idrac-5XK2Q53,OU=Remote Access Group,O=Dell Inc.")
    assert len(found["tls.cert_sha256"]) == 64
    evidence = match("tls.subject", found["tls.subject"])
    assert evidence is not None and evidence.fields["device_type"] == "bmc"
    assert dict(parse_certificate(b"not a certificate")).keys() == {"tls.cert_sha256"}


def test_ssh_host_key_comes_from_the_key_exchange_alone() -> None:
    """A real SSH server (paramiko's) on loopback: the probe reads its host key, logs in never."""
    import base64
    import hashlib
    import socket
    import threading

    import paramiko

    from scanners.identify import ssh_hostkey_sync

    host_key = paramiko.ECDSAKey.generate()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    authenticated: list[str] = []

    class Server(paramiko.ServerInterface):
        def check_auth_none(self, username: str) -> int:
            authenticated.append(username)
            return paramiko.AUTH_FAILED

    def serve() -> None:
        conn, _ = listener.accept()
        transport = paramiko.Transport(conn)
        transport.add_server_key(host_key)
        try:
            transport.start_server(server=Server())
            transport.join(5)
        except (paramiko.SSHException, EOFError):
            pass
        finally:
            transport.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        found = ssh_hostkey_sync("127.0.0.1", port, timeout=5)
    finally:
        thread.join(10)
        listener.close()
    digest = base64.b64encode(hashlib.sha256(host_key.asbytes()).digest()).decode().rstrip("=")
    assert found == f"ecdsa-sha2-nistp256 SHA256:{digest}"
    assert authenticated == []
    assert ssh_hostkey_sync("127.0.0.1", port, timeout=1) is None  # nobody listens now


def test_snmp_address_table_walk_reads_claimed_addresses() -> None:
    """A GetNext walk of ipAddrTable against an agent on loopback (the lab's own agent)."""
    import asyncio

    from central.lab.devices import _SnmpAgent
    from scanners import snmp
    from scanners.identify import snmp_claims

    request = snmp.get_request("public", (snmp.IP_AD_ENT_ADDR,), 3, kind=snmp.GET_NEXT)
    assert snmp.parse_request(request) == (1, b"public", 3, ("next:" + snmp.IP_AD_ENT_ADDR,))
    row = f"{snmp.IP_AD_ENT_ADDR}.192.168.0.1"
    assert snmp.parse_response(snmp.get_response(b"public", 3, {row: "192.168.0.1"})) == {
        row: "192.168.0.1"}

    async def walk() -> list[Observation]:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _SnmpAgent({"community": "private", "sysdescr": "x",
                                "addresses": "127.0.0.1,192.168.0.1,10.9.9.9"}),
            local_addr=("127.0.0.1", 0))
        agent_port = transport.get_extra_info("sockname")[1]
        import scanners.identify as identify

        original = identify._ask

        async def to_port(ip: str, port: int, payload: bytes, timeout: float) -> bytes | None:
            return await original(ip, agent_port, payload, timeout)

        identify._ask = to_port
        try:
            return await snmp_claims("127.0.0.1", ("public", "private"), timeout=0.5)
        finally:
            identify._ask = original
            transport.close()

    # the wrong community is silent, the right one lists three rows; its own address is no claim
    assert asyncio.run(walk()) == [("claim.ipv4", "10.9.9.9", "snmp"),
                                   ("claim.ipv4", "192.168.0.1", "snmp")]


def test_http_headers_recog_reads_are_kept() -> None:
    # a Tomcat-based NVR's answer (headers as Hikvision's iVMS server sends them)
    answer = (b"HTTP/1.1 200 OK\r\nServer: Apache-Coyote/1.1\r\nX-Powered-By: Servlet/3.0\r\n"
              b"Set-Cookie: JSESSIONID=0A1B2C3D; Path=/; HttpOnly\r\n\r\n<title>Login</title>")
    assert parse_http(answer) == [("http.server", "Apache-Coyote/1.1"),
                                  ("http.x_powered_by", "Servlet/3.0"),
                                  ("http.cookie", "JSESSIONID=0A1B2C3D; Path=/; HttpOnly"),
                                  ("http.title", "Login")]


Page = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _probe_loopback(monkeypatch: pytest.MonkeyPatch, page: Page, *,
                    tls_dir: Path | None = None, subject: str = "") -> list[Observation]:
    """The sensor's probe of one port, against a loopback server that answers with ``page``
    (over TLS, with a self-signed certificate for ``subject``, when ``tls_dir`` is given)."""
    context = tls_context(subject, str(tls_dir)) if tls_dir is not None else None  # the lab's

    async def main() -> list[Observation]:
        server = await asyncio.start_server(page, "127.0.0.1", 0, ssl=context)
        port = server.sockets[0].getsockname()[1]
        monkeypatch.setattr(identify, "TLS_PORTS" if context else "HTTP_PORTS", frozenset({port}))
        async with server:
            return await identify._probe("127.0.0.1", port)

    return asyncio.run(main())


@pytest.mark.parametrize("answers", [True, False])
def test_a_device_that_serves_its_pages_over_https_says_what_it_is_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answers: bool) -> None:
    """Port 443: the certificate, then GET / on the same connection. A web server that
    only hangs up after the handshake still gives its certificate."""
    asked: list[bytes] = []

    async def page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if answers:
            asked.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(AXIS)
            await writer.drain()
        writer.close()

    found = {o.key: o.value for o in _probe_loopback(
        monkeypatch, page, tls_dir=tmp_path, subject="CN=AXIS P1375,O=Axis Communications AB")}
    assert found["tls.subject"] == "CN=AXIS P1375,O=Axis Communications AB"
    if answers:
        assert asked and asked[0].startswith(b"GET / HTTP/1.0\r\n")
        assert (found["http.www_authenticate"], found["http.title"]) == ("AXIS_ACCC8E103022",
                                                                        "AXIS")
    else:
        assert "http.title" not in found


@pytest.mark.parametrize(("location", "path"), [
    ("/doc/page/login.asp", "/doc/page/login.asp"),
    ("http://10.0.0.5/login.html?x=1", "/login.html?x=1"),
    ("http://10.0.0.5:80/", None),  # back to where it was
    ("http://10.0.0.6/login.html", None),  # another server
    ("https://10.0.0.5/login.html", None),  # another scheme: the TLS probe reads that one
    ("http://10.0.0.5:8080/login.html", None),  # another port
    ("//evil.example/x", None),
    ("/a b", None),  # a space would end our request line early
    ("/" + "a" * 300, None),
])
def test_one_redirect_is_followed_on_the_same_server_only(location: str, path: str | None) -> None:
    answer = f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()
    assert identify.redirect_path(answer, "10.0.0.5", 80) == path
    assert identify.redirect_path(answer.replace(b"302 Found", b"200 OK"), "10.0.0.5", 80) is None


def test_a_page_that_only_redirects_is_read_where_it_sends(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """'/' answers 302 to '/login.html'; the login page's title names the device."""
    asked: list[bytes] = []

    async def page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        asked.append(request.split(b"\r\n")[0])
        if request.startswith(b"GET / "):
            writer.write(b"HTTP/1.1 302 Found\r\nServer: lighttpd\r\nLocation: /login.html\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nServer: lighttpd\r\n\r\n"
                         b"<html><title>TOSHIBA e-STUDIO500S</title></html>")
        await writer.drain()
        writer.close()

    found = _probe_loopback(monkeypatch, page)
    assert asked == [b"GET / HTTP/1.0", b"GET /login.html HTTP/1.0",
                     b"GET /favicon.ico HTTP/1.0"]  # the login page again: no icon
    assert [(o.key, o.value) for o in found] == [("http.server", "lighttpd"),
                                                 ("http.title", "TOSHIBA e-STUDIO500S")]


def test_an_https_page_that_only_redirects_is_read_where_it_sends(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: /hp/device/start\r\n\r\n"
                     if request.startswith(b"GET / ") else
                     b"HTTP/1.1 200 OK\r\n\r\n<title>HP Color LaserJet MFP M477fdw</title>")
        await writer.drain()
        writer.close()

    found = {o.key: o.value for o in _probe_loopback(monkeypatch, page, tls_dir=tmp_path,
                                                     subject="CN=printer")}
    assert found["tls.subject"] == "CN=printer"
    assert found["http.title"] == "HP Color LaserJet MFP M477fdw"


ICON = b"\x00\x00\x01\x00\x01\x00\x10\x10" + bytes(range(256)) * 4  # an ICO header, then pixels
ICON_MD5 = hashlib.md5(ICON, usedforsecurity=False).hexdigest()  # recog's favicon key


@pytest.mark.parametrize(("answer", "named"), [
    (b"HTTP/1.1 200 OK\r\nContent-Type: image/x-icon\r\nContent-Length: 1032\r\n\r\n" + ICON,
     True),
    (b"HTTP/1.0 200 OK\r\n\r\n" + ICON, True),  # no headers to say so: the ICO magic does
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>login</html>", False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + ICON, False),  # cut short
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n408\r\n" + ICON, False),
    (b"HTTP/1.1 404 Not Found\r\nContent-Type: image/x-icon\r\n\r\n" + ICON, False),
    (b"garbage", False),
])
def test_a_favicon_is_read_whole_or_not_at_all(answer: bytes, named: bool) -> None:
    found = identify.parse_favicon(answer)
    assert found == ([("http.favicon_md5", ICON_MD5)] if named else [])


def test_the_sensor_reads_a_web_server_s_icon(monkeypatch: pytest.MonkeyPatch) -> None:
    async def page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/vnd.microsoft.icon\r\n\r\n" + ICON
                     if request.startswith(b"GET /favicon.ico ") else
                     b"HTTP/1.1 200 OK\r\n\r\n<title>Login</title>")
        await writer.drain()
        writer.close()

    found = {o.key: o.value for o in _probe_loopback(monkeypatch, page)}
    assert found["http.favicon_md5"] == ICON_MD5


def test_a_portal_s_session_cookie_and_a_certificate_s_issuer_name_the_device() -> None:
    """Both were collected and read by no built-in rule: a Cisco ASA's VPN portal says
    only 'SSL VPN Service' in its title, a Cast device's own certificate is issued by its
    maker's device CA."""
    from cryptography.x509.oid import NameOID

    from scanners.identify import parse_certificate

    answer = (b"HTTP/1.1 200 OK\r\nServer: Server\r\nSet-Cookie: webvpnlogin=1; path=/; "
              b"secure\r\nSet-Cookie: webvpnLang=en; path=/\r\n\r\n<title>SSL VPN Service</title>")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "6C29A1B2C3D4")]))
            .issuer_name(x509.Name([
                x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Google Inc"),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Cast"),
                x509.NameAttribute(NameOID.COMMON_NAME, "Chromecast ICA 16")]))
            .public_key(key.public_key()).serial_number(7).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    issuer = [(k, v) for k, v in parse_certificate(cert.public_bytes(serialization.Encoding.DER))
              if k == "tls.issuer"]
    assert issuer == [("tls.issuer", "CN=Chromecast ICA 16,OU=Cast,O=Google Inc,C=US")]
    with without_recog():
        portal = classify([Observation(key=k, value=v) for k, v in parse_http(answer)])
        cast = classify([Observation(key=k, value=v) for k, v in issuer])
    assert (portal.vendor, portal.device_type) == ("Cisco", "firewall")
    assert (cast.vendor, cast.device_type) == ("Google", "media_player")


def _modbus_answer(objects: list[tuple[int, bytes]], *, count: int | None = None) -> bytes:
    pdu = bytes([0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00,
                 len(objects) if count is None else count]) + b"".join(
        bytes([number, len(value)]) + value for number, value in objects)
    return bytes.fromhex("4e560000") + (len(pdu) + 1).to_bytes(2, "big") + b"\xff" + pdu


def test_a_modbus_device_names_its_maker_and_product_code() -> None:
    """Read Device Identification's answer: maker, product code and revision in the device's
    own words, named by the maker table and the model catalogue (a Modicon M221's part
    number is a PLC); an exception, a cut answer, a hostile name or an object count larger
    than the answer says nothing more than is there."""
    assert identify.MODBUS_DEVICE_ID[6:] == bytes.fromhex("ff2b0e0100")  # 43/14: reads only
    answer = _modbus_answer([(0, b"Schneider Electric"), (1, b"TM221CE16R"), (2, b"V1.6.0.1")])
    ((key, value),) = identify.parse_modbus(answer)
    assert (key, value) == ("modbus.device", "vendor=Schneider Electric; product=TM221CE16R; "
                                             "revision=V1.6.0.1")
    with without_recog():
        named = classify([Observation(key, value, "502/tcp")])
    assert (named.vendor, named.model, named.device_type) == (
        "Schneider Electric", "TM221CE16R", "plc")
    hostile = _modbus_answer([(0, b"=cmd|'/C calc'!A0;x=1\x1b[2J"), (7, b"private"),
                              (1, b"A" * 200)], count=255)
    assert identify.parse_modbus(hostile) == [
        ("modbus.device", "vendor==cmd|'/C calc'!A0,x=1 [2J; product=" + "A" * 64)]
    for nothing in (bytes.fromhex("4e5600000003ffab01"),  # exception: illegal function
                    answer[:12], b"", bytes.fromhex("4e5600000005ff030000"),
                    answer[:2] + b"\x00\x01" + answer[4:]):  # another protocol's id
        assert identify.parse_modbus(nothing) == []


def _ubiquiti_answer(records: list[tuple[int, bytes]], version: int = 1, command: int = 0
                     ) -> bytes:
    """A Ubiquiti discovery answer: version, command, length, then type-length-value records."""
    body = b"".join(bytes([k]) + len(v).to_bytes(2, "big") + v for k, v in records)
    return bytes([version, command]) + len(body).to_bytes(2, "big") + body


def test_a_ubiquiti_device_names_its_model_platform_and_firmware() -> None:
    """The answer to Ubiquiti's discovery request (version 1, or version 2 as UniFi's newer
    firmware answers): the model, the platform code, the firmware build and the host name,
    in that order; addresses, uptime and ESSID left out. Named by the model catalogue and the
    firmware's line. A hostile host name stays printable, cannot add a field and is clipped;
    a record longer than the answer, a length that is not the answer's, a request and
    another protocol say nothing."""
    mac = bytes.fromhex("788a20000001")
    records = [(0x02, mac + bytes([10, 0, 0, 20])), (0x01, mac), (0x0A, bytes(4)),
               (0x0B, b"ap-aula"), (0x0C, b"U7LT"),
               (0x03, b"BZ.qca956x.v6.5.28.14491.230124.1631"), (0x0D, b"gaest"),
               (0x14, b"UAP-AC-Lite")]
    answer = _ubiquiti_answer(records)
    assert identify.parse_udp(10001, answer) == [("ubiquiti.discovery", (
        "model=UAP-AC-Lite; platform=U7LT; firmware=BZ.qca956x.v6.5.28.14491.230124.1631; "
        "name=ap-aula"))]
    with without_recog():
        named = classify([Observation("ubiquiti.discovery", identify.parse_ubiquiti(answer)[0][1],
                                      "10001/udp")])
    assert (named.vendor, named.model, named.version, named.device_type) == (
        "Ubiquiti", "UAP-AC-Lite", "6.5.28", "access_point")
    v2 = _ubiquiti_answer([(0x15, b"USW-Lite-16-PoE"), (0x16, b"7.0.50"), (0x0B, b"sw-3")],
                          version=2, command=0x06)
    assert identify.parse_ubiquiti(v2) == [
        ("ubiquiti.discovery", "model=USW-Lite-16-PoE; version=7.0.50; name=sw-3")]
    hostile = _ubiquiti_answer([(0x0B, b"=HYPERLINK(\"x\");model=evil\x1b[2J" + b"A" * 100),
                                (0x0C, b"U7LT")])
    assert identify.parse_ubiquiti(hostile) == [("ubiquiti.discovery", (
        "platform=U7LT; name==HYPERLINK(\"x\"),model=evil [2J" + "A" * 34))]
    too_long = answer[:-len(b"UAP-AC-Lite") - 3] + b"\x14\xff\xff" + b"UAP-AC-Lite"
    for nothing in (too_long[:2] + (len(too_long) - 4).to_bytes(2, "big") + too_long[4:],
                    answer[:-1], answer + b"\x00", b"\x01\x00\x00\x00", b"",
                    _ubiquiti_answer([(0x0A, bytes(4)), (0x0D, b"gaest")]),  # names nothing
                    _ubiquiti_answer(records, version=2, command=0x08),  # a v2 request's kind
                    b"\x03" + answer[1:]):
        assert identify.parse_ubiquiti(nothing) == []
    many = _ubiquiti_answer([(0x0A, bytes(4))] * 40 + [(0x0C, b"U7LT")])
    assert identify.parse_ubiquiti(many) == []  # records past the 32nd are not read


def _szl_answer(szl: int, records: list[bytes], size: int, *, code: int = 0xFF) -> bytes:
    """An S7 PLC's answer to a read of its system status list: TPKT, COTP, S7 userdata
    header, parameters, then the data (return code, transport size, length, SZL id, index,
    record length, record count, records)."""
    data = (bytes([code, 0x09]) + (8 + len(records) * size).to_bytes(2, "big")
            + szl.to_bytes(2, "big") + b"\x00\x00" + size.to_bytes(2, "big")
            + len(records).to_bytes(2, "big") + b"".join(records))
    parameters = bytes.fromhex("000112081284010100000000")
    s7 = (b"\x32\x07\x00\x00\x00\x00" + len(parameters).to_bytes(2, "big")
          + len(data).to_bytes(2, "big") + parameters + data)
    return b"\x03\x00" + (7 + len(s7)).to_bytes(2, "big") + b"\x02\xf0\x80" + s7


def test_an_s7_plc_names_its_order_number_type_and_firmware() -> None:
    """The two SZL answers of an S7 PLC: the order number (record 1 of 0x0011), firmware
    (record 7, 'V' then major, minor, patch), type name, copyright and station name (records
    7, 4 and 1 of 0x001C). The SZL reads ask nothing but the lists; an error answer, a cut
    answer, a record length past the bound and a hostile name say nothing more than is there."""
    assert identify.S7_SZL_IDS == (0x0011, 0x001C)
    order = b"\x00\x01" + b"6ES7 215-1AG40-0XB0 " + bytes.fromhex("000000010001")
    firmware = b"\x00\x07" + b" " * 20 + b"\x00\x00V\x04\x06\x01"
    modules = _szl_answer(0x0011, [order, order[:1] + b"\x06" + order[2:], firmware], 28)
    names = _szl_answer(0x001C, [i.to_bytes(2, "big") + v.ljust(32, b"\0") for i, v in (
        (1, b"Varmecentral"), (4, b"Original Siemens Equipment"), (7, b"CPU 1215C AC/DC/Rly"),
        (5, b"S C-H4T512345678"))], 34)
    assert identify.parse_s7((modules, names)) == [("s7.device", (
        "order=6ES7 215-1AG40-0XB0; type=CPU 1215C AC/DC/Rly; firmware=4.6.1; "
        "copyright=Original Siemens Equipment; name=Varmecentral"))]
    with without_recog():
        named = classify([Observation(*identify.parse_s7((modules, names))[0], "102/tcp")])
    assert (named.vendor, named.model, named.version, named.device_type) == (
        "Siemens", "CPU 1215C", "4.6.1", "plc")
    assert identify.parse_s7((modules,)) == [
        ("s7.device", "order=6ES7 215-1AG40-0XB0; firmware=4.6.1")]  # 0x001C refused
    hostile = _szl_answer(0x001C, [b"\x00\x01" + b"=cmd|'/C calc'!A0;type=x\x1b[2J" + bytes(4),
                                   b"\x00\x07" + b"A" * 32], 34)
    assert identify.parse_s7((hostile,)) == [
        ("s7.device", "type=" + "A" * 32 + "; name==cmd|'/C calc'!A0,type=x [2J")]
    for nothing in ((_szl_answer(0x0011, [order], 28, code=0x0A),),  # 'object does not exist'
                    (modules[:30],), (b"",), (modules[:7] + b"\x31" + modules[8:],),
                    (_szl_answer(0x0011, [order + bytes(40)], 68),), ()):
        assert identify.parse_s7(nothing) == []
    many = _szl_answer(0x0011, [b"\x00\x06" + order[2:]] * 20 + [order], 28)
    assert identify.parse_s7((many,)) == []  # records past the 16th are not read


@pytest.mark.parametrize("refusal", ["disconnect request", "hang up"])
def test_the_s7_probe_tries_the_second_tsap_and_reads_answers_by_their_length(
        refusal: str) -> None:
    """A PLC that refuses the first connection request (rack 0, slot 2), with a COTP
    disconnect request or by hanging up, gets the second (TSAP 0x0200) on a new
    connection; each answer is read by its TPKT length on the connection the PLC keeps
    open. Something else on port 102 names nothing."""
    from central.lab.devices import _s7_answer

    connections: list[list[bytes]] = []
    params = {"order": "6ES7 512-1CK01-0AB0", "firmware": "2.9.4", "type": "CPU 1512SP-1 PN"}

    async def plc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        asked: list[bytes] = []
        connections.append(asked)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readexactly(4)
                body = await reader.readexactly(int.from_bytes(head[2:4], "big") - 4)
                asked.append(head + body)
                if body[1] == 0xE0 and bytes.fromhex("c2020102") in body:
                    if refusal == "hang up":
                        break
                    answer: bytes | None = b"\x06\x80" + body[4:6] + b"\x00\x01\x00"  # refused
                else:
                    answer = _s7_answer(body, params)
                writer.write(b"\x03\x00" + (4 + len(answer or b"")).to_bytes(2, "big")
                             + (answer or b""))
                await writer.drain()
        writer.close()

    async def other(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(64)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    async def main(page: Page) -> tuple[bytes, ...]:
        server = await asyncio.start_server(page, "127.0.0.1", 0)
        async with server:
            return await identify.s7_exchange("127.0.0.1", server.sockets[0].getsockname()[1])

    answers = asyncio.run(main(plc))
    assert [len(asked) for asked in connections] == [1, 4]  # refused; connect, setup, 2 reads
    assert bytes.fromhex("c2020200") in connections[1][0]
    assert identify.parse_s7(answers) == [
        ("s7.device", "order=6ES7 512-1CK01-0AB0; type=CPU 1512SP-1 PN; firmware=2.9.4")]
    assert identify.parse_s7(asyncio.run(main(other))) == []
