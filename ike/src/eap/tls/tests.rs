//! EAP-TLS between our own server and client in memory: TLS 1.2 and 1.3,
//! fragmented and not, the MSK, failures, and malformed packets.

// Tests index the packets they made and add small lengths.
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use proptest::prelude::*;

use super::*;
use crate::sa::tests::certs::{Alg, Ca, cred, fqdn, store};
use crate::wire::Eap;

/// The test PKI's certificates are valid around this time (2026-12-01).
const NOW: i64 = 1_796_083_200;

struct Pki {
    server: TlsSetup,
    client: TlsSetup,
}

/// A CA, a gateway and a user certificate, each side trusting the CA.
fn pki(alg: Alg) -> Pki {
    let mut ca = Ca::root("EAP CA", alg);
    let (gk, gc, _) = ca.issue("gateway", "vpn.example.com", alg, |_| {});
    let (uk, uc, _) = ca.issue("alice", "alice.example.com", alg, |_| {});
    let trust = store(&[&ca.cert]);
    Pki {
        server: TlsSetup::new(cred(&gk, vec![gc]), trust.clone(), NOW),
        client: TlsSetup::new(cred(&uk, vec![uc]), trust, NOW),
    }
}

/// An EAP packet as the wire has it (code, identifier, length, type...).
fn bytes(e: &Eap) -> Vec<u8> {
    let len = u16::try_from(e.data.len() + 4).unwrap().to_be_bytes();
    [&[e.code, e.identifier, len[0], len[1]][..], &e.data].concat()
}

/// The EAP message of `b` (code, identifier, a length not checked here:
/// the codec does, then type and data).
fn eap(b: &[u8]) -> Eap {
    Eap {
        code: b[0],
        identifier: b[1],
        data: b.get(4..).unwrap_or_default().to_vec(),
    }
}

/// What a conversation showed.
#[derive(Debug)]
struct Run {
    /// Every packet, server's and client's, in order.
    packets: Vec<Vec<u8>>,
    server: EapTls,
    client: EapTls,
}

impl Run {
    fn flags(&self) -> impl Iterator<Item = u8> + '_ {
        self.packets.iter().map(|p| p[5])
    }
    fn acks(&self) -> usize {
        self.packets
            .iter()
            .filter(|p| p.len() == HEADER_LEN)
            .count()
    }
}

/// Runs the conversation to the server's Success, or the first error
/// (with the side that had it: `true` for the server).
fn run(server: &TlsSetup, client: &TlsSetup) -> Result<Run, (bool, EapTlsError)> {
    let mut s = EapTls::server(server).unwrap();
    let mut c = EapTls::client(client).unwrap();
    let mut packets = vec![bytes(&s.start(7).unwrap())];
    loop {
        let req = eap(packets.last().unwrap());
        let resp = match c.process(&req).map_err(|e| (false, e))? {
            Next::Send(p) => p,
            Next::Success => panic!("the client never succeeds by itself"),
        };
        packets.push(bytes(&resp));
        match s.process(&resp).map_err(|e| (true, e))? {
            Next::Send(p) => packets.push(bytes(&p)),
            Next::Success => {
                return Ok(Run {
                    packets,
                    server: s,
                    client: c,
                });
            }
        }
    }
}

fn check_success(r: &Run, version: ProtocolVersion) {
    assert_eq!(r.server.version(), Some(version));
    assert_eq!(r.client.version(), Some(version));
    assert!(r.server.is_complete() && r.client.is_complete());
    let (ms, mc) = (r.server.msk().unwrap(), r.client.msk().unwrap());
    assert_eq!(ms.len(), 64);
    assert_eq!(ms, mc, "both sides derive the same MSK");
    assert_ne!(ms, [0u8; 64]);
    // Each side saw the other's certificate.
    assert!(
        r.server
            .peer_certificate()
            .unwrap()
            .matches_id(&fqdn("alice.example.com"))
    );
    assert!(
        r.client
            .peer_certificate()
            .unwrap()
            .matches_id(&fqdn("vpn.example.com"))
    );
    // Requests and responses alternate, and the server's identifiers
    // count up from the Start's, the client answering with each.
    for (i, p) in r.packets.iter().enumerate() {
        assert_eq!(
            p[0],
            if i % 2 == 0 {
                CODE_REQUEST
            } else {
                CODE_RESPONSE
            }
        );
        assert_eq!(p[1], 7u8.wrapping_add(u8::try_from(i / 2).unwrap()));
        assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
        assert_eq!(p[4], EAP_TYPE_TLS);
    }
}

