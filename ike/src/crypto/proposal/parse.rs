//! Parsing strongSwan proposal strings (`aes128-sha256-modp2048`) and the
//! `default` keyword, with strongSwan's checks and fix-ups
//! (`proposal_create_from_string()` and `check_proposal()` in proposal.c).

use super::keywords::{self, INTEG_TO_PRF, is_aead, is_implemented};
use super::{Missing, ProposalError, is_ke_type};
use crate::wire::codes::{EncrId, EsnId, IntegId, KeId, PrfId, ProtocolId, TransformType};
use crate::wire::sa::{Proposal, Transform};

/// One algorithm while a proposal is being built: type, ID, key bits (0 = none).
type Entry = (TransformType, u16, u16);

fn transform((transform_type, id, key_bits): Entry) -> Transform {
    Transform {
        transform_type,
        id,
        key_length: (key_bits != 0).then_some(key_bits),
        other_attributes: Vec::new(),
    }
}

/// Turns the entries into a proposal, transforms grouped by type in the
/// order charon puts them on the wire (ENCR, INTEG, PRF, KE, ESN, ADDKE1..:
/// seen in the strongSwan 5.9.8 captures under tests/captures/), each type's
/// algorithms in the configured order of preference.
fn build(protocol: ProtocolId, mut entries: Vec<Entry>) -> Proposal {
    entries.sort_by_key(|e| super::print_rank(e.0)); // stable: keeps the preference order
    Proposal {
        number: 0,
        protocol,
        spi: Vec::new(),
        transforms: entries.into_iter().map(transform).collect(),
    }
}

fn check_protocol(protocol: ProtocolId) -> Result<(), ProposalError> {
    match protocol {
        ProtocolId::IKE | ProtocolId::ESP | ProtocolId::AH => Ok(()),
        other => Err(ProposalError::Protocol(other)),
    }
}

/// Parses one proposal string that is not `default`.
pub(super) fn parse_one(protocol: ProtocolId, s: &str) -> Result<Proposal, ProposalError> {
    check_protocol(protocol)?;
    let whole = s.trim();
    if whole.is_empty() {
        return Err(ProposalError::Empty { protocol });
    }
    let mut entries: Vec<Entry> = Vec::new();
    for raw in whole.split('-') {
        let token = raw.trim_matches([' ', '\t']);
        match keywords::lookup(token) {
            Some(k) => entries.push((k.transform_type, k.id, k.key_bits)),
            None if token.ends_with('!')
                && keywords::lookup(token.trim_end_matches('!')).is_some() =>
            {
                return Err(ProposalError::StrictFlag {
                    protocol,
                    proposal: whole.to_owned(),
                });
            }
            None => {
                return Err(ProposalError::UnknownKeyword {
                    protocol,
                    token: token.to_owned(),
                    proposal: whole.to_owned(),
                });
            }
        }
    }
    check(protocol, whole, entries).map(|e| build(protocol, e))
}

fn has(entries: &[Entry], t: TransformType) -> bool {
    entries.iter().any(|e| e.0 == t)
}

