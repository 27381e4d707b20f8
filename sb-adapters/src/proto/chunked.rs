//! HTTP/1.1 chunked bodies, sans-IO: a scanner that is shown the bytes of a chunked body as
//! they arrive and says how many of them belong to the body and whether it has ended. The
//! HTTP proxy forwards chunked bodies as they are (chunks, extensions, trailers) and only
//! needs to know where each message ends, so nothing is decoded or held.
//!
//! The grammar is RFC 9112 section 7.1, read strictly (CRLF line ends, hex sizes of at most
//! 16 digits, bounded size lines and trailers): a forwarder that is lenient where the origin
//! is strict could be made to see a different message boundary than the origin does.

/// The longest chunk-size line (size and extensions) accepted.
const MAX_SIZE_LINE: usize = 4096;
/// The most trailer bytes accepted.
const MAX_TRAILERS: usize = 64 * 1024;

/// Bytes that are not a chunked body.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The chunk-size line is not hex digits followed by optional extensions.
    #[error("malformed chunk size")]
    Size,
    /// A line did not end with CRLF.
    #[error("malformed chunk line end")]
    LineEnd,
    /// A size line or the trailers are longer than accepted.
    #[error("chunk line or trailers too long")]
    TooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In a size line: the value so far, its digit count, and whether extensions started.
    Size {
        value: u64,
        digits: u8,
        ext: bool,
    },
    /// After the size line's CR.
    SizeLf {
        value: u64,
    },
    /// Chunk data still to come.
    Data(u64),
    /// After the data: CR, then LF.
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final CRLF).
    TrailerStart,
    /// Inside a trailer line.
    TrailerLine,
    /// After a trailer line's CR.
    TrailerLf,
    /// After the final CR.
    EndLf,
    /// The body has ended.
    Done,
}

/// Follows one chunked body.
#[derive(Debug, Clone)]
pub struct Chunked {
    state: State,
    /// Bytes of the current size line, or of all trailers.
    line: usize,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked::new()
    }
}

impl Chunked {
    /// A scanner at the start of a body.
    pub fn new() -> Chunked {
        Chunked {
            state: State::Size {
                value: 0,
                digits: 0,
                ext: false,
            },
            line: 0,
        }
    }

