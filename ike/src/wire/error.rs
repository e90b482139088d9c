//! Parse and emit errors, and how RFC 7296 answers a message that fails.

use core::fmt;

use super::codes::{NotifyType, PayloadType};
use super::notify::Notify;
use crate::error::CryptoError;

/// What was wrong with an untrusted message. Wrapped in [`ParseError`],
/// which says where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Fewer octets left than a field needs.
    #[error("{what} needs {need} octets but only {have} remain")]
    Truncated {
        /// The field or structure being read.
        what: &'static str,
        /// Octets it needs.
        need: usize,
        /// Octets that were left.
        have: usize,
    },
    /// A length field smaller than the structure's fixed part or minimum.
    #[error("{what} length {len} is shorter than {min}")]
    TooShort {
        /// The structure.
        what: &'static str,
        /// The length found.
        len: usize,
        /// The smallest allowed.
        min: usize,
    },
    /// A length field larger than the structure's maximum.
    #[error("{what} length {len} is longer than {max}")]
    TooLong {
        /// The structure.
        what: &'static str,
        /// The length found.
        len: usize,
        /// The largest allowed.
        max: usize,
    },
    /// A length field that runs past the end of its enclosing structure.
    #[error("{what} length {len} runs past the {have} octets left")]
    Overrun {
        /// The structure.
        what: &'static str,
        /// The length found.
        len: usize,
        /// Octets left in the enclosing structure, counting this one's header.
        have: usize,
    },
    /// The IKE header's Length is not the datagram's length.
    #[error("header length {header} is not the datagram length {datagram}")]
    LengthMismatch {
        /// The header's Length field.
        header: u32,
        /// Octets received.
        datagram: usize,
    },
    /// The header's major version is not 2.
    #[error("major version {0} is not 2")]
    InvalidMajorVersion(u8),
    /// A payload type we do not implement, with the critical bit set.
    #[error("unsupported critical payload type {0}")]
    UnsupportedCriticalPayload(PayloadType),
    /// Octets left over after the last structure.
    #[error("{0} octets of trailing data")]
    TrailingData(usize),
    /// A configured [`ParseLimits`](super::ParseLimits) was exceeded.
    #[error("more than {max} {what}")]
    Limit {
        /// What was counted.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// A field whose value contradicts another field or the position.
    #[error("{what} is {value}, expected {expected}")]
    Mismatch {
        /// The field.
        what: &'static str,
        /// The value found.
        value: usize,
        /// The value the structure requires.
        expected: usize,
    },
    /// A field with a value that is never valid.
    #[error("invalid {what} {value}")]
    InvalidValue {
        /// The field.
        what: &'static str,
        /// The value found.
        value: u64,
    },
    /// An SK or SKF payload that is not the last payload of the outer
    /// message, or is inside another one.
    #[error("misplaced {0} payload")]
    MisplacedEncrypted(PayloadType),
}

/// A message that failed to parse: what was wrong ([`ErrorKind`]) and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// For errors in a payload, the offset of its generic header; otherwise
    /// the offset of the faulty field. Relative to the start of the datagram,
    /// or of the decrypted contents if `encrypted`.
    pub offset: usize,
    /// The payload that was being parsed, if any.
    pub payload: Option<PayloadType>,
    /// Whether the error is inside the decrypted contents of an SK payload.
    pub encrypted: bool,
    /// What was wrong.
    pub kind: ErrorKind,
}

impl ParseError {
    pub(crate) fn at(offset: usize, kind: ErrorKind) -> Self {
        Self {
            offset,
            payload: None,
            encrypted: false,
            kind,
        }
    }

