//! ICMPv6 messages (RFC 4443, RFC 4861): echo, Packet Too Big (MTU), Destination Unreachable,
//! Time Exceeded and Parameter Problem with the IPv6 packet they quote, and Neighbour
//! Solicitation / Advertisement with their link-layer address options (a bounded option walk
//! that rejects length 0).
//!
//! A view must wrap exactly the ICMPv6 message (the upper-layer bytes of the IPv6 packet): the
//! checksum covers the whole buffer and the IPv6 pseudo-header.

use super::checksum;
use super::ethernet::MacAddr;
use super::ipv6::{self, next_header};
use super::{get_addr6, get_u16, get_u32, set_u16, set_u32, Error, ErrorKind, Layer, Result};
use std::net::Ipv6Addr;

/// Field offsets.
pub mod field {
    use crate::wire::Field;
    /// Message type.
    pub const TYPE: usize = 0;
    /// Code.
    pub const CODE: usize = 1;
    /// Checksum.
    pub const CHECKSUM: Field = 2..4;
    /// The 4 bytes after the checksum (meaning depends on the type).
    pub const REST: Field = 4..8;
    /// Echo identifier.
    pub const ECHO_IDENT: Field = 4..6;
    /// Echo sequence number.
    pub const ECHO_SEQNO: Field = 6..8;
    /// MTU of Packet Too Big, pointer of Parameter Problem.
    pub const MTU: Field = 4..8;
    /// Start of the data: echo payload, or the quoted packet of an error.
    pub const DATA: usize = 8;
    /// Neighbour Advertisement flags (R, S, O in the high bits).
    pub const ND_FLAGS: usize = 4;
    /// Target address of a Neighbour Solicitation or Advertisement.
    pub const ND_TARGET: Field = 8..24;
    /// Start of the Neighbour Discovery options.
    pub const ND_OPTIONS: usize = 24;
}

/// Header length (type, code, checksum, 4 type-specific bytes).
pub const HEADER_LEN: usize = 8;
/// Length of a Neighbour Solicitation or Advertisement without options.
pub const ND_HEADER_LEN: usize = 24;
/// Length of a link-layer address option for Ethernet.
pub const LL_OPTION_LEN: usize = 8;
/// The most Neighbour Discovery options the option walk reads.
pub const MAX_ND_OPTIONS: usize = 16;
/// Hop limit of every Neighbour Discovery packet (RFC 4861 §7.1: anything else is dropped).
pub const ND_HOP_LIMIT: u8 = 255;

/// Message types.
pub mod msg_type {
    /// Destination Unreachable.
    pub const DEST_UNREACHABLE: u8 = 1;
    /// Packet Too Big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time Exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter Problem.
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo Request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo Reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Neighbour Solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbour Advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

/// Codes of Destination Unreachable.
pub mod unreachable {
    /// No route to destination.
    pub const NO_ROUTE: u8 = 0;
    /// Communication administratively prohibited.
    pub const ADMIN_PROHIBITED: u8 = 1;
    /// Address unreachable.
    pub const ADDRESS: u8 = 3;
    /// Port unreachable.
    pub const PORT: u8 = 4;
}

/// Codes of Time Exceeded.
pub mod time_exceeded {
    /// Hop limit exceeded in transit.
    pub const HOP_LIMIT: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const REASSEMBLY: u8 = 1;
}

/// Neighbour Advertisement flags (the byte at [`field::ND_FLAGS`]).
pub mod nd_flags {
    /// Router.
    pub const ROUTER: u8 = 0x80;
    /// Solicited (an answer to a solicitation).
    pub const SOLICITED: u8 = 0x40;
    /// Override (replace a cached link-layer address).
    pub const OVERRIDE: u8 = 0x20;
}

/// Neighbour Discovery option types.
pub mod nd_option {
    /// Source link-layer address.
    pub const SOURCE_LL: u8 = 1;
    /// Target link-layer address.
    pub const TARGET_LL: u8 = 2;
}

/// The flow an ICMPv6 error refers to, read from its quoted IPv6 packet; addresses and ports are
/// those of the *original* packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InnerFlowV6 {
    /// Quoted source address.
    pub src_addr: Ipv6Addr,
    /// Quoted destination address.
    pub dst_addr: Ipv6Addr,
    /// Quoted upper-layer protocol (after the quoted extension headers).
    pub protocol: u8,
    /// Quoted (source, destination) ports for TCP/UDP, or (identifier, identifier) for an echo;
    /// `None` if the quote is too short, a non-first fragment or another protocol.
    pub ports: Option<(u16, u16)>,
    /// Offset of the quoted IPv6 header within the ICMPv6 message (always 8).
    pub ip_offset: usize,
    /// Offset of the quoted upper-layer header within the ICMPv6 message.
    pub l4_offset: usize,
}

