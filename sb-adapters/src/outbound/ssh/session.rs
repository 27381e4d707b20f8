//! The one SSH session an `ssh` outbound shares between all its flows. The first flow dials
//! the server through the outbound's [`Dialer`] (so `detour`, `bind_interface` and
//! `routing_mark` apply) and authenticates; later flows open channels on it. Concurrent
//! first flows wait for that one attempt (the state lock is held only while connecting,
//! never while a channel opens). A session that ended (server gone, keepalives unanswered)
//! is noticed by the next flow and rebuilt once; after a failed attempt, flows fail at once
//! with the last error until a backoff (1 s doubling to 30 s, with jitter) has passed, so a
//! dead server costs neither hangs nor a connection storm. The backoff runs on tokio's clock,
//! so tests walk through it on paused time.

use super::settings::{rsa_hash, Settings};
use russh::client::{self, Handle};
use russh::keys::{PrivateKeyWithHashAlg, PublicKey};
use sb_core::dialer::Dialer;
use sb_core::flow::{Destination, FlowContext};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// First and largest wait between failed connection attempts.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Bound on the SSH handshake and authentication after the TCP connection is up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a session could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The server's key is not one of `host_key`.
    #[error("host key mismatch, server send {0}")]
    HostKeyMismatch(String),
    /// The SSH layer failed.
    #[error("{0}")]
    Ssh(#[from] russh::Error),
}

/// russh's callbacks for one session: only the server key check matters here.
pub struct Callbacks {
    host_keys: Vec<PublicKey>,
    warned: Arc<AtomicBool>,
    tag: String,
}

impl client::Handler for Callbacks {
    type Error = SessionError;

    async fn check_server_key(
        &mut self,
        server: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, SessionError> {
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = server else {
            return Err(SessionError::HostKeyMismatch(
                "a certificate, and sb does not trust SSH certificates".into(),
            ));
        };
        let text = key
            .to_openssh()
            .unwrap_or_else(|_| key.algorithm().to_string());
        if self.host_keys.is_empty() {
            // Go accepts any key when none is pinned; so does sb, but it says which key it
            // accepted (once), so the user can pin it.
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(target: "outbound", tag = %format!("outbound/ssh[{}]", self.tag),
                    "host_key is empty: accepting the server's key without checking it; pin it with \"host_key\": [\"{text}\"]");
            }
            return Ok(true);
        }
        if self
            .host_keys
            .iter()
            .any(|k| k.key_data() == key.key_data())
        {
            Ok(true)
        } else {
            Err(SessionError::HostKeyMismatch(text))
        }
    }
}

/// A live session.
pub type Session = Arc<Handle<Callbacks>>;

struct State {
    session: Option<Session>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: String,
}

/// The shared session of one outbound.
pub struct Sessions {
    tag: String,
    server: Destination,
    settings: Settings,
    dialer: Dialer,
    state: Mutex<State>,
    warned: Arc<AtomicBool>,
}

impl Sessions {
    /// A manager that connects on first use.
    pub fn new(tag: &str, server: Destination, settings: Settings, dialer: Dialer) -> Sessions {
        Sessions {
            tag: tag.to_string(),
            server,
            settings,
            dialer,
            state: Mutex::new(State {
                session: None,
                failures: 0,
                retry_at: None,
                last_error: String::new(),
            }),
            warned: Arc::default(),
        }
    }

    /// The dialer the session is made with; its `connect_timeout` also bounds each channel
    /// open on the session.
    pub fn dialer(&self) -> &Dialer {
        &self.dialer
    }

