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
use crate::error::CryptoError;
use crate::sk::SkCipher;

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

    /// Octets of decrypted contents held, all fragments together.
    pub fn bytes(&self) -> usize {
        self.state.as_ref().map_or(0, |s| s.bytes)
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

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::super::codes::{ExchangeType, NotifyType};
    use super::super::testutil::FakeCipher;
    use super::super::*;
    use super::*;

    fn big_message() -> Message {
        let header = Header {
            spi_i: 7,
            spi_r: 9,
            exchange: ExchangeType::IKE_AUTH,
            message_id: 1,
            ..Header::default()
        };
        let inner = vec![
            Payload::IdI(Identification::fqdn("a-rather-long-name.example.com")),
            Payload::Cert(Certificate {
                encoding: super::super::codes::CertEncoding(4),
                data: vec![0xc3; 700],
            }),
            Payload::Auth(Authentication {
                method: super::super::codes::AuthMethod(14),
                data: vec![0xa5; 300],
            }),
        ];
        Message {
            header,
            payloads: vec![Payload::Sk(Encrypted::Open(inner))],
        }
    }

    fn fragments(m: &Message, max_len: usize) -> Vec<Vec<u8>> {
        m.emit_fragments(&mut FakeCipher::new(4), max_len).unwrap()
    }

    #[test]
    fn fragments_fit_and_reassemble_in_any_order() {
        let m = big_message();
        let frags = fragments(&m, 200);
        assert!(frags.len() > 5);
        let total = frags.len() as u16;
        for (i, f) in frags.iter().enumerate() {
            assert!(f.len() <= 200, "fragment {i} is {} octets", f.len());
            let parsed = Message::parse(f, &ParseLimits::default()).unwrap();
            let Some(Payload::Skf(skf)) = parsed.payloads.last() else {
                panic!("no SKF")
            };
            assert_eq!((skf.number, skf.total), (i as u16 + 1, total));
            let first = if i == 0 {
                PayloadType::IDI
            } else {
                PayloadType::NO_NEXT_PAYLOAD
            };
            assert_eq!(
                skf.first_payload, first,
                "only fragment 1 names the first inner payload"
            );
        }
        // Not the last fragment only: all but the last are full.
        assert!(frags[..frags.len() - 1].iter().all(|f| f.len() > 190));

        let mut r = Reassembler::default();
        let cipher = FakeCipher::new(4);
        for f in frags.iter().rev().skip(1) {
            assert_eq!(r.push(f, &cipher), Ok(None));
        }
        assert_eq!(
            r.push(&frags[1], &cipher),
            Ok(None),
            "duplicates are ignored"
        );
        assert_eq!(r.len(), frags.len() - 1);
        assert_eq!(r.push(&frags[frags.len() - 1], &cipher), Ok(Some(m)));
        assert!(r.is_empty());
    }

    #[test]
    fn unprotected_payloads_ride_in_the_first_fragment() {
        let mut m = big_message();
        m.payloads.insert(
            0,
            Payload::Notify(Notify::new(NotifyType(40000), vec![1; 30])),
        );
        let frags = fragments(&m, 300);
        assert_eq!(frags[0][16], 41, "fragment 1 starts with N");
        assert!(
            frags[1..].iter().all(|f| f[16] == 53),
            "the others with SKF"
        );
        let mut r = Reassembler::default();
        let out: Vec<_> = frags
            .iter()
            .map(|f| r.push(f, &FakeCipher::new(4)).unwrap())
            .collect();
        assert_eq!(out.last(), Some(&Some(m)));
    }

    #[test]
    fn small_sizes_are_refused() {
        let m = big_message();
        // 28 header + 8 SKF header + 4 IV + 4 one block + 8 ICV = 52.
        assert_eq!(
            m.emit_fragments(&mut FakeCipher::new(1), 51),
            Err(EmitError::FragmentTooSmall(51))
        );
        let frags = fragments(&m, 52);
        assert!(frags.iter().all(|f| f.len() == 52));
        assert_eq!(
            m.emit_fragments(&mut FakeCipher::new(1), 20),
            Err(EmitError::FragmentTooSmall(20))
        );
        // More than 65535 fragments cannot be numbered.
        let mut huge = big_message();
        huge.payloads = vec![Payload::Sk(Encrypted::Open(vec![
            Payload::VendorId(
                vec![0; 60_000]
            );
            4
        ]))];
        assert!(matches!(
            huge.emit_fragments(&mut FakeCipher::new(1), 52),
            Err(EmitError::TooLong { .. })
        ));
    }

    #[test]
    fn inconsistent_or_forged_fragments_are_refused() {
        let m = big_message();
        let cipher = FakeCipher::new(4);
        let small = fragments(&m, 200);
        let large = fragments(&m, 400);
        let mut r = Reassembler::default();
        assert_eq!(r.push(&large[0], &cipher), Ok(None));
        // A forged fragment changes nothing.
        let mut forged = large[1].clone();
        *forged.last_mut().unwrap() ^= 1;
        assert!(matches!(
            r.push(&forged, &cipher),
            Err(FragmentError::Crypto(_))
        ));
        assert_eq!(r.len(), 1);
        // More fragments than before: the peer refragmented, start again.
        assert_eq!(r.push(&small[0], &cipher), Ok(None));
        assert_eq!(r.len(), 1);
        // Fewer than before: refused.
        let e = r.push(&large[1], &cipher).unwrap_err();
        assert_eq!(
            e,
            FragmentError::InconsistentTotal {
                expected: small.len() as u16,
                got: large.len() as u16
            }
        );
        assert_eq!(e.response(), None);
        // Another message ID.
        let mut other = m.clone();
        other.header.message_id = 2;
        let o = fragments(&other, 200);
        assert_eq!(r.push(&o[1], &cipher), Err(FragmentError::OtherMessage));
        // Not a fragment.
        let whole = m.emit_sealed(&mut FakeCipher::new(4)).unwrap();
        assert_eq!(r.push(&whole, &cipher), Err(FragmentError::NotFragment));
        assert!(matches!(
            r.push(&whole[..20], &cipher),
            Err(FragmentError::Parse(_))
        ));
        for f in &small[1..] {
            r.push(f, &cipher).unwrap();
        }
        assert!(r.is_empty(), "completed");
    }

    #[test]
    fn limits_are_enforced() {
        let m = big_message();
        let frags = fragments(&m, 200);
        let cipher = FakeCipher::new(4);
        let few = FragmentLimits {
            max_fragments: 3,
            ..FragmentLimits::default()
        };
        let mut r = Reassembler::new(few, ParseLimits::default());
        let e = r.push(&frags[0], &cipher).unwrap_err();
        assert_eq!(
            e,
            FragmentError::TooManyFragments {
                total: frags.len() as u16,
                max: 3
            }
        );
        let small = FragmentLimits {
            max_bytes: 500,
            ..FragmentLimits::default()
        };
        let mut r = Reassembler::new(small, ParseLimits::default());
        let results: Vec<_> = frags.iter().map(|f| r.push(f, &cipher)).collect();
        assert!(results.contains(&Err(FragmentError::TooLarge(500))));
        assert!(!results.iter().any(|r| matches!(r, Ok(Some(_)))));
    }

    #[test]
    fn bad_reassembled_contents_are_answered() {
        // A critical payload type we do not know, split over fragments.
        let mut m = big_message();
        let unknown = Payload::Unknown {
            payload_type: PayloadType(99),
            critical: true,
            body: vec![0; 300],
        };
        m.payloads = vec![Payload::Sk(Encrypted::Open(vec![unknown]))];
        let frags = fragments(&m, 150);
        assert!(frags.len() >= 2);
        let mut r = Reassembler::default();
        let results: Vec<_> = frags
            .iter()
            .map(|f| r.push(f, &FakeCipher::new(4)))
            .collect();
        let Some(Err(e)) = results.last() else {
            panic!("{results:?}")
        };
        let FragmentError::Reassembled(p) = e else {
            panic!("{e:?}")
        };
        assert_eq!(
            (p.offset, p.payload, p.encrypted),
            (0, Some(PayloadType(99)), true)
        );
        assert_eq!(
            e.response(),
            Some(Notify::unsupported_critical_payload(PayloadType(99)))
        );
        assert!(r.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn any_protected_message_fragments_and_reassembles(
            m in super::super::testutil::protected_message(),
            extra in 24usize..600,
            order in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..8),
        ) {
            // Fragment 1 needs room for the payloads outside SK, and SKF.
            let outer = Message { header: m.header, payloads: m.payloads[..m.payloads.len() - 1].to_vec() };
            let max_len = outer.emit().unwrap().len() + 8 + extra;
            let mut frags = m.emit_fragments(&mut FakeCipher::new(2), max_len).unwrap();
            proptest::prop_assert!(frags.iter().all(|f| f.len() <= max_len));
            // Shuffle a little; the last push completes the message.
            for (i, j) in order.iter().enumerate() {
                let n = frags.len();
                frags.swap(i % n, j.index(n));
            }
            let mut r = Reassembler::default();
            let mut done = None;
            for f in &frags {
                proptest::prop_assert!(done.is_none());
                done = r.push(f, &FakeCipher::new(2)).unwrap();
            }
            proptest::prop_assert_eq!(done, Some(m));
        }

        #[test]
        fn mutated_fragments_never_panic(
            m in super::super::testutil::protected_message(),
            edits in proptest::collection::vec(
                (proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 1..4),
        ) {
            let outer = Message { header: m.header, payloads: m.payloads[..m.payloads.len() - 1].to_vec() };
            let max_len = outer.emit().unwrap().len() + 8 + 40;
            let frags = m.emit_fragments(&mut FakeCipher::new(2), max_len).unwrap();
            let mut r = Reassembler::default();
            for mut f in frags {
                for (i, v) in &edits {
                    let i = i.index(f.len());
                    f[i] = *v;
                }
                let _ = r.push(&f, &FakeCipher::new(2));
            }
        }
    }
}