/// Walks the Neighbour Discovery options in `opts` (all of them, at most [`MAX_ND_OPTIONS`]) and
/// returns the range of the first of type `kind`. Errors (offsets into `opts`): an option of
/// length 0 (`BadHeaderLen(0)`, RFC 4861 §4.6), one that does not fit (`Truncated`), more options
/// (`ChainTooLong`).
pub fn find_nd_option(opts: &[u8], kind: u8) -> Result<Option<core::ops::Range<usize>>> {
    let mut found = None;
    let mut off = 0;
    for _ in 0..MAX_ND_OPTIONS {
        if off == opts.len() {
            return Ok(found);
        }
        let Some(&[t, l]) = opts.get(off..off + 2) else {
            return Err(Error::new(
                Layer::Icmpv6,
                ErrorKind::Truncated {
                    required: off + 2,
                    actual: opts.len(),
                },
                off,
            ));
        };
        let len = l as usize * 8;
        if len == 0 {
            return Err(Error::new(Layer::Icmpv6, ErrorKind::BadHeaderLen(0), off));
        }
        if opts.len() - off < len {
            return Err(Error::new(
                Layer::Icmpv6,
                ErrorKind::Truncated {
                    required: off + len,
                    actual: opts.len(),
                },
                off,
            ));
        }
        if t == kind && found.is_none() {
            found = Some(off..off + len);
        }
        off += len;
    }
    if off == opts.len() {
        Ok(found)
    } else {
        Err(Error::new(
            Layer::Icmpv6,
            ErrorKind::ChainTooLong(MAX_ND_OPTIONS),
            off,
        ))
    }
}

