"""Targeted identification parsers on real bytes."""

from __future__ import annotations

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
    assert parse_banner(23, TELNET) == [("telnet.banner", "Kamstrup OMNIPOWER login:")]
    assert parse_banner(22, b"SSH-2.0-dropbear_2019.78\r\n") == [
        ("ssh.banner", "SSH-2.0-dropbear_2019.78")]
    assert parse_banner(8080, b"whatever") == []
    assert parse_banner(21, b"\r\n") == []


def _ber(tag: int, body: bytes) -> bytes:
    return bytes([tag, len(body)]) + body


def test_snmp_sysdescr_from_a_get_response() -> None:
    from scanners.identify import parse_snmp_sysdescr

    descr = b"KONICA MINOLTA bizhub C360"
    # GetResponse for sysDescr.0, community "public", as an SNMPv2c agent answers our request
    varbind = _ber(0x30, _ber(0x06, bytes.fromhex("2b06010201010100")) + _ber(0x04, descr))
    pdu = _ber(0xA2, _ber(0x02, b"\x01") + _ber(0x02, b"\x00") + _ber(0x02, b"\x00")
               + _ber(0x30, varbind))
    message = _ber(0x30, _ber(0x02, b"\x01") + _ber(0x04, b"public") + pdu)
    assert parse_snmp_sysdescr(message) == "KONICA MINOLTA bizhub C360"
    assert parse_snmp_sysdescr(message[:-5]) is None  # truncated
    assert parse_snmp_sysdescr(b"\x30\x84\xff\xff\xff\xff") is None  # absurd length
    assert parse_snmp_sysdescr(b"") is None


def test_snmp_request_is_the_read_only_get_of_sysdescr() -> None:
    from scanners.tcp import snmp_get_sysdescr

    # the bytes net-snmp's "snmpget -v2c -c public HOST 1.3.6.1.2.1.1.1.0" sends (request id 1)
    assert snmp_get_sysdescr("public").hex() == (
        "302902010104067075626c6963a01c020400000001020100020100300e300c06082b060102010101000500")