    /// True once the final chunk and trailers have been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Scans the next bytes of the body: returns how many of them belong to it (all of `b`
    /// unless the body ends inside it). After the end it consumes nothing.
    pub fn scan(&mut self, b: &[u8]) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < b.len() {
            if let State::Data(left) = self.state {
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(b.len() - i);
                i += take;
                let left = left - take as u64;
                self.state = if left == 0 {
                    State::DataCr
                } else {
                    State::Data(left)
                };
                continue;
            }
            if self.state == State::Done {
                break;
            }
            self.step(b[i])?;
            i += 1;
        }
        Ok(i)
    }

    /// One byte outside chunk data.
    fn step(&mut self, c: u8) -> Result<(), ChunkError> {
        self.state = match self.state {
            State::Size { value, digits, ext } => {
                self.line += 1;
                if self.line > MAX_SIZE_LINE {
                    return Err(ChunkError::TooLong);
                }
                match c {
                    b'\r' if digits > 0 => State::SizeLf { value },
                    b'\r' | b'\n' => return Err(ChunkError::Size),
                    _ if ext => State::Size { value, digits, ext },
                    b';' | b' ' | b'\t' if digits > 0 => State::Size {
                        value,
                        digits,
                        ext: true,
                    },
                    _ => {
                        let d = char::from(c).to_digit(16).ok_or(ChunkError::Size)?;
                        if digits >= 16 {
                            return Err(ChunkError::Size);
                        }
                        State::Size {
                            value: value
                                .checked_mul(16)
                                .and_then(|v| v.checked_add(u64::from(d)))
                                .ok_or(ChunkError::Size)?,
                            digits: digits + 1,
                            ext: false,
                        }
                    }
                }
            }
            State::SizeLf { value } => {
                if c != b'\n' {
                    return Err(ChunkError::LineEnd);
                }
                self.line = 0;
                if value == 0 {
                    State::TrailerStart
                } else {
                    State::Data(value)
                }
            }
            State::DataCr if c == b'\r' => State::DataLf,
            State::DataLf if c == b'\n' => State::Size {
                value: 0,
                digits: 0,
                ext: false,
            },
            State::DataCr | State::DataLf => return Err(ChunkError::LineEnd),
            State::TrailerStart | State::TrailerLine | State::TrailerLf => {
                self.line += 1;
                if self.line > MAX_TRAILERS {
                    return Err(ChunkError::TooLong);
                }
                match (self.state, c) {
                    (State::TrailerStart, b'\r') => State::EndLf,
                    (State::TrailerLf, b'\n') => State::TrailerStart,
                    (State::TrailerLf, _) | (_, b'\n') => return Err(ChunkError::LineEnd),
                    (_, b'\r') => State::TrailerLf,
                    _ => State::TrailerLine,
                }
            }
            State::EndLf if c == b'\n' => State::Done,
            State::EndLf => return Err(ChunkError::LineEnd),
            // `scan` handles data and never steps once done.
            State::Data(_) | State::Done => self.state,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scans `b` fed in pieces of `step` bytes; returns the body length and whether it ended.
    fn scan_in(b: &[u8], step: usize) -> Result<(usize, bool), ChunkError> {
        let mut c = Chunked::new();
        let mut used = 0;
        for piece in b.chunks(step) {
            let n = c.scan(piece)?;
            used += n;
            if n < piece.len() {
                break;
            }
        }
        Ok((used, c.is_done()))
    }

    #[test]
    fn bodies_end_where_the_last_chunk_and_trailers_end() {
        let body: &[u8] = b"5\r\nhello\r\n6;name=v\r\n world\r\n0\r\n\r\n";
        let mut wire = body.to_vec();
        wire.extend_from_slice(b"GET /next HTTP/1.1\r\n");
        for step in [1, 2, 3, 7, wire.len()] {
            assert_eq!(scan_in(&wire, step), Ok((body.len(), true)), "step {step}");
        }
        let trailers: &[u8] = b"A\r\n0123456789\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\n";
        let mut wire = trailers.to_vec();
        wire.extend_from_slice(b"tail");
        for step in [1, 5, wire.len()] {
            assert_eq!(scan_in(&wire, step), Ok((trailers.len(), true)));
        }
        // Upper-case hex and an incomplete body.
        assert_eq!(scan_in(b"1F\r\n", 100), Ok((4, false)));
        assert_eq!(scan_in(b"0\r\n\r", 100), Ok((4, false)));
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for bad in [
            &b"\r\n"[..],
            b"x\r\n",
            b"5\nhello",
            b"5\r\nhelloX",
            b"5\r\nhello\rX",
            b"0\r\nX-Trailer\n",
            b"0\r\n\rX",
            b";ext\r\n",
            b"11111111111111111\r\n",
        ] {
            assert!(scan_in(bad, 1).is_err(), "{bad:?}");
            assert!(scan_in(bad, bad.len()).is_err(), "{bad:?}");
        }
        // Size lines and trailers are bounded.
        let long = format!("1;{}\r\n", "e".repeat(MAX_SIZE_LINE));
        assert_eq!(scan_in(long.as_bytes(), 100), Err(ChunkError::TooLong));
        let trailers = format!("0\r\n{}", "t".repeat(MAX_TRAILERS + 1));
        assert_eq!(scan_in(trailers.as_bytes(), 1000), Err(ChunkError::TooLong));
        // The largest 16-digit size is accepted as a length; it just never ends here.
        assert_eq!(scan_in(b"ffffffffffffffff\r\nab", 100), Ok((20, false)));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let alphabet = b"0123456789abcdefg;\r\n \t";
        for seed in 0..3000u32 {
            let b: Vec<u8> = (0..48u32)
                .map(|i| {
                    let x = seed
                        .wrapping_mul(2654435761)
                        .wrapping_add(i.wrapping_mul(97));
                    alphabet[(x >> 11) as usize % alphabet.len()]
                })
                .collect();
            let _ = scan_in(&b, 1 + (seed as usize % 5));
        }
    }
}
