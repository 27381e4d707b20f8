//! Helpers shared by sb's fuzz targets (`fuzz_targets/*.rs`): cutting one fuzz input into
//! the several messages, datagrams or packets a target feeds, in a way that mutations keep
//! meaningful. Each target's own file says which parser it reaches and what it checks.

pub mod ip;
pub mod quic;

/// Cuts `data` into pieces, each led by a two-byte big-endian length (a piece cut short by
/// the end of the input is kept as it is, and so is a last byte too short for a length); at
/// most `max` pieces, the bytes after them ignored.
pub fn length_prefixed(mut data: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !data.is_empty() && out.len() < max {
        if data.len() < 2 {
            out.push(data);
            break;
        }
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        let rest = &data[2..];
        let (piece, tail) = rest.split_at(len.min(rest.len()));
        out.push(piece);
        data = tail;
    }
    out
}

/// The sizes to feed `len` bytes in: each byte of `steps` (cycled) is one piece's size
/// (1 to 256 bytes), so the same body can be fed in many different splits. Every byte is
/// covered; with no steps it is one piece.
pub fn splits(len: usize, steps: &[u8]) -> Vec<std::ops::Range<usize>> {
    if steps.is_empty() {
        return std::iter::once(0..len).collect();
    }
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < len {
        let step = usize::from(steps[i % steps.len()]) + 1;
        let end = (at + step).min(len);
        out.push(at..end);
        at = end;
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_input() {
        assert_eq!(
            length_prefixed(b"\x00\x02ab\x00\x01c\x00\x09def", 8),
            vec![&b"ab"[..], b"c", b"def"]
        );
        assert_eq!(length_prefixed(b"\x00\x09ab", 8), vec![&b"ab"[..]]);
        assert_eq!(length_prefixed(b"\x00\x01abc", 1), vec![&b"a"[..]]);
        assert_eq!(length_prefixed(b"\x00\x00z", 8), vec![&b""[..], b"z"]);
        assert_eq!(splits(5, &[1]), vec![0..2, 2..4, 4..5]);
        assert_eq!(splits(3, &[]), vec![0..3]);
        assert!(splits(0, &[4]).is_empty());
    }

    /// The sealer makes packets the sniffer opens: the frames of RFC 9001 §A.2 (a
    /// ClientHello for example.com) sealed with each version's keys.
    #[test]
    fn sealed_initials_open_in_the_sniffer() {
        let hello = "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e86804fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578616d706c652e636f6dff01000100000a00080006001d00170018001000070005\
            04616c706e000500050100000000003300260024001d00209370b2c9caa47fbabaf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b0003020304000d0010000e0403050306030203080408050806002d00020101001c00024001003900320408ffffffffffffffff05048000ffff07048000ffff0801100104800075300901100f088394c8f03e51570806048000ffff";
        let frames: Vec<u8> = hello
            .split_whitespace()
            .collect::<String>()
            .as_bytes()
            .chunks(2)
            .map(|h| u8::from_str_radix(std::str::from_utf8(h).unwrap(), 16).unwrap())
            .collect();
        let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
        for v in 0..3 {
            let packet = quic::seal(quic::Version::pick(v), &dcid, &dcid, 0, &frames);
            assert_eq!(
                sb_core::sniff::sniff_packets(&[&packet], &["quic"]),
                sb_core::sniff::Sniffed::Yes("quic", Some("example.com".into()))
            );
        }
    }

    /// A fixed IPv4 UDP packet's header and UDP checksums verify (sum to all ones).
    #[test]
    fn fixed_checksums_verify() {
        let mut p = vec![
            0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 0, 0, 0, b'h', b'i', b'!']);
        ip::fix(&mut p);
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), 31);
        assert_eq!(u16::from_be_bytes([p[24], p[25]]), 11);
        let header: u32 = p[..20]
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        assert_eq!((header & 0xffff) + (header >> 16), 0xffff);
    }
}
