use std::sync::Arc;

use tokio::sync::mpsc::Sender;

use super::WindowSizeRef;
use super::consumed::Consumed;
use crate::ChannelMsg;

/// A handle to the [`super::Channel`]'s to be able to transmit messages
/// to it and update it's `window_size`.
#[derive(Debug)]
pub struct ChannelRef {
    pub(super) sender: Sender<ChannelMsg>,
    pub(super) window_size: WindowSizeRef,
    // sb patch: what the channel's reader consumed, for the session to return to the
    // server's window (client channels only; see SB_PATCH.md).
    pub(super) consumed: Arc<Consumed>,
}

impl ChannelRef {
    pub fn new(sender: Sender<ChannelMsg>) -> Self {
        Self {
            sender,
            window_size: WindowSizeRef::new(0),
            consumed: Arc::default(),
        }
    }

    pub(crate) fn window_size(&self) -> &WindowSizeRef {
        &self.window_size
    }

    pub(crate) fn consumed(&self) -> &Arc<Consumed> {
        &self.consumed
    }
}

impl std::ops::Deref for ChannelRef {
    type Target = Sender<ChannelMsg>;

    fn deref(&self) -> &Self::Target {
        &self.sender
    }
}
