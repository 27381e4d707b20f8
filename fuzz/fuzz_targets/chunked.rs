//! The chunked body scanner (`sb_adapters::proto::chunked::Chunked`) the HTTP proxy follows
//! request and response bodies with, fed the body in the pieces the reads would give. The
//! first two input bytes say how the rest is split.
//!
//! Checked: no panic; the body's length, whether it ended, and whether it is malformed come
//! out the same whatever the split (the same bytes in one piece, one byte at a time, or in
//! the input's split); a body that ended at `n` bytes ends at `n` when given only those.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sb_adapters::proto::chunked::{ChunkError, Chunked};
use sb_fuzz::splits;

/// Scans `body` in the pieces `steps` gives: the bytes that belong to the body and whether
/// it ended, or the error.
fn scan(body: &[u8], steps: &[u8]) -> Result<(usize, bool), ChunkError> {
    let mut c = Chunked::new();
    let mut used = 0;
    for piece in splits(body.len(), steps) {
        let n = c.scan(&body[piece.clone()])?;
        assert!(n <= piece.len());
        used += n;
        if n < piece.len() {
            assert!(c.is_done(), "bytes left over before the end");
            break;
        }
    }
    Ok((used, c.is_done()))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (steps, body) = data.split_at(2);
    let whole = scan(body, &[]);
    assert_eq!(scan(body, steps), whole, "split as {steps:?}");
    if body.len() <= 4096 {
        assert_eq!(scan(body, &[0]), whole, "one byte at a time");
    }
    if let Ok((n, true)) = whole {
        assert_eq!(scan(&body[..n], &[]), Ok((n, true)));
    }
});
