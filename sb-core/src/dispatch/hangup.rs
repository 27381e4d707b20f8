//! Dialing while the client waits: part of the TCP client side of the dispatcher's loop
//! (`tcp.rs`). A client that hangs up while its flow is still dialing cancels the dial, so
//! a slow or tarpitting destination does not keep a task, a socket and a tracker entry for
//! a client that is gone until `connect_timeout` ends it (Go sing-box dials on).
//!
//! The client is read meanwhile: bytes it sends ahead (optimistic data, a request before a
//! half-close) are kept, up to a bound, and go upstream first. Only an end with nothing
//! sent, or a reset, counts as hanging up: a client that sent its request and then closed
//! its sending side still gets its answer.

use crate::adapter::BoxStream;
use std::future::Future;
use std::io;
use tokio::io::AsyncReadExt;

/// Bytes a client may send ahead while its flow dials; past this, it is not read until the
/// upstream is there (TCP then holds it back).
const MAX_EARLY: usize = 64 * 1024;

/// Runs `dial` while watching `client`; `None` when the client hung up first (the dial is
/// dropped, which cancels it). Bytes the client sent ahead are appended to `early`.
pub(super) async fn dial_unless_hung_up(
    client: &mut BoxStream,
    early: &mut Vec<u8>,
    dial: impl Future<Output = io::Result<BoxStream>>,
) -> Option<io::Result<BoxStream>> {
    tokio::select! {
        biased;
        dialed = dial => Some(dialed),
        () = hang_up(client, early) => None,
    }
}

/// Resolves when the client is gone: an end before any byte, or an error. Never resolves
/// once the client sent something and then ended its side, or filled `early`.
async fn hang_up(client: &mut BoxStream, early: &mut Vec<u8>) {
    loop {
        let room = MAX_EARLY.saturating_sub(early.len());
        if room == 0 {
            return std::future::pending().await;
        }
        early.reserve(room.min(16 * 1024));
        let mut limited = (&mut *client).take(room as u64);
        match limited.read_buf(early).await {
            Ok(0) if early.is_empty() => return,
            Ok(0) => return std::future::pending().await,
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    // Test code: a failed unwrap is a failed test, with the reason in the panic message.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    /// A dial that never ends by itself.
    async fn forever() -> io::Result<BoxStream> {
        std::future::pending().await
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_closes_without_a_byte_cancels_the_dial() {
        let (client, far) = tokio::io::duplex(1024);
        let mut client_side: BoxStream = crate::stream::Forward::boxed(far);
        drop(client);
        let mut early = Vec::new();
        let r = tokio::time::timeout(
            Duration::from_secs(1),
            dial_unless_hung_up(&mut client_side, &mut early, forever()),
        )
        .await
        .expect("the hang-up ends the dial");
        assert!(r.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_then_a_half_close_keeps_the_dial_and_the_bytes() {
        let (mut client, far) = tokio::io::duplex(1024);
        let mut client_side: BoxStream = crate::stream::Forward::boxed(far);
        client.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
        client.shutdown().await.unwrap();
        let mut early = Vec::new();
        let dial = async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Err(io::Error::other("dialed"))
        };
        let r = dial_unless_hung_up(&mut client_side, &mut early, dial).await;
        let Some(Err(e)) = r else {
            panic!("the dial must end by itself")
        };
        assert_eq!(e.to_string(), "dialed");
        assert_eq!(early, b"GET / HTTP/1.0\r\n\r\n");
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_sent_ahead_are_bounded() {
        let (mut client, far) = tokio::io::duplex(4 * MAX_EARLY);
        let mut client_side: BoxStream = crate::stream::Forward::boxed(far);
        client.write_all(&vec![7u8; 2 * MAX_EARLY]).await.unwrap();
        let mut early = Vec::new();
        let dial = async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Err(io::Error::other("dialed"))
        };
        assert!(dial_unless_hung_up(&mut client_side, &mut early, dial)
            .await
            .is_some());
        assert_eq!(early.len(), MAX_EARLY);
    }
}
