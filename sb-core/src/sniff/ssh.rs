//! SSH sniffer: the identification string an SSH 2 client sends first (RFC 4253 §4.2).

use super::Sniffed;

/// SSH: the client banner `SSH-2.0-...` (Go matches this exact prefix).
pub fn ssh(b: &[u8]) -> Sniffed {
    const PREFIX: &[u8] = b"SSH-2.0-";
    let n = b.len().min(PREFIX.len());
    if b[..n] != PREFIX[..n] {
        Sniffed::No
    } else if n < PREFIX.len() {
        Sniffed::NeedMore
    } else {
        Sniffed::Yes("ssh", None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner() {
        assert_eq!(ssh(b"SSH-2.0-OpenSSH_9.2\r\n"), Sniffed::Yes("ssh", None));
        assert_eq!(ssh(b"SSH-2."), Sniffed::NeedMore);
        assert_eq!(ssh(b"SSH-1.99-old\r\n"), Sniffed::No);
        assert_eq!(ssh(b"GET /"), Sniffed::No);
    }
}