/// strongSwan's `check_proposal()`: derives missing PRFs, drops what does not
/// belong, and rejects proposals missing a mandatory part.
fn check(
    protocol: ProtocolId,
    whole: &str,
    mut entries: Vec<Entry>,
) -> Result<Vec<Entry>, ProposalError> {
    let missing = |what| ProposalError::Missing {
        protocol,
        what,
        proposal: whole.to_owned(),
    };
    if protocol == ProtocolId::IKE {
        if !has(&entries, TransformType::PRF) {
            // No explicit PRF: one for each integrity algorithm, in order.
            let mut derived: Vec<Entry> = Vec::new();
            for e in entries.iter().filter(|e| e.0 == TransformType::INTEG) {
                if let Some(&(_, prf)) = INTEG_TO_PRF.iter().find(|(i, _)| *i == e.1) {
                    let entry = (TransformType::PRF, prf, 0);
                    if !derived.contains(&entry) {
                        derived.push(entry);
                    }
                }
            }
            entries.extend(derived);
        }
        if !has(&entries, TransformType::PRF) {
            return Err(missing(Missing::Prf));
        }
        // KE NONE has no place in an IKE proposal.
        entries.retain(|e| !(e.0 == TransformType::KE && e.1 == KeId::NONE.0));
        if !has(&entries, TransformType::KE) {
            return Err(missing(Missing::KeyExchange));
        }
    } else {
        entries.retain(|e| e.0 != TransformType::PRF);
    }

    if protocol == ProtocolId::IKE || protocol == ProtocolId::ESP {
        let encrs: Vec<u16> = entries
            .iter()
            .filter(|e| e.0 == TransformType::ENCR)
            .map(|e| e.1)
            .collect();
        let any_aead = encrs.iter().any(|&a| is_aead(a));
        let all_aead = encrs.iter().all(|&a| is_aead(a));
        if encrs.is_empty() {
            return Err(missing(Missing::Encryption));
        } else if any_aead && !all_aead {
            return Err(ProposalError::MixedAead {
                protocol,
                proposal: whole.to_owned(),
            });
        } else if all_aead {
            // AEAD proposals MUST NOT carry integrity algorithms: strongSwan
            // drops them (after they served to derive the PRF above).
            entries.retain(|e| e.0 != TransformType::INTEG);
        } else if protocol == ProtocolId::IKE && !has(&entries, TransformType::INTEG) {
            return Err(missing(Missing::Integrity));
        }
    } else {
        // AH: AES-GMAC is parsed as encryption; it is really AH's integrity
        // algorithm. Any other encryption algorithm is dropped.
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            if e.0 != TransformType::ENCR {
                out.push(e);
            } else if e.1 == EncrId::NULL_AUTH_AES_GMAC.0 {
                let integ = match e.2 {
                    128 => Some(IntegId::AES_128_GMAC),
                    192 => Some(IntegId::AES_192_GMAC),
                    256 => Some(IntegId::AES_256_GMAC),
                    _ => None,
                };
                if let Some(i) = integ {
                    out.push((TransformType::INTEG, i.0, 0));
                }
            }
        }
        entries = out;
        if !has(&entries, TransformType::INTEG) {
            return Err(missing(Missing::Integrity));
        }
    }

    if protocol != ProtocolId::IKE && !has(&entries, TransformType::ESN) {
        // ESN not given: not supported.
        entries.push((TransformType::ESN, EsnId::NO_ESN.0, 0));
    }
    Ok(entries)
}

