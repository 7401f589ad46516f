//! Capture files: a writer of pcapng (one interface block per appliance interface, the drop
//! reason and worker in each packet's comment) or classic pcap (microsecond timestamps), both
//! Ethernet, both readable by tcpdump and Wireshark.

use std::io::{self, Write};

/// LINKTYPE_ETHERNET.
const LINKTYPE_ETHERNET: u16 = 1;

/// Which file format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PcapFormat {
    /// pcapng: interface names, nanosecond timestamps, a comment per packet.
    Pcapng,
    /// Classic pcap: microsecond timestamps, no comments.
    Pcap,
}

/// One packet to write.
#[derive(Debug, Clone, Copy)]
pub struct PcapPacket<'a> {
    /// Interface index (into the names given to [`PcapWriter::new`]).
    pub interface: u32,
    /// Wall-clock time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Length on the wire.
    pub orig_len: u32,
    /// Captured bytes.
    pub data: &'a [u8],
    /// Packet comment (pcapng only).
    pub comment: &'a str,
}

/// Writes packets to `W` in a [`PcapFormat`].
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    format: PcapFormat,
}

/// Appends `bytes` and zero padding to a multiple of 4.
fn put_padded(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(bytes);
    buf.resize(buf.len() + (4 - bytes.len() % 4) % 4, 0);
}

/// Appends a pcapng option (code, length, padded value).
fn put_option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
    buf.extend_from_slice(&code.to_le_bytes());
    buf.extend_from_slice(&(value.len() as u16).to_le_bytes());
    put_padded(buf, value);
}

