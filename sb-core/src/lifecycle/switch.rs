//! The handler an instance gives its inbounds: the instance's dispatcher behind a switch, so
//! an inbound kept running across a reload ([`super::Instance::reload`]) hands its next flows
//! to the new config's dispatcher without being rebuilt. Flows already handed over keep the
//! dispatcher they started with.

use crate::adapter::{BoxFuture, BoxPacketConn, BoxStream, FlowHandler, PingVerdict, Responder};
use crate::dispatch::Dispatcher;
use crate::flow::FlowContext;
use arc_swap::ArcSwap;
use std::sync::Arc;

/// A [`FlowHandler`] that forwards to the dispatcher it currently points at.
pub(super) struct Switch(ArcSwap<Dispatcher>);

impl Switch {
    pub(super) fn new(dispatcher: Arc<Dispatcher>) -> Arc<Switch> {
        Arc::new(Switch(ArcSwap::new(dispatcher)))
    }

    /// Points the next flows at `dispatcher`.
    pub(super) fn point_at(&self, dispatcher: Arc<Dispatcher>) {
        self.0.store(dispatcher);
    }
}

impl FlowHandler for Switch {
    fn handle_tcp(
        self: Arc<Self>,
        flow: FlowContext,
        stream: BoxStream,
        responder: Box<dyn Responder>,
    ) -> BoxFuture<'static, ()> {
        self.0.load_full().handle_tcp(flow, stream, responder)
    }

    fn handle_udp(
        self: Arc<Self>,
        flow: FlowContext,
        client: BoxPacketConn,
    ) -> BoxFuture<'static, ()> {
        self.0.load_full().handle_udp(flow, client)
    }

    fn handle_ping(self: Arc<Self>, flow: FlowContext) -> BoxFuture<'static, PingVerdict> {
        self.0.load_full().handle_ping(flow)
    }
}
