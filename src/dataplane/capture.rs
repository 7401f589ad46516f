//! Which frames `vipmux capture` copies: a [`CaptureMatch`] decides from a frame's verdict and
//! bytes whether the worker copies it into its capture ring (docs/design.md §4.8).
//!
//! The worker consults it only while a capture is armed; the decision reads the verdict first
//! (a mask test) and parses headers only for verdicts that pass, with every read bounds-checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::reason::{DropReason, Exception};
use super::Verdict;

/// What a captured frame was: dropped (under a reason), handed to the slow path, or forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapturedKind {
    /// Dropped by the data path.
    Drop(DropReason),
    /// Handed to the slow path.
    Exception(Exception),
    /// Forwarded (after its rewrite).
    Forwarded,
}

impl CapturedKind {
    /// The verdict's kind.
    #[inline]
    pub fn of(v: &Verdict) -> CapturedKind {
        match *v {
            Verdict::Forward { .. } => CapturedKind::Forwarded,
            Verdict::ToSlowPath(e) => CapturedKind::Exception(e),
            Verdict::Drop(r) => CapturedKind::Drop(r),
        }
    }

    /// Words for a packet comment: `drop no_rule`, `exception arp` (with the drop reason it is
    /// also counted under, e.g. `exception ttl_exceeded (drop ttl)`) or `forwarded`.
    pub fn describe(self) -> String {
        match self {
            CapturedKind::Drop(r) => format!("drop {}", r.name()),
            CapturedKind::Exception(e) => match counted_drop(e) {
                Some(r) => format!("exception {} (drop {})", e.name(), r.name()),
                None => format!("exception {}", e.name()),
            },
            CapturedKind::Forwarded => "forwarded".into(),
        }
    }
}

/// The drop reason an exception is also counted under (as the pipeline's counters do).
pub fn counted_drop(e: Exception) -> Option<DropReason> {
    match e {
        Exception::Fragment => Some(DropReason::Fragment),
        Exception::TtlExceeded => Some(DropReason::Ttl),
        Exception::TooBig { .. } => Some(DropReason::TooBig),
        _ => None,
    }
}

/// One flow's endpoints: frames of either direction match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureFlow {
    /// IP protocol (6 TCP, 17 UDP).
    pub proto: u8,
    /// One endpoint.
    pub a: (IpAddr, u16),
    /// The other endpoint.
    pub b: (IpAddr, u16),
}

impl CaptureFlow {
    /// Parses `SRC:PORT-DST:PORT/PROTO` (`PROTO` is `tcp` or `udp`; an IPv6 address in brackets,
    /// `[2001:db8::1]:40000`).
    pub fn parse(s: &str) -> Result<CaptureFlow, String> {
        let bad = || {
            format!("flow {s:?}: expected SRC:PORT-DST:PORT/PROTO, e.g. 10.0.0.1:40000-192.0.2.10:80/tcp")
        };
        let (ends, proto) = s.split_once('/').ok_or_else(bad)?;
        let proto = match proto.to_ascii_lowercase().as_str() {
            "tcp" => 6,
            "udp" => 17,
            _ => return Err(bad()),
        };
        let (a, b) = ends.split_once('-').ok_or_else(bad)?;
        let end = |e: &str| -> Result<(IpAddr, u16), String> {
            let (ip, port) = e.rsplit_once(':').ok_or_else(bad)?;
            let ip = match ip.strip_prefix('[') {
                Some(v6) => IpAddr::V6(
                    v6.strip_suffix(']')
                        .ok_or_else(bad)?
                        .parse()
                        .map_err(|_| bad())?,
                ),
                None => IpAddr::V4(ip.parse().map_err(|_| bad())?),
            };
            Ok((ip, port.parse().map_err(|_| bad())?))
        };
        Ok(CaptureFlow {
            proto,
            a: end(a)?,
            b: end(b)?,
        })
    }
}

/// The IP fields a filter looks at (ports are 0 for non-TCP/UDP and later fragments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTuple {
    /// IP protocol.
    pub proto: u8,
    /// Source address and port.
    pub src: (IpAddr, u16),
    /// Destination address and port.
    pub dst: (IpAddr, u16),
}

impl FrameTuple {
    /// The tuple of an Ethernet frame carrying IPv4 or IPv6 (one 802.1Q tag allowed), or `None`.
    pub fn parse(frame: &[u8]) -> Option<FrameTuple> {
        let mut off = 12;
        let mut ethertype = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
        if ethertype == 0x8100 {
            off += 4;
            ethertype = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
        }
        let ip = frame.get(off + 2..)?;
        match ethertype {
            0x0800 => Self::parse4(ip),
            0x86dd => Self::parse6(ip),
            _ => None,
        }
    }

