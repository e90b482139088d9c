//! Random and mutated datagrams never panic an endpoint, half-open or
//! established, and leave an established SA working.

use std::time::Duration;

use proptest::prelude::*;

use super::harness::*;
use crate::sa::*;

/// A pair with an established SA, and every datagram each side sent.
fn established() -> (Pair, Vec<Vec<u8>>) {
    let mut p = Pair::default_pair();
    p.connect(0, "site-b");
    let sent = p
        .peers
        .iter()
        .flat_map(|q| q.sent.iter().map(|(_, t)| t.payload.clone()))
        .collect();
    (p, sent)
}

fn feed(p: &mut Pair, bytes: &[u8]) {
    let now = p.now;
    let (la, ra) = (p.peers[0].addr, p.peers[1].addr);
    // To both sides, as if from the other.
    p.peers[1].ep.handle_datagram(now, ra, la, bytes);
    p.peers[0].ep.handle_datagram(now, la, ra, bytes);
    p.drive();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn mutated_datagrams_never_panic(
        which in 0usize..8,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let (mut p, sent) = established();
        let mut bytes = sent[which % sent.len()].clone();
        for (at, x) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        if let Some(c) = cut {
            bytes.truncate(c.index(bytes.len() + 1));
        }
        feed(&mut p, &bytes);
        // Fresh endpoints see it too (as a new IKE_SA_INIT, say).
        let mut fresh = Pair::default_pair();
        feed(&mut fresh, &bytes);
        fresh.run_for(Duration::from_secs(40));
        // The established SA still answers a liveness check.
        let id = p.peers[0].ep.ike_sas().next().map(|s| s.id);
        prop_assert!(id.is_some());
        let now = p.now;
        if p.peers[0].ep.send_liveness_check(now, id.unwrap()).is_ok() {
            p.run_for(Duration::from_secs(1));
            let alive = p.peers[0].events().iter().any(|e| matches!(e, Event::PeerAlive { .. }));
            prop_assert!(alive);
        }
    }

    #[test]
    fn random_datagrams_never_panic(
        header in proptest::collection::vec(any::<u8>(), 28),
        body in proptest::collection::vec(any::<u8>(), 0..300),
        exchange in 33u8..=38,
        response in any::<bool>(),
    ) {
        let (mut p, sent) = established();
        let mut bytes = header;
        // Half the time, aim at the established SA's SPIs.
        if response {
            bytes[..16].copy_from_slice(&sent[2][..16]);
        }
        bytes[17] = 0x20;
        bytes[18] = exchange;
        bytes.extend(body);
        let len = u32::try_from(bytes.len()).unwrap();
        bytes[24..28].copy_from_slice(&len.to_be_bytes());
        feed(&mut p, &bytes);
        p.run_for(Duration::from_secs(40));
        p.assert_kernels_match();
    }
}
