//! BitTorrent sniffers: the peer-wire handshake over TCP (BEP 3), and over UDP a uTP packet
//! (BEP 29) or a UDP tracker `connect` request (BEP 15), the three Go recognises.

use super::reader::Reader;
use super::Sniffed;

/// BitTorrent peer handshake: 19 then `BitTorrent protocol`.
pub fn bittorrent(b: &[u8]) -> Sniffed {
    const MAGIC: &[u8] = b"\x13BitTorrent protocol";
    let n = b.len().min(MAGIC.len());
    if b[..n] != MAGIC[..n] {
        Sniffed::No
    } else if n < MAGIC.len() {
        Sniffed::NeedMore
    } else {
        Sniffed::Yes("bittorrent", None)
    }
}

/// uTP (BEP 29): version 1, a packet type from ST_DATA (0) to ST_SYN (4), a 20-byte header,
/// then a chain of extensions of known types (0 to 4), each inside the datagram.
pub fn utp(p: &[u8]) -> Sniffed {
    const HEADER: usize = 20;
    let (Some(&type_version), Some(&first_extension)) = (p.first(), p.get(1)) else {
        return Sniffed::No;
    };
    if p.len() < HEADER || type_version & 0x0f != 1 || type_version >> 4 > 4 {
        return Sniffed::No;
    }
    let mut r = Reader(&p[HEADER..]);
    let mut extension = first_extension;
    // Each extension names the type of the next; 0 ends the chain. The datagram bounds it.
    while extension != 0 {
        let (Some(next), Some(len)) = (r.u8(), r.u8()) else {
            return Sniffed::No;
        };
        if next > 4 || r.skip(usize::from(len)).is_none() {
            return Sniffed::No;
        }
        extension = next;
    }
    Sniffed::Yes("bittorrent", None)
}

/// A UDP tracker `connect` request (BEP 15): the protocol id `0x41727101980`, action 0.
pub fn udp_tracker(p: &[u8]) -> Sniffed {
    const PROTOCOL_ID: u64 = 0x0417_2710_1980;
    let mut r = Reader(p);
    let (Some(hi), Some(lo), Some(action)) = (r.u32(), r.u32(), r.u32()) else {
        return Sniffed::No;
    };
    // Action 0 is `connect`; a transaction id (4 bytes) follows.
    if (u64::from(hi) << 32 | u64::from(lo)) == PROTOCOL_ID && action == 0 && r.len() >= 4 {
        Sniffed::Yes("bittorrent", None)
    } else {
        Sniffed::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A uTP ST_SYN as BEP 29 lays it out: type 4 version 1, no extension, connection id,
    /// timestamps, window, seq_nr 1, ack_nr 0.
    const UTP_SYN: &[u8] =
        b"\x41\x00\x30\x39\x12\x34\x56\x78\x00\x00\x00\x00\x00\x10\x00\x00\x00\x01\x00\x00";

    #[test]
    fn peer_handshake() {
        assert_eq!(
            bittorrent(b"\x13BitTorrent protocol\0\0"),
            Sniffed::Yes("bittorrent", None)
        );
        assert_eq!(bittorrent(b"\x13BitTorr"), Sniffed::NeedMore);
        assert_eq!(bittorrent(b"\x13BitTorrent pr0tocol"), Sniffed::No);
    }

    #[test]
    fn utp_packets() {
        assert_eq!(utp(UTP_SYN), Sniffed::Yes("bittorrent", None));
        assert_eq!(utp(&UTP_SYN[..19]), Sniffed::No);
        // A selective-ack extension (type 1) of 4 bytes, then the end of the chain.
        let mut sack = UTP_SYN.to_vec();
        sack[0] = 0x21; // ST_STATE
        sack[1] = 1;
        sack.extend_from_slice(&[0, 4, 0xff, 0, 0, 0]);
        assert_eq!(utp(&sack), Sniffed::Yes("bittorrent", None));
        // The extension runs past the datagram.
        assert_eq!(utp(&sack[..sack.len() - 1]), Sniffed::No);
        // An unknown extension type.
        sack[20] = 9;
        assert_eq!(utp(&sack), Sniffed::No);
        // Version 2, type 5.
        let mut bad = UTP_SYN.to_vec();
        bad[0] = 0x42;
        assert_eq!(utp(&bad), Sniffed::No);
        bad[0] = 0x51;
        assert_eq!(utp(&bad), Sniffed::No);
    }

    #[test]
    fn tracker_connect() {
        let mut connect = 0x0417_2710_1980_u64.to_be_bytes().to_vec();
        connect.extend_from_slice(&[0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(udp_tracker(&connect), Sniffed::Yes("bittorrent", None));
        assert_eq!(udp_tracker(&connect[..15]), Sniffed::No);
        connect[11] = 1; // announce, which needs a connection id first
        assert_eq!(udp_tracker(&connect), Sniffed::No);
    }
}
