//! Real bytes from a real peer: IKEv2 exchanges captured between two
//! strongSwan 5.9.8 instances in the kernel lab, with the key material charon
//! logged (tests/captures/, produced by tests/lab/capture-strongswan.sh).
//!
//! For each captured suite this shows that iked
//! - parses every datagram and re-emits it byte for byte;
//! - reads strongSwan's proposal string into exactly the SA payload charon
//!   sent, and as a responder selects what charon's responder selected;
//! - computes the NAT detection hashes charon sent;
//! - derives the same SKEYSEED, SK_* and Child SA keys from the logged
//!   Diffie-Hellman secret and the nonces on the wire;
//! - decrypts every protected message, finds the payloads the exchange
//!   requires, re-emits the decrypted payloads byte for byte, and computes
//!   the same PSK AUTH values.

// A test crate: a failed expectation is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// It reads the captures from tests/captures, which ike/clippy.toml forbids
// the library.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ike::crypto::auth::{nat_detection_hash, psk_auth, signed_octets};
use ike::crypto::keymat::{ChildKeys, IkeKeys, SkCiphers, skeyseed};
use ike::crypto::prf::HmacPrf;
use ike::crypto::proposal::{self, SelectOptions};
use ike::crypto::sk::SkCipher;
use ike::crypto::{CryptoError, DefaultProvider};
use ike::wire::codes::{ExchangeType, NotifyType, ProtocolId};
use ike::wire::{Encrypted, Message, ParseLimits, Payload, rules};
use zeroize::Zeroizing;

fn captures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/captures/strongswan-5.9.8");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("keys.txt").exists())
        .collect();
    dirs.sort();
    assert_eq!(
        dirs.len(),
        3,
        "expected three captured suites in {}",
        root.display()
    );
    dirs
}

/// `name = value` lines, `#` comments.
fn read_kv(path: &Path) -> BTreeMap<String, String> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

struct Capture {
    dir: PathBuf,
    keys: BTreeMap<String, String>,
    meta: BTreeMap<String, String>,
    /// IKE messages without the non-ESP marker, in order, with "from the initiator".
    datagrams: Vec<(String, Vec<u8>, bool)>,
}

impl Capture {
    fn load(dir: &Path) -> Self {
        let listing = fs::read_to_string(dir.join("datagrams.txt")).unwrap();
        let datagrams = listing
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let raw = fs::read(dir.join(f[0])).unwrap();
                let marker: usize = f[6].parse().unwrap();
                assert!(
                    raw[..marker].iter().all(|b| *b == 0),
                    "{}: non-ESP marker",
                    f[0]
                );
                (
                    f[0].to_string(),
                    raw[marker..].to_vec(),
                    f[1] == "initiator->responder",
                )
            })
            .collect();
        Self {
            dir: dir.to_path_buf(),
            keys: read_kv(&dir.join("keys.txt")),
            meta: read_kv(&dir.join("meta.txt")),
            datagrams,
        }
    }

    fn key(&self, name: &str) -> Vec<u8> {
        self.keys
            .get(name)
            .map(|h| hex::decode(h).unwrap())
            .unwrap_or_default()
    }

    fn name(&self) -> String {
        self.dir.file_name().unwrap().to_string_lossy().into_owned()
    }
}

fn nonce(m: &Message) -> Vec<u8> {
    m.iter()
        .find_map(|p| match p {
            Payload::Nonce(n) => Some(n.clone()),
            _ => None,
        })
        .expect("nonce")
}

fn sa(m: &Message) -> Vec<ike::wire::sa::Proposal> {
    m.iter()
        .find_map(|p| match p {
            Payload::Sa(s) => Some(s.clone()),
            _ => None,
        })
        .expect("SA payload")
}

fn without_spi(mut v: Vec<ike::wire::sa::Proposal>) -> Vec<ike::wire::sa::Proposal> {
    for p in &mut v {
        p.spi.clear();
    }
    v
}

/// A cipher that "seals" by appending the plaintext and a zero Pad Length:
/// emitting a decrypted message with it yields the inner payloads' octets.
#[derive(Debug)]
struct Cleartext;