    /// The live session, connecting (or reconnecting) first when there is none.
    pub async fn get(&self, flow: &FlowContext) -> io::Result<Session> {
        let mut st = self.state.lock().await;
        if let Some(s) = &st.session {
            if !s.is_closed() {
                return Ok(s.clone());
            }
            tracing::info!(target: "outbound", tag = %self.label(), "ssh session to {} ended; reconnecting", self.server);
            st.session = None;
        }
        if let Some(at) = st.retry_at {
            let now = Instant::now();
            if now < at {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!(
                        "connect to ssh server: {} (next attempt in {:.1}s)",
                        st.last_error,
                        (at - now).as_secs_f64()
                    ),
                ));
            }
        }
        match self.connect(flow).await {
            Ok(s) => {
                st.session = Some(s.clone());
                st.failures = 0;
                st.retry_at = None;
                Ok(s)
            }
            Err(e) => {
                st.failures = st.failures.saturating_add(1);
                let delay = backoff(st.failures);
                st.retry_at = Some(Instant::now() + delay);
                st.last_error = e.to_string();
                tracing::error!(target: "outbound", tag = %self.label(), "connect to ssh server {}: {e}; next attempt in {:.1}s", self.server, delay.as_secs_f64());
                Err(io::Error::new(
                    e.kind(),
                    format!("connect to ssh server: {e}"),
                ))
            }
        }
    }

    fn label(&self) -> String {
        format!("outbound/ssh[{}]", self.tag)
    }

    async fn connect(&self, flow: &FlowContext) -> io::Result<Session> {
        let stream = self.dialer.connect_tcp(flow, &self.server).await?;
        let callbacks = Callbacks {
            host_keys: self.settings.host_keys.clone(),
            warned: self.warned.clone(),
            tag: self.tag.clone(),
        };
        let handshake = async {
            let mut handle =
                client::connect_stream(self.settings.config.clone(), stream, callbacks)
                    .await
                    .map_err(|e| match e {
                        SessionError::HostKeyMismatch(_) => {
                            io::Error::new(io::ErrorKind::PermissionDenied, e.to_string())
                        }
                        SessionError::Ssh(e) => ssh_io(e),
                    })?;
            self.authenticate(&mut handle).await?;
            Ok::<_, io::Error>(handle)
        };
        let handle = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "ssh handshake timed out"))??;
        Ok(Arc::new(handle))
    }

    /// Password first, then the key, as Go tries them; the error lists what was tried.
    async fn authenticate(&self, handle: &mut Handle<Callbacks>) -> io::Result<()> {
        let s = &self.settings;
        let mut tried = vec!["none"];
        let ssh = ssh_io;
        if let Some(p) = &s.password {
            tried.push("password");
            if handle
                .authenticate_password(s.user.clone(), p.clone())
                .await
                .map_err(ssh)?
                .success()
            {
                return Ok(());
            }
        }
        if let Some(key) = &s.key {
            tried.push("publickey");
            let hash = if key.algorithm().is_rsa() {
                rsa_hash(handle.best_supported_rsa_hash().await.map_err(ssh)?)
            } else {
                None
            };
            let with_hash = PrivateKeyWithHashAlg::new(key.clone(), hash);
            if handle
                .authenticate_publickey(s.user.clone(), with_hash)
                .await
                .map_err(ssh)?
                .success()
            {
                return Ok(());
            }
        }
        if tried.len() == 1
            && handle
                .authenticate_none(s.user.clone())
                .await
                .map_err(ssh)?
                .success()
        {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "ssh: handshake failed: ssh: unable to authenticate, attempted methods [{}], no supported methods remain",
                tried.join(" ")
            ),
        ))
    }
}

/// Backoff after `failures` failed attempts: 1 s doubling to 30 s, minus up to a quarter at
/// random so that many sb instances behind one server do not retry in step.
fn backoff(failures: u32) -> Duration {
    use rand::Rng;
    backoff_with(failures, rand::thread_rng().gen_range(0.0..MAX_JITTER))
}

/// Most of a backoff that jitter takes off.
const MAX_JITTER: f64 = 0.25;

/// [`backoff`] with the random part given: `jitter` in `0.0..MAX_JITTER` is the fraction
/// taken off (clamped, so a caller cannot make it negative or longer than the base).
fn backoff_with(failures: u32, jitter: f64) -> Duration {
    let exp = BACKOFF_MIN.saturating_mul(1u32 << failures.saturating_sub(1).min(5));
    let base = exp.min(BACKOFF_MAX);
    base.mul_f64(1.0 - jitter.clamp(0.0, MAX_JITTER))
}

