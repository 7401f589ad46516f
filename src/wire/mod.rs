//! Zero-copy packet views and builders: Ethernet, ARP, IPv4, TCP, UDP, ICMP, checksums.
