//! Proposals as strongSwan's swanctl.conf writes them, and choosing one.
//!
//! - [`parse`] / [`parse_list`]: `aes256gcm16-prfsha256-x25519`, `default`,
//!   ... into wire [`Proposal`]s, with strongSwan's rules (see
//!   docs/proposals.md and [`keywords::KEYWORDS`]).
//! - [`unsupported`]: which transforms of a configured proposal iked cannot
//!   use ([`keywords::is_implemented`]).
//! - [`select`]: the responder's choice (RFC 7296 2.7, 3.3.6), by default
//!   preferring our configured order like strongSwan;
//!   [`check_ke_payload`] for INVALID_KE_PAYLOAD; [`check_response`] for
//!   the initiator.
//! - [`ike_suite`] / [`child_suite`]: a selected proposal as the suites the
//!   key derivation takes.
//! - [`display`] / [`display_list`]: strongSwan-like log form,
//!   `IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048`.

pub mod keywords;
mod parse;
mod select;
#[cfg(test)]
mod tests;

use core::fmt;

use crate::crypto::suite::{ChildSuite, IkeSuite};
use crate::wire::codes::{EncrId, EsnId, IntegId, KeId, PrfId, ProtocolId, TransformType};
use crate::wire::sa::{Proposal, Transform};

pub use select::{
    KeCheck, Mismatch, NoProposalChosen, Preference, ResponseError, SelectOptions, Selected,
    check_ke_payload, check_response, promote_ke, select,
};

/// What a proposal string lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Missing {
    /// IKE and ESP need an encryption algorithm.
    Encryption,
    /// IKE with a classic cipher, and AH, need an integrity algorithm.
    Integrity,
    /// IKE needs a PRF, given or derived from an integrity algorithm.
    Prf,
    /// IKE needs a key exchange method other than `none`.
    KeyExchange,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Encryption => "an encryption algorithm",
            Self::Integrity => "an integrity algorithm",
            Self::Prf => "a PRF (prfNNN, or an integrity algorithm to derive it from)",
            Self::KeyExchange => "a key exchange method (DH group)",
        })
    }
}

/// A proposal string that strongSwan would not load either.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProposalError {
    /// A token that is no strongSwan keyword.
    #[error("unknown algorithm '{token}' in {protocol} proposal '{proposal}'")]
    UnknownKeyword {
        /// IKE, ESP or AH.
        protocol: ProtocolId,
        /// The token as written.
        token: String,
        /// The whole proposal string.
        proposal: String,
    },
    /// A mandatory part is missing.
    #[error("{protocol} proposal '{proposal}' lacks {what}, which is mandatory")]
    Missing {
        /// IKE, ESP or AH.
        protocol: ProtocolId,
        /// What is missing.
        what: Missing,
        /// The whole proposal string.
        proposal: String,
    },
    /// AEAD and classic ciphers in one proposal.
    #[error(
        "classic and combined-mode (AEAD) encryption algorithms can't be in the same {protocol} \
         proposal '{proposal}': make them two proposals"
    )]
    MixedAead {
        /// IKE or ESP.
        protocol: ProtocolId,
        /// The whole proposal string.
        proposal: String,
    },
    /// An empty proposal string.
    #[error("empty {protocol} proposal")]
    Empty {
        /// IKE, ESP or AH.
        protocol: ProtocolId,
    },
    /// ipsec.conf's strict flag `!`, which swanctl proposals do not have.
    #[error(
        "'!' in {protocol} proposal '{proposal}': the strict flag is ipsec.conf syntax; \
         swanctl proposals are always strict"
    )]
    StrictFlag {
        /// IKE, ESP or AH.
        protocol: ProtocolId,
        /// The whole proposal string.
        proposal: String,
    },
    /// Proposals are for IKE, ESP or AH only.
    #[error("proposals are for IKE, ESP or AH, not {0}")]
    Protocol(ProtocolId),
    /// More proposals than the one-octet proposal number can count.
    #[error("too many proposals: {0}, at most 255 fit in an SA payload")]
    TooMany(usize),
}

