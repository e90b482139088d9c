//! Errors, with kernel errnos translated into messages an operator can act on.

use std::fmt;
use std::io;
use std::net::IpAddr;

use crate::types::{Direction, Family, Protocol, Selector};

/// What went wrong, coarsely, for callers that react programmatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelErrorKind {
    /// The kernel lacks the IPsec protocol (ESP or AH) for this family.
    NoProtocolSupport,
    /// The kernel lacks an algorithm (crypto module not built or loaded).
    AlgorithmMissing,
    /// The SA or policy already exists.
    AlreadyExists,
    /// The SA or policy does not exist.
    NotFound,
    /// The kernel rejected an argument (often a key length).
    Invalid,
    /// Not permitted (CAP_NET_ADMIN is needed in the network namespace).
    PermissionDenied,
    /// No SPI is free in the requested range.
    SpiRangeExhausted,
    /// Anything else.
    Other,
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The netlink socket could not be opened or set up.
    #[error("cannot open the XFRM netlink socket: {0}")]
    Socket(#[source] io::Error),
    /// Sending to or receiving from the netlink socket failed.
    #[error("XFRM netlink socket I/O failed: {0}")]
    Io(#[source] io::Error),
    /// The connection task is gone (not spawned, or it stopped).
    #[error("the XFRM netlink connection is closed (was its future spawned?)")]
    ConnectionClosed,
    /// The kernel refused a request.
    #[error("{0}")]
    Kernel(KernelError),
    /// A key does not have the length its algorithm needs; nothing was sent.
    #[error("{alg}: key must be {expected} octets, got {got}")]
    KeyLength {
        /// Kernel name of the algorithm.
        alg: &'static str,
        /// Required length in octets.
        expected: usize,
        /// Given length in octets.
        got: usize,
    },
    /// An argument is not valid; nothing was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The SA or policy exists but was not installed by iked (its owner tag
    /// differs); it is left alone.
    #[error("{0} was not installed by iked; leaving it alone")]
    NotOwned(String),
    /// The kernel sent something this crate cannot decode.
    #[error("malformed XFRM netlink message from the kernel: {0}")]
    Decode(String),
    /// A reply of an unexpected type.
    #[error("unexpected reply from the kernel: {0}")]
    UnexpectedReply(String),
    /// The kernel's reply did not come within the handle's timeout (lost
    /// on a socket overrun, or the kernel is stuck); the request may or
    /// may not have taken effect.
    #[error("no reply from the kernel within {0:?} (lost on a socket overrun?)")]
    Timeout(std::time::Duration),
}

impl Error {
    /// The kernel's errno (positive), if the kernel refused the request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel(k) => Some(k.errno),
            Error::Socket(e) | Error::Io(e) => e.raw_os_error(),
            _ => None,
        }
    }

    /// The kind of kernel error, if the kernel refused the request.
    pub fn kernel_kind(&self) -> Option<KernelErrorKind> {
        match self {
            Error::Kernel(k) => Some(k.kind),
            _ => None,
        }
    }
}

/// A request the kernel refused: the translated message, the original errno
/// and the kernel's extended-ack text, if it sent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    /// Coarse classification.
    pub kind: KernelErrorKind,
    /// The errno (positive), e.g. `libc::EEXIST`.
    pub errno: i32,
    /// What this crate makes of it.
    pub message: String,
    /// The kernel's own explanation (netlink extended ack), if any.
    pub ext_ack: Option<String>,
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(m) = &self.ext_ack {
            write!(f, " (kernel says: {m})")?;
        }
        write!(
            f,
            " [{}: {}]",
            errno_name(self.errno),
            io::Error::from_raw_os_error(self.errno)
        )
    }
}

/// The symbolic name of common errnos.
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::ENOMEM => "ENOMEM",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOSYS => "ENOSYS",
        libc::ENOBUFS => "ENOBUFS",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EBUSY => "EBUSY",
        libc::EAGAIN => "EAGAIN",
        libc::ENODEV => "ENODEV",
        _ => "errno",
    }
}

/// Identifies an SA in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SaDesc {
    pub proto: Protocol,
    pub spi: u32,
    pub dst: IpAddr,
}

impl fmt::Display for SaDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} SPI 0x{:08x} to {}", self.proto, self.spi, self.dst)
    }
}

/// The request an errno refers to.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    AddSa {
        sa: SaDesc,
        family: Family,
        update: bool,
        /// Algorithm names and key lengths (no keys).
        algs: String,
        /// Algorithm names and modules.
        names_modules: (String, String),
    },
    DeleteSa(SaDesc),
    GetSa(SaDesc),
    DumpSa,
    AllocSpi {
        proto: Protocol,
        dst: IpAddr,
        min: u32,
        max: u32,
    },
    AddPolicy {
        dir: Direction,
        sel: Selector,
        update: bool,
    },
    DeletePolicy(String),
    GetPolicy(String),
    DumpPolicy,
}

