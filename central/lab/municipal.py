"""The simulated municipal network: administration, cameras, building management.

MACs carry real vendors' OUIs (the tests check that the IEEE registry names the vendor);
banners are those the products send.
"""

from __future__ import annotations

from pathlib import Path

from central.lab.topology import DeviceSpec, LabSpec, SegmentSpec, ServiceSpec

HOSTILE_BANNER = (
    '=HYPERLINK("http://evil.example/x","click")\\x1b[2J<script>alert(1)</script>'
    "[bold red]owned[/bold red]'; DROP TABLE assets;--\\r\\nlogin: "
)
SONOS_DESCRIPTION = (
    '<?xml version="1.0" encoding="utf-8" ?><root xmlns="urn:schemas-upnp-org:device-1-0">'
    "<specVersion><major>1</major><minor>0</minor></specVersion><device>"
    "<deviceType>urn:schemas-upnp-org:device:ZonePlayer:1</deviceType>"
    "<friendlyName>10.20.10.50 - Sonos One - RINCON_542A1B102050001400</friendlyName>"
    "<manufacturer>Sonos, Inc.</manufacturer><manufacturerURL>http://www.sonos.com"
    "</manufacturerURL><modelNumber>S18</modelNumber><modelDescription>Sonos One"
    "</modelDescription><modelName>Sonos One</modelName><softwareVersion>70.3-35220"
    "</softwareVersion></device></root>"
)
IAC_LOGIN = "\\xff\\xfb\\x01\\xff\\xfb\\x03\\xff\\xfd\\x18\\xff\\xfd\\x1f"


def http(port: int, server: str | None, title: str, **extra: str) -> ServiceSpec:
    params = {"title": title, **extra}
    if server is not None:
        params["server"] = server
    return ServiceSpec(port=port, kind="http", params=params)


def banner(port: int, text: str, reply: str = "") -> ServiceSpec:
    return ServiceSpec(port=port, kind="banner", params={"banner": text, "reply": reply})


def silent(port: int) -> ServiceSpec:
    return ServiceSpec(port=port, kind="silent")


def rtsp(port: int, server: str) -> ServiceSpec:
    return ServiceSpec(port=port, kind="rtsp", params={"server": server})


def chatter(kinds: str, **params: str) -> ServiceSpec:
    """Frames the device broadcasts unasked (DHCP, LLDP, CDP), every two seconds in the lab."""
    return ServiceSpec(port=0, proto="raw", kind=kinds, params=params)


def udp(port: int, kind: str, **params: str) -> ServiceSpec:
    return ServiceSpec(port=port, proto="udp", kind=kind, params=params)


WINDOWS_DHCP_PARAMS = "1,3,6,15,31,33,43,44,46,47,119,121,249,252"


SEGMENTS = (
    SegmentSpec(name="admin", cidr="10.20.10.0/24", router_mac="00:00:0c:14:0a:01"),
    SegmentSpec(name="cameras", cidr="10.20.30.0/24", router_mac="00:00:0c:14:1e:01"),
    SegmentSpec(name="bms", cidr="10.20.40.0/24", router_mac="00:00:0c:14:28:01"),
)

