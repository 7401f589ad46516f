//! The fragment rejection handler: vipmux forwards no IP fragments (as Azure LB). Each fragment
//! handed to the slow path is counted, described in a rate-limited log line (source, destination,
//! protocol, identification, offset) and dropped.

use super::ratelimit::{LogLimiter, Nanos, RateSpec};
use super::SlowPathInterface;
use crate::wire::{ethernet, EthernetFrame, Ipv4Packet};
use std::net::Ipv4Addr;

/// What identifies a fragment in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentInfo {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// IP protocol.
    pub protocol: u8,
    /// IPv4 identification.
    pub ident: u16,
    /// Fragment offset in bytes.
    pub offset: u16,
    /// More-fragments flag.
    pub more_frags: bool,
}

/// Reads [`FragmentInfo`] from an Ethernet frame; `None` if it is not a parsable IPv4 packet.
pub fn fragment_info(frame: &[u8]) -> Option<FragmentInfo> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let l3 = eth.l3().ok()?;
    if l3.ethertype != ethernet::ethertype::IPV4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked_header(&frame[l3.offset..]).ok()?;
    Some(FragmentInfo {
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        protocol: ip.protocol(),
        ident: ip.ident(),
        offset: ip.frag_offset(),
        more_frags: ip.more_frags(),
    })
}

/// Counts and logs (rate-limited) rejected fragments.
#[derive(Debug, Clone)]
pub struct FragmentRejector {
    rejected: u64,
    logged: u64,
    log: LogLimiter,
}

impl FragmentRejector {
    /// A rejector logging at most `log_rate` lines, its clock starting at `now`.
    pub fn new(log_rate: RateSpec, now: Nanos) -> Self {
        FragmentRejector {
            rejected: 0,
            logged: 0,
            log: LogLimiter::new(log_rate, now),
        }
    }

    /// Changes the log rate (on reload).
    pub fn set_log_rate(&mut self, log_rate: RateSpec, now: Nanos) {
        self.log.set_spec(log_rate, now);
    }

    /// Rejects the fragment in `frame` received on `iface`: counts it and logs it unless over
    /// the log rate. Returns what was read from it (`None` if unparsable: still counted).
    pub fn reject(
        &mut self,
        frame: &[u8],
        iface: &SlowPathInterface,
        now: Nanos,
    ) -> Option<FragmentInfo> {
        self.rejected += 1;
        let info = fragment_info(frame);
        if let Some(suppressed) = self.log.check(now) {
            self.logged += 1;
            match info {
                Some(f) => tracing::warn!(
                    interface = %iface.name,
                    src = %f.src,
                    dst = %f.dst,
                    protocol = f.protocol,
                    id = f.ident,
                    offset = f.offset,
                    more_fragments = f.more_frags,
                    suppressed,
                    "dropped IP fragment: vipmux forwards no fragments"
                ),
                None => tracing::warn!(
                    interface = %iface.name,
                    suppressed,
                    "dropped unparsable IP fragment"
                ),
            }
        }
        info
    }

    /// Fragments rejected so far.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Log lines written so far.
    pub fn logged(&self) -> u64 {
        self.logged
    }
}

#[cfg(test)]
mod tests {
    use super::super::ratelimit::NANOS_PER_SEC;
    use super::*;
    use crate::wire::{FrameSpec, MacAddr};
    use std::net::SocketAddrV4;

    fn frag() -> Vec<u8> {
        let a = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 7), 5000);
        let b = SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 100), 53);
        let mut f = FrameSpec {
            ident: 0x4242,
            dont_frag: false,
            ..FrameSpec::udp(a, b, &[0u8; 64])
        }
        .to_vec();
        let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
        ip.set_more_frags(true);
        ip.fill_checksum();
        f
    }

    #[test]
    fn reads_the_fragment_and_rate_limits_logs() {
        let i = SlowPathInterface::new("dc", MacAddr([2; 6]), Ipv4Addr::new(10, 1, 0, 2), 24, None);
        let mut r = FragmentRejector::new(RateSpec::new(1, 2), 0);
        let f = frag();
        let info = r.reject(&f, &i, 0).unwrap();
        assert_eq!(
            info,
            FragmentInfo {
                src: Ipv4Addr::new(192, 0, 2, 7),
                dst: Ipv4Addr::new(10, 1, 0, 100),
                protocol: 17,
                ident: 0x4242,
                offset: 0,
                more_frags: true,
            }
        );
        for t in 1..100u64 {
            r.reject(&f, &i, t * NANOS_PER_SEC / 100);
        }
        // 100 fragments over 0.99 s: the burst of 2 logged.
        assert_eq!((r.rejected(), r.logged()), (100, 2));
        r.reject(&f, &i, 2 * NANOS_PER_SEC);
        assert_eq!(r.logged(), 3);
        assert!(r.reject(&[1, 2, 3], &i, 10 * NANOS_PER_SEC).is_none());
        assert_eq!(r.rejected(), 102);
    }
}