impl Op {
    /// The request's name, for the log.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::AddSa { update: false, .. } => "NEWSA",
            Op::AddSa { update: true, .. } => "UPDSA",
            Op::DeleteSa(_) => "DELSA",
            Op::GetSa(_) => "GETSA",
            Op::DumpSa => "GETSA dump",
            Op::AllocSpi { .. } => "ALLOCSPI",
            Op::AddPolicy { update: false, .. } => "NEWPOLICY",
            Op::AddPolicy { update: true, .. } => "UPDPOLICY",
            Op::DeletePolicy(_) => "DELPOLICY",
            Op::GetPolicy(_) => "GETPOLICY",
            Op::DumpPolicy => "GETPOLICY dump",
        }
    }
}

fn ext_kernel_config(proto: Protocol, family: Family) -> &'static str {
    match (proto, family) {
        (Protocol::Esp, Family::V4) => "CONFIG_INET_ESP",
        (Protocol::Esp, Family::V6) => "CONFIG_INET6_ESP",
        (Protocol::Ah, Family::V4) => "CONFIG_INET_AH",
        (Protocol::Ah, Family::V6) => "CONFIG_INET6_AH",
        (Protocol::Comp, Family::V4) => "CONFIG_INET_IPCOMP",
        (Protocol::Comp, Family::V6) => "CONFIG_INET6_IPCOMP",
    }
}

/// Translates an errno from the kernel into an [`Error`].
pub(crate) fn translate(errno: i32, op: &Op, ext_ack: Option<String>) -> Error {
    use KernelErrorKind as K;
    let (kind, message) = match (errno, op) {
        (libc::EPERM, _) => (
            K::PermissionDenied,
            "permission denied: managing XFRM state needs CAP_NET_ADMIN in the network namespace"
                .to_owned(),
        ),
        (libc::EPROTONOSUPPORT, Op::AddSa { sa, family, .. }) => {
            let fam = match family {
                Family::V4 => "IPv4",
                Family::V6 => "IPv6",
            };
            (
                K::NoProtocolSupport,
                format!(
                    "the kernel has no {} support for {fam} ({}); cannot install {sa}",
                    sa.proto,
                    ext_kernel_config(sa.proto, *family)
                ),
            )
        }
        (
            libc::ENOSYS | libc::ENOENT,
            Op::AddSa {
                names_modules: (names, modules),
                ..
            },
        ) => (
            K::AlgorithmMissing,
            format!("{names}: kernel crypto module missing ({modules})"),
        ),
        (libc::EEXIST, Op::AddSa { sa, .. }) => {
            (K::AlreadyExists, format!("SA already exists: {sa}"))
        }
        (
            libc::ESRCH,
            Op::AddSa {
                sa, update: true, ..
            },
        ) => (K::NotFound, format!("SA to update not found: {sa}")),
        (libc::EINVAL, Op::AddSa { sa, algs, .. }) => (
            K::Invalid,
            format!(
                "the kernel rejected {sa} as invalid (algorithms and key lengths sent: {algs})"
            ),
        ),
        (libc::ESRCH | libc::ENOENT, Op::DeleteSa(sa) | Op::GetSa(sa)) => {
            (K::NotFound, format!("SA not found: {sa}"))
        }
        (
            libc::ENOENT | libc::ESRCH,
            Op::AllocSpi {
                proto,
                dst,
                min,
                max,
            },
        ) => (
            K::SpiRangeExhausted,
            format!("no free {proto} SPI to {dst} in 0x{min:08x}..=0x{max:08x}"),
        ),
        (libc::EEXIST, Op::AddPolicy { dir, sel, .. }) => (
            K::AlreadyExists,
            format!("policy already exists: {dir} {sel}"),
        ),
        (
            libc::ENOENT | libc::ESRCH,
            Op::AddPolicy {
                dir,
                sel,
                update: true,
            },
        ) => (
            K::NotFound,
            format!("policy to update not found: {dir} {sel}"),
        ),
        (libc::ENOENT | libc::ESRCH, Op::DeletePolicy(p) | Op::GetPolicy(p)) => {
            (K::NotFound, format!("policy not found: {p}"))
        }
        (_, op) => (K::Other, format!("{} failed", describe_op(op))),
    };
    Error::Kernel(KernelError {
        kind,
        errno,
        message,
        ext_ack,
    })
}

fn describe_op(op: &Op) -> String {
    match op {
        Op::AddSa {
            sa, update, algs, ..
        } => format!(
            "{} of {sa} ({algs})",
            if *update { "updating" } else { "adding" }
        ),
        Op::DeleteSa(sa) => format!("deleting {sa}"),
        Op::GetSa(sa) => format!("reading {sa}"),
        Op::DumpSa => "listing SAs".to_owned(),
        Op::AllocSpi { proto, dst, .. } => format!("allocating an {proto} SPI to {dst}"),
        Op::AddPolicy { dir, sel, update } => format!(
            "{} policy {dir} {sel}",
            if *update { "updating" } else { "adding" }
        ),
        Op::DeletePolicy(p) => format!("deleting policy {p}"),
        Op::GetPolicy(p) => format!("reading policy {p}"),
        Op::DumpPolicy => "listing policies".to_owned(),
    }
}
