//! The io_uring transport (`--io uring`): a worker's sockets send and receive through one
//! io_uring ring instead of one `send` and one `recv` system call each per request. The users of
//! a loop iteration queue their operations; the ring takes them all in one `io_uring_enter` when
//! the runtime is about to wait, and its completions wake the users through tokio's own event
//! loop (the ring's file descriptor is readable while completions wait). Everything above the
//! byte stream (request bytes, parsing, keep-alive rules, TLS, HTTP/2, stats) is the epoll
//! path's: [`UringStream`] is an `AsyncRead + AsyncWrite` like a `TcpStream`.
//!
//! Why our own small driver on the `io-uring` crate rather than a runtime: tokio-uring,
//! monoio and compio each bring their own reactor (and the latter two their own timers and
//! tasks), so the worker loop, its timers and HTTP/2's driver tasks would need a second
//! implementation; tokio-uring's owned-buffer API also does not fit `AsyncRead`, which rustls,
//! hyper and h2 read through. This driver is the part of them blast needs: a slab of
//! operation slots whose buffers outlive the operations.

// The kernel writes into a buffer after the call that queued the operation returns; that
// contract is one `unsafe` push, whose invariant this module keeps (see `Ring::push`).
#![allow(unsafe_code)]

use io_uring::{opcode, squeue, types, IoUring};
use slab::Slab;
use std::cell::RefCell;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// Submission queue entries: operations queued between two waits. When it fills, the ring
/// takes what is queued at once and the loop goes on.
const SQ_ENTRIES: u32 = 1024;
/// Completion queue entries: completions waiting to be read. Beyond it the kernel keeps them
/// in its overflow list (IORING_FEAT_NODROP), so this only sizes the common case.
const CQ_ENTRIES: u32 = 4 * 1024;
/// What a connection's receives ask for at first: a typical API response. Each receive that
/// fills its buffer doubles the next one's, up to [`MAX_RECV`]; one that fits in this goes
/// back to it. The caller's room (rustls reads 4 KiB at a time) would cost each idle TLS
/// connection a page.
const INITIAL_RECV: usize = 512;
/// The most one receive asks for, as the epoll path's largest read.
const MAX_RECV: usize = 64 * 1024;
/// The most of a write one send takes; the caller writes the rest next.
const MAX_SEND: usize = 64 * 1024;
/// A send to a connection the peer reset fails with EPIPE instead of raising SIGPIPE, as the
/// standard library's sends do (`<sys/socket.h>`'s value on Linux).
const MSG_NOSIGNAL: i32 = 0x4000;
/// A send buffer that grew for a large body shrinks back to this after it.
const KEPT_SEND_BUFFER: usize = 4 * 1024;

/// What an operation slot is doing.
enum State {
    /// Nothing in flight.
    Idle,
    /// Queued or in the kernel; the waker is the task to wake on completion.
    Busy(Option<Waker>),
    /// Completed with this result (bytes, or a negated errno), not yet taken.
    Done(i32),
    /// In flight for a stream that is gone: freed when it completes.
    Orphan,
}

/// One operation's buffer and state. The buffer belongs to the slab, not to the stream, so it
/// stays valid for the kernel until the operation completes even if the stream is dropped.
struct Slot {
    buf: Vec<u8>,
    state: State,
    /// A completion with this result wakes nobody: a send that went out whole, which its
    /// stream takes note of the next time it is used.
    quiet: Option<i32>,
}

impl Slot {
    /// Takes a completed result, or notes who to wake when the operation in flight completes.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<i32>> {
        match &mut self.state {
            State::Idle => Poll::Ready(None),
            State::Done(result) => {
                let result = *result;
                self.state = State::Idle;
                Poll::Ready(Some(result))
            }
            State::Busy(waker) => {
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            State::Orphan => unreachable!("an orphan slot has no stream to poll it"),
        }
    }
}

/// One worker thread's ring and the slots of its operations.
pub(crate) struct Ring {
    ring: RefCell<IoUring>,
    slots: RefCell<Slab<Slot>>,
}

thread_local! {
    /// The ring of the worker running on this thread, for the runtime's park hook.
    static CURRENT: RefCell<Weak<Ring>> = const { RefCell::new(Weak::new()) };
}

