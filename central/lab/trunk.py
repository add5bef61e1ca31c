"""The lab's trunk port: a userspace 802.1Q relay between one trunk and one access port per
VLAN, as a switch's trunk port does.

The test machines' kernels have no 802.1Q and their bridges refuse VLAN filtering, so a
switch with a trunk cannot be built from kernel parts. This relay is one: a frame from the
trunk tagged with VLAN N leaves untagged by VLAN N's access port; a frame arriving on an
access port leaves by the trunk tagged with its VLAN; untagged frames on the trunk are
dropped (there is no native VLAN). Like the lab's devices it is written apart from the
product, with the standard library only, so the lab checks the sensor against something
it did not write.

    python -m central.lab.trunk TRUNK_IF VID=ACCESS_IF [VID=ACCESS_IF ...]

It prints ``ready`` once its sockets are open, and runs until it is terminated.
"""

from __future__ import annotations

import select
import signal
import socket
import struct
import sys

ALL = 0x0003
TPID = 0x8100
AUXDATA_LEVEL, AUXDATA = 263, 8
OUTGOING = 4
VLAN_VALID = 0x10
AUX = struct.Struct("IIIHHHH")
READ = 65_535


def _open(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ALL))
    sock.bind((ifname, ALL))
    sock.setsockopt(AUXDATA_LEVEL, AUXDATA, 1)
    return sock


def _read(sock: socket.socket) -> tuple[bytes, int | None] | None:
    """A frame that arrived (not one we sent), with the VLAN the kernel took off it."""
    data, ancillary, _flags, address = sock.recvmsg(READ, socket.CMSG_SPACE(AUX.size))
    if address[2] == OUTGOING or len(data) < 14:
        return None
    vid = None
    for level, kind, raw in ancillary:
        if level == AUXDATA_LEVEL and kind == AUXDATA and len(raw) >= AUX.size:
            status, _a, _b, _c, _d, tci, _tpid = AUX.unpack_from(raw)
            if status & VLAN_VALID:
                vid = tci & 0x0FFF
    return data, vid


def relay(trunk_if: str, access: dict[int, str]) -> None:
    trunk = _open(trunk_if)
    ports = {vid: _open(name) for vid, name in access.items()}
    vid_of = {sock.fileno(): vid for vid, sock in ports.items()}
    print("ready", flush=True)
    everything = [trunk, *ports.values()]
    while True:
        ready, _, _ = select.select(everything, [], [])
        for sock in ready:
            frame = _read(sock)
            if frame is None:
                continue
            data, vid = frame
            if sock is trunk:
                if vid is None and int.from_bytes(data[12:14], "big") == TPID:
                    vid = int.from_bytes(data[14:16], "big") & 0x0FFF
                    data = data[:12] + data[16:]
                if vid in ports:
                    ports[vid].send(data)
            elif vid is None:  # an access port carries untagged frames only
                tag = struct.pack("!HH", TPID, vid_of[sock.fileno()])
                trunk.send(data[:12] + tag + data[12:])


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    access = {int(vid): name for vid, name in (a.split("=", 1) for a in argv[1:])}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    relay(argv[0], access)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
