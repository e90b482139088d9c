use proptest::prelude::*;

use super::keywords::{KEYWORDS, lookup, strongswan_name};
use super::*;
use crate::wire::codes::{EncrId, EsnId, IntegId, KeId, PrfId, ProtocolId, TransformType};
use crate::wire::sa::{Proposal, Transform, TransformAttribute};

const IKE: ProtocolId = ProtocolId::IKE;
const ESP: ProtocolId = ProtocolId::ESP;
const AH: ProtocolId = ProtocolId::AH;

fn one(protocol: ProtocolId, s: &str) -> Proposal {
    let mut v = parse(protocol, s).unwrap();
    assert_eq!(v.len(), 1, "{s}");
    v.remove(0)
}

fn show(protocol: ProtocolId, s: &str) -> String {
    display(&one(protocol, s)).to_string()
}

fn err(protocol: ProtocolId, s: &str) -> ProposalError {
    parse(protocol, s).unwrap_err()
}

fn tr(t: TransformType, id: u16, ks: Option<u16>) -> Transform {
    Transform {
        transform_type: t,
        id,
        key_length: ks,
        other_attributes: Vec::new(),
    }
}

/// A peer's proposal: parsed from a keyword string, with number and SPI.
fn peer(protocol: ProtocolId, number: u8, s: &str) -> Proposal {
    let mut p = one(protocol, s);
    p.number = number;
    p.spi = if protocol == IKE {
        Vec::new()
    } else {
        vec![0xc0, 0xff, 0xee, number]
    };
    p
}

fn types(p: &Proposal) -> Vec<TransformType> {
    p.transforms.iter().map(|t| t.transform_type).collect()
}

fn assert_one_per_type(p: &Proposal) {
    let mut t = types(p);
    let n = t.len();
    t.dedup();
    assert_eq!(t.len(), n, "{}", display(p));
}

const CONF: Preference = Preference::Configured;
const PEER: Preference = Preference::Peer;

fn opts(preference: Preference) -> SelectOptions {
    SelectOptions {
        preference,
        skip_ke: false,
    }
}

// ---------------------------------------------------------------- parsing

#[test]
fn example_ike_strings() {
    assert_eq!(
        show(IKE, "aes256gcm16-prfsha256-x25519"),
        "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519"
    );
    // PRF follows from the integrity algorithm.
    assert_eq!(
        show(IKE, "aes128-sha256-modp2048"),
        "IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048"
    );
    assert_eq!(
        show(IKE, "chacha20poly1305-prfsha256-ecp256"),
        "IKE:CHACHA20_POLY1305/PRF_HMAC_SHA2_256/ECP_256"
    );
    assert_eq!(
        show(IKE, "aes128-aes256-sha256-sha1-modp2048-ecp256"),
        "IKE:AES_CBC_128/AES_CBC_256/HMAC_SHA2_256_128/HMAC_SHA1_96/\
         PRF_HMAC_SHA2_256/PRF_HMAC_SHA1/MODP_2048/ECP_256"
    );
    // Algorithms of different kinds may be interleaved: same proposal.
    assert_eq!(
        one(
            IKE,
            "aes256gcm16-aes192gcm16-prfsha384-prfsha256-ecp384-modp3072"
        )
        .transforms,
        one(
            IKE,
            "aes256gcm16-prfsha384-ecp384-aes192gcm16-prfsha256-modp3072"
        )
        .transforms
    );
}

#[test]
fn wire_order_is_charons_and_keeps_preference() {
    let p = one(IKE, "modp2048-sha256-aes256-aes128");
    assert_eq!(
        types(&p),
        [
            TransformType::ENCR,
            TransformType::ENCR,
            TransformType::INTEG,
            TransformType::PRF,
            TransformType::KE
        ]
    );
    assert_eq!(p.transforms[0].key_length, Some(256));
    assert_eq!(p.transforms[1].key_length, Some(128));
    assert_eq!(p.number, 1);
    assert!(p.spi.is_empty());
    assert_eq!(p.protocol, IKE);
}

#[test]
fn example_esp_and_ah_strings() {
    assert_eq!(show(ESP, "aes256gcm16"), "ESP:AES_GCM_16_256/NO_EXT_SEQ");
    assert_eq!(
        show(ESP, "aes128-sha256-modp2048-esn"),
        "ESP:AES_CBC_128/HMAC_SHA2_256_128/MODP_2048/EXT_SEQ"
    );
    assert_eq!(
        show(ESP, "aes128gcm16-esn-noesn"),
        "ESP:AES_GCM_16_128/EXT_SEQ/NO_EXT_SEQ"
    );
    // Encryption-only ESP is allowed (no integrity needed outside IKE).
    assert_eq!(show(ESP, "aes128"), "ESP:AES_CBC_128/NO_EXT_SEQ");
    // PFS optional: KE NONE stays in ESP proposals.
    assert_eq!(
        show(ESP, "aes128gcm16-modp2048-none"),
        "ESP:AES_GCM_16_128/MODP_2048/MODP_NONE/NO_EXT_SEQ"
    );
    assert_eq!(show(AH, "sha256"), "AH:HMAC_SHA2_256_128/NO_EXT_SEQ");
    assert_eq!(
        show(AH, "sha256-modp2048"),
        "AH:HMAC_SHA2_256_128/MODP_2048/NO_EXT_SEQ"
    );
}

