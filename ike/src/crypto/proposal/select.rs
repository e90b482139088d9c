//! Choosing a proposal as responder (RFC 7296 2.7, 3.3.6), strongSwan's
//! way (`proposal_select()`, `select_algos()` in proposal.c), and checking
//! the responder's choice as initiator.

use core::fmt;

use super::keywords::is_aead;
use super::parse::is_known_type;
use super::{display, display_list, is_ke_type};
use crate::wire::codes::{KeId, ProtocolId, TransformType};
use crate::wire::sa::{Proposal, Transform};

/// Whose order of preference decides when several proposals would do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Preference {
    /// Our configured order: the first configured proposal (and in it the
    /// first algorithm of each type) that the peer also offers.
    /// strongSwan's default (`charon.prefer_configured_proposals = yes`).
    #[default]
    Configured,
    /// The peer's order: its first proposal we accept, its first algorithm
    /// of each type we accept (`prefer_configured_proposals = no`).
    Peer,
}

/// How to select.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SelectOptions {
    /// Whose order wins.
    pub preference: Preference,
    /// Ignore key exchange transforms on both sides: the Child SA created
    /// in IKE_AUTH takes its keys from the IKE SA, so its proposals carry no
    /// KE (RFC 7296 1.2). strongSwan's `PROPOSAL_SKIP_KE`.
    pub skip_ke: bool,
}

/// The chosen proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selected {
    /// The proposal to answer with: the peer's proposal number and SPI,
    /// exactly one transform of each type it offered that the choice needs.
    pub proposal: Proposal,
    /// Which of our configured proposals it matched (index into the slice).
    pub configured_index: usize,
}

/// Why one of the peer's proposals did not match one of ours.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mismatch {
    /// Different protocols (IKE/ESP/AH).
    Protocol,
    /// The peer's proposal has a transform type we do not understand
    /// (RFC 7296 3.3.6: the proposal is unacceptable).
    UnknownTransformType(TransformType),
    /// No common algorithm (with equal key length) of this type.
    NoCommon(TransformType),
    /// The peer offers no transform of a type we require.
    PeerLacks(TransformType),
    /// The peer offers a type we have not configured (and not NONE of it).
    NotConfigured(TransformType),
    /// The result would lack a mandatory transform type.
    MissingMandatory(TransformType),
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Protocol => f.write_str("protocol mismatch"),
            Self::UnknownTransformType(t) => write!(f, "unknown transform type {}", t.0),
            Self::NoCommon(t) => write!(f, "no acceptable {t} transform"),
            Self::PeerLacks(t) => write!(f, "peer offers no {t} transform"),
            Self::NotConfigured(t) => write!(f, "peer offers {t}, which we do not configure"),
            Self::MissingMandatory(t) => write!(f, "mandatory {t} transform missing"),
        }
    }
}

/// No proposal of the peer's is acceptable: answer NO_PROPOSAL_CHOSEN.
/// Displays as a log line with both sides' proposals.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no proposal chosen: peer offered {}, we accept {}", display_list(.offered), display_list(.configured))]
pub struct NoProposalChosen {
    /// What the peer offered.
    pub offered: Vec<Proposal>,
    /// What we accept.
    pub configured: Vec<Proposal>,
    /// For each pair tried: (peer's proposal number, our index, why not).
    pub mismatches: Vec<(u8, usize, Mismatch)>,
}

/// A KE transform type, optional here (may be absent or NONE): every KE
/// type in ESP/AH (PFS is optional), the additional ones (RFC 9370) always.
fn optional_type(protocol: ProtocolId, t: TransformType) -> bool {
    is_ke_type(t) && (protocol != ProtocolId::IKE || t != TransformType::KE)
}

fn of_type(p: &Proposal, t: TransformType) -> impl Iterator<Item = &Transform> + '_ {
    p.transforms.iter().filter(move |x| x.transform_type == t)
}

