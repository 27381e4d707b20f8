//! The datagram sniffers (`sb_core::sniff`): `sniff_packets(datagrams, names)`, which the
//! `sniff` route action runs over a UDP flow's first datagrams, and each sniffer it
//! dispatches to: DNS, QUIC (its packet header walk and key derivation; the `sniff_quic`
//! target reaches past the AEAD), STUN, uTP, the BitTorrent UDP tracker, DTLS, NTP. Byte 0
//! of the input is the set of enabled sniffers (one bit each, none meaning all); the rest
//! is up to 8 datagrams, each led by a two-byte length.
//!
//! Checked: no panic in any sniffer on any datagram; a protocol decided from the first
//! datagram alone (all but QUIC) is decided the same whatever datagrams follow.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sb_core::sniff::{self, sniff_packets, Sniffed};
use sb_fuzz::length_prefixed;

const NAMES: [&str; 6] = ["dns", "quic", "stun", "bittorrent", "dtls", "ntp"];

fuzz_target!(|data: &[u8]| {
    let Some((&mask, rest)) = data.split_first() else {
        return;
    };
    let names: Vec<&str> = NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect();
    let datagrams = length_prefixed(rest, 8);
    for d in &datagrams {
        for f in [
            sniff::dns,
            sniff::stun,
            sniff::utp,
            sniff::udp_tracker,
            sniff::dtls,
            sniff::ntp,
        ] {
            let _ = f(d);
        }
        let _ = sniff::quic(&[d]);
    }
    let all = sniff_packets(&datagrams, &names);
    if let (Sniffed::Yes(protocol, _), Some(first)) = (&all, datagrams.first()) {
        if *protocol != "quic" {
            assert_eq!(sniff_packets(&[first], &names), all);
        }
    }
});