#[test]
fn keyword_families() {
    use TransformType as T;
    let cases: &[(&str, TransformType, u16, u16)] = &[
        ("aes", T::ENCR, 12, 128),
        ("aes192", T::ENCR, 12, 192),
        ("aes256ctr", T::ENCR, 13, 256),
        ("aes128gcm8", T::ENCR, 18, 128),
        ("aes128gcm64", T::ENCR, 18, 128),
        ("aes192gcm12", T::ENCR, 19, 192),
        ("aes192gcm96", T::ENCR, 19, 192),
        ("aes256gcm128", T::ENCR, 20, 256),
        ("aes256gcm", T::ENCR, 20, 256),
        ("aes128ccm8", T::ENCR, 14, 128),
        ("aes192ccm96", T::ENCR, 15, 192),
        ("aes256ccm", T::ENCR, 16, 256),
        ("aes256gmac", T::ENCR, 21, 256),
        ("chacha20poly1305", T::ENCR, 28, 0),
        ("3des", T::ENCR, 3, 0),
        ("des", T::ENCR, 2, 0),
        ("null", T::ENCR, 11, 0),
        ("cast128", T::ENCR, 6, 128),
        ("blowfish256", T::ENCR, 7, 256),
        ("camellia", T::ENCR, 23, 128),
        ("camellia256", T::ENCR, 23, 256),
        ("camellia192ctr", T::ENCR, 24, 192),
        ("camellia128ccm64", T::ENCR, 25, 128),
        ("camellia256ccm16", T::ENCR, 27, 256),
        ("serpent256", T::ENCR, 1026, 256),
        ("twofish", T::ENCR, 1027, 128),
        ("md5", T::INTEG, 1, 0),
        ("md5_128", T::INTEG, 6, 0),
        ("sha", T::INTEG, 2, 0),
        ("sha1", T::INTEG, 2, 0),
        ("sha1_160", T::INTEG, 7, 0),
        ("sha256", T::INTEG, 12, 0),
        ("sha2_256", T::INTEG, 12, 0),
        ("sha256_96", T::INTEG, 1026, 0),
        ("sha384", T::INTEG, 13, 0),
        ("sha2_512", T::INTEG, 14, 0),
        ("aesxcbc", T::INTEG, 5, 0),
        ("aescmac", T::INTEG, 8, 0),
        ("camelliaxcbc", T::INTEG, 1030, 0),
        ("prfmd5", T::PRF, 1, 0),
        ("prfsha1", T::PRF, 2, 0),
        ("prfsha256", T::PRF, 5, 0),
        ("prfsha384", T::PRF, 6, 0),
        ("prfsha512", T::PRF, 7, 0),
        ("prfaesxcbc", T::PRF, 4, 0),
        ("prfaescmac", T::PRF, 8, 0),
        ("none", T::KE, 0, 0),
        ("modpnone", T::KE, 0, 0),
        ("modp768", T::KE, 1, 0),
        ("modp1024", T::KE, 2, 0),
        ("modp1536", T::KE, 5, 0),
        ("modp2048", T::KE, 14, 0),
        ("modp3072", T::KE, 15, 0),
        ("modp4096", T::KE, 16, 0),
        ("modp6144", T::KE, 17, 0),
        ("modp8192", T::KE, 18, 0),
        ("modp1024s160", T::KE, 22, 0),
        ("modp2048s224", T::KE, 23, 0),
        ("modp2048s256", T::KE, 24, 0),
        ("ecp192", T::KE, 25, 0),
        ("ecp224", T::KE, 26, 0),
        ("ecp256", T::KE, 19, 0),
        ("ecp384", T::KE, 20, 0),
        ("ecp521", T::KE, 21, 0),
        ("ecp224bp", T::KE, 27, 0),
        ("ecp256bp", T::KE, 28, 0),
        ("ecp384bp", T::KE, 29, 0),
        ("ecp512bp", T::KE, 30, 0),
        ("curve25519", T::KE, 31, 0),
        ("x25519", T::KE, 31, 0),
        ("curve448", T::KE, 32, 0),
        ("x448", T::KE, 32, 0),
        ("mlkem512", T::KE, 35, 0),
        ("mlkem768", T::KE, 36, 0),
        ("mlkem1024", T::KE, 37, 0),
        ("esn", T::ESN, 1, 0),
        ("noesn", T::ESN, 0, 0),
        ("ke1_mlkem768", T::ADDKE1, 36, 0),
        ("ke7_x25519", T::ADDKE7, 31, 0),
    ];
    for &(name, t, id, ks) in cases {
        let k = lookup(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!((k.transform_type, k.id, k.key_bits), (t, id, ks), "{name}");
    }
    for bad in [
        "ke0_x25519",
        "ke8_x25519",
        "ke1_aes128",
        "ke1_",
        "AES128",
        "aes512",
        "",
    ] {
        assert!(lookup(bad).is_none(), "{bad}");
    }
}

#[test]
fn keyword_table_has_no_duplicate_names_and_every_entry_has_a_name_to_print() {
    for (i, k) in KEYWORDS.iter().enumerate() {
        assert!(
            KEYWORDS.iter().skip(i + 1).all(|o| o.name != k.name),
            "duplicate {}",
            k.name
        );
        assert!(
            strongswan_name(k.transform_type, k.id).is_some(),
            "{}",
            k.name
        );
    }
}

/// A proposal string for `protocol` that is valid and contains `kw`.
fn with_keyword(protocol: ProtocolId, kw: &keywords::Keyword) -> String {
    let aead = kw.transform_type == TransformType::ENCR && keywords::is_aead(kw.id);
    match (protocol, kw.transform_type) {
        (ProtocolId::IKE, TransformType::ENCR) if aead => format!("{}-prfsha256-modp2048", kw.name),
        (ProtocolId::IKE, TransformType::ENCR) => format!("{}-sha256-modp2048", kw.name),
        (ProtocolId::IKE, TransformType::KE) if kw.id == 0 => {
            format!("aes128-sha256-modp2048-{}", kw.name)
        }
        (ProtocolId::IKE, _) => format!("aes128-sha256-prfsha256-modp2048-{}", kw.name),
        (ProtocolId::ESP, _) => format!("aes128-sha256-{}", kw.name),
        _ => format!("sha256-{}", kw.name),
    }
}

#[test]
fn every_keyword_parses_displays_and_round_trips() {
    for kw in KEYWORDS {
        for protocol in [IKE, ESP] {
            let s = with_keyword(protocol, kw);
            let parsed = parse(protocol, &s);
            // The only keywords that cannot appear: PRFs vanish from ESP,
            // KE NONE from IKE; ESP's AES-CBC does not mix with AEAD.
            let p = match parsed {
                Ok(mut v) => v.remove(0),
                Err(ProposalError::MixedAead { .. })
                    if protocol == ESP && keywords::is_aead(kw.id) =>
                {
                    continue;
                }
                Err(e) => panic!("{s}: {e}"),
            };
            let shown = display(&p).to_string();
            let name = strongswan_name(kw.transform_type, kw.id).unwrap();
            let gone = (protocol == ESP && kw.transform_type == TransformType::PRF)
                || (protocol == IKE && kw.transform_type == TransformType::KE && kw.id == 0);
            assert_eq!(!gone, shown.contains(name), "{s} -> {shown}");
            if kw.key_bits != 0 && !gone {
                assert!(
                    shown.contains(&format!("{name}_{}", kw.key_bits)),
                    "{s} -> {shown}"
                );
            }
            // Round trip through the canonical keywords.
            let back = to_keyword_string(&p).unwrap();
            assert_eq!(
                one(protocol, &back).transforms,
                p.transforms,
                "{s} -> {back}"
            );
        }
    }
}

#[test]
fn aead_with_integrity_derives_prf_then_drops_integrity() {
    // strongSwan derives the PRF from sha384 before it removes integrity
    // algorithms from an all-AEAD proposal.
    assert_eq!(
        show(IKE, "aes256gcm16-sha384-ecp384"),
        "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384"
    );
    assert_eq!(
        show(ESP, "aes256gcm16-sha256"),
        "ESP:AES_GCM_16_256/NO_EXT_SEQ"
    );
    // Duplicate derived PRFs collapse.
    assert_eq!(
        show(IKE, "aes128-sha1-sha1_160-modp2048"),
        "IKE:AES_CBC_128/HMAC_SHA1_96/HMAC_SHA1_160/PRF_HMAC_SHA1/MODP_2048"
    );
}

#[test]
fn ah_maps_gmac_to_integrity_and_drops_ciphers() {
    assert_eq!(show(AH, "aes128gmac"), "AH:AES_128_GMAC/NO_EXT_SEQ");
    assert_eq!(show(AH, "aes256gmac-esn"), "AH:AES_256_GMAC/EXT_SEQ");
    assert_eq!(show(AH, "aes128-sha256"), "AH:HMAC_SHA2_256_128/NO_EXT_SEQ");
    assert_eq!(
        show(ESP, "aes128-sha256-prfsha256"),
        "ESP:AES_CBC_128/HMAC_SHA2_256_128/NO_EXT_SEQ"
    );
}

#[test]
fn missing_parts_are_named() {
    let cases: &[(ProtocolId, &str, Missing)] = &[
        (IKE, "sha256-modp2048", Missing::Encryption),
        (IKE, "aes128-sha256", Missing::KeyExchange),
        (IKE, "aes128-sha256-none", Missing::KeyExchange),
        (IKE, "aes128-prfsha256-modp2048", Missing::Integrity),
        (IKE, "aes128gcm16-modp2048", Missing::Prf),
        (IKE, "aes128-sha256_96-modp2048", Missing::Prf),
        (ESP, "sha256", Missing::Encryption),
        (ESP, "modp2048-esn", Missing::Encryption),
        (AH, "modp2048", Missing::Integrity),
        (AH, "aes128", Missing::Integrity),
    ];
    for &(protocol, s, what) in cases {
        match err(protocol, s) {
            ProposalError::Missing {
                protocol: p,
                what: w,
                proposal,
            } => {
                assert_eq!((p, w, proposal.as_str()), (protocol, what, s));
            }
            e => panic!("{s}: {e}"),
        }
    }
    assert_eq!(
        err(IKE, "aes128-sha256").to_string(),
        "IKE proposal 'aes128-sha256' lacks a key exchange method (DH group), which is mandatory"
    );
    assert_eq!(
        err(IKE, "aes128gcm16-modp2048").to_string(),
        "IKE proposal 'aes128gcm16-modp2048' lacks a PRF (prfNNN, or an integrity algorithm to \
         derive it from), which is mandatory"
    );
}

#[test]
fn mixed_aead_and_classic_is_rejected() {
    let e = err(IKE, "aes128-aes128gcm16-sha256-modp2048");
    assert!(
        matches!(
            e,
            ProposalError::MixedAead {
                protocol: ProtocolId::IKE,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("'aes128-aes128gcm16-sha256-modp2048'")
    );
    assert!(matches!(
        err(ESP, "aes256gcm16-aes256"),
        ProposalError::MixedAead { .. }
    ));
}

#[test]
fn unknown_keywords_name_token_and_string() {
    assert_eq!(
        err(IKE, "aes128-sha257-modp2048").to_string(),
        "unknown algorithm 'sha257' in IKE proposal 'aes128-sha257-modp2048'"
    );
    assert_eq!(
        err(ESP, "aes128--sha256").to_string(),
        "unknown algorithm '' in ESP proposal 'aes128--sha256'"
    );
    // Keywords are case-sensitive, as in strongSwan's keyword table.
    assert!(
        matches!(err(IKE, "AES128-sha256-modp2048"), ProposalError::UnknownKeyword { token, .. } if token == "AES128")
    );
    assert!(matches!(
        err(IKE, "   "),
        ProposalError::Empty {
            protocol: ProtocolId::IKE
        }
    ));
    assert!(matches!(
        err(IKE, "aes128-sha256-modp2048!"),
        ProposalError::StrictFlag { .. }
    ));
    assert!(matches!(
        parse(ProtocolId::NONE, "aes128"),
        Err(ProposalError::Protocol(ProtocolId::NONE))
    ));
    assert!(matches!(
        parse(ProtocolId::from(9), "default"),
        Err(ProposalError::Protocol(_))
    ));
}

#[test]
fn whitespace_around_tokens_is_ignored() {
    assert_eq!(
        one(IKE, " aes128 - sha256 -\tmodp2048 ").transforms,
        one(IKE, "aes128-sha256-modp2048").transforms
    );
}

#[test]
fn additional_key_exchanges() {
    assert_eq!(
        show(IKE, "aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke2_none"),
        "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519/KE1_ML_KEM_768/KE2_MODP_NONE"
    );
}

// ---------------------------------------------------------------- default

#[test]
fn default_is_strongswans_restricted_to_iked() {
    let ike = parse(IKE, "default").unwrap();
    let shown: Vec<String> = ike.iter().map(|p| display(p).to_string()).collect();
    let kes = "ECP_256/ECP_384/ECP_521/CURVE_25519/MODP_3072/MODP_4096/MODP_6144/\
               MODP_8192/MODP_2048";
    let tail = format!(
        "PRF_HMAC_SHA2_256/PRF_HMAC_SHA2_384/PRF_HMAC_SHA2_512/PRF_AES128_XCBC/\
         PRF_AES128_CMAC/PRF_HMAC_SHA1/{kes}"
    );
    assert_eq!(
        shown,
        [
            format!(
                "IKE:AES_CBC_128/AES_CBC_192/AES_CBC_256/AES_CTR_128/AES_CTR_192/AES_CTR_256/\
                 3DES_CBC/HMAC_SHA2_256_128/HMAC_SHA2_384_192/HMAC_SHA2_512_256/AES_XCBC_96/\
                 AES_CMAC_96/HMAC_SHA1_96/{tail}"
            ),
            format!(
                "IKE:AES_GCM_16_128/AES_GCM_16_192/AES_GCM_16_256/AES_CCM_16_128/AES_CCM_16_192/\
                 AES_CCM_16_256/CHACHA20_POLY1305/AES_GCM_12_128/AES_GCM_12_192/AES_GCM_12_256/\
                 AES_CCM_12_128/AES_CCM_12_192/AES_CCM_12_256/AES_CCM_8_128/AES_CCM_8_192/\
                 AES_CCM_8_256/{tail}"
            ),
        ]
    );
    assert_eq!(ike.iter().map(|p| p.number).collect::<Vec<_>>(), [1, 2]);

    // ESP: AEAD first, then classic; as in strongSwan 6.0, every KE method
    // is optional (`MODP_NONE` last), so a rekey uses PFS when the peer agrees.
    assert_eq!(
        display_list(&parse(ESP, "default").unwrap()).to_string(),
        format!(
            "ESP:AES_GCM_16_128/AES_GCM_16_192/AES_GCM_16_256/{kes}/MODP_NONE/NO_EXT_SEQ, \
             ESP:AES_CBC_128/AES_CBC_192/AES_CBC_256/HMAC_SHA2_256_128/HMAC_SHA2_384_192/\
             HMAC_SHA2_512_256/HMAC_SHA1_96/AES_XCBC_96/{kes}/MODP_NONE/NO_EXT_SEQ"
        )
    );
    assert_eq!(
        display_list(&parse(AH, "Default").unwrap()).to_string(),
        format!(
            "AH:HMAC_SHA2_256_128/HMAC_SHA2_384_192/HMAC_SHA2_512_256/HMAC_SHA1_96/\
             AES_XCBC_96/{kes}/MODP_NONE/NO_EXT_SEQ"
        )
    );
    for protocol in [IKE, ESP, AH] {
        for p in default_proposals(protocol) {
            assert!(unsupported(&p).is_empty(), "{}", display(&p));
        }
        // strongSwan's own defaults are larger, and iked's are a subset.
        let ss = strongswan_default_proposals(protocol);
        let ours = default_proposals(protocol);
        assert_eq!(ss.len(), ours.len());
        for (s, o) in ss.iter().zip(&ours) {
            // Brainpool and Curve448 (docs/decisions.md).
            assert!(!unsupported(s).is_empty());
            assert!(o.transforms.iter().all(|t| s.transforms.contains(t)));
        }
    }
    assert!(
        display(&strongswan_default_proposals(IKE)[0])
            .to_string()
            .starts_with("IKE:AES_CBC_128/AES_CBC_192/AES_CBC_256/AES_CTR_128/")
    );
}

#[test]
fn lists_are_numbered_in_order() {
    let v = parse_list(
        IKE,
        &[
            "aes256gcm16-prfsha256-x25519",
            "default",
            "aes128-sha256-modp2048",
        ],
    )
    .unwrap();
    assert_eq!(v.iter().map(|p| p.number).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(
        display(&v[0]).to_string(),
        "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519"
    );
    assert_eq!(
        display(&v[3]).to_string(),
        show(IKE, "aes128-sha256-modp2048")
    );
    assert_eq!(
        parse_comma_list(
            IKE,
            "aes256gcm16-prfsha256-x25519, default, aes128-sha256-modp2048"
        )
        .unwrap(),
        v
    );
    // One bad entry fails the list and says which.
    let e = parse_comma_list(ESP, "aes128gcm16, aes128-sha999").unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown algorithm 'sha999' in ESP proposal 'aes128-sha999'"
    );
    let many: Vec<&str> = vec!["aes128"; 256];
    assert_eq!(
        parse_list(ESP, &many).unwrap_err(),
        ProposalError::TooMany(256)
    );
    assert_eq!(
        parse_list(ESP, &many[..255])
            .unwrap()
            .last()
            .unwrap()
            .number,
        255
    );
}

#[test]
fn unsupported_lists_what_iked_lacks() {
    let p = one(
        IKE,
        "aes192-camellia128-sha256-modp1024-ecp256bp-curve448-modp2048",
    );
    let u = unsupported(&p);
    assert_eq!(
        u,
        [
            tr(TransformType::ENCR, EncrId::CAMELLIA_CBC.0, Some(128)),
            tr(TransformType::KE, KeId::BRAINPOOL_P256R1.0, None),
            tr(TransformType::KE, KeId::CURVE448.0, None),
        ]
    );
    assert!(unsupported(&one(IKE, "aes256gcm16-prfsha256-x25519")).is_empty());
    assert!(unsupported(&one(ESP, "aes128-sha256-none-esn-noesn")).is_empty());
    // ESP and AH: what the kernel bridge installs; KE methods as for IKE.
    for s in [
        "aes128gcm12",
        "aes192gcm8-modp1536",
        "aes256ccm8-ecp521",
        "aes128ccm12",
        "aes192ccm16",
        "aes256gmac",
        "aes128ctr-aesxcbc-modp8192",
        "3des-md5",
        "null-sha256_96",
        "aes128-sha1_160-md5_128-aescmac",
        "chacha20poly1305",
    ] {
        assert!(unsupported(&one(ESP, s)).is_empty(), "{s}");
    }
    for s in [
        "sha256_96",
        "md5",
        "aesxcbc-aescmac",
        "sha1_160-md5_128-modp6144",
    ] {
        assert!(unsupported(&one(AH, s)).is_empty(), "{s}");
    }
    for (protocol, s, n) in [
        (ESP, "camellia128-sha256", 1),
        (ESP, "blowfish-camelliaxcbc", 2),
        (ESP, "aes128gcm16-ecp256bp", 1),
        (ESP, "des-sha1", 1),
        // AES-GMAC as AH's integrity is not in the kernel bridge.
        (AH, "aes128gmac", 1),
        // NULL encryption is ESP only: IKE never accepts it.
        (IKE, "null-sha256-x25519", 1),
    ] {
        assert_eq!(unsupported(&one(protocol, s)).len(), n, "{s}");
    }
}

// ---------------------------------------------------------------- selection

fn conf(protocol: ProtocolId, items: &[&str]) -> Vec<Proposal> {
    parse_list(protocol, items).unwrap()
}

#[test]
fn configured_preference_wins_by_default() {
    assert_eq!(SelectOptions::default().preference, Preference::Configured);
    let ours = conf(
        IKE,
        &["aes256gcm16-prfsha256-x25519", "aes128-sha256-modp2048"],
    );
    let theirs = vec![
        peer(IKE, 1, "aes128-sha256-modp2048"),
        peer(IKE, 2, "aes256gcm16-prfsha256-x25519"),
    ];
    let s = select(&ours, &theirs, SelectOptions::default()).unwrap();
    assert_eq!(s.configured_index, 0);
    assert_eq!(s.proposal.number, 2);
    assert_eq!(
        display(&s.proposal).to_string(),
        "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519"
    );

    let s = select(&ours, &theirs, opts(PEER)).unwrap();
    assert_eq!(s.configured_index, 1);
    assert_eq!(s.proposal.number, 1);
    assert_eq!(
        display(&s.proposal).to_string(),
        "IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048"
    );
}

#[test]
fn algorithm_order_inside_a_proposal_follows_the_preference() {
    let ours = conf(IKE, &["aes128-aes256-sha256-sha1-modp2048-ecp256"]);
    let theirs = vec![peer(IKE, 1, "aes256-aes128-sha1-sha256-ecp256-modp2048")];
    let c = select(&ours, &theirs, opts(CONF)).unwrap().proposal;
    assert_eq!(
        display(&c).to_string(),
        "IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048"
    );
    let p = select(&ours, &theirs, opts(PEER)).unwrap().proposal;
    assert_eq!(
        display(&p).to_string(),
        "IKE:AES_CBC_256/HMAC_SHA1_96/PRF_HMAC_SHA1/ECP_256"
    );
    assert_one_per_type(&c);
    assert_one_per_type(&p);
    // charon's wire order, one of each type.
    assert_eq!(
        types(&c),
        [
            TransformType::ENCR,
            TransformType::INTEG,
            TransformType::PRF,
            TransformType::KE
        ]
    );
}

#[test]
fn selection_carries_peer_number_and_spi() {
    let ours = conf(ESP, &["aes128gcm16"]);
    let mut p = peer(ESP, 7, "aes256gcm16-aes128gcm16");
    p.spi = vec![1, 2, 3, 4];
    let s = select(&ours, &[p], SelectOptions::default()).unwrap();
    assert_eq!(
        (s.proposal.number, s.proposal.spi.as_slice()),
        (7, &[1, 2, 3, 4][..])
    );
    assert_eq!(s.proposal.protocol, ESP);
}

#[test]
fn key_lengths_must_match() {
    let ours = conf(IKE, &["aes256-sha256-modp2048"]);
    let e = select(&ours, &[peer(IKE, 1, "aes128-sha256-modp2048")], opts(CONF)).unwrap_err();
    assert_eq!(
        e.mismatches,
        [(1, 0, Mismatch::NoCommon(TransformType::ENCR))]
    );
    // AES without a Key Length attribute is not AES-256.
    let mut no_len = peer(IKE, 1, "aes256-sha256-modp2048");
    no_len.transforms[0].key_length = None;
    assert!(select(&ours, &[no_len.clone()], opts(CONF)).is_err());
    no_len.transforms[0].key_length = Some(256);
    assert!(select(&ours, &[no_len], opts(CONF)).is_ok());
}

#[test]
fn unknown_transform_types_make_a_proposal_unacceptable() {
    let ours = conf(IKE, &["aes128-sha256-modp2048"]);
    let mut odd = peer(IKE, 1, "aes128-sha256-modp2048");
    odd.transforms.push(tr(TransformType(200), 1, None));
    let e = select(&ours, &[odd.clone()], opts(CONF)).unwrap_err();
    assert_eq!(
        e.mismatches,
        [(1, 0, Mismatch::UnknownTransformType(TransformType(200)))]
    );
    // The next proposal is still considered.
    let s = select(
        &ours,
        &[odd, peer(IKE, 2, "aes128-sha256-modp2048")],
        opts(CONF),
    )
    .unwrap();
    assert_eq!(s.proposal.number, 2);
    // Unknown IDs of known types are simply not chosen.
    let mut unknown_id = peer(IKE, 1, "aes128-sha256-modp2048");
    unknown_id
        .transforms
        .insert(0, tr(TransformType::ENCR, 999, None));
    assert!(select(&ours, &[unknown_id], opts(PEER)).is_ok());
}

#[test]
fn transforms_with_unknown_attributes_are_not_chosen() {
    let ours = conf(IKE, &["aes128-sha256-modp2048"]);
    let mut p = peer(IKE, 1, "aes128-sha256-modp2048");
    p.transforms[0]
        .other_attributes
        .push(TransformAttribute::Short {
            attribute_type: 99,
            value: 1,
        });
    let e = select(&ours, &[p], opts(CONF)).unwrap_err();
    assert_eq!(
        e.mismatches,
        [(1, 0, Mismatch::NoCommon(TransformType::ENCR))]
    );
}

#[test]
fn missing_mandatory_types_are_unacceptable() {
    let ours = conf(IKE, &["aes128gcm16-prfsha256-modp2048"]);
    // No PRF.
    let no_prf = Proposal {
        number: 1,
        protocol: IKE,
        spi: Vec::new(),
        transforms: vec![
            tr(TransformType::ENCR, EncrId::AES_GCM_16.0, Some(128)),
            tr(TransformType::KE, KeId::MODP_2048.0, None),
        ],
    };
    let e = select(&ours, &[no_prf], opts(CONF)).unwrap_err();
    assert_eq!(
        e.mismatches,
        [(1, 0, Mismatch::PeerLacks(TransformType::PRF))]
    );
    // No KE in IKE, even when we would accept NONE elsewhere.
    let mut no_ke = peer(IKE, 1, "aes128gcm16-prfsha256-modp2048");
    no_ke
        .transforms
        .retain(|t| t.transform_type != TransformType::KE);
    let e = select(&ours, &[no_ke], opts(CONF)).unwrap_err();
    assert_eq!(
        e.mismatches,
        [(1, 0, Mismatch::PeerLacks(TransformType::KE))]
    );
    // ESP without ESN transform.
    let ours = conf(ESP, &["aes128gcm16"]);
    let mut no_esn = peer(ESP, 1, "aes128gcm16");
    no_esn
        .transforms
        .retain(|t| t.transform_type != TransformType::ESN);
    let e = select(&ours, &[no_esn], opts(CONF)).unwrap_err();
    assert_eq!(
        e.mismatches,
        [(1, 0, Mismatch::PeerLacks(TransformType::ESN))]
    );
}

#[test]
fn protocols_must_match() {
    let ours = conf(ESP, &["aes128-sha256"]);
    let e = select(&ours, &[peer(AH, 1, "sha256")], opts(CONF)).unwrap_err();
    assert_eq!(e.mismatches, [(1, 0, Mismatch::Protocol)]);
}

#[test]
fn esn_negotiation() {
    let both = conf(ESP, &["aes128gcm16-esn-noesn"]);
    let pick = |ours: &[Proposal], theirs: &str, pref| {
        select(ours, &[peer(ESP, 1, theirs)], opts(pref))
            .map(|s| child_suite(&s.proposal).unwrap().esn)
    };
    assert_eq!(pick(&both, "aes128gcm16-esn", CONF), Ok(true));
    assert_eq!(pick(&both, "aes128gcm16-noesn", CONF), Ok(false));
    assert_eq!(pick(&both, "aes128gcm16", CONF), Ok(false));
    assert_eq!(pick(&both, "aes128gcm16-noesn-esn", CONF), Ok(true));
    assert_eq!(pick(&both, "aes128gcm16-noesn-esn", PEER), Ok(false));
    let only_esn = conf(ESP, &["aes128gcm16-esn"]);
    let e = pick(&only_esn, "aes128gcm16", CONF).unwrap_err();
    assert_eq!(
        e.mismatches,
        [(1, 0, Mismatch::NoCommon(TransformType::ESN))]
    );
}

#[test]
fn child_sa_pfs_and_no_pfs() {
    let suite = |ours: &[&str], theirs: &str, skip_ke: bool| {
        let o = SelectOptions {
            preference: CONF,
            skip_ke,
        };
        select(&conf(ESP, ours), &[peer(ESP, 1, theirs)], o).map(|s| {
            assert_one_per_type(&s.proposal);
            (
                display(&s.proposal).to_string(),
                child_suite(&s.proposal).unwrap().ke,
            )
        })
    };
    // PFS required by us.
    assert_eq!(
        suite(
            &["aes128gcm16-modp2048"],
            "aes128gcm16-ecp256-modp2048",
            false
        ),
        Ok((
            "ESP:AES_GCM_16_128/MODP_2048/NO_EXT_SEQ".into(),
            Some(KeId::MODP_2048)
        ))
    );
    let e = suite(&["aes128gcm16-modp2048"], "aes128gcm16", false).unwrap_err();
    assert_eq!(
        e.mismatches,
        [(1, 0, Mismatch::PeerLacks(TransformType::KE))]
    );
    // No PFS configured, peer insists on PFS.
    let e = suite(&["aes128gcm16"], "aes128gcm16-modp2048", false).unwrap_err();
    assert_eq!(
        e.mismatches,
        [(1, 0, Mismatch::NotConfigured(TransformType::KE))]
    );
    // No PFS configured, peer makes PFS optional: KE NONE echoed.
    assert_eq!(
        suite(&["aes128gcm16"], "aes128gcm16-modp2048-none", false),
        Ok(("ESP:AES_GCM_16_128/MODP_NONE/NO_EXT_SEQ".into(), None))
    );
    // PFS optional on our side, peer without KE.
    assert_eq!(
        suite(&["aes128gcm16-modp2048-none"], "aes128gcm16", false),
        Ok(("ESP:AES_GCM_16_128/NO_EXT_SEQ".into(), None))
    );
    // Both optional: our preference picks MODP_2048 before NONE.
    assert_eq!(
        suite(
            &["aes128gcm16-modp2048-none"],
            "aes128gcm16-none-modp2048",
            false
        ),
        Ok((
            "ESP:AES_GCM_16_128/MODP_2048/NO_EXT_SEQ".into(),
            Some(KeId::MODP_2048)
        ))
    );
    // IKE_AUTH child: KE ignored on both sides.
    assert_eq!(
        suite(&["aes128gcm16-modp2048"], "aes128gcm16", true),
        Ok(("ESP:AES_GCM_16_128/NO_EXT_SEQ".into(), None))
    );
    assert_eq!(
        suite(&["aes128gcm16"], "aes128gcm16-ecp256", true),
        Ok(("ESP:AES_GCM_16_128/NO_EXT_SEQ".into(), None))
    );
}

#[test]
fn aead_with_integ_none_from_peer_is_echoed() {
    let ours = conf(IKE, &["aes256gcm16-prfsha256-x25519"]);
    let mut p = peer(IKE, 1, "aes256gcm16-prfsha256-x25519");
    p.transforms
        .push(tr(TransformType::INTEG, IntegId::NONE.0, None));
    let s = select(&ours, &[p], opts(CONF)).unwrap();
    assert_eq!(
        display(&s.proposal).to_string(),
        "IKE:AES_GCM_16_256/NONE/PRF_HMAC_SHA2_256/CURVE_25519"
    );
    assert_eq!(ike_suite(&s.proposal).unwrap().integ, None);
    // A classic cipher with only INTEG NONE offered is no good.
    let ours = conf(IKE, &["aes128-sha256-modp2048"]);
    let mut p = peer(IKE, 1, "aes128-sha256-modp2048");
    p.transforms
        .retain(|t| t.transform_type != TransformType::INTEG);
    p.transforms
        .push(tr(TransformType::INTEG, IntegId::NONE.0, None));
    assert!(select(&ours, &[p], opts(CONF)).is_err());
}

#[test]
fn no_proposal_chosen_log_line() {
    let ours = conf(IKE, &["aes256gcm16-prfsha256-x25519"]);
    let e = select(&ours, &[peer(IKE, 1, "aes128-sha1-modp1024")], opts(CONF)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no proposal chosen: peer offered IKE:AES_CBC_128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024, \
         we accept IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519"
    );
    assert_eq!(
        e.mismatches,
        [(1, 0, Mismatch::NoCommon(TransformType::ENCR))]
    );
    assert_eq!(
        Mismatch::NoCommon(TransformType::ENCR).to_string(),
        "no acceptable ENCR transform"
    );
    let e = select(&ours, &[], opts(CONF)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no proposal chosen: peer offered (none), we accept IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519"
    );
}

// ---------------------------------------------------------------- KE payload

#[test]
fn invalid_ke_payload_helper() {
    let ours = conf(IKE, &["aes128-sha256-ecp256-modp2048"]);
    let theirs = [peer(IKE, 1, "aes128-sha256-modp2048-ecp256")];
    let c = select(&ours, &theirs, opts(CONF)).unwrap().proposal;
    // The peer guessed MODP_2048; we prefer ECP_256 and ask for it.
    assert_eq!(
        check_ke_payload(&c, Some(KeId::MODP_2048)),
        KeCheck::InvalidKePayload(KeId::ECP_256)
    );
    assert_eq!(check_ke_payload(&c, Some(KeId::ECP_256)), KeCheck::Accept);
    assert_eq!(
        check_ke_payload(&c, None),
        KeCheck::InvalidKePayload(KeId::ECP_256)
    );
    // Preferring the peer's order, its first group is chosen: no round trip.
    let p = select(&ours, &theirs, opts(PEER)).unwrap().proposal;
    assert_eq!(check_ke_payload(&p, Some(KeId::MODP_2048)), KeCheck::Accept);
    // Child SA without PFS.
    let child = select(
        &conf(ESP, &["aes128gcm16"]),
        &[peer(ESP, 1, "aes128gcm16")],
        opts(CONF),
    )
    .unwrap()
    .proposal;
    assert_eq!(check_ke_payload(&child, None), KeCheck::Accept);
    assert_eq!(
        check_ke_payload(&child, Some(KeId::ECP_256)),
        KeCheck::Ignore
    );
}

// ---------------------------------------------------------------- initiator

#[test]
fn initiator_promotes_the_requested_group() {
    let ours = conf(
        IKE,
        &[
            "aes128-sha256-ecp256-modp2048-ecp384",
            "aes256gcm16-prfsha256-x25519",
        ],
    );
    assert_eq!(promote_ke(&ours, KeId::MODP_4096), None);
    let p = promote_ke(&ours, KeId::MODP_2048).unwrap();
    assert_eq!(
        display(&p[0]).to_string(),
        "IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048/ECP_256/ECP_384"
    );
    // Wire order kept: the KE transforms stay together after PRF.
    assert_eq!(
        types(&p[0]),
        [
            TransformType::ENCR,
            TransformType::INTEG,
            TransformType::PRF,
            TransformType::KE,
            TransformType::KE,
            TransformType::KE
        ]
    );
    // A responder preferring its configured order now meets our KE payload.
    let resp = conf(IKE, &["aes128-sha256-modp2048-ecp256"]);
    let s = select(&resp, &p, opts(PEER)).unwrap().proposal;
    assert_eq!(check_ke_payload(&s, Some(KeId::MODP_2048)), KeCheck::Accept);
    // Proposals with the group come first, renumbered.
    let p = promote_ke(&ours, KeId::CURVE25519).unwrap();
    assert_eq!(
        display(&p[0]).to_string(),
        "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519"
    );
    assert_eq!(p.iter().map(|p| p.number).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(p[1].transforms, ours[0].transforms);
}

#[test]
fn initiator_checks_the_answer() {
    let ours = conf(
        IKE,
        &[
            "aes256gcm16-prfsha256-x25519",
            "aes128-sha256-modp2048-ecp256",
        ],
    );
    // What a responder preferring its own order would answer.
    let answer = select(&ours, &ours, opts(PEER)).unwrap().proposal;
    let ok = check_response(&ours, std::slice::from_ref(&answer), false).unwrap();
    assert_eq!(ok.configured_index, 0);
    assert_eq!(ok.proposal, answer);

    let mut second = select(&ours[1..], &ours[1..], opts(PEER)).unwrap().proposal;
    second
        .transforms
        .retain(|t| t.id != KeId::MODP_2048.0 || t.transform_type != TransformType::KE);
    second
        .transforms
        .push(tr(TransformType::KE, KeId::ECP_256.0, None));
    assert_eq!(
        check_response(&ours, &[second.clone()], false)
            .unwrap()
            .configured_index,
        1
    );

    assert_eq!(
        check_response(&ours, &[answer.clone(), answer.clone()], false),
        Err(ResponseError::ProposalCount(2))
    );
    assert_eq!(
        check_response(&ours, &[], false),
        Err(ResponseError::ProposalCount(0))
    );
    let mut dup = answer.clone();
    dup.transforms
        .push(tr(TransformType::KE, KeId::ECP_256.0, None));
    assert!(matches!(
        check_response(&ours, &[dup], false),
        Err(ResponseError::DuplicateType {
            transform_type: TransformType::KE,
            ..
        })
    ));
    // An algorithm we never offered.
    let mut foreign = answer.clone();
    foreign.transforms[0].key_length = Some(192);
    assert!(matches!(
        check_response(&ours, &[foreign], false),
        Err(ResponseError::NotOurs { .. })
    ));
    // A mandatory type left out.
    let mut partial = answer.clone();
    partial
        .transforms
        .retain(|t| t.transform_type != TransformType::PRF);
    assert!(matches!(
        check_response(&ours, &[partial], false),
        Err(ResponseError::NotOurs { .. })
    ));
    // Mixing algorithms of two of our proposals is not a valid answer.
    let mut mixed = answer;
    mixed
        .transforms
        .retain(|t| t.transform_type != TransformType::KE);
    mixed
        .transforms
        .push(tr(TransformType::KE, KeId::MODP_2048.0, None));
    let e = check_response(&ours, &[mixed], false).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("responder chose IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/MODP_2048")
    );
}

#[test]
fn initiator_checks_child_answers() {
    let ours = conf(ESP, &["aes128gcm16-modp2048-none"]);
    let with_pfs = select(&ours, &[peer(ESP, 1, "aes128gcm16-modp2048")], opts(CONF))
        .unwrap()
        .proposal;
    assert!(check_response(&ours, std::slice::from_ref(&with_pfs), false).is_ok());
    let without = select(&ours, &[peer(ESP, 1, "aes128gcm16")], opts(CONF))
        .unwrap()
        .proposal;
    assert!(check_response(&ours, std::slice::from_ref(&without), false).is_ok());
    // IKE_AUTH: KE must not be chosen, KE NONE tolerated.
    assert!(check_response(&ours, &[with_pfs], true).is_err());
    assert!(check_response(&ours, std::slice::from_ref(&without), true).is_ok());
    let mut none = without;
    none.transforms.push(tr(TransformType::KE, 0, None));
    assert!(check_response(&ours, &[none], true).is_ok());
}

// ---------------------------------------------------------------- suites

#[test]
fn conversions_to_suites() {
    let pick = |protocol, ours: &str, theirs: &str| {
        select(
            &conf(protocol, &[ours]),
            &[peer(protocol, 1, theirs)],
            opts(CONF),
        )
        .unwrap()
        .proposal
    };
    assert_eq!(
        ike_suite(&pick(
            IKE,
            "aes256gcm16-prfsha256-x25519",
            "aes256gcm16-prfsha256-x25519"
        )),
        Ok(IkeSuite {
            encr: EncrId::AES_GCM_16,
            encr_key_bits: Some(256),
            integ: None,
            prf: PrfId::HMAC_SHA2_256,
            ke: KeId::CURVE25519,
        })
    );
    assert_eq!(
        ike_suite(&pick(
            IKE,
            "aes128-sha256-modp2048",
            "aes128-sha256-modp2048"
        )),
        Ok(IkeSuite {
            encr: EncrId::AES_CBC,
            encr_key_bits: Some(128),
            integ: Some(IntegId::HMAC_SHA2_256_128),
            prf: PrfId::HMAC_SHA2_256,
            ke: KeId::MODP_2048,
        })
    );
    assert_eq!(
        ike_suite(&pick(
            IKE,
            "chacha20poly1305-prfsha512-ecp384",
            "chacha20poly1305-prfsha512-ecp384"
        ))
        .unwrap()
        .encr_key_bits,
        None
    );
    assert_eq!(
        child_suite(&pick(ESP, "aes256-sha512-esn", "aes256-sha512-esn")),
        Ok(ChildSuite {
            protocol: ESP,
            encr: Some((EncrId::AES_CBC, Some(256))),
            integ: Some(IntegId::HMAC_SHA2_512_256),
            ke: None,
            esn: true,
        })
    );
    assert_eq!(
        child_suite(&pick(AH, "sha384-ecp384", "sha384-ecp384")),
        Ok(ChildSuite {
            protocol: AH,
            encr: None,
            integ: Some(IntegId::HMAC_SHA2_384_192),
            ke: Some(KeId::ECP_384),
            esn: false,
        })
    );
    // Not selected (several per type), wrong protocol, missing parts.
    assert!(matches!(
        ike_suite(&one(IKE, "aes128-aes256-sha256-modp2048")),
        Err(SuiteError::Multiple {
            transform_type: TransformType::ENCR,
            ..
        })
    ));
    assert_eq!(
        ike_suite(&one(ESP, "aes128")),
        Err(SuiteError::Protocol(ESP))
    );
    assert_eq!(
        child_suite(&one(IKE, "aes128-sha256-modp2048")),
        Err(SuiteError::Protocol(IKE))
    );
    let mut no_esn = pick(ESP, "aes128gcm16", "aes128gcm16");
    no_esn
        .transforms
        .retain(|t| t.transform_type != TransformType::ESN);
    assert!(matches!(
        child_suite(&no_esn),
        Err(SuiteError::Missing {
            transform_type: TransformType::ESN,
            ..
        })
    ));
    let mut no_integ = pick(IKE, "aes128-sha256-modp2048", "aes128-sha256-modp2048");
    no_integ
        .transforms
        .retain(|t| t.transform_type != TransformType::INTEG);
    assert!(matches!(
        ike_suite(&no_integ),
        Err(SuiteError::Missing {
            transform_type: TransformType::INTEG,
            ..
        })
    ));
    assert_eq!(EsnId::ESN.0, 1);
}

#[test]
fn display_of_unknown_things() {
    let p = Proposal {
        number: 1,
        protocol: ProtocolId(9),
        spi: Vec::new(),
        transforms: vec![
            tr(TransformType(77), 5, Some(0)),
            tr(TransformType::ENCR, 4000, Some(64)),
        ],
    };
    assert_eq!(
        display(&p).to_string(),
        "PROTO_9:UNKNOWN_1_4000_64/UNKNOWN_77_5"
    );
    assert_eq!(to_keyword_string(&p), None);
    assert_eq!(display_list(&[]).to_string(), "(none)");
}

// ---------------------------------------------------------------- no panics

fn arb_transform() -> impl Strategy<Value = Transform> {
    (
        prop_oneof![1u8..=12, any::<u8>()],
        prop_oneof![0u16..40, any::<u16>()],
        proptest::option::of(prop_oneof![Just(128u16), Just(256), any::<u16>()]),
        any::<bool>(),
    )
        .prop_map(|(t, id, ks, attr)| Transform {
            transform_type: TransformType(t),
            id,
            key_length: ks,
            other_attributes: if attr {
                vec![TransformAttribute::Long {
                    attribute_type: 1,
                    value: vec![1],
                }]
            } else {
                Vec::new()
            },
        })
}

fn arb_proposal() -> impl Strategy<Value = Proposal> {
    (
        any::<u8>(),
        0u8..5,
        proptest::collection::vec(arb_transform(), 0..8),
    )
        .prop_map(|(number, protocol, transforms)| Proposal {
            number,
            protocol: ProtocolId(protocol),
            spi: vec![number],
            transforms,
        })
}

proptest! {
    #[test]
    fn parsing_never_panics(s in "[a-z0-9_! ,-]{0,40}", protocol in 0u8..5) {
        let _ = parse(ProtocolId(protocol), &s);
        let _ = parse_comma_list(ProtocolId(protocol), &s);
    }

    #[test]
    fn keyword_soup_never_panics_and_valid_results_round_trip(
        picks in proptest::collection::vec(0usize..KEYWORDS.len(), 1..8),
        protocol in 1u8..4,
    ) {
        let s: Vec<&str> = picks.iter().filter_map(|&i| KEYWORDS.get(i)).map(|k| k.name).collect();
        let protocol = ProtocolId(protocol);
        if let Ok(v) = parse(protocol, &s.join("-")) {
            for p in &v {
                let back = to_keyword_string(p).unwrap();
                prop_assert_eq!(&parse(protocol, &back).unwrap()[0].transforms, &p.transforms);
                let _ = unsupported(p);
            }
        }
    }

    #[test]
    fn selection_never_panics_and_answers_one_per_type(
        ours in proptest::collection::vec(arb_proposal(), 0..4),
        theirs in proptest::collection::vec(arb_proposal(), 0..4),
        peer_pref in any::<bool>(),
        skip_ke in any::<bool>(),
    ) {
        let o = SelectOptions { preference: if peer_pref { PEER } else { CONF }, skip_ke };
        let r = select(&ours, &theirs, o);
        let _ = r.as_ref().map_err(|e| e.to_string());
        if let Ok(s) = r {
            assert_one_per_type(&s.proposal);
            let _ = ike_suite(&s.proposal);
            let _ = child_suite(&s.proposal);
            let _ = check_ke_payload(&s.proposal, None);
            prop_assert!(check_response(&ours, std::slice::from_ref(&s.proposal), skip_ke).is_ok());
        }
        let _ = check_response(&ours, &theirs, skip_ke);
    }
}