    /// The tuple of an IPv6 packet: the transport after the extension headers (ports of TCP and
    /// UDP, but not of a later fragment).
    fn parse6(ip: &[u8]) -> Option<FrameTuple> {
        use crate::wire::ipv6::{walk_extension_headers, HEADER_LEN};
        if *ip.first()? >> 4 != 6 {
            return None;
        }
        let addr = |at: usize| -> Option<Ipv6Addr> {
            let b: [u8; 16] = ip.get(at..at + 16)?.try_into().ok()?;
            Some(Ipv6Addr::from(b))
        };
        let (src, dst) = (addr(8)?, addr(24)?);
        let payload = ip.get(HEADER_LEN..)?;
        let upper = walk_extension_headers(*ip.get(6)?, payload).ok()?;
        let first = upper.fragment.is_none_or(|f| f.offset == 0);
        let at = upper.offset;
        let ports = match upper.protocol {
            6 | 17 if first => payload.get(at..at + 4).map(|p| {
                (
                    u16::from_be_bytes([p[0], p[1]]),
                    u16::from_be_bytes([p[2], p[3]]),
                )
            }),
            _ => None,
        };
        let (sp, dp) = ports.unwrap_or((0, 0));
        Some(FrameTuple {
            proto: upper.protocol,
            src: (IpAddr::V6(src), sp),
            dst: (IpAddr::V6(dst), dp),
        })
    }

    /// The tuple of an IPv4 packet.
    fn parse4(ip: &[u8]) -> Option<FrameTuple> {
        let ihl = usize::from(*ip.first()? & 0x0f) * 4;
        if *ip.first()? >> 4 != 4 || ihl < 20 {
            return None;
        }
        let proto = *ip.get(9)?;
        let addr = |at: usize| -> Option<Ipv4Addr> {
            let b = ip.get(at..at + 4)?;
            Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        };
        let (src, dst) = (addr(12)?, addr(16)?);
        let frag_offset = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x1fff;
        let ports = match (proto, frag_offset) {
            (6 | 17, 0) => ip.get(ihl..ihl + 4).map(|p| {
                (
                    u16::from_be_bytes([p[0], p[1]]),
                    u16::from_be_bytes([p[2], p[3]]),
                )
            }),
            _ => None,
        };
        let (sp, dp) = ports.unwrap_or((0, 0));
        Some(FrameTuple {
            proto,
            src: (IpAddr::V4(src), sp),
            dst: (IpAddr::V4(dst), dp),
        })
    }
}

/// A frontend (or one rule of it) a capture is limited to: frames to its address (and the rule's
/// protocol and port range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontendMatch {
    /// The frontend's address (IPv4 or IPv6).
    pub addr: IpAddr,
    /// The rule's protocol (0: any).
    pub proto: u8,
    /// The rule's frontend ports, inclusive (`(0, 65535)`: any).
    pub ports: (u16, u16),
}

/// A compiled capture filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureMatch {
    /// Drop reasons to capture, one bit per [`DropReason::index`].
    pub drops: u64,
    /// Exceptions to capture, one bit per [`Exception::index`].
    pub exceptions: u64,
    /// Capture forwarded frames too.
    pub forwarded: bool,
    /// Only frames to this frontend (or rule).
    pub frontend: Option<FrontendMatch>,
    /// Only frames of this flow (either direction).
    pub flow: Option<CaptureFlow>,
}

impl CaptureMatch {
    /// Every drop reason, nothing else.
    pub fn all_drops() -> CaptureMatch {
        CaptureMatch {
            drops: (1u64 << DropReason::COUNT) - 1,
            ..CaptureMatch::default()
        }
    }

    /// Adds a reason by name: a drop reason (an exception also counted under it matches too)
    /// or an exception's name; the error lists the valid names.
    pub fn add_reason(&mut self, name: &str) -> Result<(), String> {
        if let Some(r) = DropReason::ALL.iter().find(|r| r.name() == name) {
            self.drops |= 1 << r.index();
            return Ok(());
        }
        if let Some(e) = Exception::ALL.iter().find(|e| e.name() == name) {
            self.exceptions |= 1 << e.index();
            return Ok(());
        }
        let drops: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        let excs: Vec<_> = Exception::ALL.iter().map(|e| e.name()).collect();
        Err(format!(
            "unknown reason {name:?}; drop reasons: {}; exceptions: {}",
            drops.join(", "),
            excs.join(", ")
        ))
    }

    /// Whether a frame with verdict `v` and bytes `frame` is to be captured.
    #[inline]
    pub fn matches(&self, v: &Verdict, frame: &[u8]) -> bool {
        self.kind_matches(CapturedKind::of(v)) && self.frame_matches(frame)
    }

