//! sb: when a `TcpStream` wakes the socket task. Every wake costs the task a poll of the
//! whole interface (and, on a multi-threaded runtime, often a wake across threads), so a
//! read or write wakes it only when it gives the task work.

use std::{
    future::Future,
    pin::{pin, Pin},
    sync::Arc,
    task::{Context, Poll},
};

use futures::task::noop_waker_ref;
use spin::Mutex as SpinMutex;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::Notify,
};

use super::{growth::new_control, TcpStream};

fn stream() -> (TcpStream, Arc<Notify>) {
    let notify = Arc::new(Notify::new());
    let stream = TcpStream {
        src_addr: "10.0.0.1:1000".parse().unwrap(),
        dst_addr: "10.0.0.2:2000".parse().unwrap(),
        notify: notify.clone(),
        control: Arc::new(SpinMutex::new(new_control((1 << 20, 1 << 20)))),
    };
    (stream, notify)
}

/// Whether the socket task was woken since the last call (takes the stored permit).
fn woken(notify: &Notify) -> bool {
    let mut cx = Context::from_waker(noop_waker_ref());
    let notified = pin!(notify.notified());
    notified.poll(&mut cx).is_ready()
}

/// What the socket task moves into the stream's receive ring.
fn received(stream: &TcpStream, data: &[u8]) {
    let moved = stream.control.lock().recv_buffer.enqueue_slice(data);
    assert_eq!(moved, data.len());
}

fn read(stream: &mut TcpStream, len: usize) -> usize {
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut space = vec![0u8; len];
    let mut buf = ReadBuf::new(&mut space);
    match Pin::new(stream).poll_read(&mut cx, &mut buf) {
        Poll::Ready(Ok(())) => buf.filled().len(),
        other => panic!("read: {other:?}"),
    }
}

fn write(stream: &mut TcpStream, data: &[u8]) -> usize {
    let mut cx = Context::from_waker(noop_waker_ref());
    match Pin::new(stream).poll_write(&mut cx, data) {
        Poll::Ready(Ok(n)) => n,
        other => panic!("write: {other:?}"),
    }
}

#[test]
fn a_read_wakes_the_socket_task_only_when_it_left_data_behind() {
    let (mut stream, notify) = stream();
    received(&stream, &[7u8; 3000]);

    // The task drained smoltcp's buffer into the ring: reading gives it nothing to do.
    assert_eq!(read(&mut stream, 1000), 1000);
    assert!(!woken(&notify));

    // The ring was full and the task left data in smoltcp's buffer: the read that makes
    // room wakes it, once.
    stream.control.lock().recv_held = true;
    assert_eq!(read(&mut stream, 1000), 1000);
    assert!(woken(&notify));
    assert_eq!(read(&mut stream, 1000), 1000);
    assert!(!woken(&notify));
}

#[test]
fn a_write_wakes_the_socket_task_only_into_an_empty_ring() {
    let (mut stream, notify) = stream();
    assert_eq!(write(&mut stream, &[1u8; 1000]), 1000);
    assert!(woken(&notify));

    // Data still in the ring: the task moves it when smoltcp has room, without a wake.
    assert_eq!(write(&mut stream, &[2u8; 1000]), 1000);
    assert!(!woken(&notify));

    stream.control.lock().send_buffer.clear();
    assert_eq!(write(&mut stream, &[3u8; 1000]), 1000);
    assert!(woken(&notify));
}

#[test]
fn a_read_fills_only_what_the_ring_holds() {
    let (mut stream, _notify) = stream();
    received(&stream, b"abc");
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); 64 * 1024];
    let mut buf = ReadBuf::uninit(&mut space);
    assert!(matches!(
        Pin::new(&mut stream).poll_read(&mut cx, &mut buf),
        Poll::Ready(Ok(()))
    ));
    assert_eq!(buf.filled(), b"abc");
    assert_eq!(buf.initialized().len(), 3);
}
