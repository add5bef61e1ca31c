"""The one form the rules read a value in, whatever form a device, a reader or a collection
left it in: no padding around it, no header name before it, an OID in numbers, an option
list as '1,3,6', a TXT record's entries joined by '; '.

recog's patterns are anchored at both ends: with one trailing CR, about a third of its
typed examples lost their type. The built-in rules read ``field_form``; recog reads it
first, then the value as sent (fingerprints.classify)."""

from __future__ import annotations

import re
from collections.abc import Callable

EDGES = " \t\r\n\x00\x0b\x0c"  # around a value, as a device pads it (NUL-ended C strings)

# Telnet's option negotiation (RFC 854: IAC, then a verb and an option, or a command), as a
# greeting kept raw carries it before the words; U+FFFD is what a UTF-8 reading made of IAC
_TELNET_OPTIONS = re.compile("\xff[\xfb-\xfe].|\xff[\xf0-\xfa]|(?:\ufffd){2}[\x00-\x2f]",
                             re.DOTALL)
# What net-snmp's tools print around a value: 'SNMPv2-MIB::sysDescr.0 = STRING: "..."'
_SNMP_TYPED = re.compile(r"^(?:\S{1,128} = )?(STRING|OID|Hex-STRING): ", re.I)
# An object identifier as net-snmp and MIB browsers print it ('.1.3.6...', 'iso.3.6...',
# 'SNMPv2-SMI::enterprises.9...'): the root (group 1), or the enterprises' arc
_OID_PREFIX = re.compile(r"^(?:(\.1\.|\.?iso\.)|(?:SNMPv2-SMI::)?enterprises\.)", re.I)
# Keys that are one header's value: a collection sometimes keeps the header's name with it
HEADER_KEYS = {"http.server": "server", "rtsp.server": "server", "sip.server": "server",
               "ssdp.server": "server", "http.www_authenticate": "www-authenticate",
               "http.user_agent": "user-agent", "sip.user_agent": "user-agent",
               "http.x_powered_by": "x-powered-by"}
# A WWW-Authenticate challenge: its scheme first ('Basic', 'Digest ...'), its realm inside
AUTH_SCHEME = re.compile(r"(?i)(?:basic|digest|ntlm|negotiate|bearer)\b")
_REALM = re.compile(r'realm="([^"]{0,256})"', re.I)
MAX_TXT_LIST_CHARS = 4096  # a list written out is read this far, and no further
MAX_OPTION_LIST_CHARS = 1024  # 255 options of three digits and a separator
_OPTION_TOKEN = re.compile(r"[0-9A-Fa-f]+")
_OPTION_LIST = re.compile(r"[\s\[\](),;:|0-9A-Fa-f]+")  # numbers and separators, nothing else
# what a collection may write before the list: 'option 55:', 'Option55 =', 'prl:', '55=' (a
# bare '55:' is not one: a colon-separated dump may begin with option 0x55)
_OPTION_LABEL = re.compile(
    r"^\s*(?:(?:(?:dhcp\s*)?option\s*55|parameter request list|prl)\s*[:=]|55\s*=)\s*", re.I)


def realm(challenge: str) -> str | None:
    """The realm of a WWW-Authenticate challenge ('Digest realm="x", nonce=...' -> 'x'),
    as the sensor keeps it; None where there is none."""
    found = _REALM.search(challenge)
    return found.group(1) if found else None


def field_form(key: str, value: str) -> str:
    """``value`` of ``key`` in the form the rules read: as the device sent it, however a
    collection wrote it down (``written_out``); without the padding a device or a reader
    leaves (an FTP or SSH greeting's line end, an SNMP description's trailing NUL, a Telnet
    greeting's opening blank lines and option negotiation, a page title's indentation); and
    in the key's own notation (see ``_FORMS``)."""
    if not isinstance(value, str):
        return value
    value = written_out(value)
    form = _FORMS.get(key)
    if form is not None:
        return form(value)
    header = HEADER_KEYS.get(key)
    value = value.strip(EDGES)
    if header is not None and value[:len(header) + 1].lower() == f"{header}:":
        return value[len(header) + 1:].strip(EDGES)  # the header line whole: 'Server: ...'
    return value