/// A view of an ICMPv6 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    icmp_shared_getters!();

    /// Checks that the 8-byte header fits (Neighbour Discovery accessors check their own length).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            Err(Error::truncated(Layer::Icmpv6, HEADER_LEN, len))
        } else {
            Ok(())
        }
    }

    /// MTU (meaningful for Packet Too Big).
    #[inline]
    pub fn mtu(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::MTU)
    }
    /// True for error messages (types 0..=127), which quote the offending packet.
    #[inline]
    pub fn is_error(&self) -> bool {
        self.msg_type() < 128
    }
    /// Sum of the pseudo-header and the message.
    #[inline]
    fn sum_with(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u32 {
        let b = self.buffer.as_ref();
        let ph = checksum::pseudo_header_sum_v6(src, dst, next_header::ICMPV6, b.len() as u32);
        checksum::add(ph, checksum::sum(b))
    }
    /// True when the checksum over the pseudo-header and the whole message is valid.
    #[inline]
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        self.sum_with(src, dst) == 0xffff
    }
    /// The quoted IPv6 header of an error message (header-checked only; its payload is clamped).
    #[inline]
    pub fn inner_ipv6(&self) -> Result<ipv6::Packet<&[u8]>> {
        ipv6::Packet::new_checked_header(self.data()).map_err(|e| Error {
            layer: Layer::Icmpv6,
            ..e.shifted(field::DATA)
        })
    }
    /// The flow the error refers to: quoted addresses, upper-layer protocol (after the quoted
    /// extension headers, walked within the quote) and ports.
    pub fn inner_flow(&self) -> Result<InnerFlowV6> {
        let ip = self.inner_ipv6()?;
        let u = ip.upper_layer().map_err(|e| Error {
            layer: Layer::Icmpv6,
            ..e.shifted(field::DATA)
        })?;
        let l4 = ip
            .payload()
            .get(u.offset - ipv6::HEADER_LEN..)
            .unwrap_or(&[]);
        let first = u.fragment.is_none_or(|f| f.offset == 0);
        let ports = match u.protocol {
            next_header::TCP | next_header::UDP if first && l4.len() >= 4 => {
                Some((get_u16(l4, 0..2), get_u16(l4, 2..4)))
            }
            next_header::ICMPV6 if first && l4.len() >= 6 => {
                let id = get_u16(l4, 4..6);
                Some((id, id))
            }
            _ => None,
        };
        Ok(InnerFlowV6 {
            src_addr: ip.src_addr(),
            dst_addr: ip.dst_addr(),
            protocol: u.protocol,
            ports,
            ip_offset: field::DATA,
            l4_offset: field::DATA + u.offset,
        })
    }
    /// True for a Neighbour Solicitation or Advertisement long enough for its target.
    #[inline]
    fn is_nd(&self) -> bool {
        matches!(
            self.msg_type(),
            msg_type::NEIGHBOR_SOLICIT | msg_type::NEIGHBOR_ADVERT
        ) && self.buffer.as_ref().len() >= ND_HEADER_LEN
    }
    /// Neighbour Advertisement flags ([`nd_flags`]).
    #[inline]
    pub fn nd_flags(&self) -> u8 {
        self.buffer.as_ref()[field::ND_FLAGS]
    }
    /// Target address of a Neighbour Solicitation or Advertisement (`None` for other messages or
    /// one too short).
    #[inline]
    pub fn nd_target(&self) -> Option<Ipv6Addr> {
        self.is_nd()
            .then(|| get_addr6(self.buffer.as_ref(), field::ND_TARGET))
    }
    /// The option bytes of a Neighbour Solicitation or Advertisement (empty for other messages).
    #[inline]
    pub fn nd_options(&self) -> &[u8] {
        if self.is_nd() {
            &self.buffer.as_ref()[field::ND_OPTIONS..]
        } else {
            &[]
        }
    }
    /// The Ethernet address of the first link-layer address option of type `kind`
    /// ([`nd_option`]), after checking every option ([`find_nd_option`]; offsets of errors count
    /// from the start of the message). An option of another length than 8 is not Ethernet: `None`.
    pub fn nd_ll_addr(&self, kind: u8) -> Result<Option<MacAddr>> {
        let opts = self.nd_options();
        let r = find_nd_option(opts, kind).map_err(|e| e.shifted(field::ND_OPTIONS))?;
        Ok(r.filter(|r| r.len() == LL_OPTION_LEN)
            .map(|r| MacAddr::from_bytes(&opts[r.start + 2..r.end])))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    icmp_shared_setters!();

    /// Sets the MTU of Packet Too Big.
    #[inline]
    pub fn set_mtu(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), field::MTU, v)
    }
    /// Recomputes the checksum over the pseudo-header and the whole message.
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let c = !(self.sum_with(src, dst) as u16);
        self.set_checksum(c);
    }
    /// Updates the checksum for an address change in the pseudo-header.
    #[inline]
    pub fn update_checksum_for_addr_v6(&mut self, old: Ipv6Addr, new: Ipv6Addr) {
        let c = checksum::update_addr_v6(self.checksum(), old, new);
        self.set_checksum(c);
    }
}

/// A Neighbour Solicitation or Advertisement with at most its Ethernet link-layer address option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdRepr {
    /// Neighbour Solicitation (type 135).
    Solicit {
        /// The address whose link-layer address is asked for.
        target: Ipv6Addr,
        /// The sender's link-layer address (absent in duplicate address detection).
        source_ll: Option<MacAddr>,
    },
    /// Neighbour Advertisement (type 136).
    Advert {
        /// [`nd_flags`] bits.
        flags: u8,
        /// The address advertised.
        target: Ipv6Addr,
        /// Its link-layer address.
        target_ll: Option<MacAddr>,
    },
}