/// Key exchange transform types: KE and the additional ones of RFC 9370.
pub fn is_ke_type(t: TransformType) -> bool {
    t == TransformType::KE || (TransformType::ADDKE1.0..=TransformType::ADDKE7.0).contains(&t.0)
}

/// Parses one swanctl proposal string for `protocol` (IKE, ESP or AH).
/// `default` gives strongSwan's default proposals restricted to what iked
/// implements (two for IKE and ESP, one for AH); anything else gives one.
/// Proposal numbers are 1, 2, ...
pub fn parse(protocol: ProtocolId, s: &str) -> Result<Vec<Proposal>, ProposalError> {
    parse_list(protocol, &[s])
}

/// Parses a swanctl proposal list (`proposals = a, b, default`, already
/// split at the commas) into proposals numbered 1..n in the given order.
pub fn parse_list<S: AsRef<str>>(
    protocol: ProtocolId,
    items: &[S],
) -> Result<Vec<Proposal>, ProposalError> {
    let mut out = Vec::new();
    for item in items {
        let s = item.as_ref().trim();
        if s.eq_ignore_ascii_case("default") {
            match protocol {
                ProtocolId::IKE | ProtocolId::ESP | ProtocolId::AH => {
                    out.extend(default_proposals(protocol))
                }
                other => return Err(ProposalError::Protocol(other)),
            }
        } else {
            out.push(parse::parse_one(protocol, s)?);
        }
    }
    number(out)
}

/// Parses a comma-separated list as written on one swanctl line.
pub fn parse_comma_list(protocol: ProtocolId, s: &str) -> Result<Vec<Proposal>, ProposalError> {
    let items: Vec<&str> = s.split(',').collect();
    parse_list(protocol, &items)
}

fn number(mut proposals: Vec<Proposal>) -> Result<Vec<Proposal>, ProposalError> {
    let n = proposals.len();
    for (p, number) in proposals.iter_mut().zip(1..=255u8) {
        p.number = number;
    }
    if n > 255 {
        return Err(ProposalError::TooMany(n));
    }
    Ok(proposals)
}

/// What `default` means in iked: strongSwan 6.0's defaults for
/// `protocol` with the algorithms iked does not implement removed, numbered
/// 1, 2, ... Empty for protocols other than IKE, ESP and AH.
pub fn default_proposals(protocol: ProtocolId) -> Vec<Proposal> {
    number(parse::defaults(protocol, true)).unwrap_or_default()
}

/// strongSwan 6.0's own defaults for `protocol` (all its crypto plugins
/// loaded), unrestricted; for comparison and documentation.
pub fn strongswan_default_proposals(protocol: ProtocolId) -> Vec<Proposal> {
    number(parse::defaults(protocol, false)).unwrap_or_default()
}

/// The transforms of a configured proposal that iked cannot use, in order.
/// Empty means iked implements every algorithm in it.
pub fn unsupported(proposal: &Proposal) -> Vec<Transform> {
    proposal
        .transforms
        .iter()
        .filter(|t| {
            !keywords::is_implemented(
                proposal.protocol,
                t.transform_type,
                t.id,
                t.key_length.filter(|&k| k != 0),
            )
        })
        .cloned()
        .collect()
}