    /// How RFC 7296 answers a request that fails this way: the Notify payload
    /// to send back (UNSUPPORTED_CRITICAL_PAYLOAD with the payload type as
    /// data, INVALID_MAJOR_VERSION, or INVALID_SYNTAX), or `None` to drop the
    /// message silently. Responses are never answered, whatever this says.
    ///
    /// Damage to the header (a datagram too short for it, or a Length that
    /// is not the datagram's) and exceeded local limits are dropped.
    pub fn response(&self) -> Option<Notify> {
        let notify = match self.kind {
            ErrorKind::InvalidMajorVersion(_) => {
                Notify::new(NotifyType::INVALID_MAJOR_VERSION, Vec::new())
            }
            ErrorKind::UnsupportedCriticalPayload(t) => Notify::unsupported_critical_payload(t),
            ErrorKind::Limit { .. } | ErrorKind::LengthMismatch { .. } => return None,
            ErrorKind::Truncated { .. } if self.payload.is_none() && !self.encrypted => {
                return None;
            }
            _ => Notify::new(NotifyType::INVALID_SYNTAX, Vec::new()),
        };
        Some(notify)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.payload {
            write!(f, "{} payload ", PayloadName(p))?;
        }
        write!(f, "at offset {}", self.offset)?;
        if self.encrypted {
            f.write_str(" of the decrypted contents")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for ParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.kind)
    }
}

/// A payload type under the short name RFC 7296 uses in its diagrams
/// ("TSi", "N", "SK"); unknown ones as their number.
#[derive(Debug, Clone, Copy)]
pub struct PayloadName(pub PayloadType);

impl fmt::Display for PayloadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            PayloadType::SA => "SA",
            PayloadType::KE => "KE",
            PayloadType::IDI => "IDi",
            PayloadType::IDR => "IDr",
            PayloadType::CERT => "CERT",
            PayloadType::CERTREQ => "CERTREQ",
            PayloadType::AUTH => "AUTH",
            PayloadType::NONCE => "Nonce",
            PayloadType::NOTIFY => "N",
            PayloadType::DELETE => "D",
            PayloadType::VENDOR_ID => "V",
            PayloadType::TSI => "TSi",
            PayloadType::TSR => "TSr",
            PayloadType::SK => "SK",
            PayloadType::CP => "CP",
            PayloadType::EAP => "EAP",
            PayloadType::SKF => "SKF",
            other => return write!(f, "{other}"),
        };
        f.write_str(name)
    }
}

/// Why a message or payload could not be emitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// A value too long or a count too large for its wire field.
    #[error("{what} is {len}, more than the {max} its field allows")]
    TooLong {
        /// The field.
        what: &'static str,
        /// The length or count.
        len: usize,
        /// The field's maximum.
        max: usize,
    },
    /// A value the parser would reject, such as a 10-octet nonce.
    #[error("invalid {what}: {value}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// The offending value or length.
        value: usize,
    },
    /// An SK or SKF payload that is not the last one, or is nested.
    #[error("misplaced {0} payload")]
    MisplacedEncrypted(PayloadType),
    /// The message has SK contents in plaintext, and no cipher was given.
    #[error("the SK contents need a cipher to be sealed")]
    NoCipher,
    /// Fragmenting a message that has no plaintext SK payload.
    #[error("only a message with a plaintext SK payload can be fragmented")]
    NotEncrypted,
    /// Fragments this small cannot carry any protected data.
    #[error("fragments of {0} octets are too small")]
    FragmentTooSmall(usize),
    /// The cipher appended a different length than `sealed_len` promised.
    #[error("the cipher sealed {got} octets instead of {want}")]
    SealedLength {
        /// What `seal` appended.
        got: usize,
        /// What `sealed_len` said.
        want: usize,
    },
    /// Sealing failed.
    #[error("sealing failed: {0}")]
    Crypto(#[from] CryptoError),
    /// A bug in this module.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// Why an SK payload could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The message's last payload is not a sealed SK payload.
    #[error("no sealed SK payload to decrypt")]
    NotEncrypted,
    /// The integrity check or decryption failed: drop the message.
    #[error("decryption failed: {0}")]
    Crypto(#[from] CryptoError),
    /// The decrypted contents did not parse.
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// The datagram given is not the one the message was parsed from.
    #[error("the datagram is not the one the message was parsed from")]
    OtherDatagram,
}

impl DecryptError {
    /// How RFC 7296 answers a request that fails this way; see
    /// [`ParseError::response`]. Failed integrity checks are dropped.
    pub fn response(&self) -> Option<Notify> {
        match self {
            Self::Parse(e) => e.response(),
            _ => None,
        }
    }
}