DEVICES = (
    # --- administration
    DeviceSpec(
        name="printer", segment="admin", host=11, mac="64:4e:d7:10:20:11", vendor="HP Inc.",
        device_type="printer",
        services=(
            http(80, "HP HTTP Server; HP LaserJet MFP M426fdn - F6W15A; Serial Number: "
                 "PHBLM12345; Built:Mon Jan 15, 2024 03:10:00PM {FDP1CN2403AR}",
                 "HP LaserJet MFP M426fdn"),
            silent(9100),
            udp(5353, "mdns", services="_ipp._tcp,_pdl-datastream._tcp",
                instance="HP LaserJet MFP M426fdn [102011]", hostname="NPI102011",
                address="10.20.10.11",
                txt="txtvers=1|qtotal=1|rp=ipp/print|ty=HP LaserJet MFP M426fdn|"
                    "product=(HP LaserJet MFP M426fdn)|pdl=application/pdf,image/urf"),
            chatter("dhcp", hostname="NPI102011"),
        ),
    ),
    DeviceSpec(
        # a Windows PC: says who it is in its DHCP requests and to a NetBIOS status query
        name="workstation", segment="admin", host=12, mac="d0:43:1e:10:20:12",
        vendor="Dell Inc.", device_type="workstation",
        services=(
            silent(135), silent(445),
            udp(137, "netbios", name="KOMMUNE-PC042", group="KOMMUNE"),
            chatter("dhcp", hostname="KOMMUNE-PC042", vendor_class="MSFT 5.0",
                    params=WINDOWS_DHCP_PARAMS),
        ),
    ),
    DeviceSpec(
        # the server room's iDRAC, reachable from the office network
        name="idrac", segment="admin", host=20, mac="f8:bc:12:10:20:20",
        vendor="Dell Inc.", device_type="bmc",
        services=(ServiceSpec(port=443, kind="tls", params={
            "subject": "CN=idrac-5XK2Q53,OU=Remote Access Group,O=Dell Inc.,L=Round Rock,"
                       "ST=Texas,C=US", "title": "Integrated Dell Remote Access Controller 9"}),),
    ),
    DeviceSpec(
        # a desk phone: CDP and LLDP-MED on the wire, SIP on 5060
        name="cisco-phone", segment="admin", host=41, mac="6c:03:b5:10:20:41",
        vendor="Cisco Systems, Inc", device_type="voip_phone",
        services=(
            udp(5060, "sip", user_agent="Cisco-CP8845/12.8.1"),
            chatter("cdp,lldp", cdp_id="SEP6C03B5102041", cdp_platform="Cisco IP Phone 8845",
                    lldp_name="SEP6C03B5102041", lldp_descr="Cisco IP Phone CP-8845, V3, "
                    "sip8845.12-8-1", med_class="3", med_manufacturer="Cisco Systems, Inc.",
                    med_model="CP-8845", med_software="sip8845.12-8-1"),
        ),
    ),
    DeviceSpec(
        name="nas", segment="admin", host=13, mac="00:11:32:10:20:13",
        vendor="Synology Incorporated", device_type="nas",
        services=(
            http(5000, "nginx", "Synology DiskStation"),
            ServiceSpec(port=22, kind="ssh", params={"version": "SSH-2.0-OpenSSH_8.2"}),
            http(80, "nginx", "Synology DiskStation"),
        ),
    ),
    DeviceSpec(
        # a speaker in the meeting room: answers SSDP and serves its UPnP description
        name="sonos", segment="admin", host=50, mac="54:2a:1b:10:20:50",
        vendor="Sonos, Inc.", device_type="media_player",
        services=(
            ServiceSpec(port=1400, kind="xml", params={"body": SONOS_DESCRIPTION}),
            ServiceSpec(port=1900, proto="udp", kind="ssdp", params={
                "address": "10.20.10.50",
                "location": "http://10.20.10.50:1400/xml/device_description.xml",
                "server": "Linux UPnP/1.0 Sonos/70.3-35220 (ZPS1)",
                "usn": "uuid:RINCON_542A1B102050001400", "interval": "2"}),
        ),
    ),
    DeviceSpec(
        # seeded fault: a camera plugged into the office network (the policy allows no
        # cameras in the administration)
        name="office-cam", segment="admin", host=60, mac="44:19:b6:10:20:60",
        vendor="Hangzhou Hikvision Digital Technology Co.,Ltd.", device_type="camera",
        services=(
            http(80, "App-webs/", "", body="<script>window.location.href='/doc/page/login.asp'"
                 "</script>"),
            rtsp(554, "Hikvision RTSP Server"),
        ),
    ),
    DeviceSpec(
        # seeded fault: the caretaker's PC with one leg in the office network and one in the
        # building network (a dual-homed device bridging two zones)
        name="bms-pc", segment="admin", host=70, mac="b0:83:fe:10:20:70",
        vendor="Dell Inc.", device_type="workstation",
        also=(("bms", 70, "b0:83:fe:10:40:70"),),
        services=(
            udp(137, "netbios", name="BMS-PC01", group="KOMMUNE"),
            chatter("dhcp", hostname="BMS-PC01", vendor_class="MSFT 5.0",
                    params=WINDOWS_DHCP_PARAMS),
        ),
    ),
    DeviceSpec(
        # a randomised (locally administered) MAC names no vendor; its DHCP requests do
        name="phone", segment="admin", host=40, mac="da:a1:19:10:20:40",
        vendor="", device_type="mobile",
        services=(chatter("dhcp", hostname="Galaxy-S23", vendor_class="android-dhcp-14",
                          params="1,3,6,15,26,28,51,58,59,43,114,108"),),
    ),
    # --- cameras and recorders
    DeviceSpec(
        name="hikvision-cam", segment="cameras", host=21, mac="44:19:b6:10:30:21",
        vendor="Hangzhou Hikvision Digital Technology Co.,Ltd.", device_type="camera",
        services=(
            http(80, "App-webs/", "", body="<script>window.location.href='/doc/page/login.asp'"
                 "</script>"),
            rtsp(554, "Hikvision RTSP Server"),
            silent(8000),
            # ONVIF: how a recorder finds it, answered with its model
            udp(3702, "wsd", address="10.20.30.21", types="dn:NetworkVideoTransmitter tds:Device",
                xaddrs="http://10.20.30.21/onvif/device_service",
                scopes="onvif://www.onvif.org/type/video_encoder "
                       "onvif://www.onvif.org/Profile/Streaming "
                       "onvif://www.onvif.org/hardware/DS-2CD2143G2-I "
                       "onvif://www.onvif.org/name/HIKVISION%20DS-2CD2143G2-I "
                       "onvif://www.onvif.org/location/city/hangzhou"),
        ),
    ),
    DeviceSpec(
        name="axis-cam", segment="cameras", host=22, mac="ac:cc:8e:10:30:22",
        vendor="Axis Communications AB", device_type="camera",
        services=(
            http(80, None, "AXIS", realm="AXIS_ACCC8E103022"),
            rtsp(554, "GStreamer RTSP server"),
            banner(21, "220 AXIS P1375 Network Camera 10.12.114 (2023) ready.\r\n",
                   "530 Login incorrect.\r\n"),
        ),
    ),
    DeviceSpec(
        name="dahua-nvr", segment="cameras", host=23, mac="3c:ef:8c:10:30:23",
        vendor="Zhejiang Dahua Technology Co., Ltd.", device_type="video_recorder",
        services=(http(80, None, "WEB SERVICE"), rtsp(554, "Rtsp Server/3.0"), silent(37777)),
    ),
    DeviceSpec(
        # a no-name camera whose banner is hostile: terminal escapes, a spreadsheet formula,
        # HTML and console markup must all arrive as inert text
        name="nameless-cam", segment="cameras", host=24, mac="10:06:1c:10:30:24",
        vendor="Espressif Inc.", device_type="camera",
        services=(banner(23, HOSTILE_BANNER, "Password: "), http(80, None, "ESP32 OV2640"),
                  chatter("dhcp", hostname="espressif")),
    ),
    # --- building management and utilities
    DeviceSpec(
        name="schneider-plc", segment="bms", host=31, mac="00:80:f4:10:40:31",
        vendor="TELEMECANIQUE ELECTRIQUE", device_type="plc",
        services=(
            http(80, "Schneider-WEB/V2.1.4", "Schneider Electric - Web Server"),
            silent(502),
            banner(21, "220 FTP server (Schneider Electric BMX NOE 0100) ready.\r\n",
                   "530 Login incorrect.\r\n"),
        ),
    ),
    DeviceSpec(
        # a SIMATIC S7-1200 running the heating plant: S7comm, BACnet and SNMP, no web server
        name="siemens-s7", segment="bms", host=32, mac="00:1b:1b:10:40:32",
        vendor="Siemens AG,", device_type="plc",
        services=(
            silent(102),
            ServiceSpec(port=47808, proto="udp", kind="bacnet", params={"instance": "2032"}),
            udp(161, "snmp", community="public",
                sysdescr="Siemens, SIMATIC S7, CPU-1200, 6ES7 212-1BE40-0XB0, HW: 2, "
                         "FW: V.4.2.3, S C-X4U421302009",
                sysobjectid="1.3.6.1.4.1.4329.20.1.1.1", sysname="PLC-VARME-1",
                engine_id="800010e903001b1b104032",
                # its second port, on the plant's PROFINET network: an address it only claims
                addresses="10.20.40.32,192.168.0.1"),
        ),
    ),
    DeviceSpec(
        name="kamstrup-meter", segment="bms", host=33, mac="00:13:ea:10:40:33",
        vendor="Kamstrup A/S", device_type="meter",
        services=(banner(23, IAC_LOGIN + "\\r\\nKamstrup OMNIPOWER\\r\\nlogin: ",
                         "Password: "),),
    ),
    DeviceSpec(
        name="danfoss-ecl", segment="bms", host=34, mac="00:1b:08:10:40:34",
        vendor="Danfoss Drives A/S", device_type="bms_controller",
        services=(http(80, "lighttpd/1.4.35", "Danfoss ECL Comfort 296"),),
    ),
    DeviceSpec(
        name="grundfos-pump", segment="bms", host=35, mac="00:14:44:10:40:35",
        vendor="Grundfos Holding", device_type="bms_controller",
        services=(http(80, "Grundfos CIM 500", "Grundfos CIM 500"), silent(502)),
    ),
    DeviceSpec(
        # the building network's industrial switch, announcing itself over LLDP
        name="scalance", segment="bms", host=2, mac="20:87:56:10:40:02",
        vendor="SIEMENS AG", device_type="switch",
        services=(chatter("lldp", lldp_name="sw-bms-1", lldp_descr=(
            "Siemens, SIMATIC NET, SCALANCE XC208, 6GK5 208-0BA00-2AC2, HW: Version 1, "
            "FW: Version V04.01.00, SVPH1234567")),),
    ),
)