    /// Whether the verdict's kind is one this capture wants.
    #[inline]
    pub fn kind_matches(&self, kind: CapturedKind) -> bool {
        match kind {
            CapturedKind::Forwarded => self.forwarded,
            CapturedKind::Drop(r) => self.drops & (1 << r.index()) != 0,
            CapturedKind::Exception(e) => {
                self.exceptions & (1 << e.index()) != 0
                    || counted_drop(e).is_some_and(|r| self.drops & (1 << r.index()) != 0)
            }
        }
    }

    /// Whether the frame's headers pass the frontend and flow limits (always, without limits).
    pub fn frame_matches(&self, frame: &[u8]) -> bool {
        if self.frontend.is_none() && self.flow.is_none() {
            return true;
        }
        let Some(t) = FrameTuple::parse(frame) else {
            return false;
        };
        if let Some(f) = &self.frontend {
            let port_ok = f.ports.0 <= t.dst.1 && t.dst.1 <= f.ports.1;
            if t.dst.0 != f.addr || (f.proto != 0 && (f.proto != t.proto || !port_ok)) {
                return false;
            }
        }
        if let Some(f) = &self.flow {
            let fwd = t.src == f.a && t.dst == f.b;
            let rev = t.src == f.b && t.dst == f.a;
            if f.proto != t.proto || !(fwd || rev) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 (+ 4 bytes of L4 ports) with the given fields.
    fn frame(proto: u8, src: [u8; 4], sp: u16, dst: [u8; 4], dp: u16, ttl: u8) -> Vec<u8> {
        let mut f = vec![0xa5u8; 12];
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 40, 0, 0, 0x40, 0, ttl, proto, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&sp.to_be_bytes());
        f.extend_from_slice(&dp.to_be_bytes());
        f.extend_from_slice(&[0; 16]);
        f
    }

    const VIP: [u8; 4] = [192, 0, 2, 10];
    const CLIENT: [u8; 4] = [10, 0, 0, 1];

    #[test]
    fn reasons_select_drops_and_the_exceptions_counted_under_them() {
        let mut m = CaptureMatch::default();
        m.add_reason("no_rule").unwrap();
        m.add_reason("ttl").unwrap();
        let f = frame(6, CLIENT, 1, VIP, 80, 64);
        assert!(m.matches(&Verdict::Drop(DropReason::NoRule), &f));
        assert!(!m.matches(&Verdict::Drop(DropReason::BadHeader), &f));
        assert!(m.matches(&Verdict::ToSlowPath(Exception::TtlExceeded), &f));
        assert!(!m.matches(&Verdict::ToSlowPath(Exception::Arp), &f));
        assert!(!m.matches(&Verdict::Forward { port: 0 }, &f));
        m.add_reason("arp").unwrap();
        m.forwarded = true;
        assert!(m.matches(&Verdict::ToSlowPath(Exception::Arp), &f));
        assert!(m.matches(&Verdict::Forward { port: 1 }, &f));
        let err = m.add_reason("nope").unwrap_err();
        assert!(
            err.contains("no_healthy_backend") && err.contains("icmp_error"),
            "{err}"
        );
    }

    #[test]
    fn all_drops_takes_every_reason_and_no_forwarded_frame() {
        let m = CaptureMatch::all_drops();
        for r in DropReason::ALL {
            assert!(m.matches(&Verdict::Drop(r), &[]));
        }
        assert!(!m.matches(&Verdict::Forward { port: 0 }, &[]));
        assert!(!m.matches(&Verdict::ToSlowPath(Exception::Arp), &[]));
    }

    #[test]
    fn frontend_and_rule_limits_look_at_the_destination() {
        let mut m = CaptureMatch::all_drops();
        m.frontend = Some(FrontendMatch {
            addr: Ipv4Addr::from(VIP).into(),
            proto: 0,
            ports: (0, 65535),
        });
        let drop = Verdict::Drop(DropReason::NoRule);
        assert!(m.matches(&drop, &frame(17, CLIENT, 5, VIP, 53, 64)));
        assert!(!m.matches(&drop, &frame(17, VIP, 53, CLIENT, 5, 64)));
        // A frame that does not parse as IPv4 cannot be to the frontend.
        assert!(!m.matches(&drop, &[0u8; 20]));
        m.frontend = Some(FrontendMatch {
            addr: Ipv4Addr::from(VIP).into(),
            proto: 6,
            ports: (80, 81),
        });
        assert!(m.matches(&drop, &frame(6, CLIENT, 5, VIP, 81, 64)));
        assert!(!m.matches(&drop, &frame(6, CLIENT, 5, VIP, 82, 64)));
        assert!(!m.matches(&drop, &frame(17, CLIENT, 5, VIP, 80, 64)));
    }

    /// Ethernet + IPv6 (a Hop-by-Hop options header when `hbh`) + 4 bytes of L4 ports.
    fn frame6(proto: u8, src: Ipv6Addr, sp: u16, dst: Ipv6Addr, dp: u16, hbh: bool) -> Vec<u8> {
        let mut f = vec![0xa5u8; 12];
        let first = if hbh { 0 } else { proto };
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 28, first, 64]);
        f.extend_from_slice(&src.octets());
        f.extend_from_slice(&dst.octets());
        if hbh {
            f.extend_from_slice(&[proto, 0, 1, 4, 0, 0, 0, 0]);
        }
        f.extend_from_slice(&sp.to_be_bytes());
        f.extend_from_slice(&dp.to_be_bytes());
        f.extend_from_slice(&[0; 16]);
        f
    }

    #[test]
    fn ipv6_frames_match_an_ipv6_frontend_rule_and_flow() {
        let vip: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let client: Ipv6Addr = "2001:db8:9::1".parse().unwrap();
        let mut m = CaptureMatch::all_drops();
        m.frontend = Some(FrontendMatch {
            addr: vip.into(),
            proto: 6,
            ports: (80, 80),
        });
        let drop = Verdict::Drop(DropReason::NoRule);
        for hbh in [false, true] {
            assert!(
                m.matches(&drop, &frame6(6, client, 5, vip, 80, hbh)),
                "{hbh}"
            );
            assert!(!m.matches(&drop, &frame6(6, client, 5, vip, 81, hbh)));
            assert!(!m.matches(&drop, &frame6(17, client, 5, vip, 80, hbh)));
            assert!(!m.matches(&drop, &frame6(6, vip, 80, client, 5, hbh)));
        }
        // An IPv4 frame to another family's frontend does not match.
        assert!(!m.matches(&drop, &frame(6, CLIENT, 5, VIP, 80, 64)));
        let flow = CaptureFlow::parse("[2001:db8:9::1]:5-[2001:db8::10]:80/tcp").unwrap();
        assert_eq!(flow.a, (IpAddr::V6(client), 5));
        let m = CaptureMatch {
            forwarded: true,
            flow: Some(flow),
            ..CaptureMatch::default()
        };
        let fwd = Verdict::Forward { port: 0 };
        assert!(m.matches(&fwd, &frame6(6, vip, 80, client, 5, false)));
        assert!(!m.matches(&fwd, &frame6(6, vip, 80, client, 6, false)));
        assert!(CaptureFlow::parse("[2001:db8::1:5-10.0.0.2:2/tcp").is_err());
        let f = frame6(17, client, 5, vip, 53, true);
        for n in 0..f.len() {
            let _ = FrameTuple::parse(&f[..n]);
        }
    }

    #[test]
    fn flow_limit_matches_both_directions() {
        let flow = CaptureFlow::parse("10.0.0.1:40000-192.0.2.10:80/tcp").unwrap();
        let m = CaptureMatch {
            forwarded: true,
            flow: Some(flow),
            ..CaptureMatch::default()
        };
        let fwd = Verdict::Forward { port: 0 };
        assert!(m.matches(&fwd, &frame(6, CLIENT, 40000, VIP, 80, 64)));
        assert!(m.matches(&fwd, &frame(6, VIP, 80, CLIENT, 40000, 64)));
        assert!(!m.matches(&fwd, &frame(6, CLIENT, 40001, VIP, 80, 64)));
        assert!(!m.matches(&fwd, &frame(17, CLIENT, 40000, VIP, 80, 64)));
        for bad in [
            "10.0.0.1:1-10.0.0.2:2",
            "10.0.0.1-10.0.0.2:2/tcp",
            "x:1-10.0.0.2:2/udp",
        ] {
            assert!(CaptureFlow::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tuple_parsing_never_reads_outside_the_frame() {
        let f = frame(6, CLIENT, 40000, VIP, 80, 64);
        for n in 0..f.len() {
            let _ = FrameTuple::parse(&f[..n]);
        }
        let t = FrameTuple::parse(&f).unwrap();
        assert_eq!(t.dst, (Ipv4Addr::from(VIP).into(), 80));
        let mut tagged = f[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0, 5]);
        tagged.extend_from_slice(&f[12..]);
        assert_eq!(FrameTuple::parse(&tagged), Some(t));
        assert_eq!(
            CapturedKind::Exception(Exception::TtlExceeded).describe(),
            "exception ttl_exceeded (drop ttl)"
        );
    }
}
