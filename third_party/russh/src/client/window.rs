// sb patch (see SB_PATCH.md): the client returns a channel's window to the server only as
// the channel's reader consumes data, so one reader that stops reading stalls its own
// channel (its window runs out) and never the session loop, which serves every channel.
//
// - Incoming CHANNEL_DATA / CHANNEL_EXTENDED_DATA debits the window and is queued for
//   the reader without waiting: the queue has room for a whole window of data, and a
//   server that sends beyond the window (RFC 4254 section 5.2) is disconnected.
// - The reader counts what it hands to the application (`channels::consumed`) and, each
//   half window, wakes the session through the unbounded priority queue
//   (`Msg::WindowConsumed`); the session sends CHANNEL_WINDOW_ADJUST for the count.
// - Data for a channel nobody reads any more is returned to the window at once.

use std::sync::Arc;

use log::error;
use ssh_encoding::Encode;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::mpsc::error::TrySendError;

use super::{Config, Msg, Session};
use crate::channels::ChannelRef;
use crate::channels::consumed::{Consumed, Reporter, batch};
use crate::{ChannelId, ChannelMsg, msg};

/// Capacity of a client channel's queue: every queued data message carries at least one
/// byte of window, so a well-behaved server can never fill it with data; the configured
/// `channel_buffer_size` is left for the other messages.
pub(crate) fn channel_capacity(config: &Config) -> usize {
    config
        .channel_buffer_size
        .saturating_add(config.window_size as usize)
        .max(1)
}

/// Informational messages (`WindowAdjusted`, dropped when there is no room, as upstream
/// does) may only use half the room left beyond a window of data, so that they never take
/// the room data needs, nor that of the few control messages (EOF, close, replies).
pub(crate) fn room_for_info(chan: &ChannelRef, config: &Config) -> bool {
    let reserved = (config.window_size as usize).saturating_add(config.channel_buffer_size / 2);
    chan.capacity() > reserved
}

/// How a client channel's reader wakes the session.
#[derive(Debug)]
pub(crate) struct Notifier {
    sender: UnboundedSender<Msg>,
    batch: u32,
}

impl Notifier {
    pub(crate) fn new(sender: UnboundedSender<Msg>, batch: u32) -> Self {
        Self { sender, batch }
    }

    /// The reader's end for channel `id`, counting into `consumed` (shared with the
    /// session's `ChannelRef`).
    pub(crate) fn reporter(&self, id: ChannelId, consumed: Arc<Consumed>) -> Reporter {
        let sender = self.sender.clone();
        Reporter::new(
            consumed,
            self.batch,
            Box::new(move || {
                // Unbounded: never blocks. Fails only when the session is gone.
                let _ = sender.send(Msg::WindowConsumed { id });
            }),
        )
    }
}

impl Session {
    /// `msg` carries `len` bytes of CHANNEL_DATA or CHANNEL_EXTENDED_DATA for the
    /// established channel `id`: debit its window and queue `msg` without waiting.
    pub(crate) fn channel_data_in(
        &mut self,
        id: ChannelId,
        msg: ChannelMsg,
        len: usize,
    ) -> Result<(), crate::Error> {
        let Some(enc) = self.common.encrypted.as_mut() else {
            return Ok(());
        };
        let Some(params) = enc.channels.get_mut(&id) else {
            return Ok(());
        };
        let len = match u32::try_from(len) {
            Ok(len) if len <= params.sender_window_size => len,
            _ => {
                error!("channel {id}: the server sent {len} bytes, beyond the window");
                return Err(crate::Error::Inconsistent);
            }
        };
        params.sender_window_size -= len;
        if len == 0 {
            // Nothing to deliver (and an empty Data would read as end of stream).
            return Ok(());
        }
        let threshold = batch(self.common.config.window_size);
        let Some(chan) = self.channels.get(&id) else {
            return self.return_window(id, len);
        };
        match chan.try_send(msg) {
            Ok(()) => Ok(()),
            // The reader is gone: the data is dropped, so it counts as consumed.
            Err(TrySendError::Closed(_)) => {
                let consumed = chan.consumed().clone();
                if consumed.add(len, threshold) {
                    return self.return_window(id, consumed.take());
                }
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                error!("channel {id}: the server overran the channel's queue");
                Err(crate::Error::Inconsistent)
            }
        }
    }

    /// The reader of channel `id` consumed a batch. A channel already closed is ignored.
    pub(crate) fn window_consumed(&mut self, id: ChannelId) -> Result<(), crate::Error> {
        let Some(chan) = self.channels.get(&id) else {
            return Ok(());
        };
        let n = chan.consumed().take();
        self.return_window(id, n)
    }

    /// Gives `n` bytes of window back to the server (CHANNEL_WINDOW_ADJUST).
    fn return_window(&mut self, id: ChannelId, n: u32) -> Result<(), crate::Error> {
        let Some(enc) = self.common.encrypted.as_mut() else {
            return Ok(());
        };
        let Some(params) = enc.channels.get_mut(&id) else {
            return Ok(());
        };
        if n == 0 {
            return Ok(());
        }
        params.sender_window_size = params.sender_window_size.saturating_add(n);
        push_packet!(enc.write, {
            enc.write.push(msg::CHANNEL_WINDOW_ADJUST);
            params.recipient_channel.encode(&mut enc.write)?;
            n.encode(&mut enc.write)?;
        });
        Ok(())
    }
}