# The administration may ping the building controllers and open their web pages (as the
# lab's policy, central/lab/policy.toml, allows). The router also lets the administration
# reach the cameras' RTSP streams: a seeded fault, which the policy denies.
POLICY_FLOWS = (("admin", "bms", "icmp", 0), ("admin", "bms", "tcp", 80))
FAULT_FLOW = ("admin", "cameras", "tcp", 554)
ALLOWED_FLOWS = (*POLICY_FLOWS, FAULT_FLOW)

MUNICIPAL = LabSpec(segments=SEGMENTS, devices=DEVICES, allowed_flows=ALLOWED_FLOWS)

# --- the school: a site of its own whose two segments are VLANs on one trunk, covered by one
# sensor on the trunk port (see topology.Lab._trunk); its own address space
SCHOOL_SEGMENTS = (
    SegmentSpec(name="elev", cidr="10.21.10.0/24", router_mac="00:00:0c:15:0a:01",
                sensor=False, vlan=110),
    SegmentSpec(name="personale", cidr="10.21.20.0/24", router_mac="00:00:0c:15:14:01",
                sensor=False, vlan=120),
)
SCHOOL_DEVICES = (
    DeviceSpec(
        name="elev-tv", segment="elev", host=30, mac="f0:18:98:15:0a:1e", vendor="Apple, Inc.",
        device_type="media_player", services=(silent(7000),),
    ),
    DeviceSpec(
        name="laerer-pc", segment="personale", host=20, mac="d0:43:1e:15:14:14",
        vendor="Dell Inc.", device_type="workstation", services=(silent(135), silent(445)),
    ),
    DeviceSpec(
        name="skole-printer", segment="personale", host=11, mac="3c:2a:f4:15:14:0b",
        vendor="Brother Industries, LTD.", device_type="printer",
        services=(http(80, "debut/1.30", "Brother MFC-L2750DW series"), silent(9100)),
    ),
)
# seeded fault: the pupils' VLAN reaches the teachers' file shares through the router
SCHOOL_FAULT = ("elev", "personale", "tcp", 445)
TRUNK_SENSOR = "s-trunk"
SCHOOL_SITE = "skolen"

# the demo's network: the town hall and the school on its trunk
MUNICIPAL_WITH_SCHOOL = LabSpec(segments=SEGMENTS + SCHOOL_SEGMENTS,
                                devices=DEVICES + SCHOOL_DEVICES,
                                allowed_flows=(*ALLOWED_FLOWS, SCHOOL_FAULT))


def policy_path() -> Path:
    """The lab's zone policy (packaged beside this module)."""
    return Path(__file__).with_name("policy.toml")
