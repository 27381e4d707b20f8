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
        return vec![0..len];
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
            length_prefixed(b"\x00\x02ab\x00\x01cdef", 8),
            vec![&b"ab"[..], b"c", b"def"]
        );
        assert_eq!(length_prefixed(b"\x00\x09ab", 8), vec![&b"ab"[..]]);
        assert_eq!(length_prefixed(b"\x00\x01abc", 1), vec![&b"a"[..]]);
        assert_eq!(length_prefixed(b"\x00\x00z", 8), vec![&b""[..], b"z"]);
        assert_eq!(splits(5, &[1]), vec![0..2, 2..4, 4..5]);
        assert_eq!(splits(3, &[]), vec![0..3]);
        assert!(splits(0, &[4]).is_empty());
    }
}
