//! The connection (a future owning the netlink socket) and its [`Handle`].
//!
//! Like netlink-proto's connection/handle split, but written here so that
//! every encoded request and every received datagram stays in buffers this
//! crate zeroizes (netlink-proto's framed writer only `clear()`s its buffer,
//! leaving the last request, keys included, in memory).

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP};
use netlink_packet_xfrm::XfrmMessage;
use netlink_sys::{AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket, protocols::NETLINK_XFRM};
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroize;

use crate::codec::{self, Decoded, scrub};
use crate::error::{Error, Op, translate};

/// The owner tag iked writes into the `user` field of every selector it
/// installs (ASCII "iked"). See the crate docs.
pub const DEFAULT_OWNER_TAG: u32 = 0x696b_6564;

/// Receive buffer: netlink dumps put at most 32 KiB in one datagram.
const RECV_BUF: usize = 64 * 1024;

/// How long a request waits for the kernel's reply by default. The kernel
/// answers in microseconds to milliseconds (a dump of thousands of SAs in
/// the UML lab: tens of milliseconds); a reply that does not come was lost
/// on a socket overrun (ENOBUFS), and waiting for it would hang the
/// caller forever.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Above this many requests waiting for replies, the connection drops the
/// records of requests whose callers gave up (timed out) before adding
/// another one.
const PRUNE_ABOVE: usize = 64;

/// What ends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// An ACK (errno 0) or an error.
    Ack,
    /// One reply message, or an error.
    One,
    /// Reply messages until NLMSG_DONE, or an error.
    Dump,
}

/// A failed request before translation.
#[derive(Debug)]
pub(crate) enum Failure {
    Kernel { errno: i32, ext_ack: Option<String> },
    Io(io::Error),
    Decode(String),
}

/// A kernel message whose keys are zeroized when it is dropped.
#[derive(Debug)]
pub(crate) struct Scrubbed(pub(crate) XfrmMessage);

impl Drop for Scrubbed {
    fn drop(&mut self) {
        scrub(&mut self.0);
    }
}

type Reply = Result<Vec<Scrubbed>, Failure>;

pub(crate) struct Request {
    /// Scrubbed on drop, also if the connection ends before sending it.
    msg: Scrubbed,
    flags: u16,
    expect: Expect,
    pub(crate) reply: oneshot::Sender<Reply>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Request(type {}, {:?})",
            self.msg.0.message_type(),
            self.expect
        )
    }
}

struct Pending {
    expect: Expect,
    collected: Vec<Scrubbed>,
    reply: oneshot::Sender<Reply>,
}

/// The connection: a future that owns the netlink socket. Spawn it on the
/// tokio runtime (`tokio::spawn(connection)`); it ends when every
/// [`Handle`] is dropped or the socket fails.
pub struct Connection {
    inner: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connection")
    }
}

impl Future for Connection {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.as_mut().poll(cx)
    }
}

/// A cheap, cloneable handle for requests to the kernel. Requests fail with
/// [`Error::ConnectionClosed`] once the [`Connection`] is gone.
#[derive(Clone, Debug)]
pub struct Handle {
    tx: mpsc::UnboundedSender<Request>,
    owner_tag: u32,
    timeout: Duration,
}

/// Opens an XFRM netlink socket in the calling thread's network namespace
/// with iked's [`DEFAULT_OWNER_TAG`]. Must be called within a tokio runtime.
pub fn new_connection() -> Result<(Connection, Handle), Error> {
    new_connection_with_owner(DEFAULT_OWNER_TAG)
}

/// Like [`new_connection`] with another owner tag (e.g. two daemons in one
/// namespace, or tests). A tag of 0 would claim every foreign SA and policy
/// and is refused.
pub fn new_connection_with_owner(owner_tag: u32) -> Result<(Connection, Handle), Error> {
    if owner_tag == 0 {
        return Err(Error::InvalidArgument(
            "owner tag 0 is what every other daemon uses; pick a non-zero tag".to_owned(),
        ));
    }
    let socket = open_socket().map_err(Error::Socket)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let inner = Box::pin(run(socket, rx));
    Ok((
        Connection { inner },
        Handle {
            tx,
            owner_tag,
            timeout: DEFAULT_REQUEST_TIMEOUT,
        },
    ))
}

pub(crate) fn open_socket() -> io::Result<TokioSocket> {
    // TokioSocket::new panics outside a runtime; say so instead.
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other(
            "must be called within a tokio runtime (with I/O enabled)",
        ));
    }
    let mut socket = TokioSocket::new(NETLINK_XFRM)?;
    let s = socket.socket_mut();
    s.bind_auto()?;
    // Echo only the request header in errors, not the request (which may
    // carry keys), and add the kernel's explanation.
    s.set_cap_ack(true)?;
    // The kernel's explanations are a nicety (Linux 4.12+).
    if let Err(e) = s.set_ext_ack(true) {
        tracing::debug!("no netlink extended acks: {e}");
    }
    Ok(socket)
}

// Lives only on the stack for one loop turn; boxing would cost an allocation.
#[allow(clippy::large_enum_variant)]
enum Event {
    Request(Option<Request>),
    Received(io::Result<()>),
}