/// A russh error as the `io::Error` a flow fails with, with a kind the inbounds can answer
/// by (SOCKS reply codes, HTTP 502/504): the socket's own error keeps its kind, a closed or
/// timed-out session says so; the text is russh's.
fn ssh_io(e: russh::Error) -> io::Error {
    let kind = match &e {
        russh::Error::IO(io) => return io::Error::new(io.kind(), e.to_string()),
        russh::Error::Disconnect | russh::Error::HUP => io::ErrorKind::ConnectionAborted,
        russh::Error::ConnectionTimeout
        | russh::Error::KeepaliveTimeout
        | russh::Error::InactivityTimeout => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_thirty_seconds_with_jitter() {
        for (n, max) in [
            (1, 1.0),
            (2, 2.0),
            (3, 4.0),
            (5, 16.0),
            (6, 30.0),
            (40, 30.0),
        ] {
            let d = backoff(n).as_secs_f64();
            assert!(d <= max && d >= max * 0.75, "failure {n}: {d}");
        }
    }

    #[test]
    fn backoff_without_jitter_doubles_from_one_to_thirty_seconds() {
        let secs: Vec<u64> = (1..=8).map(|n| backoff_with(n, 0.0).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff_with(u32::MAX, 0.0), BACKOFF_MAX);
        // Jitter takes off at most a quarter, whatever it is given.
        assert_eq!(backoff_with(3, MAX_JITTER), Duration::from_secs(3));
        assert_eq!(backoff_with(3, 5.0), Duration::from_secs(3));
        assert_eq!(backoff_with(3, -1.0), Duration::from_secs(4));
    }

    /// An outbound that refuses every connection and counts the attempts.
    struct Refusing(std::sync::atomic::AtomicUsize);

    impl sb_core::adapter::Outbound for Refusing {
        fn tag(&self) -> &str {
            "refusing"
        }
        fn kind(&self) -> &'static str {
            "test"
        }
        fn connect_tcp<'a>(
            &'a self,
            _flow: &'a FlowContext,
            _dest: &'a Destination,
        ) -> sb_core::adapter::BoxFuture<'a, io::Result<sb_core::adapter::BoxStream>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Err(io::Error::from(io::ErrorKind::ConnectionRefused)) })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failed_attempts_are_spaced_by_a_growing_jittered_backoff() {
        let refusing = Arc::new(Refusing(Default::default()));
        let detour = Arc::new(sb_core::dialer::Detour::new("refusing"));
        detour.bind(refusing.clone());
        let settings = Settings::from_config(&Default::default()).unwrap();
        let server = Destination::from_host("ssh.test", 22);
        let sessions = Sessions::new("s", server.clone(), settings, Dialer::Detour(detour));
        let flow = FlowContext::new(
            "in".into(),
            "test",
            sb_core::flow::Network::Tcp,
            "127.0.0.1:1".parse().unwrap(),
            server,
        );
        let dials = || refusing.0.load(Ordering::SeqCst);
        let step = Duration::from_millis(50);
        let e = sessions.get(&flow).await.err().unwrap();
        assert_eq!((dials(), e.kind()), (1, io::ErrorKind::ConnectionRefused));
        // After attempt n failed, flows fail at once, without dialing, until its backoff has
        // passed: at least three quarters of 1 s, 2 s, 4 s... (at most 30 s), at most all of it.
        for (attempt, full) in [
            (1, 1.0),
            (2, 2.0),
            (3, 4.0),
            (4, 8.0),
            (5, 16.0),
            (6, 30.0),
            (7, 30.0),
        ] {
            let mut waited = Duration::ZERO;
            loop {
                tokio::time::advance(step).await;
                waited += step;
                let e = sessions.get(&flow).await.err().unwrap();
                if dials() > attempt {
                    break;
                }
                assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
                assert!(e.to_string().contains("next attempt in"), "{e}");
            }
            assert_eq!(dials(), attempt + 1, "one attempt once the backoff passed");
            let waited = waited.as_secs_f64();
            assert!(
                waited >= full * (1.0 - MAX_JITTER) && waited <= full + step.as_secs_f64(),
                "after attempt {attempt}: the next one came after {waited}s"
            );
        }
    }
}