/// strongSwan 6.0's default proposals (`proposal_create_default()` and
/// `_aead()`), assuming every crypto plugin that ships with strongSwan is
/// loaded (strongSwan builds them from what its plugins provide, so a given
/// installation may show fewer). Returned in the order 6.0's vici adds them
/// (`add_default_proposals()`): for IKE the classic proposal before the AEAD
/// one, for ESP the AEAD proposal first; AH has only a classic one.
pub(super) fn strongswan_defaults(protocol: ProtocolId) -> Vec<Vec<Entry>> {
    const E: TransformType = TransformType::ENCR;
    const I: TransformType = TransformType::INTEG;
    const P: TransformType = TransformType::PRF;
    const K: TransformType = TransformType::KE;
    const S: TransformType = TransformType::ESN;
    let sizes = |id: EncrId| [(E, id.0, 128), (E, id.0, 192), (E, id.0, 256)];
    // proposal_add_supported_ike(): PRFs and KE methods, strongest first.
    let prfs = [
        (P, PrfId::HMAC_SHA2_256.0, 0),
        (P, PrfId::HMAC_SHA2_384.0, 0),
        (P, PrfId::HMAC_SHA2_512.0, 0),
        (P, PrfId::AES128_XCBC.0, 0),
        (P, PrfId::AES128_CMAC.0, 0),
        (P, PrfId::HMAC_SHA1.0, 0),
    ];
    let kes = [
        (K, KeId::ECP_256.0, 0),
        (K, KeId::ECP_384.0, 0),
        (K, KeId::ECP_521.0, 0),
        (K, KeId::BRAINPOOL_P256R1.0, 0),
        (K, KeId::BRAINPOOL_P384R1.0, 0),
        (K, KeId::BRAINPOOL_P512R1.0, 0),
        (K, KeId::CURVE25519.0, 0),
        (K, KeId::CURVE448.0, 0),
        (K, KeId::MODP_3072.0, 0),
        (K, KeId::MODP_4096.0, 0),
        (K, KeId::MODP_6144.0, 0),
        (K, KeId::MODP_8192.0, 0),
        (K, KeId::MODP_2048.0, 0),
    ];
    let integs = [
        (I, IntegId::HMAC_SHA2_256_128.0, 0),
        (I, IntegId::HMAC_SHA2_384_192.0, 0),
        (I, IntegId::HMAC_SHA2_512_256.0, 0),
    ];
    let no_esn = (S, EsnId::NO_ESN.0, 0);
    let ke_none = (K, KeId::NONE.0, 0);
    match protocol {
        ProtocolId::IKE => {
            let mut classic: Vec<Entry> = Vec::new();
            for id in [
                EncrId::AES_CBC,
                EncrId::AES_CTR,
                EncrId::CAMELLIA_CBC,
                EncrId::CAMELLIA_CTR,
            ] {
                classic.extend(sizes(id));
            }
            classic.push((E, EncrId::TRIPLE_DES.0, 0));
            classic.extend(integs);
            classic.extend([
                (I, IntegId::AES_XCBC_96.0, 0),
                (I, IntegId::AES_CMAC_96.0, 0),
                (I, IntegId::HMAC_SHA1_96.0, 0),
            ]);
            classic.extend(prfs);
            classic.extend(kes);
            let mut aead: Vec<Entry> = Vec::new();
            for id in [
                EncrId::AES_GCM_16,
                EncrId::AES_CCM_16,
                EncrId::CAMELLIA_CCM_16,
            ] {
                aead.extend(sizes(id));
            }
            aead.push((E, EncrId::CHACHA20_POLY1305.0, 0));
            for id in [
                EncrId::AES_GCM_12,
                EncrId::AES_GCM_8,
                EncrId::AES_CCM_12,
                EncrId::AES_CCM_8,
                EncrId::CAMELLIA_CCM_12,
                EncrId::CAMELLIA_CCM_8,
            ] {
                aead.extend(sizes(id));
            }
            aead.extend(prfs);
            aead.extend(kes);
            vec![classic, aead]
        }
        // strongSwan 6.0 makes every KE method optional in the ESP and AH
        // defaults: the same list as IKE's, then `none` (5.9 had none).
        ProtocolId::ESP => {
            let mut aead: Vec<Entry> = sizes(EncrId::AES_GCM_16).to_vec();
            aead.push(no_esn);
            aead.extend(kes);
            aead.push(ke_none);
            let mut classic: Vec<Entry> = sizes(EncrId::AES_CBC).to_vec();
            classic.extend(integs);
            classic.extend([
                (I, IntegId::HMAC_SHA1_96.0, 0),
                (I, IntegId::AES_XCBC_96.0, 0),
                no_esn,
            ]);
            classic.extend(kes);
            classic.push(ke_none);
            vec![aead, classic]
        }
        ProtocolId::AH => {
            let mut classic: Vec<Entry> = integs.to_vec();
            classic.extend([
                (I, IntegId::HMAC_SHA1_96.0, 0),
                (I, IntegId::AES_XCBC_96.0, 0),
                no_esn,
            ]);
            classic.extend(kes);
            classic.push(ke_none);
            vec![classic]
        }
        _ => Vec::new(),
    }
}

/// The `default` keyword: strongSwan's defaults with every algorithm iked
/// does not implement removed.
pub(super) fn defaults(protocol: ProtocolId, restrict: bool) -> Vec<Proposal> {
    strongswan_defaults(protocol)
        .into_iter()
        .map(|entries| {
            let kept = entries
                .into_iter()
                .filter(|&(t, id, ks)| {
                    !restrict || is_implemented(protocol, t, id, (ks != 0).then_some(ks))
                })
                .collect();
            build(protocol, kept)
        })
        .collect()
}

/// Whether a transform type is one this module understands at all.
pub(super) fn is_known_type(t: TransformType) -> bool {
    matches!(
        t,
        TransformType::ENCR | TransformType::PRF | TransformType::INTEG | TransformType::ESN
    ) || is_ke_type(t)
}
