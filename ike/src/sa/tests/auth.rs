//! Authentication: the responder's choice of the connection by identity
//! and authentication class; certificates and signatures.

use std::sync::Arc;

use super::harness::*;
use crate::sa::*;
use crate::wire::Identification;

/// A connection of the responder's that accepts anyone (`remote_id`
/// `%any`), with the same addresses as `right_cfg`, listed first.
fn catch_all() -> PeerCfg {
    PeerCfg {
        name: "catch-all".into(),
        remote_id: None,
        children: vec![child(
            "any",
            vec![subnet("10.2.0.0", "10.2.255.255")],
            vec![subnet("10.9.0.0", "10.9.255.255")],
        )],
        ..right_cfg()
    }
}

#[test]
fn a_catch_all_connection_listed_first_does_not_capture_a_peer_with_its_own() {
    let mut s = Setup::default();
    s.peers[1] = vec![catch_all(), right_cfg()];
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    let b = p.b().events();
    assert!(
        matches!(&b[0], Event::IkeEstablished { peer, .. } if peer == "site-a"),
        "{b:?}"
    );
    p.assert_kernels_match();
    // A peer no connection names still gets the catch-all one.
    let mut s = Setup::default();
    s.peers[1] = vec![catch_all(), right_cfg()];
    s.peers[0][0].local_id = Identification::fqdn("stranger.example");
    Arc::make_mut(&mut s.peers[0][0].children[0]).local_ts =
        vec![subnet("10.9.0.0", "10.9.255.255")];
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    let b = p.b().events();
    assert!(
        matches!(&b[0], Event::IkeEstablished { peer, .. } if peer == "catch-all"),
        "{b:?}"
    );
    p.assert_kernels_match();
}

#[test]
fn an_exact_local_identity_beats_a_catch_all_one() {
    // Two connections for the same peer, told apart by the identity the
    // peer asks of us (IDr): the %any one listed first loses.
    let mut s = Setup::default();
    let any_local = PeerCfg {
        name: "any-local".into(),
        local_id: Identification {
            id_type: crate::wire::codes::IdType(0),
            data: Vec::new(),
        },
        ..right_cfg()
    };
    s.peers[1] = vec![any_local, right_cfg()];
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    let b = p.b().events();
    assert!(
        matches!(&b[0], Event::IkeEstablished { peer, .. } if peer == "site-a"),
        "{b:?}"
    );
}
