//! The connection table: who is connected, who is busy, who is idle or stalled.
//!
//! Each connection records when a byte last moved ([`Metered`]) and how many requests it has in
//! flight ([`Busy`], held until the response body is done). A sweeper closes connections idle past
//! the header deadline (a keep-alive with nothing to ask, or a client trickling a request head
//! byte by byte) and responses stalled past the stall timeout. At capacity, admitting a new
//! connection closes the oldest idle one, so idle sockets can never starve a real request.

use super::Limits;
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// Descriptors kept free for files being served, the listener and logging.
const RESERVED_FDS: usize = 64;

/// Connections at most: what the descriptor limit allows, less a reserve, capped at 10,000.
pub fn default_max_connections() -> usize {
    let limit = open_files_limit().unwrap_or(1024);
    limit.saturating_sub(RESERVED_FDS).clamp(16, 10_000)
}

#[cfg(unix)]
fn open_files_limit() -> Option<usize> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit struct we own.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0).then(|| usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX))
}

#[cfg(not(unix))]
fn open_files_limit() -> Option<usize> {
    None
}

/// Milliseconds since the server started: what the atomics below hold.
fn now_ms(base: Instant) -> u64 {
    base.elapsed().as_millis() as u64
}

pub struct ConnState {
    base: Instant,
    /// Requests whose response is not finished.
    busy: AtomicUsize,
    /// When the connection last became idle (accepted, or a response finished).
    idle_since: AtomicU64,
    /// When a byte last moved either way.
    last_io: AtomicU64,
}

impl ConnState {
    fn touch(&self) {
        self.last_io.store(now_ms(self.base), Ordering::Relaxed);
    }
}

/// One request in flight; dropped with its response body.
pub struct Busy(Arc<ConnState>);

impl Busy {
    pub fn new(state: Arc<ConnState>) -> Self {
        state.busy.fetch_add(1, Ordering::AcqRel);
        Self(state)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.idle_since.store(now_ms(self.0.base), Ordering::Relaxed);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Slot {
    state: Arc<ConnState>,
    close: Arc<Notify>,
}

pub struct Connections {
    limits: Limits,
    base: Instant,
    next: AtomicU64,
    /// Sockets open: admitted and not yet dropped (an evicted connection leaves the table at once
    /// but holds its descriptor until its task ends).
    sockets: AtomicUsize,
    /// By admission order: the first idle entry is the oldest idle connection.
    table: Mutex<BTreeMap<u64, Slot>>,
}

/// A connection's place in the table; leaving it (the connection's task ending) removes it.
pub struct Entry {
    id: u64,
    state: Arc<ConnState>,
    close: Arc<Notify>,
    conns: Arc<Connections>,
}

impl Entry {
    pub fn state(&self) -> Arc<ConnState> {
        self.state.clone()
    }

    /// Resolves when the server decides to close this connection.
    pub async fn closed(&self) {
        self.close.notified().await
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.conns.table.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
        self.conns.sockets.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Connections {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            base: Instant::now(),
            next: AtomicU64::new(0),
            sockets: AtomicUsize::new(0),
            table: Mutex::new(BTreeMap::new()),
        }
    }

    /// Connection sockets open, evicted ones still closing included.
    pub fn sockets(&self) -> usize {
        self.sockets.load(Ordering::Acquire)
    }

    /// Sockets allowed at once: the table's size plus half the descriptor reserve, room for
    /// evicted connections that have not closed yet.
    pub fn socket_cap(&self) -> usize {
        self.limits.max_connections + RESERVED_FDS / 2
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Slot>> {
        // A panic elsewhere while holding the lock leaves a table that is still consistent.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new connection, closing the oldest idle ones while the table is full.
    pub fn admit(self: &Arc<Self>) -> Entry {
        let now = now_ms(self.base);
        let state = Arc::new(ConnState {
            base: self.base,
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(now),
            last_io: AtomicU64::new(now),
        });
        let close = Arc::new(Notify::new());
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.sockets.fetch_add(1, Ordering::AcqRel);
        let mut table = self.lock();
        while table.len() >= self.limits.max_connections {
            if !evict_oldest_idle(&mut table) {
                break; // everyone is busy: admit anyway, the descriptor reserve absorbs it
            }
        }
        table.insert(id, Slot { state: state.clone(), close: close.clone() });
        Entry { id, state, close, conns: self.clone() }
    }

    /// Closes the oldest idle connection (after an accept error: a descriptor is needed).
    pub fn evict_idle(&self) {
        evict_oldest_idle(&mut self.lock());
    }

    /// Every half second: closes connections idle past the header deadline and responses
    /// stalled past the stall timeout.
    pub async fn sweep(self: Arc<Self>) {
        let (header_ms, stall_ms) =
            (self.limits.header_timeout.as_millis() as u64, self.limits.stall_timeout.as_millis() as u64);
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = now_ms(self.base);
            let mut table = self.lock();
            table.retain(|_, slot| {
                let s = &slot.state;
                let expired = if s.busy.load(Ordering::Acquire) == 0 {
                    now.saturating_sub(s.idle_since.load(Ordering::Relaxed)) > header_ms
                } else {
                    now.saturating_sub(s.last_io.load(Ordering::Relaxed)) > stall_ms
                };
                if expired {
                    slot.close.notify_one();
                }
                !expired
            });
        }
    }
}

fn evict_oldest_idle(table: &mut BTreeMap<u64, Slot>) -> bool {
    let oldest = table.iter().find(|(_, slot)| slot.state.busy.load(Ordering::Acquire) == 0).map(|(id, _)| *id);
    match oldest.and_then(|id| table.remove(&id)) {
        Some(slot) => {
            slot.close.notify_one();
            true
        }
        None => false,
    }
}

/// A stream that records when bytes move, for the stall and idle checks.
pub struct Metered<S> {
    inner: S,
    state: Arc<ConnState>,
}

impl<S> Metered<S> {
    pub fn new(inner: S, state: Arc<ConnState>) -> Self {
        Self { inner, state }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.state.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.state.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.state.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Lets a repeated warning through at most once per interval.
pub struct RateLimited {
    every: Duration,
    last: Option<Instant>,
}

impl RateLimited {
    pub fn new(every: Duration) -> Self {
        Self { every, last: None }
    }

    pub fn ready(&mut self) -> bool {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < self.every) {
            return false;
        }
        self.last = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize) -> Limits {
        Limits { max_connections: max, ..Limits::default() }
    }

    #[tokio::test]
    async fn a_full_table_closes_its_oldest_idle_connection() {
        let conns = Arc::new(Connections::new(limits(2)));
        let (a, b) = (conns.admit(), conns.admit());
        let _busy = Busy::new(a.state()); // a is answering a request: never evicted
        let c = conns.admit();
        tokio::time::timeout(Duration::from_secs(1), b.closed()).await.expect("b, the oldest idle, was closed");
        assert_eq!(conns.len(), 2);
        drop(c);
        assert_eq!(conns.len(), 1);
    }
}