fn same_alg(a: &Transform, b: &Transform) -> bool {
    a.id == b.id && a.key_length.filter(|&k| k != 0) == b.key_length.filter(|&k| k != 0)
}

/// Transforms with attributes we do not know are never chosen.
fn usable(t: &&Transform) -> bool {
    t.other_attributes.is_empty()
}

/// Our processing order: ENCR first (an AEAD cipher makes INTEG moot), then
/// the rest by type number.
fn types_of(a: &Proposal, b: &Proposal) -> Vec<TransformType> {
    let mut types: Vec<TransformType> = a
        .transforms
        .iter()
        .chain(&b.transforms)
        .map(|t| t.transform_type)
        .collect();
    types.sort_by_key(|t| (*t != TransformType::ENCR, t.0));
    types.dedup();
    types
}

/// Matches one configured proposal against one offered proposal.
fn select_pair(
    configured: &Proposal,
    offered: &Proposal,
    opts: SelectOptions,
) -> Result<Proposal, Mismatch> {
    if configured.protocol != offered.protocol {
        return Err(Mismatch::Protocol);
    }
    let protocol = offered.protocol;
    if let Some(t) = offered
        .transforms
        .iter()
        .find(|t| !is_known_type(t.transform_type))
    {
        return Err(Mismatch::UnknownTransformType(t.transform_type));
    }
    let mut chosen: Vec<Transform> = Vec::new();
    let mut aead = false;
    for t in types_of(configured, offered) {
        if is_ke_type(t) && opts.skip_ke {
            continue;
        }
        let ours: Vec<&Transform> = of_type(configured, t).collect();
        let theirs: Vec<&Transform> = of_type(offered, t).filter(usable).collect();
        if t == TransformType::INTEG && aead {
            // Combined-mode cipher: no integrity algorithm. Echo the peer's
            // INTEG NONE if it sent one (one transform of each offered type).
            if let Some(none) = theirs.iter().find(|x| x.id == 0) {
                chosen.push((*none).clone());
            }
            continue;
        }
        let optional = optional_type(protocol, t);
        if ours.is_empty() {
            // The peer offers a type we do not configure: fine only if NONE
            // is among its choices (e.g. KE NONE: PFS optional on its side).
            match theirs.iter().find(|x| x.id == 0) {
                Some(none) if optional => chosen.push((*none).clone()),
                _ if of_type(offered, t).next().is_some() && theirs.is_empty() => {
                    return Err(Mismatch::NoCommon(t));
                }
                _ => return Err(Mismatch::NotConfigured(t)),
            }
            continue;
        }
        if of_type(offered, t).next().is_none() {
            // We configure a type the peer does not offer: fine only if we
            // accept NONE for it; nothing goes into the answer then.
            if optional && ours.iter().any(|x| x.id == 0) {
                continue;
            }
            return Err(Mismatch::PeerLacks(t));
        }
        let hit = match opts.preference {
            Preference::Configured => ours
                .iter()
                .find_map(|o| theirs.iter().find(|p| same_alg(o, p))),
            Preference::Peer => theirs.iter().find(|p| ours.iter().any(|o| same_alg(o, p))),
        };
        let Some(hit) = hit else {
            return Err(Mismatch::NoCommon(t));
        };
        if t == TransformType::ENCR && is_aead(hit.id) {
            aead = true;
        }
        chosen.push((*hit).clone());
    }
    check_mandatory(protocol, &chosen, opts.skip_ke, aead)?;
    chosen.sort_by_key(|x| super::print_rank(x.transform_type)); // charon's wire order, one per type
    Ok(Proposal {
        number: offered.number,
        protocol,
        spi: offered.spi.clone(),
        transforms: chosen,
    })
}

