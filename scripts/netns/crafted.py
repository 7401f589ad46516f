#!/usr/bin/python3
"""Crafted and malformed frames for the vipmux end-to-end tests (scapy; Debian's python3-scapy,
so run it with /usr/bin/python3 inside a namespace of a test topology).

  crafted.py list                                   the kinds, one per line
  crafted.py send KIND --iface IF --dst-mac MAC --src-ip IP --vip VIP [--port P] [--count N]
      send N frames of KIND on IF (layer 2, to the MUX's MAC); prints "sent KIND N"
      (with --print-hex, first each frame's bytes in hex, one line each)
  crafted.py too-big --vip VIP --port P [--size 1500] [--timeout 5]
      send one UDP datagram with DF set and total length SIZE through the routing table
      (layer 3) and wait for ICMP "fragmentation needed"; prints
      "icmp type=3 code=4 mtu=M src=S inner_dst=D inner_dport=P" or "none"

Kinds (the drop reason the MUX should count, docs/design.md §3.1, is in brackets):
  short          14-byte Ethernet header plus 6 bytes of IPv4            [bad_header]
  bad_ihl        IPv4 with IHL 3                                         [bad_header]
  bad_version    IPv4 header with version 6 under ethertype 0x0800       [bad_header]
  len_beyond     IPv4 total length 1000 in a 60-byte frame               [bad_header]
  ip_options     TCP SYN to VIP:port behind a record-route IP option      (forwarded, a rule SYN)
  bad_doff       TCP data offset 3 (< 5)                                 [bad_header]
  doff_beyond    TCP data offset 15 in a 40-byte datagram                [bad_header]
  syn_fin        TCP SYN+FIN to VIP:port
  no_flags       TCP with no flag at all to VIP:port
  all_flags      TCP with every flag (FSRPAUEC) to VIP:port
  ipv6           an IPv6 packet to an address without a rule             [no_rule]
  lldp           an LLDP frame (0x88cc) to the MUX's MAC                  [unsupported]
  random_type    ethertype 0x1234 with junk                              [unsupported]
  arp_short      ARP with the header cut after 4 bytes                   (slow path: malformed)
  vlan_junk      802.1Q tag, ethertype IPv4, 8 bytes of junk             [bad_header]
  qinq           two 802.1Q tags                                         [unsupported]
  ttl1           TCP SYN to VIP:port with TTL 1                          [ttl]
  udp_bad_len    UDP length 200 in a 28-byte datagram                    [bad_header]
"""

import argparse
import os
import sys

os.environ.setdefault("SCAPY_USE_LIBPCAP", "no")
from scapy.all import (  # noqa: E402
    ARP,
    AsyncSniffer,
    Dot1Q,
    Ether,
    ICMP,
    IP,
    IPOption_RR,
    IPv6,
    Raw,
    TCP,
    UDP,
    UDPerror,
    IPerror,
    conf,
    get_if_hwaddr,
    send,
    sendp,
)

conf.verb = 0

KINDS = [
    "short", "bad_ihl", "bad_version", "len_beyond", "ip_options", "bad_doff", "doff_beyond",
    "syn_fin", "no_flags", "all_flags", "ipv6", "lldp", "random_type", "arp_short", "vlan_junk",
    "qinq", "ttl1", "udp_bad_len",
]