#[test]
fn tls13_whole_flights() {
    let mut p = pki(Alg::P256);
    p.server.fragment_size = 4000;
    p.client.fragment_size = 4000;
    let r = run(&p.server, &p.client).unwrap();
    check_success(&r, ProtocolVersion::TLSv1_3);
    // Start, ClientHello, server flight, client flight, the indication,
    // and the client's empty answer to it.
    assert_eq!(
        r.packets.len(),
        6,
        "{:?}",
        r.packets.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert_eq!(r.packets[0], vec![1, 7, 0, 6, 13, FLAG_START]);
    assert!(r.flags().all(|f| f & FLAG_MORE == 0));
    assert_eq!(r.packets[5].len(), HEADER_LEN);
}

#[test]
fn tls13_fragmented() {
    let mut p = pki(Alg::P256);
    p.server.fragment_size = 200;
    p.client.fragment_size = 150;
    let r = run(&p.server, &p.client).unwrap();
    check_success(&r, ProtocolVersion::TLSv1_3);
    // Both sides cut their flights and the other side acknowledged.
    let more = |from: u8| {
        r.packets
            .iter()
            .filter(|p| p[0] == from && p[5] & FLAG_MORE != 0)
            .count()
    };
    assert!(more(CODE_REQUEST) >= 2, "the server fragmented");
    assert!(more(CODE_RESPONSE) >= 2, "the client fragmented");
    assert!(r.acks() >= 4);
    for p in &r.packets {
        let limit = if p[0] == CODE_REQUEST { 200 } else { 150 };
        assert!(p.len() <= limit, "packet of {} octets", p.len());
    }
    // A fragmented flight announces its length in the first fragment
    // only, with M on all but the last.
    let first = r
        .packets
        .iter()
        .position(|p| p[0] == CODE_REQUEST && p[5] & FLAG_MORE != 0)
        .unwrap();
    assert_eq!(r.packets[first][5], FLAG_LENGTH | FLAG_MORE);
    assert_eq!(r.packets[first + 2][5], FLAG_MORE);
}

#[test]
fn tls12_fragmented() {
    let mut p = pki(Alg::P384);
    p.server.versions = TlsVersions::Tls12;
    p.client.fragment_size = 300;
    p.server.fragment_size = 300;
    let r = run(&p.server, &p.client).unwrap();
    check_success(&r, ProtocolVersion::TLSv1_2);
    assert!(r.flags().any(|f| f & FLAG_MORE != 0));
    // TLS 1.2 ends with the server's ChangeCipherSpec and Finished and
    // the client's empty answer; no indication.
    assert_eq!(r.packets.last().unwrap().len(), HEADER_LEN);
}

#[test]
fn tls12_whole_flights_rsa() {
    let mut p = pki(Alg::Rsa(0));
    p.server.versions = TlsVersions::Tls12;
    p.client.versions = TlsVersions::Tls12;
    p.server.fragment_size = 8000;
    p.client.fragment_size = 8000;
    let r = run(&p.server, &p.client).unwrap();
    check_success(&r, ProtocolVersion::TLSv1_2);
    // Start, ClientHello, server hello flight, client flight, server
    // CCS/Finished, the client's empty answer.
    assert_eq!(r.packets.len(), 6);
}

#[test]
fn tls13_rsa_pss_and_ed25519() {
    for alg in [Alg::Rsa(1), Alg::Ed25519] {
        let p = pki(alg);
        let r = run(&p.server, &p.client).unwrap();
        check_success(&r, ProtocolVersion::TLSv1_3);
    }
}

#[test]
fn default_fragment_size_is_charons() {
    let p = pki(Alg::Rsa(0));
    let r = run(&p.server, &p.client).unwrap();
    check_success(&r, ProtocolVersion::TLSv1_3);
    assert!(r.packets.iter().all(|p| p.len() <= DEFAULT_FRAGMENT_SIZE));
    assert!(
        r.flags().any(|f| f & FLAG_MORE != 0),
        "an RSA flight needs fragments"
    );
}

#[test]
fn msk_is_rfc_9190s_export() {
    let p = pki(Alg::P256);
    let r = run(&p.server, &p.client).unwrap();
    let msk = r.server.msk().unwrap();
    // The first 64 of 128 octets: with TLS 1.3 the length is part of the
    // derivation, so exporting 64 octets would be another key.
    let ctx: &[u8] = &[13];
    let km128 = r
        .server
        .conn
        .export_keying_material([0u8; 128], LABEL_TLS13, Some(ctx))
        .unwrap();
    let km64 = r
        .server
        .conn
        .export_keying_material([0u8; 64], LABEL_TLS13, Some(ctx))
        .unwrap();
    assert_eq!(msk, &km128[..64]);
    assert_ne!(msk, &km64[..]);
    // And a second conversation has another MSK.
    let r2 = run(&p.server, &p.client).unwrap();
    assert_ne!(r2.client.msk().unwrap(), msk);
}

#[test]
fn msk_tls12_label() {
    let mut p = pki(Alg::P256);
    p.client.versions = TlsVersions::Tls12;
    let r = run(&p.server, &p.client).unwrap();
    let km = r
        .client
        .conn
        .export_keying_material([0u8; 64], LABEL_TLS12, None)
        .unwrap();
    assert_eq!(r.client.msk().unwrap(), &km[..]);
}

#[test]
fn no_msk_without_the_indication() {
    let mut p = pki(Alg::P256);
    p.server.fragment_size = 4000;
    p.client.fragment_size = 4000;
    let mut s = EapTls::server(&p.server).unwrap();
    let mut c = EapTls::client(&p.client).unwrap();
    let mut req = s.start(1).unwrap();
    // Start -> ClientHello -> server flight -> client Finished.
    for _ in 0..2 {
        let Next::Send(resp) = c.process(&req).unwrap() else {
            panic!()
        };
        let Next::Send(r) = s.process(&resp).unwrap() else {
            panic!()
        };
        req = r;
    }
    // `req` carries the indication: before it the client's handshake is
    // complete, but there is no MSK yet.
    assert!(!c.conn.is_handshaking());
    assert!(c.msk().is_none());
    assert!(matches!(c.derive_msk(), Err(EapTlsError::NoMsk(_))));
    assert!(!c.is_complete());
    c.process(&req).unwrap();
    assert!(c.msk().is_some());
}

#[test]
fn negotiates_down_to_tls12() {
    let mut p = pki(Alg::P256);
    p.server.versions = TlsVersions::Tls12;
    let r = run(&p.server, &p.client).unwrap();
    check_success(&r, ProtocolVersion::TLSv1_2);
}

#[test]
fn no_common_version_fails() {
    let mut p = pki(Alg::P256);
    p.server.versions = TlsVersions::Tls12;
    p.client.versions = TlsVersions::Tls13;
    let (server, e) = run(&p.server, &p.client).unwrap_err();
    assert!(server, "{e}");
    assert!(matches!(e, EapTlsError::Tls(_)));
}

#[test]
fn untrusted_client_fails_at_the_server() {
    let mut p = pki(Alg::P256);
    let mut other = Ca::root("Other CA", Alg::P256);
    let (k, c, _) = other.issue("mallory", "mallory.example.com", Alg::P256, |_| {});
    p.client.cred = cred(&k, vec![c]);
    let (server, e) = run(&p.server, &p.client).unwrap_err();
    assert!(server);
    assert!(e.to_string().contains("TLS"), "{e}");
}

#[test]
fn untrusted_server_fails_at_the_client() {
    let mut p = pki(Alg::P256);
    let mut other = Ca::root("Other CA", Alg::P256);
    let (k, c, _) = other.issue("evil", "vpn.example.com", Alg::P256, |_| {});
    p.server.cred = cred(&k, vec![c]);
    let (server, _) = run(&p.server, &p.client).unwrap_err();
    assert!(!server);
}

#[test]
fn server_identity_must_match() {
    let mut p = pki(Alg::P256);
    p.client.peer_id = Some(fqdn("other.example.com"));
    let (server, e) = run(&p.server, &p.client).unwrap_err();
    assert!(!server);
    assert!(e.to_string().contains("does not match"), "{e}");
    p.client.peer_id = Some(fqdn("vpn.example.com"));
    p.server.peer_id = Some(fqdn("alice.example.com"));
    run(&p.server, &p.client).unwrap();
}

#[test]
fn expired_at_the_engines_utc() {
    let mut p = pki(Alg::P256);
    // The engine's UTC, not the machine's clock, decides validity.
    p.server.now_unix = NOW + 2 * 365 * 86400;
    let (server, _) = run(&p.server, &p.client).unwrap_err();
    assert!(server);
}

#[test]
fn pinned_ca_must_be_on_the_path() {
    let mut p = pki(Alg::P256);
    let other = Ca::root("Other CA", Alg::P256);
    p.server.pinned_cas = vec![other.cert.clone()];
    let (server, _) = run(&p.server, &p.client).unwrap_err();
    assert!(server);
}

#[test]
fn too_many_messages() {
    let mut p = pki(Alg::Rsa(0));
    p.server.max_message_count = 3;
    let (server, e) = run(&p.server, &p.client).unwrap_err();
    assert!(server);
    assert!(matches!(e, EapTlsError::TooManyMessages(3)));
}

#[test]
fn driven_as_an_eap_method() {
    let p = pki(Alg::P256);
    let mut s: Box<dyn Method> = Box::new(EapTls::server(&p.server).unwrap());
    let mut c: Box<dyn Method> = Box::new(EapTls::client(&p.client).unwrap());
    assert_eq!(s.eap_type(), EapType::TLS);
    assert!(s.makes_msk() && s.mutual() && c.mutual());
    // A client never initiates.
    assert!(matches!(c.initiate(1), Step::Failure(_)));
    let Step::Send(mut req) = s.initiate(254) else {
        panic!()
    };
    assert_eq!(req.identifier, 254);
    loop {
        let Step::Send(resp) = c.process(&req) else {
            panic!()
        };
        match s.process(&resp) {
            Step::Send(r) => req = r,
            Step::Success => break,
            other => panic!("{other:?}"),
        }
    }
    // The identifiers wrapped past 255 without harm.
    assert!(req.identifier < 254);
    assert_eq!(s.msk().unwrap(), c.msk().unwrap());
    // A failure comes back as one reason.
    let Step::Failure(why) = s.process(&req) else {
        panic!()
    };
    assert!(why.starts_with("EAP-TLS: "), "{why}");
}

#[test]
fn malformed_and_unexpected_packets() {
    let p = pki(Alg::P256);
    let fresh = || {
        let mut s = EapTls::server(&p.server).unwrap();
        s.start(9).unwrap();
        s
    };
    let cases: &[&[u8]] = &[
        &[2, 9, 0, 4],                                           // no type
        &[2, 9, 0, 5, 13],                                       // no flags
        &[2, 9, 0, 6, 4, 0],                                     // MD5-Challenge
        &[1, 9, 0, 6, 13, 0],                                    // a request to the server
        &[2, 8, 0, 6, 13, 0],                                    // identifier of no request
        &[2, 9, 0, 6, 13, FLAG_START],                           // Start from the client
        &[2, 9, 0, 8, 13, FLAG_LENGTH, 0, 0],                    // length field cut short
        &[2, 9, 0, 11, 13, FLAG_LENGTH, 0, 0, 0, 0, 0xaa],       // announces 0, carries 1
        &[2, 9, 0, 10, 13, FLAG_LENGTH, 0xff, 0xff, 0xff, 0xff], // 4 GiB
        &[2, 9, 0, 6, 13, FLAG_MORE],                            // empty fragment
        &[2, 9, 0, 6, 13, 0],                                    // an ack with nothing pending
    ];
    for case in cases {
        let mut s = fresh();
        assert!(s.process(&eap(case)).is_err(), "{case:?}");
        // Once failed, it stays failed.
        assert!(s.process(&eap(&[2, 9, 0, 6, 13, 0])).is_err());
        assert!(s.msk().is_none());
    }
    // Fragments that send more than they announced.
    let mut s = fresh();
    let Next::Send(ack) = s
        .process(&eap(&[
            2,
            9,
            0,
            12,
            13,
            FLAG_LENGTH | FLAG_MORE,
            0,
            0,
            0,
            3,
            1,
            2,
        ]))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        bytes(&ack),
        vec![1, 10, 0, 6, 13, 0],
        "the server acknowledges with the next identifier"
    );
    assert!(matches!(
        s.process(&eap(&[2, 10, 0, 8, 13, 0, 3, 4])),
        Err(EapTlsError::Malformed(_))
    ));
    // The client: a Start in the middle, a response.
    let mut c = EapTls::client(&p.client).unwrap();
    c.process(&eap(&[1, 3, 0, 6, 13, FLAG_START])).unwrap();
    assert!(c.process(&eap(&[1, 4, 0, 6, 13, FLAG_START])).is_err());
    let mut c = EapTls::client(&p.client).unwrap();
    assert!(c.process(&eap(&[2, 3, 0, 6, 13, FLAG_START])).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever arrives, neither side panics, and a failure is final.
    #[test]
    fn random_packets_never_panic(pkts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 1..6)) {
        let p = pki(Alg::P256);
        let mut s = EapTls::server(&p.server).unwrap();
        s.start(0).unwrap();
        let mut c = EapTls::client(&p.client).unwrap();
        for pkt in pkts {
            // Most of them look like EAP-TLS, so they get further in.
            let mut data = vec![EAP_TYPE_TLS];
            data.extend_from_slice(pkt.get(2..).unwrap_or_default());
            for code in [1, 2] {
                let m = Eap { code, identifier: pkt.first().copied().unwrap_or(0), data: data.clone() };
                let (rs, rc) = (s.process(&m), c.process(&m));
                if rs.is_err() {
                    prop_assert!(s.process(&m).is_err());
                }
                if rc.is_err() {
                    prop_assert!(c.process(&m).is_err());
                }
            }
        }
    }
}