impl NdRepr {
    /// Parses a Neighbour Solicitation or Advertisement: code 0, 24 bytes at least, well-formed
    /// options (checksum and hop limit are the caller's to check).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        let t = p.msg_type();
        if p.code() != 0 {
            return Err(Error::new(
                Layer::Icmpv6,
                ErrorKind::Unsupported(p.code() as u16),
                field::CODE,
            ));
        }
        let Some(target) = p.nd_target() else {
            let len = p.buffer.as_ref().len();
            return Err(
                if matches!(t, msg_type::NEIGHBOR_SOLICIT | msg_type::NEIGHBOR_ADVERT) {
                    Error::truncated(Layer::Icmpv6, ND_HEADER_LEN, len)
                } else {
                    Error::new(Layer::Icmpv6, ErrorKind::Unsupported(t as u16), field::TYPE)
                },
            );
        };
        Ok(if t == msg_type::NEIGHBOR_SOLICIT {
            NdRepr::Solicit {
                target,
                source_ll: p.nd_ll_addr(nd_option::SOURCE_LL)?,
            }
        } else {
            NdRepr::Advert {
                flags: p.nd_flags() & (nd_flags::ROUTER | nd_flags::SOLICITED | nd_flags::OVERRIDE),
                target,
                target_ll: p.nd_ll_addr(nd_option::TARGET_LL)?,
            }
        })
    }

    /// The (type, flags, target, option type, link-layer address) this repr writes.
    #[inline]
    fn parts(&self) -> (u8, u8, Ipv6Addr, u8, Option<MacAddr>) {
        match *self {
            NdRepr::Solicit { target, source_ll } => (
                msg_type::NEIGHBOR_SOLICIT,
                0,
                target,
                nd_option::SOURCE_LL,
                source_ll,
            ),
            NdRepr::Advert {
                flags,
                target,
                target_ll,
            } => (
                msg_type::NEIGHBOR_ADVERT,
                flags,
                target,
                nd_option::TARGET_LL,
                target_ll,
            ),
        }
    }

    /// Length of the message this repr emits (24, or 32 with the option).
    #[inline]
    pub fn buffer_len(&self) -> usize {
        ND_HEADER_LEN + self.parts().4.map_or(0, |_| LL_OPTION_LEN)
    }

    /// Writes the message, checksum over the pseudo-header `src` -> `dst` included, into the front
    /// of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<usize> {
        let n = self.buffer_len();
        if buf.len() < n {
            return Err(Error::no_room(n, buf.len()));
        }
        let (t, flags, target, opt, ll) = self.parts();
        let b = &mut buf[..n];
        b.fill(0);
        b[field::TYPE] = t;
        b[field::ND_FLAGS] = flags;
        b[field::ND_TARGET].copy_from_slice(&target.octets());
        if let Some(mac) = ll {
            b[ND_HEADER_LEN] = opt;
            b[ND_HEADER_LEN + 1] = 1;
            b[ND_HEADER_LEN + 2..n].copy_from_slice(&mac.0);
        }
        Packet::new_unchecked(b).fill_checksum(src, dst);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::golden6::{self, bytes, CLIENT, SERVER};

    /// The ICMPv6 message of a golden Ethernet/IPv6 frame, and its (source, destination).
    fn message(lines: &[&str]) -> (Vec<u8>, Ipv6Addr, Ipv6Addr) {
        let f = bytes(lines);
        let ip = ipv6::Packet::new_checked(&f[14..]).unwrap();
        assert_eq!(ip.next_header(), next_header::ICMPV6);
        (ip.payload().to_vec(), ip.src_addr(), ip.dst_addr())
    }

    #[test]
    fn golden_echo() {
        let (m, s, d) = message(golden6::ECHO_REQUEST);
        let p = Packet::new_checked(&m[..]).unwrap();
        assert!(p.is_echo_request() && !p.is_error());
        assert_eq!(
            (p.echo_ident(), p.echo_seq_no(), p.data()),
            (0x1234, 7, &b"ping"[..])
        );
        assert!(p.verify_checksum(s, d));
        assert!(!p.verify_checksum(d, d));
        let mut q = m.clone();
        let mut q = Packet::new_unchecked(&mut q[..]);
        q.rewrite_type_code(msg_type::ECHO_REPLY, 0);
        let (r, rs, rd) = message(golden6::ECHO_REPLY);
        assert_eq!(q.into_inner(), &r[..]);
        assert_eq!((rs, rd), (d, s));
        assert_eq!(p.nd_target(), None);
        assert_eq!(p.nd_ll_addr(nd_option::SOURCE_LL), Ok(None));
    }

    #[test]
    fn golden_packet_too_big_quotes_the_flow() {
        let (m, s, d) = message(golden6::PTB);
        let p = Packet::new_checked(&m[..]).unwrap();
        assert!(p.is_error() && p.verify_checksum(s, d));
        assert_eq!(
            (p.msg_type(), p.code(), p.mtu()),
            (msg_type::PACKET_TOO_BIG, 0, 1400)
        );
        let f = p.inner_flow().unwrap();
        assert_eq!(
            f,
            InnerFlowV6 {
                src_addr: CLIENT,
                dst_addr: SERVER,
                protocol: next_header::UDP,
                ports: Some((1000, 2000)),
                ip_offset: 8,
                l4_offset: 48,
            }
        );
        // A quote cut inside the IPv6 header is an ICMPv6 error at an offset in the message.
        let e = Packet::new_checked(&m[..30])
            .unwrap()
            .inner_flow()
            .unwrap_err();
        assert_eq!((e.layer, e.offset), (Layer::Icmpv6, 30));
        // Too few upper-layer bytes: no ports.
        let f = Packet::new_checked(&m[..50]).unwrap().inner_flow().unwrap();
        assert_eq!(f.ports, None);
        // A quoted non-first fragment has no ports; a first one has.
        let frag = bytes(golden6::FRAGMENT);
        let mut e = vec![msg_type::TIME_EXCEEDED, 1, 0, 0, 0, 0, 0, 0];
        e.extend_from_slice(&frag);
        let f = Packet::new_checked(&e[..]).unwrap().inner_flow().unwrap();
        assert_eq!(
            (f.protocol, f.ports, f.l4_offset),
            (next_header::UDP, None, 56)
        );
        e[8 + 42..8 + 44].copy_from_slice(&[0, 1]);
        let f = Packet::new_checked(&e[..]).unwrap().inner_flow().unwrap();
        assert_eq!(f.ports, Some((0x3132, 0x3334)));
    }

    #[test]
    fn golden_neighbour_discovery() {
        let (ns, s, d) = message(golden6::NS);
        let p = Packet::new_checked(&ns[..]).unwrap();
        assert!(p.verify_checksum(s, d));
        let mac1 = MacAddr([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
        let mac2 = MacAddr([0x02, 0x66, 0x77, 0x88, 0x99, 0xaa]);
        let r = NdRepr::parse(&p).unwrap();
        assert_eq!(
            r,
            NdRepr::Solicit {
                target: SERVER,
                source_ll: Some(mac1)
            }
        );
        let mut out = [0u8; 40];
        assert_eq!(r.emit(&mut out, s, d).unwrap(), 32);
        assert_eq!(&out[..32], &ns[..]);
        let (na, s, d) = message(golden6::NA);
        let p = Packet::new_checked(&na[..]).unwrap();
        let r = NdRepr::parse(&p).unwrap();
        assert_eq!(
            r,
            NdRepr::Advert {
                flags: nd_flags::SOLICITED | nd_flags::OVERRIDE,
                target: SERVER,
                target_ll: Some(mac2)
            }
        );
        assert_eq!(r.emit(&mut out, s, d).unwrap(), 32);
        assert_eq!(&out[..32], &na[..]);
        assert_eq!(p.nd_ll_addr(nd_option::SOURCE_LL), Ok(None));
        assert!(r.emit(&mut out[..31], s, d).is_err());
    }

    #[test]
    fn nd_option_walk_rejects_length_zero_and_is_bounded() {
        let (mut ns, _, _) = message(golden6::NS);
        ns[25] = 0;
        let p = Packet::new_checked(&ns[..]).unwrap();
        let e = p.nd_ll_addr(nd_option::SOURCE_LL).unwrap_err();
        assert_eq!((e.kind, e.offset), (ErrorKind::BadHeaderLen(0), 24));
        assert!(NdRepr::parse(&p).is_err());
        ns[25] = 2; // 16 bytes, 8 there
        let e = Packet::new_checked(&ns[..])
            .unwrap()
            .nd_ll_addr(1)
            .unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::Truncated {
                required: 16,
                actual: 8
            }
        );
        // A trailing option after a good one is still checked.
        let mut opts = vec![1, 1, 2, 2, 2, 2, 2, 2, 9];
        assert!(find_nd_option(&opts, 1).is_err());
        opts.truncate(8);
        assert_eq!(find_nd_option(&opts, 1), Ok(Some(0..8)));
        assert_eq!(find_nd_option(&opts, 2), Ok(None));
        let many: Vec<u8> = (0..MAX_ND_OPTIONS)
            .flat_map(|_| [7, 1, 0, 0, 0, 0, 0, 0])
            .collect();
        assert_eq!(find_nd_option(&many, 1), Ok(None));
        let mut more = many.clone();
        more.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            find_nd_option(&more, 1).unwrap_err().kind,
            ErrorKind::ChainTooLong(MAX_ND_OPTIONS)
        );
        // Short or other messages have no target.
        assert_eq!(Packet::new_checked(&ns[..23]).unwrap().nd_target(), None);
        assert!(NdRepr::parse(&Packet::new_checked(&ns[..23]).unwrap()).is_err());
        ns[1] = 1;
        assert!(NdRepr::parse(&Packet::new_checked(&ns[..]).unwrap()).is_err());
        assert_eq!(
            Packet::new_checked(&ns[..7]).unwrap_err(),
            Error::truncated(Layer::Icmpv6, 8, 7)
        );
    }

    proptest::proptest! {
        /// A Neighbour Discovery message built from an `NdRepr` parses back to it.
        #[test]
        fn nd_repr_round_trip(
            advert in proptest::bool::ANY, flags in proptest::num::u8::ANY,
            target in proptest::num::u128::ANY, mac in proptest::option::of(proptest::array::uniform6(0u8..)),
        ) {
            let (target, ll) = (Ipv6Addr::from_bits(target), mac.map(MacAddr));
            let r = if advert {
                NdRepr::Advert { flags: flags & 0xe0, target, target_ll: ll }
            } else {
                NdRepr::Solicit { target, source_ll: ll }
            };
            let mut b = [0u8; 40];
            let n = r.emit(&mut b, CLIENT, SERVER).unwrap();
            let p = Packet::new_checked(&b[..n]).unwrap();
            proptest::prop_assert!(p.verify_checksum(CLIENT, SERVER));
            proptest::prop_assert_eq!(NdRepr::parse(&p).unwrap(), r);
        }

        /// Incremental type and address updates equal a full recompute.
        #[test]
        fn incremental_equals_recompute(
            data in proptest::collection::vec(proptest::num::u8::ANY, 8..64),
            src in proptest::num::u128::ANY, dst in proptest::num::u128::ANY,
            nsrc in proptest::num::u128::ANY, t in proptest::num::u8::ANY,
        ) {
            let (src, dst, nsrc) = (Ipv6Addr::from_bits(src), Ipv6Addr::from_bits(dst), Ipv6Addr::from_bits(nsrc));
            let mut b = data.clone();
            let mut p = Packet::new_unchecked(&mut b[..]);
            p.fill_checksum(src, dst);
            p.rewrite_type_code(t, 0);
            p.update_checksum_for_addr_v6(src, nsrc);
            proptest::prop_assert!(p.verify_checksum(nsrc, dst));
            let inc = p.checksum();
            p.fill_checksum(nsrc, dst);
            proptest::prop_assert_eq!(inc, p.checksum());
        }
    }
}