/// A pcapng block of `kind` around `body` (lengths filled in), little-endian.
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let total = (12 + body.len()) as u32;
    let mut b = Vec::with_capacity(total as usize);
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(body);
    b.extend_from_slice(&total.to_le_bytes());
    b
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header: for pcapng the section header and one interface description per
    /// name in `interfaces` (snap length `snaplen`, nanosecond timestamps).
    pub fn new(
        mut out: W,
        format: PcapFormat,
        interfaces: &[String],
        snaplen: u32,
    ) -> io::Result<Self> {
        match format {
            PcapFormat::Pcap => {
                let mut h = Vec::with_capacity(24);
                h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
                h.extend_from_slice(&2u16.to_le_bytes());
                h.extend_from_slice(&4u16.to_le_bytes());
                h.extend_from_slice(&[0; 8]);
                h.extend_from_slice(&snaplen.to_le_bytes());
                h.extend_from_slice(&u32::from(LINKTYPE_ETHERNET).to_le_bytes());
                out.write_all(&h)?;
            }
            PcapFormat::Pcapng => {
                let mut shb = Vec::new();
                shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
                shb.extend_from_slice(&1u16.to_le_bytes());
                shb.extend_from_slice(&0u16.to_le_bytes());
                shb.extend_from_slice(&(-1i64).to_le_bytes());
                put_option(&mut shb, 4, b"vipmux capture");
                put_option(&mut shb, 0, &[]);
                out.write_all(&block(0x0a0d_0d0a, &shb))?;
                for name in interfaces {
                    let mut idb = Vec::new();
                    idb.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
                    idb.extend_from_slice(&0u16.to_le_bytes());
                    idb.extend_from_slice(&snaplen.to_le_bytes());
                    put_option(&mut idb, 2, name.as_bytes());
                    put_option(&mut idb, 9, &[9]);
                    put_option(&mut idb, 0, &[]);
                    out.write_all(&block(1, &idb))?;
                }
            }
        }
        Ok(PcapWriter { out, format })
    }

    /// Writes one packet.
    pub fn write(&mut self, p: &PcapPacket<'_>) -> io::Result<()> {
        let caplen = p.data.len() as u32;
        let mut b = Vec::with_capacity(p.data.len() + p.comment.len() + 48);
        match self.format {
            PcapFormat::Pcap => {
                b.extend_from_slice(&((p.ts_ns / 1_000_000_000) as u32).to_le_bytes());
                b.extend_from_slice(&((p.ts_ns % 1_000_000_000 / 1000) as u32).to_le_bytes());
                b.extend_from_slice(&caplen.to_le_bytes());
                b.extend_from_slice(&p.orig_len.to_le_bytes());
                b.extend_from_slice(p.data);
            }
            PcapFormat::Pcapng => {
                let mut body = Vec::with_capacity(b.capacity());
                body.extend_from_slice(&p.interface.to_le_bytes());
                body.extend_from_slice(&((p.ts_ns >> 32) as u32).to_le_bytes());
                body.extend_from_slice(&(p.ts_ns as u32).to_le_bytes());
                body.extend_from_slice(&caplen.to_le_bytes());
                body.extend_from_slice(&p.orig_len.to_le_bytes());
                put_padded(&mut body, p.data);
                if !p.comment.is_empty() {
                    put_option(&mut body, 1, p.comment.as_bytes());
                    put_option(&mut body, 0, &[]);
                }
                b = block(6, &body);
            }
        }
        self.out.write_all(&b)
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    const FRAME: &[u8] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00, 0x45];

    fn packet(comment: &str) -> PcapPacket<'_> {
        PcapPacket {
            interface: 1,
            ts_ns: 1_700_000_000_123_456_789,
            orig_len: 60,
            data: FRAME,
            comment,
        }
    }

    #[test]
    fn classic_pcap_has_the_header_and_microsecond_records() {
        let mut w = PcapWriter::new(Vec::new(), PcapFormat::Pcap, &[], 2048).unwrap();
        w.write(&packet("ignored")).unwrap();
        let b = w.into_inner();
        assert_eq!(u32_at(&b, 0), 0xa1b2_c3d4);
        assert_eq!(u32_at(&b, 16), 2048);
        assert_eq!(u32_at(&b, 20), 1);
        assert_eq!(u32_at(&b, 24), 1_700_000_000);
        assert_eq!(u32_at(&b, 28), 123_456);
        assert_eq!((u32_at(&b, 32), u32_at(&b, 36)), (15, 60));
        assert_eq!(&b[40..], FRAME);
    }

    /// Splits a pcapng file into (type, body) blocks, checking both length fields.
    fn blocks(mut b: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let (kind, len) = (u32_at(b, 0), u32_at(b, 4) as usize);
            assert_eq!(len % 4, 0);
            assert_eq!(u32_at(b, len - 4) as usize, len);
            out.push((kind, b[8..len - 4].to_vec()));
            b = &b[len..];
        }
        out
    }

    #[test]
    fn pcapng_has_interfaces_and_commented_packets() {
        let names = ["lan".to_string(), "wan0".to_string()];
        let mut w = PcapWriter::new(Vec::new(), PcapFormat::Pcapng, &names, 128).unwrap();
        w.write(&packet("drop no_rule; worker 0")).unwrap();
        w.write(&packet("")).unwrap();
        let b = blocks(&w.into_inner());
        let kinds: Vec<u32> = b.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, [0x0a0d_0d0a, 1, 1, 6, 6]);
        assert_eq!(u32_at(&b[0].1, 0), 0x1a2b_3c4d);
        // Interface block: link type, snap length, then the if_name option.
        let idb = &b[2].1;
        assert_eq!(u16::from_le_bytes([idb[0], idb[1]]), 1);
        assert_eq!(u32_at(idb, 4), 128);
        assert_eq!(&idb[8..12], &[2, 0, 4, 0]);
        assert_eq!(&idb[12..16], b"wan0");
        // Packet block: interface, timestamp, lengths, padded data, comment.
        let epb = &b[3].1;
        assert_eq!(u32_at(epb, 0), 1);
        let ts = (u64::from(u32_at(epb, 4)) << 32) | u64::from(u32_at(epb, 8));
        assert_eq!(ts, 1_700_000_000_123_456_789);
        assert_eq!((u32_at(epb, 12), u32_at(epb, 16)), (15, 60));
        assert_eq!(&epb[20..35], FRAME);
        assert_eq!(&epb[35..36], &[0]);
        let comment = "drop no_rule; worker 0";
        assert_eq!(&epb[36..40], &[1, 0, comment.len() as u8, 0]);
        assert_eq!(&epb[40..40 + comment.len()], comment.as_bytes());
        // Without a comment: no options at all.
        assert_eq!(b[4].1.len(), 20 + 16);
    }
}