fn check_mandatory(
    protocol: ProtocolId,
    chosen: &[Transform],
    skip_ke: bool,
    aead: bool,
) -> Result<(), Mismatch> {
    let has = |t: TransformType| chosen.iter().any(|x| x.transform_type == t && x.id != 0);
    let has_esn = chosen
        .iter()
        .any(|x| x.transform_type == TransformType::ESN);
    let mut need: Vec<TransformType> = Vec::new();
    match protocol {
        ProtocolId::IKE => {
            need.extend([TransformType::ENCR, TransformType::PRF]);
            if !aead {
                need.push(TransformType::INTEG);
            }
            if !skip_ke {
                need.push(TransformType::KE);
            }
        }
        ProtocolId::ESP => need.push(TransformType::ENCR),
        ProtocolId::AH => need.push(TransformType::INTEG),
        _ => {}
    }
    if let Some(t) = need.into_iter().find(|&t| !has(t)) {
        return Err(Mismatch::MissingMandatory(t));
    }
    if (protocol == ProtocolId::ESP || protocol == ProtocolId::AH) && !has_esn {
        return Err(Mismatch::MissingMandatory(TransformType::ESN));
    }
    Ok(())
}

/// The responder's choice: the first acceptable pair in the preferred order
/// ([`Preference::Configured`]: our proposals outside, the peer's inside,
/// as strongSwan does by default; [`Preference::Peer`]: the other way).
/// The result carries the peer's proposal number and SPI and exactly one
/// transform per type.
pub fn select(
    configured: &[Proposal],
    offered: &[Proposal],
    opts: SelectOptions,
) -> Result<Selected, NoProposalChosen> {
    let mut mismatches = Vec::new();
    let pairs: Vec<(usize, &Proposal)> = match opts.preference {
        Preference::Configured => configured
            .iter()
            .enumerate()
            .flat_map(|(ci, _)| offered.iter().map(move |o| (ci, o)))
            .collect(),
        Preference::Peer => offered
            .iter()
            .flat_map(|o| (0..configured.len()).map(move |ci| (ci, o)))
            .collect(),
    };
    for (ci, o) in pairs {
        let Some(c) = configured.get(ci) else {
            continue;
        };
        match select_pair(c, o, opts) {
            Ok(proposal) => {
                return Ok(Selected {
                    proposal,
                    configured_index: ci,
                });
            }
            Err(m) => mismatches.push((o.number, ci, m)),
        }
    }
    Err(NoProposalChosen {
        offered: offered.to_vec(),
        configured: configured.to_vec(),
        mismatches,
    })
}

/// What to do with the KE payload of a request, given the selected proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeCheck {
    /// The KE payload is for the selected method (or no KE was selected and
    /// none was sent): go on.
    Accept,
    /// Answer INVALID_KE_PAYLOAD naming this method (RFC 7296 1.2, 1.3):
    /// the selected method differs from the KE payload's, or a KE payload is
    /// missing although one was selected.
    InvalidKePayload(KeId),
    /// A KE payload arrived but the selected proposal has no key exchange
    /// (a Child SA agreed without PFS): ignore the payload, as strongSwan
    /// does ("ignoring KE exchange, agreed on a non-PFS proposal").
    Ignore,
}

/// For IKE_SA_INIT (and CREATE_CHILD_SA with PFS): compares the selected
/// proposal's KE method with the group of the KE payload (`None`: no KE
/// payload). Like strongSwan, the responder asks for its selected method:
/// with [`Preference::Configured`] that is our preferred one even when the
/// peer's KE payload carries another acceptable method.
pub fn check_ke_payload(selected: &Proposal, ke_payload_group: Option<KeId>) -> KeCheck {
    let selected_ke = of_type(selected, TransformType::KE)
        .map(|t| KeId(t.id))
        .find(|&k| k != KeId::NONE);
    match (selected_ke, ke_payload_group) {
        (Some(want), Some(got)) if want == got => KeCheck::Accept,
        (Some(want), _) => KeCheck::InvalidKePayload(want),
        (None, Some(_)) => KeCheck::Ignore,
        (None, None) => KeCheck::Accept,
    }
}

