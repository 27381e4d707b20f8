//! A free list of packet buffers (added for sb, see SB_PATCH.md).
//!
//! Every IP packet crosses this crate as an owned `Vec<u8>`: the caller's device pump
//! feeds one per packet into [`crate::Stack`], the stack's virtual device emits one per
//! packet it writes, and the UDP halves build one per datagram. Without a pool each of
//! those is a heap allocation (up to the MTU, 64 KiB with sb's default) made on one task
//! and freed on another. With it, whoever is done with a packet gives its buffer back and
//! the next packet reuses it, so a busy stack reaches a steady state with no allocation
//! per packet. The pool keeps at most `max_buffers`; what comes back beyond that is freed,
//! which bounds the memory it holds after a burst.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, Mutex,
};

/// Memory a pool made by [`PacketPool::for_mtu`] keeps at most (in MTU-sized buffers).
const POOL_BYTES: usize = 2 << 20;

/// A shared free list of packet buffers; clones share the same list.
#[derive(Clone)]
pub struct PacketPool {
    inner: Arc<Inner>,
}

struct Inner {
    free: Mutex<Vec<Vec<u8>>>,
    max_buffers: usize,
    fresh: AtomicU64,
    reused: AtomicU64,
}

impl PacketPool {
    /// A pool that keeps up to `max_buffers` free buffers.
    pub fn new(max_buffers: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                // Room for every buffer it may keep, so giving one back never allocates.
                free: Mutex::new(Vec::with_capacity(max_buffers)),
                max_buffers,
                fresh: AtomicU64::new(0),
                reused: AtomicU64::new(0),
            }),
        }
    }

    /// A pool for packets of up to `mtu` bytes: about 2 MiB of buffers (between 16 and 512).
    pub fn for_mtu(mtu: usize) -> Self {
        Self::new((POOL_BYTES / mtu.max(1)).clamp(16, 512))
    }

    /// An empty buffer: a free one (with the capacity of the packet it last held) when
    /// there is one, else a new, unallocated `Vec`.
    pub fn take(&self) -> Vec<u8> {
        let reused = self.inner.free.lock().ok().and_then(|mut f| f.pop());
        match reused {
            Some(buf) => {
                self.inner.reused.fetch_add(1, Ordering::Relaxed);
                buf
            }
            None => {
                self.inner.fresh.fetch_add(1, Ordering::Relaxed);
                Vec::new()
            }
        }
    }

    /// A buffer holding a copy of `bytes`.
    pub fn copy_of(&self, bytes: &[u8]) -> Vec<u8> {
        let mut buf = self.take();
        buf.extend_from_slice(bytes);
        buf
    }

    /// Gives a buffer back for reuse (it is freed instead when the pool is full or the
    /// buffer never allocated).
    pub fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() == 0 {
            return;
        }
        buf.clear();
        if let Ok(mut free) = self.inner.free.lock() {
            if free.len() < self.inner.max_buffers {
                free.push(buf);
            }
        }
    }

    /// How many [`PacketPool::take`]s found no free buffer, and how many reused one.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.inner.fresh.load(Ordering::Relaxed),
            self.inner.reused.load(Ordering::Relaxed),
        )
    }

    /// Free buffers held now.
    pub fn free_buffers(&self) -> usize {
        self.inner.free.lock().map(|f| f.len()).unwrap_or(0)
    }
}

impl std::fmt::Debug for PacketPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketPool")
            .field("max_buffers", &self.inner.max_buffers)
            .field("free", &self.free_buffers())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_buffer_is_reused_empty_with_its_capacity() {
        let pool = PacketPool::new(2);
        let mut a = pool.take();
        a.extend_from_slice(&[1u8; 1500]);
        let ptr = a.as_ptr();
        pool.give(a);
        let b = pool.take();
        assert!(b.is_empty());
        assert!(b.capacity() >= 1500);
        assert_eq!(b.as_ptr(), ptr, "the same allocation comes back");
        assert_eq!(pool.stats(), (1, 1));
    }

    #[test]
    fn it_keeps_at_most_max_buffers_and_no_unallocated_ones() {
        let pool = PacketPool::new(2);
        pool.give(Vec::new());
        assert_eq!(pool.free_buffers(), 0);
        for _ in 0..5 {
            pool.give(vec![0u8; 64]);
        }
        assert_eq!(pool.free_buffers(), 2);
    }

    #[test]
    fn for_mtu_bounds_the_memory_it_keeps() {
        assert_eq!(PacketPool::for_mtu(65535).inner.max_buffers, 32);
        assert_eq!(PacketPool::for_mtu(1500).inner.max_buffers, 512);
        assert_eq!(PacketPool::for_mtu(0).inner.max_buffers, 512);
    }
}
