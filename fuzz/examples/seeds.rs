//! Writes the seeds of the `message`, `decrypt`, `endpoint` and `endpoint_ra` targets
//! into fuzz/corpus/ from the strongSwan captures in tests/captures:
//! `cargo run -p iked-fuzz --example seeds`. (The `cert` seeds come from
//! fuzz/seeds/certs.sh; the `swanctl` and `yaml` seeds are copies of
//! swanctl-compat's test data and the documentation's examples.)
//!
//! A decrypt seed is the target's input layout (see `iked_fuzz::decrypt`)
//! around the decrypted inner payloads of a captured message, so the
//! fuzzer starts from what charon really sends.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// A program that reads the captures and writes files.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};

use ike::crypto::DefaultProvider;
use ike::crypto::keymat::{IkeKeys, skeyseed};
use ike::crypto::prf::HmacPrf;
use ike::crypto::proposal::{self, SelectOptions};
use ike::wire::{Encrypted, Message, ParseLimits};

/// The suites in the order of `iked_fuzz::decrypt`'s first octet.
const SUITES: [&str; 3] = [
    "aes256gcm16-prfsha256-x25519",
    "aes128-sha256-modp2048",
    "chacha20poly1305-prfsha384-ecp384",
];

fn kv(path: &Path, name: &str) -> Vec<u8> {
    let text = fs::read_to_string(path).unwrap();
    let v = text
        .lines()
        .filter_map(|l| l.split_once(" = "))
        .find(|(k, _)| k.trim() == name)
        .unwrap_or_else(|| panic!("{}: no {name}", path.display()))
        .1;
    hex::decode(v.trim()).unwrap()
}

/// Every datagram of a capture without the non-ESP marker, with whether
/// the initiator sent it.
fn datagrams(dir: &Path) -> Vec<(String, Vec<u8>, bool)> {
    fs::read_to_string(dir.join("datagrams.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let raw = fs::read(dir.join(f[0])).unwrap();
            let marker: usize = f[6].parse().unwrap();
            (
                f[0].trim_end_matches(".bin").to_string(),
                raw[marker..].to_vec(),
                f[1] == "initiator->responder",
            )
        })
        .collect()
}

