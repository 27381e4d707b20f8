//! The stream sniffers (`sb_core::sniff`): `sniff(buf, names)`, which the `sniff` route
//! action runs over a TCP flow's first bytes after each read, and each sniffer it dispatches
//! to: TLS ClientHello (SNI), HTTP/1 request (Host), DNS over TCP, BitTorrent handshake,
//! SSH banner, RDP connection request. Byte 0 of the input is the set of enabled sniffers
//! (one bit each, none meaning all, as an empty `sniffer` list does); the rest is the stream.
//!
//! Checked: no panic in any sniffer, on the whole stream and on a prefix cut where byte 0's
//! top bits say; `sniff` answers what Go's order gives from the sniffers' own answers
//! (the first enabled `Yes` in order, else `NeedMore` if an enabled sniffer needs more,
//! else `No`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sb_core::sniff::{self, Sniffed};

/// A sniffer over a stream's first bytes.
type Sniffer = fn(&[u8]) -> Sniffed;

/// The stream sniffers, in Go's order, with the name `sniff` enables each by.
const SNIFFERS: [(&str, Sniffer); 6] = [
    ("tls", sniff::tls),
    ("http", sniff::http),
    ("dns", sniff::dns_stream),
    ("bittorrent", sniff::bittorrent),
    ("ssh", sniff::ssh),
    ("rdp", sniff::rdp),
];

fn check(buf: &[u8], names: &[&str]) {
    let mut expected = None;
    let mut need_more = false;
    for (name, f) in SNIFFERS {
        let got = f(buf);
        if !(names.is_empty() || names.contains(&name)) || expected.is_some() {
            continue;
        }
        match got {
            Sniffed::No => {}
            Sniffed::NeedMore => need_more = true,
            yes => expected = Some(yes),
        }
    }
    let expected = expected.unwrap_or(if need_more {
        Sniffed::NeedMore
    } else {
        Sniffed::No
    });
    assert_eq!(sniff::sniff(buf, names), expected);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mask, stream)) = data.split_first() else {
        return;
    };
    let names: Vec<&str> = SNIFFERS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, (name, _))| *name)
        .collect();
    check(stream, &names);
    // A cut the way a read would leave it, at a point the top two bits of byte 0 pick.
    let cut = stream.len() * usize::from(mask >> 6) / 4;
    check(&stream[..cut], &names);
});