/// A new ring, as every worker makes it: `Err` where the kernel has no io_uring or a seccomp
/// profile (Docker's default, for one) refuses it.
fn new_ring() -> io::Result<IoUring> {
    let mut builder = IoUring::builder();
    builder.setup_cqsize(CQ_ENTRIES);
    // Completions then run when the thread next enters the kernel instead of interrupting it
    // each time (1.4 x the requests per CPU-second at 64 connections against nginx); kernels
    // before 5.19 do not know the flag.
    match builder.setup_coop_taskrun().build(SQ_ENTRIES) {
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => IoUring::builder()
            .setup_cqsize(CQ_ENTRIES)
            .build(SQ_ENTRIES),
        ring => ring,
    }
}

/// Whether this process may use io_uring for sockets; if not, what the kernel said. A ring
/// is not enough: kernels before 5.6 make one but know no socket send or receive.
pub(crate) fn available() -> Result<(), io::Error> {
    let ring = new_ring()?;
    let mut probe = io_uring::Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    match [opcode::Send::CODE, opcode::Recv::CODE].map(|op| probe.is_supported(op)) {
        [true, true] => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this kernel's io_uring has no socket send and receive",
        )),
    }
}

impl Ring {
    /// Makes this thread's ring and starts the task that reads its completions; the runtime
    /// must call [`submit_queued`] before it waits (its park hook).
    pub fn start() -> io::Result<Rc<Ring>> {
        let ring = Rc::new(Ring {
            ring: RefCell::new(new_ring()?),
            slots: RefCell::new(Slab::new()),
        });
        // SAFETY: `RingFd` holds the ring, so the descriptor stays open (and the same) for as
        // long as the `AsyncFd` that owns it.
        let fd =
            unsafe { AsyncFd::register_with_interest(RingFd(ring.clone()), Interest::READABLE) }
                .map_err(io::Error::from)?;
        CURRENT.with(|current| *current.borrow_mut() = Rc::downgrade(&ring));
        tokio::task::spawn_local(async move {
            while let Ok(mut ready) = fd.readable().await {
                // Cleared before reading, so a completion that lands while reading makes the
                // descriptor ready again instead of being missed.
                ready.clear_ready();
                fd.get_ref().0.complete();
            }
        });
        Ok(ring)
    }

    /// A slot for an operation, with an empty buffer.
    fn slot(&self) -> usize {
        self.slots.borrow_mut().insert(Slot {
            buf: Vec::new(),
            state: State::Idle,
            quiet: None,
        })
    }

    /// Queues `entry` for slot `key`, whose state becomes busy.
    ///
    /// The entry must point into `key`'s buffer only, which must not be resized until the
    /// completion for `key` is read.
    fn push(&self, entry: squeue::Entry, key: usize, waker: Option<Waker>) {
        self.slots.borrow_mut()[key].state = State::Busy(waker);
        let entry = entry.user_data(key as u64);
        let mut ring = self.ring.borrow_mut();
        loop {
            // SAFETY: the entry points into slot `key`'s buffer (or nowhere). The slab owns
            // that buffer; nothing resizes or frees it while the slot is busy (a stream
            // dropped meanwhile leaves its slots as orphans), and `complete` releases the
            // slot only when the kernel has posted the operation's completion. A ring
            // dropped with operations in flight leaks their buffers (see `Drop`).
            if unsafe { ring.submission().push(&entry) }.is_ok() {
                return;
            }
            // Full: hand the kernel what is queued and go on.
            if let Err(e) = ring.submit() {
                // Only EBUSY (completions overflowing) is expected: read them, then go on.
                assert!(
                    e.kind() == io::ErrorKind::ResourceBusy,
                    "io_uring submit failed: {e}"
                );
                drop(ring);
                self.complete();
                ring = self.ring.borrow_mut();
            }
        }
    }

    /// Hands the kernel every queued operation (one system call).
    fn submit(&self) {
        let mut ring = self.ring.borrow_mut();
        // A queue that is empty needs no call, unless completions overflowed the completion
        // queue: the kernel moves them into it only on a call (and the driver task then reads
        // them). EBUSY (the same overflow) is retried at the next park.
        let sq = ring.submission();
        if !sq.is_empty() || sq.cq_overflow() {
            drop(sq);
            let _ = ring.submit();
        }
    }