impl SkCipher for Cleartext {
    fn iv_len(&self) -> usize {
        0
    }
    fn icv_len(&self) -> usize {
        0
    }
    fn sealed_len(&self, plain_len: usize) -> usize {
        plain_len + 1
    }
    fn seal(&mut self, out: &mut Vec<u8>, plaintext: &[u8]) -> Result<(), CryptoError> {
        out.extend_from_slice(plaintext);
        out.push(0);
        Ok(())
    }
    fn open(&self, _: &[u8], _: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        Err(CryptoError::IntegrityCheckFailed)
    }
}

/// The octets of `m`'s decrypted inner payloads as iked emits them.
fn inner_octets(m: &Message) -> Vec<u8> {
    let out = m.emit_sealed(&mut Cleartext).unwrap();
    let outer_len = m
        .payloads
        .iter()
        .filter(|p| !matches!(p, Payload::Sk(_)))
        .map(|p| {
            let mut one = m.clone();
            one.payloads = vec![p.clone()];
            one.emit().unwrap().len() - ike::wire::HEADER_LEN
        })
        .sum::<usize>();
    // IKE header, outer payloads, SK generic header; Pad Length at the end.
    out[ike::wire::HEADER_LEN + outer_len + 4..out.len() - 1].to_vec()
}

#[test]
fn strongswan_captures_parse_derive_and_decrypt() {
    let limits = ParseLimits::default();
    let provider = DefaultProvider::new();
    for dir in captures() {
        let c = Capture::load(&dir);
        let name = c.name();
        assert_eq!(c.datagrams.len(), 6, "{name}: datagrams");

        // Every datagram parses and re-emits byte for byte.
        let mut msgs: Vec<Message> = Vec::new();
        for (file, bytes, _) in &c.datagrams {
            let m = Message::parse(bytes, &limits).unwrap_or_else(|e| panic!("{name}/{file}: {e}"));
            assert_eq!(
                &m.emit().unwrap(),
                bytes,
                "{name}/{file}: re-emitted bytes differ"
            );
            msgs.push(m);
        }
        let (init_req, init_resp) = (&msgs[0], &msgs[1]);
        assert_eq!(init_req.header.exchange, ExchangeType::IKE_SA_INIT);
        assert_eq!(
            init_req.header.spi_i.to_be_bytes().to_vec(),
            c.key("spi_i"),
            "{name}"
        );
        assert_eq!(
            init_resp.header.spi_r.to_be_bytes().to_vec(),
            c.key("spi_r"),
            "{name}"
        );
        let (ni, nr) = (nonce(init_req), nonce(init_resp));
        assert_eq!(ni, c.key("ni"), "{name}: Ni");
        assert_eq!(nr, c.key("nr"), "{name}: Nr");
        for (m, k) in [(init_req, "ke_i"), (init_resp, "ke_r")] {
            let ke = m
                .iter()
                .find_map(|p| match p {
                    Payload::Ke(ke) => Some(ke.data.clone()),
                    _ => None,
                })
                .unwrap();
            assert_eq!(ke, c.key(k), "{name}: {k}");
        }

        // The proposal string means what it means to strongSwan: iked's
        // parse of it is the SA payload charon sent, and iked as responder
        // picks what charon's responder picked.
        let ours = proposal::parse_list(ProtocolId::IKE, &[&c.meta["ike_proposal"]]).unwrap();
        assert_eq!(
            sa(init_req),
            ours,
            "{name}: IKE proposal as charon encodes it"
        );
        let selected = proposal::select(&ours, &sa(init_req), SelectOptions::default()).unwrap();
        assert_eq!(
            sa(init_resp),
            vec![selected.proposal.clone()],
            "{name}: selection"
        );
        let suite = proposal::ike_suite(&selected.proposal).unwrap();

        // NAT detection hashes in the IKE_SA_INIT request (SPIr still zero).
        let addr = |k: &str| -> IpAddr { c.meta[k].parse().unwrap() };
        let (spi_i, zero) = (init_req.header.spi_i.to_be_bytes(), [0u8; 8]);
        for (t, a) in [
            (NotifyType::NAT_DETECTION_SOURCE_IP, addr("initiator_addr")),
            (
                NotifyType::NAT_DETECTION_DESTINATION_IP,
                addr("responder_addr"),
            ),
        ] {
            let sent = init_req
                .iter()
                .find_map(|p| match p {
                    Payload::Notify(n) if n.notify_type == t => Some(n.data.clone()),
                    _ => None,
                })
                .unwrap();
            assert_eq!(
                sent,
                nat_detection_hash(&spi_i, &zero, a, 500).to_vec(),
                "{name}: {t}"
            );
        }

        // The key schedule.
        let prf = HmacPrf::new(suite.prf).unwrap();
        let seed = skeyseed(&prf, &ni, &nr, &c.key("shared_secret"));
        assert_eq!(seed.as_bytes(), c.key("skeyseed"), "{name}: SKEYSEED");
        let spi_r = init_resp.header.spi_r.to_be_bytes();
        let keys =
            IkeKeys::derive(&prf, &suite, seed.as_bytes(), &ni, &nr, &spi_i, &spi_r).unwrap();
        for (k, v) in [
            ("sk_d", &keys.sk_d),
            ("sk_ai", &keys.sk_ai),
            ("sk_ar", &keys.sk_ar),
            ("sk_ei", &keys.sk_ei),
            ("sk_er", &keys.sk_er),
            ("sk_pi", &keys.sk_pi),
            ("sk_pr", &keys.sk_pr),
        ] {
            assert_eq!(v.as_bytes(), c.key(k), "{name}: {k}");
        }

        // Decrypt every protected message with the side that receives it.
        let SkCiphers {
            inbound: from_responder,
            ..
        } = keys.sk_ciphers(&provider, &suite, true).unwrap();
        let SkCiphers {
            inbound: from_initiator,
            ..
        } = keys.sk_ciphers(&provider, &suite, false).unwrap();
        for (i, (file, bytes, from_i)) in c.datagrams.iter().enumerate().skip(2) {
            let cipher = if *from_i {
                &from_initiator
            } else {
                &from_responder
            };
            let Some(Encrypted::Sealed { body, .. }) = msgs[i].encrypted().cloned() else {
                panic!("{name}/{file}: not encrypted");
            };
            msgs[i]
                .decrypt(bytes, cipher.as_ref(), &limits)
                .unwrap_or_else(|e| panic!("{name}/{file}: {e}"));
            rules::check(&msgs[i]).unwrap_or_else(|e| panic!("{name}/{file}: {e}"));
            // The decrypted payloads re-emit to the octets charon encrypted.
            let authenticated = &bytes[..bytes.len() - body.len()];
            let plain = cipher.open(authenticated, &body).unwrap();
            assert_eq!(
                inner_octets(&msgs[i]),
                plain.as_slice(),
                "{name}/{file}: inner payloads"
            );
        }

        // PSK AUTH of both sides.
        let psk = c.key("psk");
        let id_body = |m: &Message| {
            m.iter()
                .find_map(|p| match p {
                    Payload::IdI(id) | Payload::IdR(id) => {
                        let mut body = vec![id.id_type.0, 0, 0, 0];
                        body.extend_from_slice(&id.data);
                        Some(body)
                    }
                    _ => None,
                })
                .unwrap()
        };
        let auth = |m: &Message| {
            m.iter()
                .find_map(|p| match p {
                    Payload::Auth(a) => Some(a.data.clone()),
                    _ => None,
                })
                .unwrap()
        };
        let (auth_req, auth_resp) = (&msgs[2], &msgs[3]);
        assert_eq!(id_body(auth_req), c.key("id_i_payload"), "{name}: IDi");
        assert_eq!(id_body(auth_resp), c.key("id_r_payload"), "{name}: IDr");
        let octets_i = signed_octets(
            &prf,
            &c.datagrams[0].1,
            &nr,
            keys.sk_pi.as_bytes(),
            &id_body(auth_req),
        );
        let octets_r = signed_octets(
            &prf,
            &c.datagrams[1].1,
            &ni,
            keys.sk_pr.as_bytes(),
            &id_body(auth_resp),
        );
        assert_eq!(
            auth(auth_req),
            psk_auth(&prf, &psk, &octets_i),
            "{name}: AUTH of the initiator"
        );
        assert_eq!(
            auth(auth_resp),
            psk_auth(&prf, &psk, &octets_r),
            "{name}: AUTH of the responder"
        );
        assert_eq!(auth(auth_req), c.key("auth_i"), "{name}: logged AUTH_i");

        // The Child SA: charon's ESP proposal, its selection, its keys.
        let esp = proposal::parse_list(ProtocolId::ESP, &[&c.meta["esp_proposal"]]).unwrap();
        let offered = sa(auth_req);
        assert_eq!(
            offered[0].spi,
            c.key("child_spi_i"),
            "{name}: initiator's child SPI"
        );
        assert_eq!(
            without_spi(offered.clone()),
            esp,
            "{name}: ESP proposal as charon encodes it"
        );
        let child = proposal::select(
            &esp,
            &offered,
            SelectOptions {
                skip_ke: true,
                ..Default::default()
            },
        )
        .unwrap();
        let answered = sa(auth_resp);
        assert_eq!(
            answered[0].spi,
            c.key("child_spi_r"),
            "{name}: responder's child SPI"
        );
        assert_eq!(
            without_spi(answered.clone()),
            without_spi(vec![child.proposal.clone()]),
            "{name}"
        );
        let child_suite = proposal::child_suite(&answered[0]).unwrap();
        let ck =
            ChildKeys::derive(&prf, keys.sk_d.as_bytes(), None, &ni, &nr, &child_suite).unwrap();
        assert_eq!(
            ck.encr_i.as_bytes(),
            c.key("child_sk_ei"),
            "{name}: child encr i"
        );
        assert_eq!(
            ck.encr_r.as_bytes(),
            c.key("child_sk_er"),
            "{name}: child encr r"
        );
        assert_eq!(
            ck.integ_i.as_bytes(),
            c.key("child_sk_ai"),
            "{name}: child integ i"
        );
        assert_eq!(
            ck.integ_r.as_bytes(),
            c.key("child_sk_ar"),
            "{name}: child integ r"
        );

        // The delete that ended it.
        assert!(
            msgs[4]
                .iter()
                .any(|p| matches!(p, Payload::Delete(d) if d.protocol == ProtocolId::IKE)),
            "{name}: INFORMATIONAL carries the IKE SA delete"
        );
    }
}

