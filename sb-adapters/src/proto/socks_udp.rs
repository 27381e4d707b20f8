//! SOCKS5 UDP request datagrams (RFC 1928 §7): `RSV RSV FRAG ATYP DST.ADDR DST.PORT DATA`.
//! Fragmented datagrams (FRAG != 0) are dropped, as most servers do.

use super::socks::{address, encode_address, SocksError};
use sb_core::flow::Destination;

/// Splits a client datagram into its destination and payload offset.
pub fn decode(b: &[u8]) -> Result<Option<(Destination, usize)>, SocksError> {
    if b.len() < 4 {
        return Err(SocksError::Malformed("UDP header"));
    }
    if b[2] != 0 {
        // Fragments are not supported.
        return Ok(None);
    }
    match address(&b[3..])? {
        Some((dest, n)) => Ok(Some((dest, 3 + n))),
        None => Err(SocksError::Malformed("UDP header")),
    }
}

/// Prefixes `payload` with the header naming `from` (a domain too long for the header is an
/// error, never cut).
pub fn encode(from: &Destination, payload: &[u8]) -> Result<Vec<u8>, SocksError> {
    let mut out = Vec::with_capacity(payload.len() + 22);
    out.extend_from_slice(&[0, 0, 0]);
    encode_address(&mut out, from)?;
    out.extend_from_slice(payload);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_fragments() {
        let d = Destination::from_host("10.0.0.1", 53);
        let pkt = encode(&d, b"query").unwrap();
        let (dest, off) = decode(&pkt).unwrap().unwrap();
        assert_eq!((dest, &pkt[off..]), (d, &b"query"[..]));
        let mut frag = pkt.clone();
        frag[2] = 1;
        assert_eq!(decode(&frag).unwrap(), None);
        assert!(decode(&[0, 0]).is_err());
        assert!(decode(&[0, 0, 0, 1, 1]).is_err());
    }
}
