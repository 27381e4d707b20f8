//! Bodies both ways. A response [`Body`] is read as it arrives, chunk by chunk, and holds
//! its connection until it is dropped; [`Body::read_limited`] collects it under a size cap
//! (refused early when `Content-Length` already says too much). A [`RequestBody`] is empty,
//! a buffer, or any stream of bytes.

use super::HttpError;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body as _, Frame, Incoming};
use tokio::task::JoinHandle;

/// A request body.
pub struct RequestBody(pub(super) BoxBody<Bytes, std::io::Error>);

impl RequestBody {
    /// No body.
    pub fn empty() -> RequestBody {
        RequestBody(Empty::new().map_err(|never| match never {}).boxed())
    }

    /// Any body whose chunks are [`Bytes`]: sent as it is produced (chunked on HTTP/1.1
    /// unless the request names a `Content-Length`).
    pub fn stream<B>(body: B) -> RequestBody
    where
        B: hyper::body::Body<Data = Bytes, Error = std::io::Error> + Send + Sync + 'static,
    {
        RequestBody(BoxBody::new(body))
    }
}

impl From<Bytes> for RequestBody {
    fn from(bytes: Bytes) -> RequestBody {
        RequestBody(Full::new(bytes).map_err(|never| match never {}).boxed())
    }
}

impl From<Vec<u8>> for RequestBody {
    fn from(bytes: Vec<u8>) -> RequestBody {
        Bytes::from(bytes).into()
    }
}

impl From<String> for RequestBody {
    fn from(text: String) -> RequestBody {
        Bytes::from(text).into()
    }
}

impl From<&'static str> for RequestBody {
    fn from(text: &'static str) -> RequestBody {
        Bytes::from_static(text.as_bytes()).into()
    }
}

impl From<&'static [u8]> for RequestBody {
    fn from(bytes: &'static [u8]) -> RequestBody {
        Bytes::from_static(bytes).into()
    }
}

/// What keeps a connection going while its response is read: the task driving the
/// connection (stopped when the body is dropped, so an abandoned download frees its socket)
/// and, on HTTP/2, the sender that keeps the connection open.
pub(super) struct ConnGuard {
    pub(super) task: Option<JoinHandle<()>>,
    pub(super) _h2: Option<hyper::client::conn::http2::SendRequest<BoxBody<Bytes, std::io::Error>>>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A response body, read incrementally.
pub struct Body {
    inner: Incoming,
    _conn: ConnGuard,
}

impl Body {
    pub(super) fn new(inner: Incoming, conn: ConnGuard) -> Body {
        Body { inner, _conn: conn }
    }

    /// The next chunk of data, `None` at the end. Trailers are skipped.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, HttpError> {
        loop {
            let Some(frame) = self.inner.frame().await else {
                return Ok(None);
            };
            let frame: Frame<Bytes> = frame.map_err(HttpError::from_hyper)?;
            if let Ok(data) = frame.into_data() {
                if !data.is_empty() {
                    return Ok(Some(data));
                }
            }
        }
    }

    /// The length the server announced, when it did.
    pub fn content_length(&self) -> Option<u64> {
        self.inner.size_hint().exact()
    }

    /// At most the first `max` bytes of the body, for an error message: what could be read
    /// before the end, an error or the cap.
    pub async fn read_prefix(mut self, max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while out.len() < max {
            match self.chunk().await {
                Ok(Some(chunk)) => {
                    let room = max - out.len();
                    out.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        out
    }

    /// The whole body, refusing more than `max` bytes.
    pub async fn read_limited(mut self, max: usize) -> Result<Vec<u8>, HttpError> {
        if self.inner.size_hint().lower() > max as u64 {
            return Err(HttpError::TooLarge(max));
        }
        let mut out = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            if chunk.len() > max - out.len() {
                return Err(HttpError::TooLarge(max));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}