/// The proposal as a swanctl keyword string (`aes128-sha256-prfsha256-modp2048`),
/// using the first keyword of [`keywords::KEYWORDS`] for each transform;
/// `None` if some transform has no keyword. Parsing the result gives the same
/// algorithms back.
pub fn to_keyword_string(proposal: &Proposal) -> Option<String> {
    let mut words = Vec::with_capacity(proposal.transforms.len());
    for t in &proposal.transforms {
        let ks = t.key_length.unwrap_or(0);
        let (prefix, ty) = if is_ke_type(t.transform_type) && t.transform_type != TransformType::KE
        {
            (
                format!(
                    "ke{}_",
                    t.transform_type
                        .0
                        .saturating_sub(TransformType::ADDKE1.0)
                        .saturating_add(1)
                ),
                TransformType::KE,
            )
        } else {
            (String::new(), t.transform_type)
        };
        // AH's AES-GMAC is written as the cipher keyword (see parsing).
        let (ty, id, ks) = match (ty, IntegId(t.id)) {
            (TransformType::INTEG, IntegId::AES_128_GMAC) => {
                (TransformType::ENCR, EncrId::NULL_AUTH_AES_GMAC.0, 128)
            }
            (TransformType::INTEG, IntegId::AES_192_GMAC) => {
                (TransformType::ENCR, EncrId::NULL_AUTH_AES_GMAC.0, 192)
            }
            (TransformType::INTEG, IntegId::AES_256_GMAC) => {
                (TransformType::ENCR, EncrId::NULL_AUTH_AES_GMAC.0, 256)
            }
            _ => (ty, t.id, ks),
        };
        let k = keywords::KEYWORDS
            .iter()
            .find(|k| k.transform_type == ty && k.id == id && k.key_bits == ks)?;
        words.push(format!("{prefix}{}", k.name));
    }
    Some(words.join("-"))
}

/// Shows a proposal the way strongSwan logs it:
/// `ESP:AES_CBC_128/HMAC_SHA2_256_128/MODP_2048/NO_EXT_SEQ`.
pub fn display(proposal: &Proposal) -> ProposalDisplay<'_> {
    ProposalDisplay(proposal)
}

/// Shows proposals comma-separated, as strongSwan logs a list.
pub fn display_list(proposals: &[Proposal]) -> ProposalListDisplay<'_> {
    ProposalListDisplay(proposals)
}

/// See [`display`].
#[derive(Clone, Copy, Debug)]
pub struct ProposalDisplay<'a>(pub &'a Proposal);

/// See [`display_list`].
#[derive(Clone, Copy, Debug)]
pub struct ProposalListDisplay<'a>(pub &'a [Proposal]);

/// strongSwan's print and wire order: encryption, integrity, PRF, KE, ESN,
/// then the additional key exchanges and anything else by type number.
fn print_rank(t: TransformType) -> (u8, u8) {
    match t {
        TransformType::ENCR => (0, 0),
        TransformType::INTEG => (1, 0),
        TransformType::PRF => (2, 0),
        TransformType::KE => (3, 0),
        TransformType::ESN => (4, 0),
        other => (5, other.0),
    }
}

impl fmt::Display for ProposalDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0;
        match p.protocol.name() {
            Some("NONE") | None => write!(f, "PROTO_{}:", p.protocol.0)?,
            Some(n) => write!(f, "{n}:")?,
        }
        let mut order: Vec<&Transform> = p.transforms.iter().collect();
        order.sort_by_key(|t| print_rank(t.transform_type)); // stable
        for (i, t) in order.into_iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            if is_ke_type(t.transform_type) && t.transform_type != TransformType::KE {
                write!(
                    f,
                    "KE{}_",
                    t.transform_type
                        .0
                        .saturating_sub(TransformType::ADDKE1.0)
                        .saturating_add(1)
                )?;
            }
            match keywords::strongswan_name(t.transform_type, t.id) {
                Some(n) => f.write_str(n)?,
                None => write!(f, "UNKNOWN_{}_{}", t.transform_type.0, t.id)?,
            }
            if let Some(ks) = t.key_length.filter(|&k| k != 0) {
                write!(f, "_{ks}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for ProposalListDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(none)");
        }
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            ProposalDisplay(p).fmt(f)?;
        }
        Ok(())
    }
}

