//! A bounds-checked cursor over untrusted bytes, shared by the sniffers: every read returns
//! `None` past the end instead of panicking, so a parser is a chain of `?`.

/// Reads big-endian integers and byte runs from the front of a slice.
#[derive(Clone, Copy)]
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    /// The next `n` bytes.
    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    /// Skips `n` bytes.
    pub(super) fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    pub(super) fn u8(&mut self) -> Option<u8> {
        let (&b, tail) = self.0.split_first()?;
        self.0 = tail;
        Some(b)
    }

    pub(super) fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    pub(super) fn u24(&mut self) -> Option<u32> {
        let b = self.take(3)?;
        Some(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }

    pub(super) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    /// A QUIC variable-length integer (RFC 9000 §16): the top two bits of the first byte give
    /// its length, 1, 2, 4 or 8 bytes.
    pub(super) fn varint(&mut self) -> Option<u64> {
        let first = self.u8()?;
        let len = 1usize << (first >> 6);
        let mut v = u64::from(first & 0x3f);
        for &b in self.take(len - 1)? {
            v = v << 8 | u64::from(b);
        }
        Some(v)
    }

    /// A varint used as a length or count of bytes in this buffer.
    pub(super) fn varint_len(&mut self) -> Option<usize> {
        usize::try_from(self.varint()?).ok()
    }

    /// A run of bytes prefixed by a one-byte length.
    pub(super) fn bytes8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    /// A run of bytes prefixed by a two-byte length.
    pub(super) fn bytes16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many bytes are left.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Reader;

    #[test]
    fn varints_of_each_length() {
        // The examples of RFC 9000 §A.1.
        for (bytes, value) in [
            (
                &b"\xc2\x19\x7c\x5e\xff\x14\xe8\x8c"[..],
                151_288_809_941_952_652,
            ),
            (b"\x9d\x7f\x3e\x7d", 494_878_333),
            (b"\x7b\xbd", 15_293),
            (b"\x25", 37),
            (b"\x40\x25", 37),
        ] {
            let mut r = Reader(bytes);
            assert_eq!(r.varint(), Some(value));
            assert!(r.is_empty());
        }
        assert_eq!(Reader(b"\x9d\x7f\x3e").varint(), None);
        assert_eq!(Reader(b"").varint(), None);
    }

    #[test]
    fn reads_stop_at_the_end() {
        let mut r = Reader(b"\x00\x03ab");
        assert_eq!(r.bytes16(), None);
        let mut r = Reader(b"\x02ab");
        assert_eq!(r.bytes8(), Some(&b"ab"[..]));
        assert_eq!(r.u8(), None);
        assert_eq!(Reader(b"\x01\x02").u24(), None);
        assert_eq!(Reader(b"\x01\x02\x03").u32(), None);
    }
}