def frame(kind: str, eth: Ether, src: str, vip: str, port: int, n: int) -> bytes:
    sport = 40000 + n
    ip = IP(src=src, dst=vip)
    syn = TCP(sport=sport, dport=port, flags="S", seq=1000)
    if kind == "short":
        return bytes(eth / Raw(bytes(ip)[:6]))
    if kind == "bad_ihl":
        raw = bytearray(bytes(ip / syn))
        raw[0] = 0x43
        return bytes(eth) + bytes(raw)
    if kind == "bad_version":
        raw = bytearray(bytes(ip / syn))
        raw[0] = 0x65
        return bytes(eth) + bytes(raw)
    if kind == "len_beyond":
        return bytes(eth / IP(src=src, dst=vip, len=1000) / syn)
    if kind == "ip_options":
        return bytes(eth / IP(src=src, dst=vip, options=[IPOption_RR(routers=["0.0.0.0"] * 2)]) / syn)
    if kind == "bad_doff":
        return bytes(eth / ip / TCP(sport=sport, dport=port, flags="S", dataofs=3))
    if kind == "doff_beyond":
        return bytes(eth / ip / TCP(sport=sport, dport=port, flags="S", dataofs=15))
    if kind == "syn_fin":
        return bytes(eth / ip / TCP(sport=sport, dport=port, flags="SF"))
    if kind == "no_flags":
        return bytes(eth / ip / TCP(sport=sport, dport=port, flags=0, seq=5, ack=7))
    if kind == "all_flags":
        return bytes(eth / ip / TCP(sport=sport, dport=port, flags="FSRPAUEC"))
    if kind == "ipv6":
        e = eth.copy()
        e.type = 0x86DD
        return bytes(e / IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=sport, dport=port))
    if kind == "lldp":
        # To the MUX's own MAC: a bridge does not forward the LLDP group address 01:80:c2:00:00:0e.
        e = Ether(src=eth.src, dst=eth.dst, type=0x88CC)
        return bytes(e / Raw(b"\x02\x07\x04" + bytes(6) + b"\x04\x02\x07\x31\x06\x02\x00\x78\x00\x00"))
    if kind == "random_type":
        e = eth.copy()
        e.type = 0x1234
        return bytes(e / Raw(os.urandom(46)))
    if kind == "arp_short":
        e = eth.copy()
        e.type = 0x0806
        return bytes(e / Raw(b"\x00\x01\x08\x00"))
    if kind == "vlan_junk":
        return bytes(Ether(src=eth.src, dst=eth.dst) / Dot1Q(vlan=5, type=0x0800) / Raw(b"junkjunk"))
    if kind == "qinq":
        return bytes(Ether(src=eth.src, dst=eth.dst) / Dot1Q(vlan=5) / Dot1Q(vlan=6) / ip / syn)
    if kind == "ttl1":
        return bytes(eth / IP(src=src, dst=vip, ttl=1) / syn)
    if kind == "udp_bad_len":
        return bytes(eth / ip / UDP(sport=sport, dport=port, len=200) / Raw(b"x" * 20))
    raise SystemExit(f"unknown kind {kind}")


def cmd_send(a) -> int:
    if a.kind not in KINDS:
        print(f"unknown kind {a.kind}; kinds: {' '.join(KINDS)}", file=sys.stderr)
        return 2
    eth = Ether(src=get_if_hwaddr(a.iface), dst=a.dst_mac, type=0x0800)
    frames = [frame(a.kind, eth, a.src_ip, a.vip, a.port, i) for i in range(a.count)]
    if a.print_hex:
        for f in frames:
            print(f.hex())
    sendp([Raw(f) for f in frames], iface=a.iface)
    print(f"sent {a.kind} {len(frames)}", flush=True)
    return 0


def cmd_too_big(a) -> int:
    payload = a.size - 28
    pkt = IP(dst=a.vip, flags="DF") / UDP(sport=a.sport, dport=a.port) / Raw(b"z" * payload)

    def is_frag_needed(p) -> bool:
        return ICMP in p and p[ICMP].type == 3 and p[ICMP].code == 4

    sniffer = AsyncSniffer(iface=a.iface, filter="icmp", lfilter=is_frag_needed, count=1,
                           timeout=a.timeout, store=True)
    sniffer.start()
    # Let the capture socket open before sending.
    import time
    for _ in range(50):
        if getattr(sniffer, "running", False):
            break
        time.sleep(0.02)
    time.sleep(0.2)
    send(pkt)
    sniffer.join()
    got = sniffer.results or []
    if not got:
        print("none", flush=True)
        return 1
    p = got[0]
    icmp = p[ICMP]
    inner_dst = p[IPerror].dst if IPerror in p else "?"
    inner_dport = p[UDPerror].dport if UDPerror in p else 0
    print(f"icmp type={icmp.type} code={icmp.code} mtu={icmp.nexthopmtu} src={p[IP].src} "
          f"inner_dst={inner_dst} inner_dport={inner_dport}", flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    s = sub.add_parser("send")
    s.add_argument("kind")
    s.add_argument("--iface", required=True)
    s.add_argument("--dst-mac", required=True)
    s.add_argument("--src-ip", required=True)
    s.add_argument("--vip", required=True)
    s.add_argument("--port", type=int, default=80)
    s.add_argument("--count", type=int, default=1)
    s.add_argument("--print-hex", action="store_true")
    t = sub.add_parser("too-big")
    t.add_argument("--vip", required=True)
    t.add_argument("--port", type=int, required=True)
    t.add_argument("--sport", type=int, default=41000)
    t.add_argument("--size", type=int, default=1500)
    t.add_argument("--iface", default="eth0")
    t.add_argument("--timeout", type=float, default=5.0)
    a = ap.parse_args()
    if a.cmd == "list":
        print("\n".join(KINDS))
        return 0
    if a.cmd == "send":
        return cmd_send(a)
    return cmd_too_big(a)


if __name__ == "__main__":
    sys.exit(main())
