//! The frames of a decrypted Initial packet, and the CRYPTO stream they carry put back in
//! order. Clients such as Chrome cut their ClientHello into several CRYPTO frames, shuffle
//! them and spread them over more than one Initial packet, so the stream is rebuilt by offset
//! across every packet seen.

use crate::sniff::reader::Reader;
use crate::sniff::tls::MAX_HELLO;

/// How much of the CRYPTO stream is kept: a whole ClientHello of the largest size sniffed.
const CAP: usize = MAX_HELLO + 4;

const PADDING: u64 = 0x00;
const PING: u64 = 0x01;
const ACK: u64 = 0x02;
const ACK_ECN: u64 = 0x03;
const CRYPTO: u64 = 0x06;
const CONNECTION_CLOSE: u64 = 0x1c;

/// The CRYPTO stream of the Initial packets so far.
#[derive(Default)]
pub(super) struct CryptoStream {
    data: Vec<u8>,
    /// The byte ranges received, sorted and disjoint.
    have: Vec<(usize, usize)>,
}

impl CryptoStream {
    /// The bytes received contiguously from offset 0.
    pub(super) fn prefix(&self) -> &[u8] {
        match self.have.first() {
            Some(&(0, end)) => self.data.get(..end).unwrap_or_default(),
            _ => &[],
        }
    }

    /// Adds one CRYPTO frame's data; what lies past [`CAP`] is dropped.
    fn insert(&mut self, offset: u64, bytes: &[u8]) {
        let Ok(start) = usize::try_from(offset) else {
            return;
        };
        let end = start.saturating_add(bytes.len()).min(CAP);
        if start >= end {
            return;
        }
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        // A retransmission carries the same bytes, so overwriting is harmless.
        if let (Some(dst), Some(src)) = (self.data.get_mut(start..end), bytes.get(..end - start)) {
            dst.copy_from_slice(src);
        }
        self.have.push((start, end));
        self.have.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(self.have.len());
        for &(s, e) in &self.have {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.have = merged;
    }

    /// Walks the frames of one decrypted Initial payload, adding its CRYPTO data. `None` when
    /// a frame is malformed or of a type an Initial packet may not carry (RFC 9000 §12.4); as
    /// in Go, a packet with other frames (such as a later CONNECTION_CLOSE of type 0x1d) is not
    /// a client's first flight.
    pub(super) fn add_frames(&mut self, payload: &[u8]) -> Option<()> {
        let mut r = Reader(payload);
        let mut found = Vec::new();
        while !r.is_empty() {
            match r.varint()? {
                PADDING | PING => {}
                ty @ (ACK | ACK_ECN) => {
                    r.varint()?; // Largest Acknowledged
                    r.varint()?; // ACK Delay
                    let ranges = r.varint()?;
                    r.varint()?; // First ACK Range
                                 // Each range is two varints, at least two bytes: the payload bounds the loop.
                    for _ in 0..ranges {
                        r.varint()?; // Gap
                        r.varint()?; // ACK Range Length
                    }
                    if ty == ACK_ECN {
                        r.varint()?; // ECT0
                        r.varint()?; // ECT1
                        r.varint()?; // ECN-CE
                    }
                }
                CRYPTO => {
                    let offset = r.varint()?;
                    let len = r.varint_len()?;
                    found.push((offset, r.take(len)?));
                }
                CONNECTION_CLOSE => {
                    r.varint()?; // Error Code
                    r.varint()?; // Frame Type
                    let len = r.varint_len()?;
                    r.skip(len)?; // Reason Phrase
                }
                _ => return None,
            }
        }
        // Only a packet whose frames all parse adds to the stream.
        for (offset, bytes) in found {
            self.insert(offset, bytes);
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_out_of_order() {
        let mut s = CryptoStream::default();
        // CRYPTO(offset 3, "def"), PADDING, PING, CRYPTO(offset 6, "g").
        assert!(s
            .add_frames(b"\x06\x03\x03def\x00\x00\x01\x06\x06\x01g")
            .is_some());
        assert_eq!(s.prefix(), b"");
        // An ACK with one extra range, then CRYPTO(offset 0, "abcd") overlapping.
        assert!(s
            .add_frames(b"\x02\x05\x00\x01\x00\x01\x01\x06\x00\x04abcd")
            .is_some());
        assert_eq!(s.prefix(), b"abcdefg");
    }

    #[test]
    fn refuses_bad_frames() {
        let mut s = CryptoStream::default();
        // A STREAM frame (0x08) is not allowed in an Initial packet.
        assert!(s.add_frames(b"\x06\x00\x01a\x08\x00\x00").is_none());
        // CRYPTO data running past the payload.
        assert!(s.add_frames(b"\x06\x00\x05abc").is_none());
        // An ACK claiming more ranges than there are bytes.
        assert!(s.add_frames(b"\x02\x00\x00\x3f\x00").is_none());
        assert_eq!(s.prefix(), b"", "a refused packet adds nothing");
    }

    #[test]
    fn capped() {
        let mut s = CryptoStream::default();
        // An offset near 2^62 and one just below the cap: nothing huge is allocated.
        assert!(s
            .add_frames(b"\x06\xff\xff\xff\xff\xff\xff\xff\xf0\x01a")
            .is_some());
        s.insert(CAP as u64 - 1, b"xyz");
        assert!(s.data.len() <= CAP);
        assert_eq!(s.prefix(), b"");
    }
}
