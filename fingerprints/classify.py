"""The classifier: all evidence about one asset becomes one identity, with its reasons.

Each observation (a match key and the string seen, from some source) is matched against the
rules of its key; the first matching rule in file order wins for that observation. Across
observations, each field takes the value backed by the most confidence (agreeing matches
add up: 1 - (1 - a)(1 - b)); a field on which matches disagree keeps the winner and lists
the losers as conflicts, so nothing contradicting is hidden.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from typing import Any, Protocol

from fingerprints.field_forms import AUTH_SCHEME, EDGES, field_form, realm, stripped
from fingerprints.observation import Observation
from fingerprints.rules import Rule, name_list, name_map, rules_by_key

__all__ = ["Identity", "Observation", "classify", "classify_device", "matches"]

IDENTITY_FIELDS = ("vendor", "product", "model", "version", "device_type", "os", "cpe")
# Where a device writes its model number: the model catalogue (rules/model_catalogue.toml)
# reads these keys too, so a 'DS-2CD...' names a camera in a host name as in a page title.
CATALOGUE_KEYS = frozenset({
    "dhcp.hostname", "dhcp.vendor_class", "mdns.txt", "upnp.description", "ssdp.server",
    "http.title", "http.www_authenticate", "http.server", "snmp.sysdescr", "snmp.sysname",
    "tls.subject", "tls.issuer", "ftp.banner", "telnet.banner", "lldp.sysdescr", "lldp.sysname",
    "cdp.platform", "sip.user_agent", "sip.server", "pjl.id", "netbios.name", "rtsp.server",
    "mdns.hostname", "wsd.scopes", "lldp.med", "tplink.discovery", "mdns.instance",
    "knx.device", "modbus.device", "ubiquiti.discovery", "mndp.device", "s7.device",
})


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    rule: str
    key: str
    value: str
    source: str
    fields: dict[str, str]
    confidence: float
    generic: bool = False  # from generic server software: outweighed by anything specific


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    vendor: str | None = None
    product: str | None = None
    model: str | None = None
    version: str | None = None
    device_type: str | None = None
    os: str | None = None
    cpe: str | None = None
    confidence: float = 0.0
    evidence: tuple[Evidence, ...] = ()
    conflicts: tuple[str, ...] = field(default_factory=tuple)

    @property
    def names_anything(self) -> bool:
        """Whether any identity field is known (else :meth:`to_dict` is empty)."""
        return any(getattr(self, f) is not None for f in IDENTITY_FIELDS)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {f: getattr(self, f) for f in IDENTITY_FIELDS
                               if getattr(self, f) is not None}
        if out:
            out["confidence"] = round(self.confidence, 3)
            out["rule"] = self.evidence[0].rule if self.evidence else None
            out["named_by"] = named_by([{"rule": e.rule, "key": e.key, "fields": e.fields}
                                        for e in self.evidence], self.device_type, self.vendor)
        return out


def source_kind(rule: str) -> str:
    """Which rule source a piece of evidence came from, in the words the tables use."""
    if rule.startswith("recog/"):
        return "recog"
    if rule.startswith("nmap-service-probes"):
        return "nmap"
    if rule.startswith("model_catalogue"):
        return "model catalogue"
    if rule.startswith("device_words"):
        return "the device's own words"
    if rule.startswith("vendor_types"):
        return "the maker's usual kind"
    if rule.startswith("mac_vendor"):
        return "OUI prior"
    return "netvagt rules"


def named_by(evidence: Iterable[dict[str, Any]], device_type: str | None,
             vendor: str | None) -> str | None:
    """What named the device: the strongest evidence (evidence comes strongest first) that
    gave the chosen type, else the chosen vendor, as 'snmp.sysdescr (recog)'."""
    items = list(evidence)
    for field_name, chosen in (("device_type", device_type), ("vendor", vendor)):
        if chosen is None:
            continue
        for item in items:
            if item.get("fields", {}).get(field_name) == chosen:
                kind = source_kind(str(item.get("rule", "")))
                if item.get("key") == "nmap.match" and kind != "nmap":
                    kind = "nmap's words"  # our rules read what nmap's line called it
                return f"{item.get('key')} ({kind})"
    return None


class _Matcher(Protocol):
    @property
    def source(self) -> str: ...
    @property
    def confidence(self) -> float: ...
    @property
    def generic(self) -> bool: ...

    def match(self, value: str) -> dict[str, str] | None: ...


def own_form(key: str, value: str) -> str:
    """The form the built-in rules read: a greeting on one line. The sensor sends a Telnet
    greeting whole, as recog reads it (fingerprints.recog.candidates); the built-in rules
    read its lines joined by spaces. An FTP greeting's first line is read as '220 ...'
    whether or not more lines follow ('220-...'). A page title's HTML entities are read as
    the characters they stand for (recog's patterns read them as sent). A whole
    WWW-Authenticate challenge is read as its realm, which is what the sensor keeps."""
    if key == "telnet.banner" and ("\n" in value or "\r" in value):
        return " ".join(line for line in value.splitlines() if line.strip())
    if key == "ftp.banner" and value[3:4] == "-" and value[:3].isdigit():
        return f"{value[:3]} {value[4:]}"
    if key == "http.title" and "&" in value:  # 'DiskStation&nbsp;-&nbsp;Synology', 'AT&amp;T'
        return " ".join(html.unescape(value).split())
    if key == "http.www_authenticate" and AUTH_SCHEME.match(value) and (
            said := realm(value)) is not None:
        return said  # a whole challenge, as banner collections keep it: its realm
    return value


def _first(rules: Iterable[_Matcher], key: str, value: str, source: str) -> Evidence | None:
    """The first rule that matches, as evidence; a match that asserts nothing (recog's
    generic '404 Not Found') ends the search with no evidence."""
    for rule in rules:
        fields = rule.match(value)
        if fields is not None:
            if not fields:
                return None
            return Evidence(rule=rule.source, key=key, value=value[:256], source=source,
                            fields=fields, confidence=rule.confidence,
                            generic=rule.generic)
    return None


def load_rules() -> int:
    """Load (and compile) every rule source now, so that the first classification does not
    pay for it where it must not wait (an event loop); returns how many rules there are."""
    from fingerprints.databases import recog_rules_by_key

    return (sum(len(rules) for rules in rules_by_key().values())
            + sum(len(rules) for rules in recog_rules_by_key().values()))


def match(key: str, value: str, *, source: str = "") -> Evidence | None:
    """The first built-in rule of ``key`` that matches ``value``, as evidence."""
    return _first(rules_by_key().get(key, ()), key, value, source)


MATCH_CACHE = 8192  # (key, value, source) answers kept: a network says the same things nightly


def matches(key: str, value: str, *, source: str = "") -> list[Evidence]:
    """Evidence from each rule source: the built-in rules, then the recog release in use
    (and, for ``nmap.match``, what nmap's service database said of the answer).

    Answers are kept (bounded) per rule generation: the same device says the same things
    every night, and the central reads every asset of every message through here."""
    return list(_matches(key, value, source, _generation()))


def _generation() -> tuple[int, int, bool]:
    """Which rules answer now: kept answers are valid for these only."""
    from fingerprints.databases import recog_off, recog_rules_by_key

    return (id(rules_by_key()), id(recog_rules_by_key()), recog_off())


def forget_answers() -> None:
    """Drop the kept answers (a benchmark's first sight; the rules themselves are unchanged)."""
    _matches.cache_clear()
    _identity.cache_clear()


@lru_cache(maxsize=MATCH_CACHE)
def _matches(key: str, value: str, source: str, generation: tuple[int, int, bool]
             ) -> tuple[Evidence, ...]:
    return tuple(_uncached_matches(key, value, source=source))


def _uncached_matches(key: str, value: str, *, source: str = "") -> list[Evidence]:
    from fingerprints.databases import recog_rules_by_key

    if key == "nmap.match":
        return _nmap_said(key, value, source)

    trimmed = field_form(key, value)
    said = own_form(key, trimmed)
    own = _first(rules_by_key().get(SHARED_RULES.get(key, key), ()), key, said, source)
    if own is None and key in ALSO_RULES:  # the device's own lines, not generic software's
        own = _first((r for r in rules_by_key().get(ALSO_RULES[key], ()) if not r.generic),
                     key, said, source)
    if own is None and SHARED_RULES.get(key, key) == "dhcp.hostname":
        own = _maker_host_name(key, said, source)
    if own is None and key in CLOUD_KEYS:
        own = _maker_domain(key, said, source)
    model = _model(key, said, source) if key in CATALOGUE_KEYS else None
    # recog reads its own forms: as the built-in rules read it (a padded or prefixed value
    # may match a generic pattern where the device's own does not), then only without
    # padding (a title's double space), then without padding but with the quotes it came
    # in (a title that is quoted on the device's page), then as sent (a realm's own
    # spaces), then a title's entities as the characters they stand for ('R&amp;S' is
    # recog's 'R&S')
    recog_rules = recog_rules_by_key().get(key, ())
    forms = (trimmed, stripped(key, value), value.strip(EDGES), value,
             said if key == "http.title" else value)
    recog = next((hit for form in dict.fromkeys(forms)
                  if (hit := _first(recog_rules, key, form, source)) is not None), None)
    if own is not None and recog is not None:
        # one string read by both: the built-in rule (written for these devices) says what
        # it says; recog adds only the fields it left open (a CPE, an OS, a type)
        extra = {k: v for k, v in recog.fields.items() if k not in own.fields}
        recog = replace(recog, fields=extra) if extra else None
    if model is not None and own is not None and model.fields == {
            k: own.fields.get(k) for k in model.fields}:
        model = None  # the key's own rule said the same already
    found = [e for e in (own, model, recog) if e is not None]
    if not any("vendor" in e.fields for e in found):
        maker = _maker_said_first(key, said, source)
        if maker is not None:
            found.append(maker)
    return found + _read_further(key, said, source, found)


def _read_further(key: str, said: str, source: str, found: list[Evidence]) -> list[Evidence]:
    """What a string says beyond its key's rules, where they left the maker or kind open:
    a TXT record's model entries, a user agent's maker, a greeting's host name, and the
    words a device uses for itself."""
    more: list[Evidence] = []
    if key == "mdns.txt":
        more += _model_entries(said, source, {f for e in found for f in e.fields})
    if key == "http.user_agent" and not found and (agent_maker := _user_agent_maker(said)):
        more.append(_maker_evidence(agent_maker, key, said, source))
    if key in GREETING_HOST and not any("device_type" in e.fields for e in found):
        more += _greeting_host(key, said, source)
    if key in CATALOGUE_KEYS and not any("device_type" in e.fields for e in found + more):
        # nothing named the kind: the words the device uses for itself may, also where
        # its firmware joins them with underscores ('Desk_Phone_IP_CP400')
        rules = _word_rules(key)
        words = _first(rules, key, said, source)
        if words is None and "_" in said:
            words = _first(rules, key, said.replace("_", " "), source)
            words = replace(words, value=said[:256]) if words is not None else None
        if words is not None:
            more.append(words)
    return more


def _nmap_said(key: str, value: str, source: str) -> list[Evidence]:
    """What nmap's database said of an answer: its device type, maker (a hardware CPE),
    product and version, and where its line gives no type (most do not) or only a bucket
    for many kinds, the kind its product and extra words name."""
    from fingerprints import nmap_probes

    fields = nmap_probes.identity_fields(value)
    nmap = [Evidence(rule="nmap-service-probes", key=key, value=value[:256], source=source,
                     fields=fields, confidence=nmap_probes.CONFIDENCE)] if fields else []
    texts = nmap_probes.described(value)
    found = nmap
    if "device_type" not in fields or nmap_probes.broad_type(value):
        named = _described(key, texts, source)
        if nmap and any("device_type" in e.fields for e in named):
            nmap = [replace(nmap[0], fields={k: v for k, v in fields.items()
                                             if k != "device_type"})]
        found = nmap + named
    if any("device_type" in e.fields for e in found) and not any(
            "vendor" in e.fields for e in found):
        # a line for a device begins with its maker ('Hikvision DVR rtspd'), or its extra
        # words do where the product is a web server's; one for server software with the
        # software's ('Oracle DBSNMP', 'Symantec pcAnywhere'), which makes no device: a
        # maker only where the line named a kind. Not where the maker makes one kind only:
        # device makers' PC software has nmap lines too ('Konica Minolta FTP Utility',
        # 'Lexmark language monitor', 'Palo Alto Networks Terminal Services agent'), a
        # tenth or more of those lines
        found += [_maker_evidence(first, key, text, source) for text in texts
                  if (first := _description_maker(text))][:1]
    return found


def _described(key: str, texts: Iterable[str], source: str) -> list[Evidence]:
    """What texts that describe a device (nmap's words for what answered: its product, then
    its extra information) say, each read by the model catalogue and, where that names no
    kind, by the device words, until one names the kind."""
    found: list[Evidence] = []
    for text in texts:
        model = _model(key, text, source)
        words = (None if model is not None and "device_type" in model.fields
                 else _first(_word_rules(key), key, text, source))
        found += [e for e in (model, words) if e is not None]
        if any("device_type" in e.fields for e in found):
            break
    return found


def _word_rules(key: str) -> tuple[Rule, ...]:
    """The word rules asked of ``key``: all but those kept for other keys ('Switch' alone
    is network gear where it describes itself over SNMP, a wall switch elsewhere)."""
    return tuple(r for r in rules_by_key().get("words", ()) if not r.asked_of or key in r.asked_of)


# where a device says its host name inside something else: many FTP servers and telnet
# login prompts greet with it ('KM25015E FTP server (KM FTPD version 1.00) ready.',
# 'BRN3C2AF4 login:'), and a device's self-made certificate names it as its subject's CN
# ('CN=HPD49F21,OU=HP-IPG', 'CN=SEP1C6A7AE57121'): a factory host name there says the
# maker and kind as it does in DHCP
GREETING_HOST = {
    "ftp.banner": re.compile(r"^(?:220[ -]+)?([A-Za-z][\w.-]{2,62}) (?:FTP|ftp) [Ss]erver\b"),
    "telnet.banner": re.compile(r"^\s*([A-Za-z][\w.-]{2,62}) login:\s*$", re.M),
    "tls.subject": re.compile(r"(?:^|,)CN=([A-Za-z][\w-]{2,62})(?=[,.]|$)"),
}


def _greeting_host(key: str, said: str, source: str) -> list[Evidence]:
    found = GREETING_HOST[key].search(said[:MAX_GREETING_CHARS])
    host = None
    if found is not None:
        name = found.group(1)
        host = (_first(rules_by_key().get("dhcp.hostname", ()), key, name, source)
                or _first(rules_by_key().get("model", ()), key, name, source)
                or _maker_host_name(key, name, source))  # 'axis-accc8e0a1b2c login:'
    if host is None and key == "tls.subject" and (
            domain := _CERT_DOMAIN.search(said[:MAX_GREETING_CHARS])):
        # a name under its maker's device cloud ('CN=device1133796-01b3e3fa.wd2go.com')
        host = _first(rules_by_key().get("dns.query", ()), key, domain.group(1), source)
    return [replace(host, value=said[:256])] if host is not None else []


_CERT_DOMAIN = re.compile(r"(?:^|,)CN=(?:\*\.)?([A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,6})(?=,|$)")


MAX_GREETING_CHARS = 1024  # a host name greets in the first line or two


# The entries of a DNS-SD TXT record that hold the device's model: HomeKit's md, IPP's ty
# and product (in parentheses), a printer's USB name, and the model= of many others; and
# the entry that names the maker, when one does
_MODEL_ENTRY = re.compile(r"(?:^|; )(?:md|model|mdl|usb_MDL|ty|product)=\(?([^;()=]{2,64}?)\)?"
                          r"\s*(?=;|$)", re.I)
_MAKER_ENTRY = re.compile(r"(?:^|; )(?:manufacturer|vendor|mfg|mf|usb_MFG)=([^;=]{2,64}?)"
                          r"\s*(?=;|$)", re.I)
# a model's words: 'ecobee3 lite' is ecobee's, 'Koogeek-P1' Koogeek's
_MODEL_WORDS = re.compile(r"[\s_,-]+|(?<=[a-z])(?=\d)")
MAX_MODEL_ENTRIES = 4


def _model_entries(txt: str, source: str, named: set[str]) -> list[Evidence]:
    """What a TXT record's model entries say, when its rules left the maker or the kind
    open: each model is read as the maker would print it (after the maker's entry, if the
    model does not begin with it) by the model catalogue, and a model whose first word is a
    maker's name ('LIFX Candle', 'tado', 'ecobee3 lite') names that maker. A model entry is
    the device's, not a name someone chose: no model number need follow the maker."""
    txt, named = txt[:MAX_TXT_CHARS], set(named)
    maker_entry = _MAKER_ENTRY.search(txt)
    maker = maker_entry.group(1) if maker_entry else ""
    out: list[Evidence] = []
    models = dict.fromkeys(m.group(1).strip() for m in _MODEL_ENTRY.finditer(txt))
    for model in list(models)[:MAX_MODEL_ENTRIES]:
        printed = model if not maker or model.lower().startswith(maker.lower()) else f"{maker} {model}"
        if "device_type" not in named and (found := _model("mdns.txt", printed, source)):
            out.append(replace(found, value=txt[:256]))
            named |= set(found.fields)
        if "vendor" not in named and (vendor := _maker_of_model(model)):
            out.append(_maker_evidence(vendor, "mdns.txt", txt, source))
            named.add("vendor")
    return out


def _maker_of_model(model: str) -> str | None:
    """The maker whose name a model begins with, word for word, as the rules spell it (a
    model's first word is its maker's even where that word is a common one: 'Ring Video
    Doorbell')."""
    return _leading_maker([w for w in _MODEL_WORDS.split(model.lower()) if w],
                          common_words_too=True)


def _model(key: str, said: str, source: str) -> Evidence | None:
    """The model catalogue's answer. A host name is read in capitals too: names are
    case-blind (DNS), and many firmwares put their model in it in lower case ('dsp-w215',
    'hs110'), where the catalogue writes models as their makers print them."""
    catalogue = rules_by_key().get("model", ())
    found = _first(catalogue, key, said, source)
    if found is None and key in CASE_BLIND_KEYS and not said.isupper():
        found = _first(catalogue, key, said.upper(), source)
        if found is not None:
            found = replace(found, value=said[:256])
    return found


IDENTITY_CACHE = 2048  # devices' whole answers kept (a fleet of one model says one thing)
MAX_CACHED_CHARS = 4096  # ...when what the device said is at most this long in all


def classify_device(observations: Iterable[Observation], *, mac: str | None,
                    mac_random: bool = False, mac_vendor: str | None = None) -> Identity:
    """One device's identity: what it said, plus its MAC's OUI and the OUI's registered
    organisation (unless the MAC is randomised).

    The answer depends only on what the device said and its OUI, so it is kept (bounded) per
    rule generation: the central names every asset of every message, and a site's cameras
    of one model, or one device night after night, say the same things. What it said twice
    (at two of its addresses: IPv4 and IPv6, two legs) counts once."""
    said = tuple(dict.fromkeys(observations))
    oui = mac[:8].lower() if mac and not mac_random else None
    vendor = mac_vendor if oui else None
    if sum(len(str(o.value)) for o in said) + len(vendor or "") <= MAX_CACHED_CHARS:
        try:
            return _identity(said, oui, vendor, _generation())
        except TypeError:  # a value that cannot be a cache key: answered without one
            pass
    return _uncached_identity(said, oui, vendor)


@lru_cache(maxsize=IDENTITY_CACHE)
def _identity(said: tuple[Observation, ...], oui: str | None, vendor: str | None,
              generation: tuple[int, int, bool]) -> Identity:
    return _uncached_identity(said, oui, vendor)


def _uncached_identity(said: tuple[Observation, ...], oui: str | None,
                       vendor: str | None) -> Identity:
    evidence = list(said)
    if oui is not None:
        evidence.append(Observation(key="mac.oui", value=oui, source="mac"))
        if vendor:
            evidence.append(Observation(key="mac.vendor", value=vendor, source="mac"))
    return classify(evidence)


# keys read with another key's rules: a TLS client names the server it wants (SNI), and a
# plain HTTP request its Host, as it would look it up in DNS; a device's own host name
# follows the same factory habits (BRW<MAC> for a Brother printer, DESKTOP-XXXXXXX for
# Windows) whether it says it in DHCP, in mDNS or in NetBIOS
# keys read with another key's rules when their own say nothing: a UPnP device's web server
# sends the Server header it announces in SSDP ('Linux UPnP/1.0 Sonos/34.16 (ZP120)'); a
# certificate's issuer is its maker's device CA ('CN=Chromecast ICA 12,OU=Cast,O=Google
# Inc'), or the device itself where it signed its own, and says what a subject would
ALSO_RULES = {"http.server": "ssdp.server", "tls.issuer": "tls.subject"}
SHARED_RULES = {"tls.sni": "dns.query", "http.host": "dns.query",
                "mdns.hostname": "dhcp.hostname", "mdns.instance": "dhcp.hostname",
                "netbios.name": "dhcp.hostname", "cdp.capabilities": "lldp.capabilities"}
# the names a device calls: its maker's cloud, unless several makers' (a resolver, a proxy,
# a PC) or the device is a phone, PC or server (an app calls the clouds of the devices it
# controls)
CLOUD_KEYS = frozenset({"dns.query", "tls.sni", "http.host"})
CLIENT_TYPES = frozenset({"mobile", "workstation", "server", "hypervisor"})


def names_a_device(key: str, value: str) -> bool:
    """Whether a rule reads this observation as naming a maker or a kind of device: a
    listener keeps, of the many names a device looks up, only those (its maker's cloud, not
    the CDNs and time servers every device calls)."""
    return any("vendor" in e.fields or "device_type" in e.fields for e in matches(key, value))


def _cloud_guard(evidence: list[Evidence]) -> list[Evidence]:
    cloud = [e for e in evidence if e.key in CLOUD_KEYS]
    if not cloud:
        return evidence
    # a platform many makers build on (a camera's P2P relay) names the kind, not a maker
    makers = {maker for e in cloud if (maker := e.fields.get("vendor"))}
    kinds = {e.fields.get("device_type") for e in evidence
             if e.key not in CLOUD_KEYS and e.key not in ("mac.oui", "mac.vendor")}
    if len(makers) > 1 or kinds & CLIENT_TYPES:
        return [e for e in evidence if e.key not in CLOUD_KEYS]
    return evidence


# A name under a maker's own domain ('autoupdate.synology.com', 'fw.hikvision.com.cn'): a
# device calls its maker for updates, time and its cloud. Only makers of one kind (the maker
# table), and not a site a person browses (www.), nor a table word that is also another
# company's domain name; the cloud guard above sets it aside, as a cloud name, for a device
# that calls several makers or is a phone or PC.
_SECOND_LEVEL = frozenset({"co", "com", "net", "org", "ac", "ne", "or", "gov", "edu"})
NOT_A_MAKER_S_DOMAIN = frozenset({"wiz", "blink", "poly", "oce", "sato", "ista", "ring"})
MAKER_DOMAIN = 0.3  # as weak as a maker's name alone: a domain says the maker, not the model
_DOMAIN_LABEL = re.compile(r"^[a-z0-9-]{1,63}$")


def _maker_domain(key: str, name: str, source: str) -> Evidence | None:
    labels = name.lower().rstrip(".").split(".")
    if len(labels) < 2 or labels[0] == "www" or not all(map(_DOMAIN_LABEL.match, labels)):
        return None
    short_suffix = len(labels) >= 3 and labels[-2] in _SECOND_LEVEL and len(labels[-1]) == 2
    label = labels[-3] if short_suffix else labels[-2]
    maker = _domain_makers().get(label.replace("-", ""))
    if maker is None:
        return None
    return _maker_kind(maker, _vendor_types()[maker], key=key, source=source,
                       confidence=MAKER_DOMAIN, vendor=_maker_spellings()[maker], said=name)


@cache
def _domain_makers() -> dict[str, str]:
    """The maker table's names as a domain writes them ('konicaminolta', 'landisgyr')."""
    return {re.sub(r"[^a-z0-9]", "", name): name for name in _vendor_types()
            if name not in NOT_A_MAKER_S_DOMAIN}


def _organisation_prior(said: list[Observation], evidence: list[Evidence]) -> list[Evidence]:
    """When nothing named the device: its MAC's registered organisation, if that maker makes
    one kind of device, as the weakest evidence there is."""
    if any("vendor" in e.fields or "device_type" in e.fields for e in evidence):
        return []
    organisation = next((o.value for o in said if o.key == "mac.vendor"), None)
    kind = vendor_type(organisation) if organisation else None
    if not organisation or kind is None:
        return []
    return [_maker_kind(organisation, kind, key="mac.vendor", source="mac",
                        confidence=OUI_PRIOR, vendor=organisation.strip()[:256])]


def _object_id_and_description(said: list[Observation]) -> list[Evidence]:
    """recog reads some sysObjectIDs with the description after them ('1.3.6.1.4.1.311.1.1.3.1.2
    Hardware: x86 ... Software: Windows Version 6.1', an Aruba switch's): the agent answers
    both in one GET, the sensor reports them apart."""
    from fingerprints.databases import recog_rules_by_key

    oid = next((o for o in said if o.key == "snmp.sysobjectid"), None)
    description = next((o.value for o in said if o.key == "snmp.sysdescr"), None)
    if oid is None or not description:
        return []
    found = _first(recog_rules_by_key().get("snmp.sysobjectid", ()), "snmp.sysobjectid",
                   f"{oid.value} {description}", oid.source)
    return [found] if found is not None else []


def classify(observations: Iterable[Observation]) -> Identity:
    said = list(observations)
    evidence = _cloud_guard([e for o in said for e in matches(o.key, o.value, source=o.source)])
    evidence += _object_id_and_description(said)
    evidence += _organisation_prior(said, evidence)
    if not evidence:
        return Identity()
    chosen: dict[str, str] = {}
    conflicts: list[str] = []
    best = 0.0
    names_device = any("vendor" in e.fields or "device_type" in e.fields for e in evidence)
    names_specifically = any(("vendor" in e.fields or "device_type" in e.fields)
                             and not e.generic for e in evidence)
    for name in IDENTITY_FIELDS:
        support: dict[str, float] = {}
        specific = any(name in e.fields and not e.generic for e in evidence)
        for item in evidence:
            generic = "vendor" not in item.fields and "device_type" not in item.fields
            if names_device and generic and name in ("product", "version"):
                continue  # "lighttpd 1.4.35" is the web server's, not the device's
            if item.generic and ((specific and name in ("vendor", "device_type", "os")) or
                                 (names_specifically and name in ("product", "version"))):
                continue  # IIS on a BMS controller does not make it a Microsoft server
            value = item.fields.get(name)
            if value is not None:
                value = _as_the_rules_spell(value) if name == "vendor" else value
                support[value] = 1 - (1 - support.get(value, 0.0)) * (1 - item.confidence)
        if not support:
            continue
        ranked = sorted(support.items(), key=lambda kv: -kv[1])
        chosen[name] = ranked[0][0]
        for loser, weight in ranked[1:]:
            conflicts.append(f"{name}: {ranked[0][0]!r} ({ranked[0][1]:.2f}) over "
                             f"{loser!r} ({weight:.2f})")
        if name in ("device_type", "vendor"):
            best = max(best, ranked[0][1])
    generic_kind = not any("device_type" in e.fields and not e.generic for e in evidence)
    if _settle_kind(chosen, evidence, generic_kind=generic_kind):
        best = max(best, VENDOR_PRIOR)
    ordered = tuple(sorted(evidence, key=lambda e: -e.confidence))
    return Identity(**chosen, confidence=best, evidence=ordered, conflicts=tuple(conflicts))


def _settle_kind(chosen: dict[str, str], evidence: list[Evidence], *,
                 generic_kind: bool = False) -> bool:
    """The kind when the evidence left it open, said it is none of the kinds, or only
    generic software named it (``generic_kind``: MiniUPnPd's 'router' on a Roku); True
    when the maker's usual kind was guessed (a weak, visible guess)."""
    if chosen.get("device_type") == OPEN_KIND:
        # a rule that knows the model and that it is none of the kinds (an Axis speaker):
        # the kind stays open, and the maker's usual kind ("camera") is not guessed either
        del chosen["device_type"]
        return False
    if ("device_type" in chosen and not generic_kind) or "vendor" not in chosen:
        return False
    kind = vendor_type(chosen["vendor"])
    if kind is None or kind == chosen.get("device_type"):
        return False
    chosen["device_type"] = kind  # the maker makes one kind of device
    evidence.append(_maker_kind(chosen["vendor"], kind, key="vendor", source="",
                                confidence=VENDOR_PRIOR))
    return True


def _maker_kind(maker: str, kind: str, *, key: str, source: str, confidence: float,
                vendor: str | None = None, said: str | None = None) -> Evidence:
    """The maker table's answer as evidence (and the maker too, when ``vendor`` is given),
    for what was ``said`` (the maker's name itself, unless given)."""
    fields = {"device_type": kind} if vendor is None else {"vendor": vendor, "device_type": kind}
    return Evidence(rule=f"vendor_types.toml#{maker[:40]}", key=key,
                    value=(maker if said is None else said)[:256], source=source,
                    fields=fields, confidence=confidence)


VENDOR_PRIOR = 0.3  # what a maker's name alone says of the kind of device
OUI_PRIOR = 0.2  # the same, from the MAC's registered organisation alone
OPEN_KIND = "unknown"  # a rule's device_type for a model known to be none of the kinds
MAX_VENDOR_CHARS = 256  # a vendor's name is read this far
MAX_VENDOR_WORDS = 8  # no maker in the table has a longer name (a test holds it)
MAX_TXT_CHARS = 4096  # a TXT record's model entries are looked for this far


# A factory host name that is a maker's name: alone, or with the MAC's or serial number's hex
# digits after it (axis-accc8e0a1b2c, HIKVISION, KYOCERA, Reolink), or with one product word
# before those digits (nuki_bridge_1a2b3c4d), or with a consumer product's own word alone
# (airthings-hub, RingDoorbell, arlo-base); the maker table says what that maker makes. Any
# other word after the name, with no digits of a MAC after it (apc-srv01, axis-gateway, a
# machine someone named), is not a factory default, and is left alone.
_MAKER_HOST_NAME_RE = re.compile(
    r"^([A-Za-z][A-Za-z&+]{2,23})(?:(?:[-_ ][A-Za-z]{2,12}[-_ ])?[-_ ]?[0-9A-Fa-f]{6,12})?$")
_MAKER_PRODUCT_HOST_NAME_RE = re.compile(
    r"^([A-Za-z][A-Za-z&+]{2,23}?)[-_ ]?(?:hub|bridge|base|cam|camera|plug|bulb|light|lamp|"
    r"doorbell|view|sensor|lock|thermostat|speaker|display|scale)$", re.I)
HOST_NAME_MAKER = 0.4  # as sure as a factory host name rule


def _maker_host_name(key: str, value: str, source: str) -> Evidence | None:
    word = next((found.group(1) for pattern in (_MAKER_HOST_NAME_RE, _MAKER_PRODUCT_HOST_NAME_RE)
                 if (found := pattern.match(value[:MAX_VENDOR_CHARS])) is not None
                 and _vendor_types().get(found.group(1).lower()) is not None), None)
    if word is None:
        return None
    maker = _rule_vendors().get(word.lower()) or _own_spellings().get(word.lower()) or (
        word if not (word.islower() or word.isupper()) else word.capitalize())
    return Evidence(rule=f"vendor_types.toml#{word.lower()}", key=key, value=value,
                    source=source, fields={"vendor": maker}, confidence=HOST_NAME_MAKER)


# A description that begins with its maker's name and goes on to a model number ('Lexmark
# T640 version 55.10.19', 'Brother NC-6200h, Firmware Ver.A', 'KONICA MINOLTA 350'): the maker,
# as the rules spell it (the maker table then says its usual kind, weakly). Not a name someone
# chose (a host name), and not a first word that is also a common word or a platform's name
# (the maker of the software, not of the device): those need the maker's whole name.
_MAKER_FIRST_RE = re.compile(
    r"^(?:the )?([A-Za-z][\w&+-]*(?: [A-Za-z][\w&+-]*){0,2}?)"
    r"(?:,? (?:inc|technologies|corporation|corp|co|ltd|systems|networks|communications)\.?,?)*"
    r"[ ,:]+(?:[A-Za-z-]+ ){0,2}[\w+-]*\d", re.I)
NOT_MADE_BY_THE_FIRST_WORD = frozenset({
    "automated", "check", "delta", "johnson", "palo", "extreme", "ring", "nest", "blink",
    "august", "canary", "google", "amazon", "microsoft", "apple", "raspberry", "philips",
    "signify", "smartthings", "silicondust", "espressif", "samsung", "lg", "free", "yi",
    # a common word, or the first word of several companies (GE Healthcare and GE's many
    # others, Fuji Xerox and Fuji Electric, Universal Devices and a universal remote)
    "universal", "fuji", "ge", "extended", "mercury", "western", "milestone", "sense"})
CHOSEN_NAME_KEYS = frozenset({"dhcp.hostname", "mdns.hostname", "netbios.name", "snmp.sysname",
                              "lldp.sysname"})
# names read in any case: the chosen ones, and a DNS-SD instance's, which its factory writes
# as its maker and model ('Brother HL-L2350DW series', 'shellyplus1pm-a8032ab12345') and so
# is read as a description too (a maker's name first, then a model number)
CASE_BLIND_KEYS = CHOSEN_NAME_KEYS | {"mdns.instance"}
MAKER_FIRST = 0.4  # as sure as a factory host name
_ORGANISATION = re.compile(r"(?:^|,)O=((?:[^,\\]|\\.){2,64})")  # RFC 4514's O=, escapes kept
_VENDOR_CLASS_WORDS = re.compile(r"[\s,;:/]+")
_VENDOR_CLASS_GLUE = re.compile(r"[-_:]+|(?<=[a-z])(?=[A-Z])")
_INSTANCE_WORDS = re.compile(r"[\s_-]+")
_VERSION_OR_SUFFIX = re.compile(r"v?[\d.]+\w?|[0-9a-f]{6,12}|inc\.?|ltd\.?|co\.?|corp\.?|"
                                r"corporation|technologies|technology|gmbh|ag|ab|a/s|s\.?a\.?")


_UPNP_FIRST_WORD = re.compile(r"^([A-Za-z][\w&.-]{1,30})(?:/[^\s,]{1,30})?,? UPnP/")
# the product after UPnP's own token: 'Linux/4.9 UPnP/1.0 Roku/12.0' (the product's maker)
_UPNP_PRODUCT = re.compile(r"\bUPnP/[\d.]{1,8},? ([A-Za-z][\w&.-]{1,30})(?:/|$)")


# an SSH greeting's software name, after the protocol version ('SSH-2.0-SonicWall')
_SSH_SOFTWARE = re.compile(r"SSH-\d\.\d{1,2}-(\S{1,64})")
_MODBUS_VENDOR = re.compile(r"^vendor=([^;]+)")


def _ssh_software_maker(value: str) -> str | None:
    """A firmware's SSH server may call itself by its maker's name alone, or with a version
    ('SSH-2.0-SonicWall', 'SSH-2.0-HPE-1.0', 'SSH-2.0-lancom')."""
    software = _SSH_SOFTWARE.match(value[:MAX_VENDOR_CHARS])
    return _bare_name_maker(software.group(1)) if software else None


def _modbus_maker(value: str) -> str | None:
    """A Modbus device's identification names its maker in the vendor object, as its
    firmware spells it ('Schneider Electric', 'SCHNEIDER')."""
    found = _MODBUS_VENDOR.match(value[:MAX_VENDOR_CHARS])
    return (_words_maker(found.group(1)) or _bare_name_maker(found.group(1))) if found else None


# keys whose maker is read from one field of their own, and nowhere else in them
_MAKER_FIELD_READERS: dict[str, Callable[[str], str | None]] = {
    "ssh.banner": _ssh_software_maker, "modbus.device": _modbus_maker}


def _maker_said_first(key: str, value: str, source: str) -> Evidence | None:
    if (read := _MAKER_FIELD_READERS.get(key)) is not None:
        maker = read(value)
        return _maker_evidence(maker, key, value, source) if maker else None
    if key in CHOSEN_NAME_KEYS or key not in CATALOGUE_KEYS:
        return None
    if key == "dhcp.vendor_class":
        maker = _maker_spellings().get(_bare_name(value))
        if maker is None:
            # a firmware's identifier may run its words together ('AastraIPPhone6757i',
            # 'Polycom-SoundPointIP-SPIP_550'): read as words too, a maker's name then a model
            maker = _first_words_maker(value) or _first_words_maker(
                _VENDOR_CLASS_GLUE.sub(" ", value[:MAX_VENDOR_CHARS]))
        return _maker_evidence(maker, key, value, source) if maker else None
    if key in ("tls.subject", "tls.issuer"):
        # a device's own certificate names its maker as the organisation ('O=Brother
        # Industries Ltd.', 'O=Philips Hue'): the sensor reads only servers on the network.
        # Its issuer is itself (self-signed) or its maker's own CA ('O=Synology Inc.');
        # a public CA's organisation is no device maker's, and names none
        found = _ORGANISATION.search(value[:MAX_VENDOR_CHARS])
        maker = _words_maker(found.group(1)) if found else None
    elif key in ("ssdp.server", "http.server") and (said := [
            found.group(1) for found in (_UPNP_FIRST_WORD.match(value[:MAX_VENDOR_CHARS]),
                                         _UPNP_PRODUCT.search(value[:MAX_VENDOR_CHARS]))
            if found]):
        # UPnP's SERVER is 'OS/version UPnP/1.0 product/version': many firmwares put their
        # maker where the OS goes ('Roku UPnP/1.0 MiniUPnPd/1.4', 'Netgear/1.0 UPnP'), the
        # rest in the product ('Linux/4.9 UPnP/1.0 Roku/12.0'); the OS's place first, where
        # the maker's name may carry its web server's word ('Hikvision-Webs/1.0 UPnP/1.0')
        maker = next((named for word in said
                      if (named := _words_maker(word) or _bare_name_maker(word))), None)
    elif key == "mdns.instance":
        # a factory's instance name is its maker and product, with or without a model
        # number ('Sonos Roam', 'Philips Hue - 1A2B3C'); a maker whose name is a common
        # word or a platform's needs its whole name, as everywhere
        maker = _first_words_maker(value) or _leading_maker(
            _INSTANCE_WORDS.split(value[:MAX_VENDOR_CHARS].lower())[:3])
    elif key in ("ftp.banner", "telnet.banner") and (
            found := _MAKER_SERVICE_GREETING.match(value[:MAX_VENDOR_CHARS])):
        # a greeting that is its maker's name and the service ('APC FTP server ready.',
        # 'KONICA MINOLTA FTP server ready.'): no model number follows, and none is needed
        maker = _words_maker(found.group(1))
    elif key in ("snmp.sysdescr", "lldp.sysdescr"):
        # a firmware describes its device by its maker first, with or without a model number
        # ('Cisco Internetwork Operating System Software', 'Blue Coat PacketShaper'): no one
        # chose these words, so the maker's whole name first is enough
        maker = _description_maker(value)
    elif key == "http.title":
        # a device's own page is titled by its maker and product, with or without a model
        # number, or by its maker alone ('Loxone Miniserver', 'Grundfos'): a title of three
        # words at most, the maker's whole name first (a page about a maker says more,
        # 'Lexmark printers welcome you')
        maker = _first_words_maker(value) or _short_title_maker(value)
    elif key in BARE_NAME_KEYS:
        # a server or a realm may be its maker's name alone, or with its web server's
        # word or a version ('Hikvision-Webs', 'Lexmark_Web_Server', realm="hikvision")
        maker = _first_words_maker(value) or _bare_name_maker(value)
    else:
        maker = _first_words_maker(value)
    return _maker_evidence(maker, key, value, source) if maker else None


def _description_maker(value: str) -> str | None:
    """The maker a description begins with, whole ('Blue Coat PacketShaper'), also where its
    name has a hyphen ('D-Link switch telnetd')."""
    said = value[:MAX_VENDOR_CHARS].lower()
    return _first_words_maker(value) or _leading_maker(
        _DESCRIPTION_WORDS.split(said)[:MAX_VENDOR_WORDS]) or _leading_maker(
        _HYPHENED_NAME_WORDS.split(said)[:MAX_VENDOR_WORDS])


BARE_NAME_KEYS = frozenset({"http.server", "rtsp.server", "http.www_authenticate"})
_SERVER_WORDS = re.compile(r"[-_ /]+")
_SERVER_WORD_OR_VERSION = re.compile(r"webserver|webs|web|https?d?|httpserver|server|www|"
                                     r"embedded|v?\d[a-z0-9.]{0,20}")


def _bare_name_maker(value: str) -> str | None:
    """The maker whose whole name the value is, but for a web server's word or a version:
    no model number follows, and none is needed where the maker's name is all there is."""
    return _maker_spellings().get(_bare_name(value, _SERVER_WORDS, _SERVER_WORD_OR_VERSION))


_MAKER_SERVICE_GREETING = re.compile(
    r"^(?:220[ -])?([A-Za-z][\w&+-]*(?: [A-Za-z][\w&+-]*){0,2}) (?:FTP|TELNET|Telnet)\b")
_DESCRIPTION_WORDS = re.compile(r"[\s:|/,;-]+")  # 'Siemens, SIMATIC', 'NORTEL; Business'
_HYPHENED_NAME_WORDS = re.compile(r"[\s:|/,;]+")  # 'D-Link', 'Alcatel-Lucent' kept whole
_TITLE_WORDS = re.compile(r"[\s:|/-]+")
MAX_TITLE_MAKER_WORDS = 3


def _short_title_maker(title: str) -> str | None:
    words = [w for w in _TITLE_WORDS.split(title[:MAX_VENDOR_CHARS].lower()) if w]
    return _leading_maker(words) if words and len(words) <= MAX_TITLE_MAKER_WORDS else None


# A firmware's own HTTP client names itself by its maker first ('Sonos/57.3', 'Dropcam/5.5',
# 'Withings UserAgent'); the same maker's app on a phone or PC says the platform it runs on
# ('Ring/3.32.0 (iPhone)', 'Hue/4.0 CFNetwork'), which names the phone, not the maker's device
_USER_AGENT_PRODUCT = re.compile(r"^([A-Za-z][A-Za-z0-9&+-]{1,40}?)(?:[/_ ;(]|$)")
_CLIENT_PLATFORM = re.compile(r"iPhone|iPad|iOS|Android|CFNetwork|Darwin|Windows|Macintosh|"
                              r"Mac OS|Linux; U|okhttp|Dalvik|Mozilla", re.I)


def _user_agent_maker(agent: str) -> str | None:
    found = _USER_AGENT_PRODUCT.match(agent[:MAX_VENDOR_CHARS])
    if found is None or _CLIENT_PLATFORM.search(agent[:MAX_VENDOR_CHARS]):
        return None
    return _words_maker(found.group(1))


_NAME_WORDS = re.compile(r"[\s,:]+")


def _first_words_maker(value: str) -> str | None:
    """The maker a description begins with, before a model number ('Lexmark T640 ...'). The
    pattern takes the shortest name; the words after it, up to the model number, may be the
    rest of a maker's name ('FUJI XEROX DocuPrint C1190'), and the longest name wins."""
    found = _MAKER_FIRST_RE.match(value[:MAX_VENDOR_CHARS])
    if found is None:
        return None
    # the name's own words come first in these, so the shortest reading is among those tried
    words = [w for w in _NAME_WORDS.split(value[found.start(1):found.end()].lower()) if w]
    return _leading_maker(words)


def _words_maker(said: str) -> str | None:
    return _leading_maker(said.lower().replace("\\,", " ").split())


def _leading_maker(words: list[str], *, common_words_too: bool = False) -> str | None:
    """The maker whose whole name the words begin with, the longest first, as the rules
    spell it; a one-word name that is also a common word or a platform's ('ring', 'google')
    only where ``common_words_too``."""
    words = words[:MAX_VENDOR_WORDS]
    makers = _maker_spellings()
    for end in range(len(words), 0, -1):
        maker = makers.get(" ".join(words[:end]))
        if maker is not None and (end > 1 or common_words_too
                                  or words[0] not in NOT_MADE_BY_THE_FIRST_WORD):
            return maker
    return None


def _bare_name(value: str, separators: re.Pattern[str] = _VENDOR_CLASS_WORDS,
               trailing: re.Pattern[str] = _VERSION_OR_SUFFIX) -> str:
    """A value that is its maker's name and nothing else but ``trailing`` words: a DHCP
    client's vendor class with a version or a company's suffix ('Hikvision', 'KONICA
    MINOLTA', 'Zebra Technologies', 'Roku 9.4'); a server with its web server's word
    ('Hikvision-Webs'). The name in lower case; '' when other words say more ('AXIS,Network',
    whose kind the maker's usual one must not overrule). No one chose the string: no model
    number need follow, as it must after a maker in a description. Split, not matched: a
    hostile value is read in one pass."""
    words = separators.split(value[:MAX_VENDOR_CHARS].lower())
    while words and (not words[-1] or trailing.fullmatch(words[-1])):
        words.pop()
    if not words or len(words) > 3 or (len(words) == 1 and words[0] in NOT_MADE_BY_THE_FIRST_WORD):
        return ""
    return " ".join(words)


def _maker_evidence(maker: str, key: str, value: str, source: str) -> Evidence:
    return Evidence(rule="vendor_types.toml#maker-named-first", key=key, value=value[:256],
                    source=source, fields={"vendor": maker}, confidence=MAKER_FIRST)


@cache
def _maker_spellings() -> dict[str, str]:
    """Every maker the rules or the maker table name, by its whole name and by its first
    word, in lower case: how the rules spell it."""
    spelled = dict(_rule_vendors())
    for rules in rules_by_key().values():
        for rule in rules:
            vendor = rule.fixed.get("vendor")
            if vendor and " " in vendor:
                spelled.setdefault(vendor.lower().replace(",", "").replace(".", ""), vendor)
    own = _own_spellings()
    for name, kind in _vendor_types().items():
        # by its first word's spelling ('hikvision digital technology' -> 'Hikvision') only
        # where that maker makes the same kind: 'Philips Hue' and 'Samsung Techwin' are not
        # Philips and Samsung, whose many kinds would lose the line's one
        first = spelled.get(name.split()[0])
        same_kind = first is not None and vendor_type(first) == kind
        spelled.setdefault(name, (first if same_kind else None) or own.get(name) or name.title())
    for name in _many_kinds_makers():
        spelled.setdefault(name.lower(), name)
    return spelled


def _many_kinds_makers() -> tuple[str, ...]:
    """Makers of many kinds, as they write their names (vendor_types.toml's [makers])."""
    return name_list("vendor_types.toml", "makers")


def _own_spellings() -> dict[str, str]:
    """How makers write their own names where Title Case would not ('SonicWall')."""
    return name_map("vendor_types.toml", "spellings")


# the words after a maker's name that name the company, not another maker ('Axis
# Communications' is AXIS; 'Delta Controls' is not Delta Electronics' Delta)
_COMPANY_WORDS = frozenset({"communications", "electronics", "networks", "systems",
                            "technology", "technologies", "global", "vision"})


def _as_the_rules_spell(vendor: str) -> str:
    """A maker that another database writes as one word in its own case ('AXIS', 'HIKVISION'
    in recog's) as the built-in rules write it ('Axis Communications', 'Hikvision'): one
    maker's evidence then adds up, and two spellings are not shown as a conflict."""
    if " " in vendor:
        return vendor
    spelled = _rule_vendors().get(vendor.lower())
    if spelled is None:
        return vendor
    first, _, rest = spelled.partition(" ")
    same = first.lower() == vendor.lower() and (not rest or rest.lower() in _COMPANY_WORDS)
    return spelled if same else vendor


@cache
def _rule_vendors() -> dict[str, str]:
    """How the built-in rules spell a maker, by the first word of its name in lower case
    ('axis' -> 'Axis Communications'), so a maker named by its host name is the same maker
    its other evidence names."""
    spellings: dict[str, dict[str, int]] = {}
    for rules in rules_by_key().values():
        for rule in rules:
            vendor = rule.fixed.get("vendor")
            if vendor:
                counted = spellings.setdefault(vendor.split()[0].lower(), {})
                counted[vendor] = counted.get(vendor, 0) + 1
    return {word: max(counted, key=lambda v: (counted[v], v)) for word, counted in spellings.items()}


@cache
def _vendor_types() -> dict[str, str]:
    """The maker table: a maker's name, in lower case with single spaces, to its one kind."""
    return name_map("vendor_types.toml", "vendors")


_JOINED = re.compile(r"\s*\+\s*")  # 'LANDIS + GYR' is the registry's Landis+Gyr


@lru_cache(maxsize=4096)
def vendor_type(vendor: str) -> str | None:
    """The one kind of device a maker makes, from the start of its name, or None: the longest
    name in the table that the vendor's name starts with, word for word (so 'konica minolta'
    wins over 'konica'). Asked once per asset at ingest, so a look-up per word, not a scan of
    the table, and the answers kept."""
    words = _JOINED.sub("+", vendor[:MAX_VENDOR_CHARS].lower()).replace(",", " ").replace(
        ".", " ").split()
    table = _vendor_types()
    for end in range(min(len(words), MAX_VENDOR_WORDS), 0, -1):
        kind = table.get(" ".join(words[:end]))
        if kind is not None:
            return kind
    return None