fn write(dir: &Path, name: &str, data: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), data).unwrap();
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let captures = root.join("../tests/captures/strongswan-5.9.8");
    let corpus = root.join("corpus");
    let limits = ParseLimits::default();
    let provider = DefaultProvider::new();
    let mut first_init = Vec::new();
    for (i, suite_name) in SUITES.iter().enumerate() {
        let dir = captures.join(suite_name);
        let keys = dir.join("keys.txt");
        let offered = proposal::parse(ike::wire::codes::ProtocolId::IKE, suite_name).unwrap();
        let chosen = proposal::select(&offered, &offered, SelectOptions::default()).unwrap();
        let suite = proposal::ike_suite(&chosen.proposal).unwrap();
        let prf = HmacPrf::new(suite.prf).unwrap();
        let (ni, nr) = (kv(&keys, "ni"), kv(&keys, "nr"));
        let seed = skeyseed(&prf, &ni, &nr, &kv(&keys, "shared_secret"));
        let spi_i: [u8; 8] = kv(&keys, "spi_i").try_into().unwrap();
        let spi_r: [u8; 8] = kv(&keys, "spi_r").try_into().unwrap();
        let ike_keys =
            IkeKeys::derive(&prf, &suite, seed.as_bytes(), &ni, &nr, &spi_i, &spi_r).unwrap();
        for (name, bytes, from_i) in datagrams(&dir) {
            write(
                &corpus.join("message"),
                &format!("{suite_name}-{name}"),
                &bytes,
            );
            if first_init.is_empty() {
                first_init = bytes.clone();
            }
            let m = Message::parse(&bytes, &limits).unwrap();
            let Some(Encrypted::Sealed {
                first_payload,
                body,
            }) = m.encrypted()
            else {
                continue;
            };
            // Opened by the side that received it.
            let opener = ike_keys
                .sk_ciphers(&provider, &suite, !from_i)
                .unwrap()
                .inbound;
            let authenticated = &bytes[..bytes.len() - body.len()];
            let plain = opener.open(authenticated, body).unwrap();
            let h = &m.header;
            let head = |mode: u8, suite: usize| {
                vec![
                    u8::try_from(suite).unwrap() + 3 * mode,
                    h.exchange.0 - 34,
                    bytes[19] & 0x28,
                    u8::try_from(h.message_id).unwrap(),
                    first_payload.0.saturating_sub(32),
                ]
            };
            let d = corpus.join("decrypt");
            // 0: sealed in one SK payload.
            let mut s = head(0, i);
            s.extend_from_slice(&plain);
            write(&d, &format!("{suite_name}-{name}-sk"), &s);
            // 1: three fragments, in order.
            let mut s = head(1, i);
            s.extend_from_slice(&[2, 0, 0]);
            s.extend_from_slice(&plain);
            write(&d, &format!("{suite_name}-{name}-skf"), &s);
            // 2: the captured datagram itself (it decrypts with these keys).
            let mut s = head(2, i);
            s.extend_from_slice(&bytes);
            write(&d, &format!("{suite_name}-{name}-raw"), &s);
            // 3: AES-CBC with the padding written out (one suite only).
            if i == 1 {
                let mut s = head(3, 1);
                s.extend_from_slice(&[0x42; 16]);
                let pad = 15 - plain.len() % 16;
                s.extend_from_slice(&plain);
                s.extend(std::iter::repeat_n(0u8, pad));
                s.push(u8::try_from(pad).unwrap());
                write(&d, &format!("{suite_name}-{name}-cbc"), &s);
            }
        }
    }

    // Endpoint programs (see `iked_fuzz::endpoint`): A starts an IKE SA
    // toward B before the first operation.
    let e = corpus.join("endpoint");
    let up: Vec<u8> = [0u8, 1].repeat(4);
    let mut programs: Vec<(&str, Vec<u8>)> = vec![
        ("up", up.clone()),
        (
            "up-rekey-child",
            [up.clone(), vec![7, 4, 0], [0, 1].repeat(4)].concat(),
        ),
        (
            "up-rekey-ike",
            [up.clone(), vec![7, 3, 0], [0, 1].repeat(4)].concat(),
        ),
        (
            "up-b-rekeys-both",
            [up.clone(), vec![17, 4, 0, 1, 0, 17, 3, 0], [1, 0].repeat(4)].concat(),
        ),
        (
            "up-child-then-delete",
            [
                up.clone(),
                vec![7, 2, 0],
                [0, 1].repeat(3),
                vec![7, 5, 16, 0, 1, 7, 6, 0, 0, 1],
            ]
            .concat(),
        ),
        (
            "up-liveness",
            [up.clone(), vec![7, 7, 0, 0, 1, 17, 7, 0, 1, 0]].concat(),
        ),
        (
            "lost-and-retransmitted",
            [vec![2, 6, 50, 0, 1, 6, 127, 2, 0, 1], [0, 1].repeat(3)].concat(),
        ),
        ("duplicates", vec![3, 0, 13, 1, 3, 0, 1, 13, 1, 0, 1]),
        (
            "altered",
            vec![4, 0, 40, 0xff, 6, 40, 0, 1, 4, 0, 200, 1, 0, 1, 0, 1],
        ),
        (
            "kernel-held-and-failed",
            vec![18, 0, 0, 1, 0, 18, 1, 1, 28, 2, 0, 1, 0, 1],
        ),
        ("reordered", vec![0, 1, 7, 1, 0, 9, 0, 0, 1, 0, 1, 0, 1]),
        ("timeouts", vec![0, 6, 200, 1, 6, 255, 0, 1]),
    ];
    let mut inject = vec![5u8, 1, u8::try_from(first_init.len().div_ceil(4)).unwrap()];
    inject.extend_from_slice(&first_init);
    programs.push(("stranger-init", [up.clone(), inject].concat()));
    for (name, p) in &programs {
        write(&e, name, p);
    }
    // The remote-access pair runs the same programs (its connection and
    // child names are the same), and the road warrior's moves.
    let ra = corpus.join("endpoint_ra");
    programs.push((
        "up-roam-and-back",
        [
            up.clone(),
            vec![7, 8, 1],
            [0, 1].repeat(3),
            vec![7, 8, 0],
            [0, 1].repeat(3),
        ]
        .concat(),
    ));
    programs.push((
        "roam-while-authenticating",
        vec![0, 1, 0, 7, 8, 2, 1, 0, 1, 0, 1, 0, 1],
    ));
    for (name, p) in programs {
        write(&ra, name, &p);
    }
}