# A control character or a byte written as an escape ('\\r\\n', nmap's '\\x20', '\\0')
_ESCAPE = re.compile(r"\\(?:x([0-9A-Fa-f]{2})|([rnt0\\\"']))")
_ESCAPED = {"r": "\r", "n": "\n", "t": "\t", "0": "\x00", "\\": "\\", '"': '"', "'": "'"}
_WRITTEN_LINE_END = re.compile(r"\\[rn0]|\\x[0-9A-Fa-f]{2}")
MAX_WRITTEN_CHARS = 8192  # a value written out is read back this far


def written_out(value: str) -> str:
    """What a device sent, from a value as a collection wrote it down: in quotes
    ('"Microsoft FTP Service"'), as Python's bytes ("b'SSH-2.0-...\\r\\n'"), or with its
    control characters escaped ('...\\r\\n', nmap's 'FTP\\x20server'). A value without
    such a writing is returned as it is; a backslash in a value (a Windows path, a realm's
    'DOMAIN\\user') is kept unless the value also holds an escaped control character."""
    text = value.strip(EDGES)
    if len(text) > MAX_WRITTEN_CHARS:
        return value
    if len(text) >= 3 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
        said = _literal(text)
        return said.decode("utf-8", "replace") if isinstance(said, bytes) else value
    quoted = (len(text) >= 2 and text[0] == text[-1] and text[0] in "'\""
              and text[0] not in text[1:-1])
    if quoted:
        text = text[1:-1]
    if _WRITTEN_LINE_END.search(text):
        return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)) if m.group(1)
                           else _ESCAPED[m.group(2)], text)
    return text if quoted else value


def _literal(text: str) -> object:
    """A value written as a Python literal, read as data only (never run), or None. A
    device's bytes may hold escapes Python warns of ('\\d'): read all the same, quietly."""
    import ast
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None


def _snmp_value(value: str) -> str:
    """A value as snmpget or snmpwalk printed it, without the variable's name and type,
    the quotes, or (for a Hex-STRING) the hex: the value the agent sent."""
    value = value.strip(EDGES)
    typed = _SNMP_TYPED.match(value)
    if typed is None:
        return value
    value = value[typed.end():].strip(EDGES)
    if typed.group(1).lower() == "hex-string":
        try:
            return bytes.fromhex(value).decode("utf-8", "replace").strip(EDGES)
        except ValueError:
            return value
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].strip(EDGES)
    return value


def _object_id(value: str) -> str:
    return _OID_PREFIX.sub(lambda m: "1." if m.group(1) else "1.3.6.1.4.1.",
                           _snmp_value(value), count=1)


def txt_record(value: str) -> str:
    """An mDNS TXT record as the sensor writes it, its entries joined by '; ', however a
    collection wrote it: one entry a line, or a list of strings ("['md=Chromecast',
    'fn=Kitchen']"). Entries may hold commas and spaces ('pdl=application/pdf,image/urf',
    'ty=HP LaserJet'), so no other separator is guessed."""
    if "; " in value:
        return value
    if "\n" in value:
        return "; ".join(line.strip() for line in value.splitlines() if line.strip())
    if value[:1] == "[" and value[-1:] == "]" and len(value) <= MAX_TXT_LIST_CHARS:
        entries = _literal(value)
        if isinstance(entries, list):
            return "; ".join(e.decode("utf-8", "replace") if isinstance(e, bytes) else e
                             for e in entries[:64] if isinstance(e, str | bytes))
    return value