#[test]
fn tampered_capture_fails_to_decrypt() {
    let limits = ParseLimits::default();
    let c = Capture::load(&captures()[0]);
    let m1 = Message::parse(&c.datagrams[0].1, &limits).unwrap();
    let m2 = Message::parse(&c.datagrams[1].1, &limits).unwrap();
    let sel = proposal::select(
        &proposal::parse_list(ProtocolId::IKE, &[&c.meta["ike_proposal"]]).unwrap(),
        &sa(&m1),
        SelectOptions::default(),
    )
    .unwrap();
    let suite = proposal::ike_suite(&sel.proposal).unwrap();
    let prf = HmacPrf::new(suite.prf).unwrap();
    let (ni, nr) = (nonce(&m1), nonce(&m2));
    let seed = skeyseed(&prf, &ni, &nr, &c.key("shared_secret"));
    let keys = IkeKeys::derive(
        &prf,
        &suite,
        seed.as_bytes(),
        &ni,
        &nr,
        &m1.header.spi_i.to_be_bytes(),
        &m2.header.spi_r.to_be_bytes(),
    )
    .unwrap();
    let from_initiator = keys
        .sk_ciphers(&DefaultProvider::new(), &suite, false)
        .unwrap()
        .inbound;
    let original = &c.datagrams[2].1;
    for at in [0usize, 17, 30, original.len() / 2, original.len() - 1] {
        let mut bytes = original.clone();
        bytes[at] ^= 0x01;
        let Ok(mut m) = Message::parse(&bytes, &limits) else {
            continue;
        };
        assert!(
            m.decrypt(&bytes, from_initiator.as_ref(), &limits).is_err(),
            "flip at {at} went unnoticed"
        );
    }
}
