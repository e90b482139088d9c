//! Reassembly of Encrypted Fragment messages (RFC 7383 2.6).

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::ParseLimits;
use super::codes::PayloadType;
use super::error::ParseError;
use super::header::Header;
use super::message::Message;
use super::notify::Notify;
use super::payload::{Encrypted, Payload, parse_chain};
use crate::crypto::CryptoError;
use crate::crypto::sk::SkCipher;

/// Bounds on one message being reassembled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentLimits {
    /// Most fragments a message may be split into.
    pub max_fragments: u16,
    /// Most octets of decrypted contents, all fragments together.
    pub max_bytes: usize,
}

impl Default for FragmentLimits {
    fn default() -> Self {
        Self {
            max_fragments: 128,
            max_bytes: 65_535,
        }
    }
}

/// Why a fragment was not accepted. Only [`FragmentError::Reassembled`] can
/// be answered (see [`FragmentError::response`]); the rest are dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FragmentError {
    /// The datagram did not parse.
    #[error("fragment: {0}")]
    Parse(ParseError),
    /// The datagram has no SKF payload.
    #[error("not an encrypted fragment")]
    NotFragment,
    /// The fragment failed its integrity check.
    #[error("fragment failed to open: {0}")]
    Crypto(#[from] CryptoError),
    /// The header differs from the fragments collected so far.
    #[error("fragment of another message")]
    OtherMessage,
    /// Total Fragments is below that of the fragments collected so far.
    #[error("total fragments {got} is below the {expected} announced before")]
    InconsistentTotal {
        /// Total Fragments of the collected fragments.
        expected: u16,
        /// Total Fragments of this one.
        got: u16,
    },
    /// Total Fragments is over [`FragmentLimits::max_fragments`].
    #[error("{total} fragments, more than the limit of {max}")]
    TooManyFragments {
        /// Total Fragments.
        total: u16,
        /// The limit.
        max: u16,
    },
    /// The contents grew over [`FragmentLimits::max_bytes`]; the fragments
    /// collected so far are dropped.
    #[error("reassembled contents over {0} octets")]
    TooLarge(usize),
    /// The reassembled contents did not parse.
    #[error("reassembled contents: {0}")]
    Reassembled(ParseError),
}

impl FragmentError {
    /// How RFC 7296 answers a request that fails this way; see
    /// [`ParseError::response`]. Only authenticated, reassembled contents
    /// are answered.
    pub fn response(&self) -> Option<Notify> {
        match self {
            Self::Reassembled(e) => e.response(),
            _ => None,
        }
    }
}

/// Collects the fragments of one message, by number, opening each with the
/// SK cipher before it is kept. Sans-IO: the caller decides when to give up
/// (for example when a newer message ID arrives, or after a timeout) and
/// makes a new one.
#[derive(Debug, Default)]
pub struct Reassembler {
    limits: FragmentLimits,
    parse_limits: ParseLimits,
    state: Option<State>,
}

#[derive(Debug)]
struct State {
    header: Header,
    total: u16,
    /// From fragment 1: the first inner payload type and the payloads
    /// outside SKF.
    first: Option<(PayloadType, Vec<Payload>)>,
    fragments: BTreeMap<u16, Zeroizing<Vec<u8>>>,
    bytes: usize,
}

impl Reassembler {
    /// A reassembler with these limits.
    pub fn new(limits: FragmentLimits, parse_limits: ParseLimits) -> Self {
        Self {
            limits,
            parse_limits,
            state: None,
        }
    }

    /// How many distinct fragments are held.
    pub fn len(&self) -> usize {
        self.state.as_ref().map_or(0, |s| s.fragments.len())
    }

    /// Whether no fragment is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes one fragment datagram. Returns the whole message, its SK
    /// contents open, once every fragment is in; `None` while some are
    /// missing or if this one is a duplicate. A fragment with a larger Total
    /// Fragments than before restarts the collection (the peer refragmented
    /// for a smaller path MTU, RFC 7383 2.6); a smaller one is refused.
    pub fn push(
        &mut self,
        datagram: &[u8],
        cipher: &dyn SkCipher,
    ) -> Result<Option<Message>, FragmentError> {
        let msg = Message::parse(datagram, &self.parse_limits).map_err(FragmentError::Parse)?;
        let Some((Payload::Skf(frag), outer)) = msg.payloads.split_last() else {
            return Err(FragmentError::NotFragment);
        };
        if frag.total > self.limits.max_fragments {
            return Err(FragmentError::TooManyFragments {
                total: frag.total,
                max: self.limits.max_fragments,
            });
        }
        if let Some(s) = &self.state {
            if s.header != msg.header {
                return Err(FragmentError::OtherMessage);
            }
            if frag.total < s.total {
                return Err(FragmentError::InconsistentTotal {
                    expected: s.total,
                    got: frag.total,
                });
            }
        }
        // Integrity before anything changes: forged fragments change nothing.
        let split = datagram.len().saturating_sub(frag.body.len());
        let (authenticated, body) = datagram
            .split_at_checked(split)
            .ok_or(FragmentError::NotFragment)?;
        let plain = cipher.open(authenticated, body)?;

        let state = match &mut self.state {
            Some(s) if s.total == frag.total => s,
            slot => slot.insert(State {
                header: msg.header,
                total: frag.total,
                first: None,
                fragments: BTreeMap::new(),
                bytes: 0,
            }),
        };
        if state.fragments.contains_key(&frag.number) {
            return Ok(None);
        }
        state.bytes = state.bytes.saturating_add(plain.len());
        if state.bytes > self.limits.max_bytes {
            self.state = None;
            return Err(FragmentError::TooLarge(self.limits.max_bytes));
        }
        if frag.number == 1 {
            state.first = Some((frag.first_payload, outer.to_vec()));
        }
        state.fragments.insert(frag.number, plain);
        if state.fragments.len() < usize::from(state.total) {
            return Ok(None);
        }
        let Some(State {
            header,
            first: Some((first, mut payloads)),
            fragments,
            bytes,
            ..
        }) = self.state.take()
        else {
            return Ok(None); // unreachable: numbers are 1..=total, so 1 is in
        };
        let mut plain = Zeroizing::new(Vec::with_capacity(bytes));
        fragments.values().for_each(|f| plain.extend_from_slice(f));
        let inner = parse_chain(&plain, 0, first, &self.parse_limits, true)
            .map_err(FragmentError::Reassembled)?;
        payloads.push(Payload::Sk(Encrypted::Open(inner)));
        Ok(Some(Message { header, payloads }))
    }
}