    /// Reads every completion: a busy slot takes its result and wakes its task, an orphan's
    /// slot is freed.
    fn complete(&self) {
        let mut wake = Vec::new();
        {
            let mut ring = self.ring.borrow_mut();
            let mut slots = self.slots.borrow_mut();
            for cqe in ring.completion() {
                let (key, result) = (cqe.user_data() as usize, cqe.result());
                let quiet = slots[key].quiet == Some(result);
                match std::mem::replace(&mut slots[key].state, State::Done(result)) {
                    State::Busy(waker) if !quiet => wake.extend(waker),
                    State::Busy(_) => {}
                    State::Orphan => {
                        slots.remove(key);
                    }
                    State::Idle | State::Done(_) => unreachable!("a completion for an idle slot"),
                }
            }
        }
        wake.into_iter().for_each(Waker::wake);
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // The ring outlives its streams, so only orphans are left, and their sockets are shut
        // down: they complete at once. Wait a little for them, then leak the buffers of any
        // that did not (the kernel may still write into them).
        let deadline = Instant::now() + Duration::from_millis(200);
        while !self.slots.get_mut().is_empty() {
            if Instant::now() >= deadline {
                std::mem::forget(std::mem::take(self.slots.get_mut()));
                return;
            }
            let ts = types::Timespec::new().nsec(10_000_000);
            let args = types::SubmitArgs::new().timespec(&ts);
            let _ = self.ring.get_mut().submitter().submit_with_args(1, &args);
            self.complete();
        }
    }
}

/// Hands the current thread's queued operations to its ring; the worker runtime's park hook.
pub(crate) fn submit_queued() {
    CURRENT.with(|current| {
        if let Some(ring) = current.borrow().upgrade() {
            ring.submit();
        }
    });
}

/// The ring's descriptor, for tokio to watch.
struct RingFd(Rc<Ring>);

impl AsRawFd for RingFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.ring.borrow().as_raw_fd()
    }
}

/// A TCP connection whose reads and writes go through the worker's ring.
pub(crate) struct UringStream {
    socket: std::net::TcpStream,
    ring: Rc<Ring>,
    /// Slots of the receive and of the send.
    recv: usize,
    send: usize,
    /// Received bytes not yet read are the receive slot's `buf[pos..len]`.
    pos: usize,
    len: usize,
    /// The send in flight: its length and how much of it went out.
    sending: usize,
    sent: usize,
    /// What the next receive asks for at most (see [`INITIAL_RECV`]).
    recv_size: usize,
}

impl UringStream {
    /// Moves a connected socket onto `ring`.
    pub fn new(stream: tokio::net::TcpStream, ring: &Rc<Ring>) -> io::Result<UringStream> {
        let socket = stream.into_std()?;
        // io_uring waits for readiness itself; a non-blocking socket would hand EAGAIN back.
        socket.set_nonblocking(false)?;
        Ok(UringStream {
            socket,
            recv: ring.slot(),
            send: ring.slot(),
            ring: ring.clone(),
            pos: 0,
            len: 0,
            sending: 0,
            sent: 0,
            recv_size: INITIAL_RECV,
        })
    }

    /// Queues a receive of up to `want` bytes into the receive slot.
    fn queue_recv(&mut self, want: usize, waker: Option<Waker>) {
        let mut slots = self.ring.slots.borrow_mut();
        let buf = &mut slots[self.recv].buf;
        let want = want.clamp(1, self.recv_size);
        // The kernel writes into the spare capacity: nothing is zeroed first, so only the
        // pages a response reaches are ever touched, however large the caller's buffer.
        buf.clear();
        if buf.capacity() < want || buf.capacity() > 2 * want {
            *buf = Vec::with_capacity(want);
        }
        let room = buf.spare_capacity_mut();
        let entry = opcode::Recv::new(
            types::Fd(self.socket.as_raw_fd()),
            room.as_mut_ptr().cast(),
            room.len().min(MAX_RECV) as u32,
        )
        .build();
        drop(slots);
        self.ring.push(entry, self.recv, waker);
    }

