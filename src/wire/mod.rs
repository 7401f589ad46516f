//! Zero-copy packet views and builders: Ethernet (+ one 802.1Q tag), ARP, IPv4, TCP, UDP, ICMP,
//! Internet checksums (full and RFC 1624 incremental), a small packet-buffer trait, and builders for
//! the packets vipmux originates or encapsulates.
//!
//! # Views
//!
//! Every protocol has a view `Packet<T: AsRef<[u8]>>` (Ethernet: `Frame<T>`) wrapping a byte buffer
//! without copying. Getters need `T: AsRef<[u8]>`, setters `T: AsMut<[u8]>`. Field offsets live in a
//! private-by-convention `field` module per protocol (`pub mod field { pub const SRC_PORT: Field = 0..2; }`).
//!
//! * `new_unchecked(buffer)` wraps without any check; accessors may then panic on short buffers.
//! * `check_len()` validates the buffer against the header's own length fields.
//! * `new_checked(buffer)` = `new_unchecked` + `check_len`, the constructor for received bytes.
//!
//! **Contract:** once `check_len()` has returned `Ok(())` (or `new_checked` succeeded), no accessor,
//! getter or setter, of that view panics, whatever the bytes are. Setters that change a length
//! field (`set_header_len`, `set_total_len`, `set_len`, ...) can break that invariant; call
//! `check_len()` again after using them on a buffer you did not size yourself. Nothing here uses
//! `unsafe`.
//!
//! Accessors are `#[inline]` and do only the bounds-checked slice reads they name, so the data path
//! can call them per packet.

pub mod arp;
pub mod buf;
pub mod builder;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod tcp;
pub mod udp;

use core::fmt;

pub use arp::{Packet as ArpPacket, Repr as ArpRepr};
pub use buf::{PacketBuf, VecBuf};
pub use builder::{EncapSpec, FrameSpec, IcmpErrorKind, L2Spec, L4Spec};
pub use ethernet::{ethertype, Frame as EthernetFrame, L3Info, MacAddr, Repr as EthernetRepr};
pub use icmp::{InnerFlow, Packet as IcmpPacket};
pub use ipv4::{protocol, Packet as Ipv4Packet, Repr as Ipv4Repr};
pub use std::net::Ipv4Addr;
pub use tcp::{Flags as TcpFlags, Packet as TcpPacket};
pub use udp::Packet as UdpPacket;

/// A byte range of a header field, relative to the start of that header.
pub type Field = core::ops::Range<usize>;
/// A byte range from an offset to the end of the buffer.
pub type Rest = core::ops::RangeFrom<usize>;

/// The protocol layer an [`Error`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Ethernet II header.
    Ethernet,
    /// 802.1Q VLAN tag.
    Vlan,
    /// ARP packet.
    Arp,
    /// IPv4 header or packet.
    Ipv4,
    /// TCP segment.
    Tcp,
    /// UDP datagram.
    Udp,
    /// ICMP message (or the IPv4 header it quotes).
    Icmp,
    /// GUE encapsulation header.
    Gue,
    /// The packet buffer itself (headroom or output space).
    Buffer,
}

/// What went wrong at an [`Error`]'s offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The buffer ends before `required` bytes; it holds `actual` (both counted from the layer start).
    Truncated {
        /// Bytes the layer needs.
        required: usize,
        /// Bytes the buffer holds.
        actual: usize,
    },
    /// A header-length field (IPv4 IHL, TCP data offset) is below the minimum; value in bytes.
    BadHeaderLen(usize),
    /// A declared length (IPv4 total length, UDP length) does not fit the header or the buffer.
    BadLength {
        /// The length the header declares.
        declared: usize,
        /// The length available (buffer) or the minimum it must reach (header).
        actual: usize,
    },
    /// The IP version nibble is not 4.
    BadVersion(u8),
    /// A field holds a value this code does not handle (ARP hardware/protocol type, ICMP type ...).
    Unsupported(u16),
    /// A buffer has no room: not enough headroom to prepend or output space to write.
    NoRoom {
        /// Bytes needed.
        required: usize,
        /// Bytes available.
        available: usize,
    },
}

/// A parse or build error: which layer, what kind, and at which byte offset.
///
/// `offset` is the offset of the offending field relative to the start of the buffer that was
/// handed to the failing call (for a view constructor: the start of that layer's header). Use
/// [`Error::shifted`] to re-base it onto an enclosing frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error {
    /// The layer that failed.
    pub layer: Layer,
    /// What failed.
    pub kind: ErrorKind,
    /// Byte offset of the offending field.
    pub offset: usize,
}

impl Error {
    /// Builds an error.
    #[inline]
    pub const fn new(layer: Layer, kind: ErrorKind, offset: usize) -> Self {
        Error {
            layer,
            kind,
            offset,
        }
    }

    /// A `Truncated` error: the layer needs `required` bytes, the buffer has `actual`.
    #[inline]
    pub const fn truncated(layer: Layer, required: usize, actual: usize) -> Self {
        Error::new(layer, ErrorKind::Truncated { required, actual }, actual)
    }

    /// A `NoRoom` error on the `Buffer` layer.
    #[inline]
    pub const fn no_room(required: usize, available: usize) -> Self {
        Error::new(
            Layer::Buffer,
            ErrorKind::NoRoom {
                required,
                available,
            },
            0,
        )
    }

    /// The same error with `base` added to its offset (re-based onto an enclosing buffer).
    #[inline]
    pub const fn shifted(self, base: usize) -> Self {
        Error {
            offset: self.offset + base,
            ..self
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} at offset {}: ", self.layer, self.offset)?;
        match self.kind {
            ErrorKind::Truncated { required, actual } => {
                write!(f, "truncated, need {required} bytes, have {actual}")
            }
            ErrorKind::BadHeaderLen(v) => write!(f, "header length {v} below minimum"),
            ErrorKind::BadLength { declared, actual } => {
                write!(f, "declared length {declared} does not fit {actual}")
            }
            ErrorKind::BadVersion(v) => write!(f, "IP version {v}, expected 4"),
            ErrorKind::Unsupported(v) => write!(f, "unsupported value {v:#x}"),
            ErrorKind::NoRoom {
                required,
                available,
            } => write!(f, "no room: need {required} bytes, have {available}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result alias for this module.
pub type Result<T> = core::result::Result<T, Error>;

#[inline]
pub(crate) fn get_u16(b: &[u8], f: Field) -> u16 {
    let s = &b[f];
    u16::from_be_bytes([s[0], s[1]])
}

#[inline]
pub(crate) fn set_u16(b: &mut [u8], f: Field, v: u16) {
    b[f].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn get_u32(b: &[u8], f: Field) -> u32 {
    let s = &b[f];
    u32::from_be_bytes([s[0], s[1], s[2], s[3]])
}

#[inline]
pub(crate) fn set_u32(b: &mut [u8], f: Field, v: u32) {
    b[f].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn get_addr(b: &[u8], f: Field) -> Ipv4Addr {
    let s = &b[f];
    Ipv4Addr::new(s[0], s[1], s[2], s[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_display_and_shift() {
        let e = Error::truncated(Layer::Tcp, 20, 7).shifted(34);
        assert_eq!(e.offset, 41);
        assert_eq!(e.layer, Layer::Tcp);
        let s = e.to_string();
        assert!(
            s.contains("Tcp") && s.contains("20") && s.contains('7'),
            "{s}"
        );
    }
}