/// Why the responder's SA payload is not an acceptable answer to ours.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// An answer has exactly one proposal.
    #[error("responder returned {0} proposals, want exactly one")]
    ProposalCount(usize),
    /// An answer has one transform per type.
    #[error("responder's proposal {proposal} has more than one {transform_type} transform")]
    DuplicateType {
        /// The type.
        transform_type: TransformType,
        /// The answer, strongSwan-style.
        proposal: String,
    },
    /// The answer is not a choice from what we offered.
    #[error("responder chose {chosen}, which is not one of ours: {ours}")]
    NotOurs {
        /// The answer, strongSwan-style.
        chosen: String,
        /// What we offered, strongSwan-style.
        ours: String,
    },
}

/// The initiator's check of the responder's answer: exactly one proposal,
/// one transform per type, and a valid choice from one of our proposals
/// (the one with its proposal number first, then any, as strongSwan does).
pub fn check_response(
    ours: &[Proposal],
    response: &[Proposal],
    skip_ke: bool,
) -> Result<Selected, ResponseError> {
    let [answer] = response else {
        return Err(ResponseError::ProposalCount(response.len()));
    };
    for (i, t) in answer.transforms.iter().enumerate() {
        if answer
            .transforms
            .iter()
            .take(i)
            .any(|x| x.transform_type == t.transform_type)
        {
            return Err(ResponseError::DuplicateType {
                transform_type: t.transform_type,
                proposal: display(answer).to_string(),
            });
        }
    }
    let not_ours = || ResponseError::NotOurs {
        chosen: display(answer).to_string(),
        ours: display_list(ours).to_string(),
    };
    let mut order: Vec<usize> = (0..ours.len()).collect();
    order.sort_by_key(|&i| ours.get(i).is_none_or(|p| p.number != answer.number));
    let opts = SelectOptions {
        preference: Preference::Configured,
        skip_ke,
    };
    // With skip_ke a responder may still echo KE NONE: ignore it.
    let mut expected: Vec<&Transform> = answer
        .transforms
        .iter()
        .filter(|t| !(skip_ke && is_ke_type(t.transform_type) && t.id == 0))
        .collect();
    expected.sort_by_key(|t| super::print_rank(t.transform_type));
    for i in order {
        let Some(p) = ours.get(i) else { continue };
        if let Ok(sel) = select_pair(p, answer, opts) {
            let got: Vec<&Transform> = sel.transforms.iter().collect();
            if got == expected {
                return Ok(Selected {
                    proposal: answer.clone(),
                    configured_index: i,
                });
            }
        }
    }
    Err(not_ours())
}

/// The initiator's answer to INVALID_KE_PAYLOAD (or its choice of the KE
/// payload's group): our proposals with `group` moved to the front of the
/// KE transforms of every proposal that has it, and proposals without it
/// moved to the back, renumbered 1..n (strongSwan's
/// `update_and_check_proposals()` with `promote_transform()`). `None` if no
/// proposal of ours offers `group`: the responder asked for something we
/// never proposed.
pub fn promote_ke(proposals: &[Proposal], group: KeId) -> Option<Vec<Proposal>> {
    let mut with = Vec::new();
    let mut without = Vec::new();
    for p in proposals {
        let is_it = |t: &Transform| t.transform_type == TransformType::KE && t.id == group.0;
        match p.transforms.iter().position(is_it) {
            Some(_) => {
                let mut q = p.clone();
                let (mut hit, rest): (Vec<Transform>, Vec<Transform>) =
                    q.transforms.into_iter().partition(|t| is_it(t));
                hit.truncate(1);
                // Re-insert before the first KE transform (wire order).
                let at = rest
                    .iter()
                    .position(|t| t.transform_type >= TransformType::KE)
                    .unwrap_or(rest.len());
                let mut out = rest;
                out.splice(at..at, hit); // at <= out.len(): cannot panic
                q.transforms = out;
                with.push(q);
            }
            None => without.push(p.clone()),
        }
    }
    if with.is_empty() {
        return None;
    }
    with.extend(without);
    for (p, n) in with.iter_mut().zip(1..=u8::MAX) {
        p.number = n;
    }
    Some(with)
}
