//! The QUIC sniffer behind the AEAD (`sb_core::sniff::sniff_packets` with `quic`): the
//! input's frames are sealed into client Initial packets with the public Initial keys
//! (`sb_fuzz::quic`), so what the fuzzer varies is what the sniffer reads once a packet
//! opens: the frame walk of an Initial payload (PADDING, PING, ACK, CRYPTO,
//! CONNECTION_CLOSE), the CRYPTO stream rebuilt by offset across packets, and the TLS
//! ClientHello parser it hands that stream to. Random datagrams, which stop at the packet
//! header or the AEAD, are the `sniff_packet` target's.
//!
//! Input: byte 0 picks the QUIC version and how later packets name their connection
//! (the first packet's ID, a new ID the server chose, or a new ID after a Retry, with its
//! own keys) and whether the first two packets share a datagram; byte 1 the Destination
//! Connection ID's length (8 to 20), whose bytes follow; then each packet's frames, led by
//! a two-byte length, up to 8 packets.
//!
//! Checked: no panic, and when QUIC claims the flow, every sniffer enabled gives the same
//! verdict unless DNS, which Go tries first, claims the first datagram.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sb_core::sniff::{self, sniff_packets, Sniffed};
use sb_fuzz::{length_prefixed, quic};

fuzz_target!(|data: &[u8]| {
    let [mode, cid_len, rest @ ..] = data else {
        return;
    };
    let version = quic::Version::pick(mode & 0x0f);
    let cid_len = 8 + usize::from(cid_len % 13);
    if rest.len() < cid_len {
        return;
    }
    let (first_cid, rest) = rest.split_at(cid_len);
    let later_cid: Vec<u8> = first_cid.iter().rev().map(|b| b ^ 0x5a).collect();

    let mut datagrams: Vec<Vec<u8>> = Vec::new();
    for (i, frames) in length_prefixed(rest, 8).into_iter().enumerate() {
        let (key_cid, cid) = match (i, mode >> 6) {
            (0, _) | (_, 0) => (first_cid, first_cid),
            // The server picked a new ID: still the first ID's keys (RFC 9001 §5.2).
            (_, 1) => (first_cid, later_cid.as_slice()),
            // After a Retry: the new ID and its own keys.
            _ => (later_cid.as_slice(), later_cid.as_slice()),
        };
        let packet = quic::seal(version, key_cid, cid, i as u32, frames);
        match datagrams.last_mut() {
            Some(first) if i == 1 && mode & 0x20 != 0 => first.extend_from_slice(&packet),
            _ => datagrams.push(packet),
        }
    }
    let packets: Vec<&[u8]> = datagrams.iter().map(Vec::as_slice).collect();
    let alone = sniff_packets(&packets, &["quic"]);
    let all = sniff_packets(&packets, &[]);
    if let (Sniffed::Yes(..), Some(first)) = (&alone, packets.first()) {
        if sniff::dns(first) == Sniffed::No {
            assert_eq!(all, alone);
        }
    }
});