def option_list(value: str) -> str:
    """A DHCP parameter request list (option 55) as the rules read it, '1,3,6,15', however
    a collection or a tool wrote it: '1, 3, 6, 15', '1 3 6 15', '[1, 3, 6, 15]', '1;3;6;15,',
    after a label ('option 55: ...', '55=...'), or a hex dump's '01,03,06,0f' or '0103060f'
    (hex when a number has a hex letter in it, when every number is two digits and some
    begin with 0, as a dump's bytes do, or when the digits come with no separator at all:
    a list of decimal numbers always has one). A value with no list in it is left as it is."""
    if len(value) > MAX_OPTION_LIST_CHARS:
        return value
    value = _OPTION_LABEL.sub("", value, count=1)
    if not _OPTION_LIST.fullmatch(value):
        return value
    tokens = _OPTION_TOKEN.findall(value)
    if not tokens:
        return value
    if len(tokens) == 1 and len(tokens[0]) >= 4 and len(tokens[0]) % 2 == 0:
        tokens = [tokens[0][i:i + 2] for i in range(0, len(tokens[0]), 2)]  # a hex blob
        base = 16
    elif any(not token.isdigit() for token in tokens) or (
            len(tokens) > 1 and all(len(token) == 2 for token in tokens)
            and any(token[0] == "0" for token in tokens)):
        base = 16
    else:
        base = 10
    numbers = [int(token, base) for token in tokens]
    if any(n > 255 for n in numbers):
        return value
    return ",".join(map(str, numbers))


def _first_line(value: str, *, starting: str = "") -> str:
    """A greeting's line that names the server: an FTP server's first (its next lines can
    change at every connection: 'Local time is 02:14'), an SSH server's version line (RFC
    4253, 4.2: other lines may come before it). The sensor keeps only that line."""
    lines = [line for line in (raw.strip(EDGES) for raw in value.splitlines()) if line]
    if starting:
        return next((line for line in lines if line.startswith(starting)), value.strip(EDGES))
    return lines[0] if lines else ""


_SSH_PROTOCOL = re.compile(r"SSH-\d+\.\d+-")


def _ssh_version(line: str) -> str:
    """An SSH server's version line with its protocol version (RFC 4253, 4.2: 'SSH-2.0-'
    then the software's): a collection that keeps only the software's part (recog's form,
    'ROSSSH', 'Cisco-1.25') is read as the line a server sends."""
    return line if not line or _SSH_PROTOCOL.match(line) else f"SSH-2.0-{line}"


def stripped(key: str, value: str) -> str:
    """``value`` without its padding only (recog's patterns may need a title's double
    space or a realm's inner spaces), and a title without the element's tags that a
    collection kept around it ('<title>...</title>')."""
    value = written_out(value)
    return _title_text(value) if key == "http.title" else value.strip(EDGES)


def _title_text(value: str) -> str:
    """A title without padding, and without the element's tags a collection kept."""
    value = value.strip(EDGES)
    element = _TITLE_ELEMENT.fullmatch(value)
    return element.group(1).strip(EDGES) if element else value


_TITLE_ELEMENT = re.compile(r"<title(?:\s[^>]*)?>(.*?)</title\s*>", re.I | re.S)

# Each key's own notation, from the value as it came (each strips the padding itself)
_FORMS: dict[str, Callable[[str], str]] = {
    "ftp.banner": _first_line,
    "ssh.banner": lambda v: _ssh_version(_first_line(v, starting="SSH-")),
    "telnet.banner": lambda v: _TELNET_OPTIONS.sub("", v).strip(EDGES),
    "snmp.sysdescr": _snmp_value,
    "snmp.sysobjectid": _object_id,
    "http.title": lambda v: " ".join(_title_text(v).split()),  # as a browser shows it
    "http.favicon_md5": lambda v: v.strip(EDGES).lower(),  # a hash
    "mdns.service": lambda v: v.strip(EDGES).lower(),  # a DNS name ('_Volumio._tcp')
    "dhcp.params": lambda v: option_list(v.strip(EDGES)),
    "mdns.txt": lambda v: txt_record(v.strip(EDGES)),
}