async fn run(socket: TokioSocket, mut rx: mpsc::UnboundedReceiver<Request>) {
    let mut pending: HashMap<u32, Pending> = HashMap::new();
    let mut seq: u32 = 0;
    let mut buf: Vec<u8> = Vec::with_capacity(RECV_BUF);
    let kernel = SocketAddr::new(0, 0);
    loop {
        buf.clear();
        buf.reserve(RECV_BUF);
        let ev = poll_fn(|cx| {
            if let Poll::Ready(r) = rx.poll_recv(cx) {
                return Poll::Ready(Event::Request(r));
            }
            match socket.poll_recv(cx, &mut buf) {
                Poll::Ready(r) => Poll::Ready(Event::Received(r)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        match ev {
            Event::Request(None) => break,
            Event::Request(Some(mut req)) => {
                seq = seq.wrapping_add(1);
                if seq == 0 {
                    seq = 1;
                }
                let msg = std::mem::replace(&mut req.msg.0, XfrmMessage::Other((0, Vec::new())));
                let bytes = codec::encode(msg, req.flags, seq);
                // `bytes` is zeroized when dropped at the end of this arm.
                match socket.send_to(&bytes, &kernel).await {
                    Ok(n) if n == bytes.len() => {
                        if pending.len() > PRUNE_ABOVE {
                            // Callers that timed out are not waiting any more.
                            pending.retain(|_, p| !p.reply.is_closed());
                        }
                        pending.insert(
                            seq,
                            Pending {
                                expect: req.expect,
                                collected: Vec::new(),
                                reply: req.reply,
                            },
                        );
                    }
                    Ok(_) => {
                        let _ = req.reply.send(Err(Failure::Io(io::Error::other(
                            "short write on the netlink socket",
                        ))));
                    }
                    Err(e) => {
                        let _ = req.reply.send(Err(Failure::Io(e)));
                    }
                }
            }
            Event::Received(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                tracing::warn!("XFRM netlink socket overrun; replies may be lost");
            }
            Event::Received(Err(e)) => {
                tracing::error!("XFRM netlink socket failed: {e}");
                for (_, p) in pending.drain() {
                    let _ = p
                        .reply
                        .send(Err(Failure::Io(io::Error::new(e.kind(), e.to_string()))));
                }
                buf.zeroize();
                break;
            }
            Event::Received(Ok(())) => {
                for d in codec::decode_datagram(&buf) {
                    dispatch(&mut pending, d);
                }
                // Replies to GETSA and dumps carry keys.
                buf.zeroize();
            }
        }
    }
    buf.zeroize();
}

fn dispatch(pending: &mut HashMap<u32, Pending>, d: Decoded) {
    match d {
        Decoded::Xfrm { seq, msg, .. } => {
            let msg = Scrubbed(*msg);
            let Some(p) = pending.get_mut(&seq) else {
                tracing::debug!("unsolicited XFRM message (seq {seq}) dropped");
                return;
            };
            p.collected.push(msg);
            if p.expect == Expect::One {
                finish(pending, seq, Ok(()));
            }
        }
        Decoded::Ack {
            seq,
            errno,
            ext_ack,
        } => {
            let r = if errno == 0 {
                Ok(())
            } else {
                Err(Failure::Kernel { errno, ext_ack })
            };
            finish(pending, seq, r);
        }
        Decoded::Done { seq, errno: 0 } => finish(pending, seq, Ok(())),
        Decoded::Done { seq, errno } => finish(
            pending,
            seq,
            Err(Failure::Kernel {
                errno,
                ext_ack: None,
            }),
        ),
        Decoded::Bad { seq, reason } => {
            tracing::warn!("undecodable XFRM netlink message: {reason}");
            if pending.contains_key(&seq) {
                finish(pending, seq, Err(Failure::Decode(reason)));
            }
        }
        Decoded::Ignored => {}
    }
}

fn finish(pending: &mut HashMap<u32, Pending>, seq: u32, r: Result<(), Failure>) {
    if let Some(p) = pending.remove(&seq) {
        let _ = p.reply.send(r.map(|()| p.collected));
    }
}

impl Handle {
    /// A handle without a connection: its requests land in the returned
    /// receiver and nobody answers them (tests of lost replies).
    #[cfg(test)]
    pub(crate) fn detached(owner_tag: u32) -> (Handle, mpsc::UnboundedReceiver<Request>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Handle {
                tx,
                owner_tag,
                timeout: DEFAULT_REQUEST_TIMEOUT,
            },
            rx,
        )
    }

    /// The owner tag this handle writes into every selector it installs.
    pub fn owner_tag(&self) -> u32 {
        self.owner_tag
    }

    /// The same handle with another reply timeout (default
    /// [`DEFAULT_REQUEST_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a request waits for the kernel's reply.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends a request and waits for its outcome, at most the handle's
    /// timeout ([`Error::Timeout`], with a warning in the log).
    pub(crate) async fn request(
        &self,
        msg: XfrmMessage,
        expect: Expect,
        op: &Op,
    ) -> Result<Vec<Scrubbed>, Error> {
        let flags = match expect {
            Expect::Ack => NLM_F_ACK,
            Expect::One => 0,
            Expect::Dump => NLM_F_DUMP,
        };
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request {
                msg: Scrubbed(msg),
                flags,
                expect,
                reply,
            })
            .map_err(|_| Error::ConnectionClosed)?;
        let reply = match tokio::time::timeout(self.timeout, rx).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(
                    "XFRM netlink: no reply to {} within {:?}; giving up on it",
                    op.name(),
                    self.timeout
                );
                return Err(Error::Timeout(self.timeout));
            }
        };
        match reply {
            Err(_) => Err(Error::ConnectionClosed),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(Failure::Kernel { errno, ext_ack })) => Err(translate(errno, op, ext_ack)),
            Ok(Err(Failure::Io(e))) => Err(Error::Io(e)),
            Ok(Err(Failure::Decode(r))) => Err(Error::Decode(r)),
        }
    }
}