/// Why a selected proposal does not make a suite.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SuiteError {
    /// The proposal is for another protocol than the suite.
    #[error("a {0} proposal does not make this suite")]
    Protocol(ProtocolId),
    /// A mandatory transform type is absent.
    #[error("selected proposal {proposal} has no {transform_type} transform")]
    Missing {
        /// The type.
        transform_type: TransformType,
        /// The proposal, strongSwan-style.
        proposal: String,
    },
    /// More than one transform of a type: not a selected proposal.
    #[error("selected proposal {proposal} has more than one {transform_type} transform")]
    Multiple {
        /// The type.
        transform_type: TransformType,
        /// The proposal, strongSwan-style.
        proposal: String,
    },
}

fn single(p: &Proposal, t: TransformType) -> Result<Option<&Transform>, SuiteError> {
    let mut it = p.transforms.iter().filter(|x| x.transform_type == t);
    let first = it.next();
    if it.next().is_some() {
        return Err(SuiteError::Multiple {
            transform_type: t,
            proposal: display(p).to_string(),
        });
    }
    Ok(first)
}

fn required(p: &Proposal, t: TransformType) -> Result<&Transform, SuiteError> {
    single(p, t)?.ok_or_else(|| SuiteError::Missing {
        transform_type: t,
        proposal: display(p).to_string(),
    })
}

/// Integrity: `None` for AEAD ciphers (whatever is offered) and for NONE.
fn integ_of(p: &Proposal, aead: bool) -> Result<Option<IntegId>, SuiteError> {
    let integ = single(p, TransformType::INTEG)?
        .map(|t| IntegId(t.id))
        .filter(|&i| i != IntegId::NONE);
    Ok(if aead { None } else { integ })
}

/// A selected IKE proposal (one transform per type) as an [`IkeSuite`].
pub fn ike_suite(p: &Proposal) -> Result<IkeSuite, SuiteError> {
    if p.protocol != ProtocolId::IKE {
        return Err(SuiteError::Protocol(p.protocol));
    }
    let encr = required(p, TransformType::ENCR)?;
    let aead = keywords::is_aead(encr.id);
    let integ = integ_of(p, aead)?;
    if !aead && integ.is_none() {
        return Err(SuiteError::Missing {
            transform_type: TransformType::INTEG,
            proposal: display(p).to_string(),
        });
    }
    let prf = required(p, TransformType::PRF)?;
    let ke = required(p, TransformType::KE)?;
    if ke.id == KeId::NONE.0 {
        return Err(SuiteError::Missing {
            transform_type: TransformType::KE,
            proposal: display(p).to_string(),
        });
    }
    Ok(IkeSuite {
        encr: EncrId(encr.id),
        encr_key_bits: encr.key_length.filter(|&k| k != 0),
        integ,
        prf: PrfId(prf.id),
        ke: KeId(ke.id),
    })
}

/// A selected ESP or AH proposal as a [`ChildSuite`]. KE NONE or no KE
/// transform means no PFS (`ke: None`).
pub fn child_suite(p: &Proposal) -> Result<ChildSuite, SuiteError> {
    let encr = match p.protocol {
        ProtocolId::ESP => {
            let e = required(p, TransformType::ENCR)?;
            Some((EncrId(e.id), e.key_length.filter(|&k| k != 0)))
        }
        ProtocolId::AH => None,
        other => return Err(SuiteError::Protocol(other)),
    };
    let aead = encr.is_some_and(|(e, _)| keywords::is_aead(e.0));
    let integ = integ_of(p, aead)?;
    if p.protocol == ProtocolId::AH && integ.is_none() {
        return Err(SuiteError::Missing {
            transform_type: TransformType::INTEG,
            proposal: display(p).to_string(),
        });
    }
    let ke = single(p, TransformType::KE)?
        .map(|t| KeId(t.id))
        .filter(|&k| k != KeId::NONE);
    let esn = required(p, TransformType::ESN)?.id == EsnId::ESN.0;
    Ok(ChildSuite {
        protocol: p.protocol,
        encr,
        integ,
        ke,
        esn,
    })
}