    /// Queues the unsent rest of the send slot's buffer.
    fn queue_send(&mut self, waker: Option<Waker>) {
        let mut slots = self.ring.slots.borrow_mut();
        let slot = &mut slots[self.send];
        slot.quiet = Some((self.sending - self.sent) as i32);
        let rest = &slot.buf[self.sent..self.sending];
        let entry = opcode::Send::new(
            types::Fd(self.socket.as_raw_fd()),
            rest.as_ptr(),
            rest.len() as u32,
        )
        .flags(MSG_NOSIGNAL)
        .build();
        drop(slots);
        self.ring.push(entry, self.send, waker);
    }

    /// Keeps a receive in flight while the connection rests, so the next request finds out
    /// at once whether the server closed it meanwhile (as the epoll path's readiness does).
    pub fn watch(&mut self) {
        let idle = matches!(self.ring.slots.borrow()[self.recv].state, State::Idle);
        if idle && self.pos == self.len {
            self.queue_recv(self.recv_size, None);
        }
    }

    /// Waits until the send in flight, if any, has gone out whole; with `wait` false, only
    /// takes note of how it went if it is over (queuing the rest of a short send, reporting
    /// an error). A send in flight wakes this task only if it comes back short or failed, so
    /// a request that goes out whole costs its task no wake-up.
    fn poll_sent(&mut self, cx: &mut Context<'_>, wait: bool) -> Poll<io::Result<()>> {
        loop {
            let result = {
                let mut slots = self.ring.slots.borrow_mut();
                let slot = &mut slots[self.send];
                match slot.poll(cx) {
                    Poll::Pending if wait => {
                        // This task now waits for the send: its completion must wake it.
                        slot.quiet = None;
                        return Poll::Pending;
                    }
                    Poll::Pending => return Poll::Ready(Ok(())),
                    Poll::Ready(None) => return Poll::Ready(Ok(())),
                    Poll::Ready(Some(result)) => result,
                }
            };
            if result < 0 {
                self.sending = 0;
                return Poll::Ready(Err(io::Error::from_raw_os_error(-result)));
            }
            self.sent += result as usize;
            if result == 0 || self.sent >= self.sending {
                if result == 0 && self.sent < self.sending {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                let mut slots = self.ring.slots.borrow_mut();
                let buf = &mut slots[self.send].buf;
                if buf.capacity() > KEPT_SEND_BUFFER {
                    buf.clear();
                    buf.shrink_to(KEPT_SEND_BUFFER);
                }
                return Poll::Ready(Ok(()));
            }
            // A short send: the rest goes next.
            self.queue_send(Some(cx.waker().clone()));
        }
    }
}

impl AsyncRead for UringStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // A write that failed or went out short is found here, where its task waits next.
        if let Poll::Ready(Err(e)) = this.poll_sent(cx, false) {
            return Poll::Ready(Err(e));
        }
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.pos < this.len {
                let slots = this.ring.slots.borrow();
                let n = (this.len - this.pos).min(out.remaining());
                out.put_slice(&slots[this.recv].buf[this.pos..this.pos + n]);
                this.pos += n;
                return Poll::Ready(Ok(()));
            }
            let taken = this.ring.slots.borrow_mut()[this.recv].poll(cx);
            match taken {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(result)) if result < 0 => {
                    return Poll::Ready(Err(io::Error::from_raw_os_error(-result)))
                }
                // The end of the stream: nothing put in `out`.
                Poll::Ready(Some(0)) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(n)) => {
                    let n = n as usize;
                    let mut slots = this.ring.slots.borrow_mut();
                    let buf = &mut slots[this.recv].buf;
                    assert!(n <= buf.capacity(), "a receive longer than its buffer");
                    // SAFETY: the receive completed with `n` bytes written at the start of the
                    // buffer's spare capacity (the buffer was empty when it was queued).
                    unsafe { buf.set_len(n) };
                    (this.pos, this.len) = (0, n);
                    this.recv_size = match n {
                        n if n == buf.capacity() => (2 * n).clamp(INITIAL_RECV, MAX_RECV),
                        n if n <= INITIAL_RECV => INITIAL_RECV,
                        _ => this.recv_size,
                    };
                }
                Poll::Ready(None) => {
                    this.queue_recv(out.remaining(), Some(cx.waker().clone()));
                    return Poll::Pending;
                }
            }
        }
    }
}

