//! The connection to an external tor's control port: one command at a time, its reply read
//! with the sans-IO parser of `proto/tor_control.rs`, each bounded in time.

use crate::proto::tor_control::{Parser, Reply, MAX_LINE};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Bound on one command's reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to tor's control port.
pub struct Control {
    stream: BufReader<TcpStream>,
}

impl Control {
    /// Connects to `addr` and authenticates with the cookie tor wrote.
    pub async fn connect(addr: std::net::SocketAddr, cookie: &[u8]) -> io::Result<Control> {
        let stream = tokio::time::timeout(REPLY_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "control port: no answer"))??;
        let mut c = Control {
            stream: BufReader::new(stream),
        };
        let hex: String = cookie.iter().map(|b| format!("{b:02X}")).collect();
        c.ok(&format!("AUTHENTICATE {hex}")).await?;
        Ok(c)
    }

    /// Sends `command` and reads its reply.
    pub async fn command(&mut self, command: &str) -> io::Result<Reply> {
        let line = format!("{command}\r\n");
        self.stream.get_mut().write_all(line.as_bytes()).await?;
        tokio::time::timeout(REPLY_TIMEOUT, self.reply())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "control port: no reply"))?
    }

    /// Sends `command` and fails unless tor answers 250.
    pub async fn ok(&mut self, command: &str) -> io::Result<Reply> {
        let reply = self.command(command).await?;
        if reply.code != 250 {
            // The command itself may hold a password: only its verb is named.
            let verb = command.split(' ').next().unwrap_or("");
            return Err(io::Error::other(format!(
                "control port: {verb}: {} {}",
                reply.code,
                reply.lines.join(" ")
            )));
        }
        Ok(reply)
    }

    async fn reply(&mut self) -> io::Result<Reply> {
        let mut parser = Parser::default();
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = (&mut self.stream)
                .take(MAX_LINE as u64 + 2)
                .read_until(b'\n', &mut line)
                .await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "control port closed",
                ));
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            if let Some(reply) = parser
                .line(text)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            {
                return Ok(reply);
            }
        }
    }
}