impl AsyncWrite for UringStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        std::task::ready!(this.poll_sent(cx, true))?;
        let n = data.len().min(MAX_SEND);
        {
            let mut slots = this.ring.slots.borrow_mut();
            let buf = &mut slots[this.send].buf;
            buf.clear();
            buf.extend_from_slice(&data[..n]);
        }
        (this.sending, this.sent) = (n, 0);
        // Taken now, sent at the loop's next wait; the next write, read or flush reports how
        // it went.
        this.queue_send(Some(cx.waker().clone()));
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Handed to the kernel is flushed: the stream finishes a short send itself, as soon as
        // it comes back, whichever of its methods is polled next.
        self.get_mut().poll_sent(cx, false)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_sent(cx, true))?;
        Poll::Ready(this.socket.shutdown(Shutdown::Write))
    }
}

impl Drop for UringStream {
    fn drop(&mut self) {
        let mut in_flight = false;
        let mut slots = self.ring.slots.borrow_mut();
        for key in [self.recv, self.send] {
            if matches!(slots[key].state, State::Busy(_)) {
                slots[key].state = State::Orphan;
                in_flight = true;
            } else {
                slots.remove(key);
            }
        }
        // An operation in flight holds the socket open in the kernel past the close below;
        // shutting it down ends the operation (and the connection) now.
        if in_flight {
            let _ = self.socket.shutdown(Shutdown::Both);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Runs `test` on a worker-like runtime with a ring.
    fn on_a_ring<F: Future>(test: impl FnOnce(Rc<Ring>) -> F) -> F::Output {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_park(submit_queued)
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async { test(Ring::start().unwrap()).await })
    }

    /// A connected pair: the client end on `ring`, the server end on tokio.
    async fn pair(ring: &Rc<Ring>) -> (UringStream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (
            UringStream::new(client.unwrap(), ring).unwrap(),
            accepted.unwrap().0,
        )
    }

    #[test]
    fn writes_back_to_back_and_larger_than_a_send_all_arrive_in_order() {
        on_a_ring(|ring| async move {
            let (mut stream, mut server) = pair(&ring).await;
            let big: Vec<u8> = (0..3 * MAX_SEND + 17).map(|i| i as u8).collect();
            // A second write waits for the first send, which goes out whole: that wait must
            // still be woken (TLS writes twice in a row in its handshake).
            let send = async {
                stream.write_all(b"one").await?;
                stream.write_all(b"two").await?;
                stream.write_all(&big).await?;
                stream.shutdown().await
            };
            let mut received = Vec::new();
            let both = async { tokio::join!(send, server.read_to_end(&mut received)) };
            let (sent, read) = tokio::time::timeout(Duration::from_secs(20), both)
                .await
                .expect("every write completes");
            sent.unwrap();
            read.unwrap();
            assert_eq!(&received[..6], b"onetwo");
            assert!(received[6..] == big[..]);
        });
    }

    #[test]
    fn reads_see_the_bytes_then_the_end_and_a_dropped_stream_closes_its_connection() {
        on_a_ring(|ring| async move {
            let (mut stream, mut server) = pair(&ring).await;
            server.write_all(b"hello").await.unwrap();
            let mut buf = [0u8; 3];
            stream.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"hel");
            // The rest comes from what the receive already holds.
            let mut rest = [0u8; 8];
            assert_eq!(stream.read(&mut rest).await.unwrap(), 2);
            assert_eq!(&rest[..2], b"lo");
            // A receive in flight while the stream rests, then the stream dropped (a timeout):
            // the server sees the connection end at once, and the slots go when the kernel is
            // done with them.
            stream.watch();
            tokio::task::yield_now().await;
            drop(stream);
            let end = tokio::time::timeout(Duration::from_secs(20), server.read(&mut rest));
            assert_eq!(end.await.expect("the connection ends").unwrap(), 0);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while !ring.slots.borrow().is_empty() {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "orphan slots are freed"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // A peer that closes: the end of the stream, not an error.
            let (mut stream, server) = pair(&ring).await;
            drop(server);
            assert_eq!(stream.read(&mut rest).await.unwrap(), 0);
        });
    }
}
