#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// A test's base instant: the guard only compares the instants it is given,
// so any one will do (ike/clippy.toml forbids reading the clock).
#![allow(clippy::disallowed_methods)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::*;
use crate::crypto::suite::IkeSuite;
use crate::crypto::{Algorithms, CryptoError, DeterministicProvider, KeyExchange, Prf};
use crate::sk::SkCipher;
use crate::wire::codes::KeId;

/// The deterministic provider whose random source can be broken.
#[derive(Debug)]
struct Flaky {
    inner: DeterministicProvider,
    broken: Arc<AtomicBool>,
}

impl CryptoProvider for Flaky {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        if self.broken.load(Ordering::Relaxed) {
            return Err(CryptoError::Random);
        }
        self.inner.fill_random(out)
    }
    fn start_key_exchange(&self, ke: KeId) -> Result<Box<dyn KeyExchange>, CryptoError> {
        self.inner.start_key_exchange(ke)
    }
    fn prf(&self, prf: PrfId) -> Result<Box<dyn Prf>, CryptoError> {
        self.inner.prf(prf)
    }
    fn sk_cipher(
        &self,
        suite: &IkeSuite,
        encr_key: &[u8],
        integ_key: &[u8],
    ) -> Result<Box<dyn SkCipher>, CryptoError> {
        self.inner.sk_cipher(suite, encr_key, integ_key)
    }
    fn supported(&self) -> Algorithms {
        self.inner.supported()
    }
}

fn flaky() -> (Flaky, Arc<AtomicBool>) {
    let broken = Arc::new(AtomicBool::new(false));
    (
        Flaky {
            inner: DeterministicProvider::new(b"dos"),
            broken: broken.clone(),
        },
        broken,
    )
}

fn ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a63_0000 + n))
}

fn req<'a>(ip: IpAddr, spi_i: u64, cookie: Option<&'a [u8]>) -> InitRequest<'a> {
    InitRequest {
        ip,
        spi_i,
        ni: b"nonce of the initiator, 32 bytes",
        cookie,
        len: 300,
    }
}

/// Cookies always (threshold 0), nothing else in the way.
fn always() -> DosLimits {
    DosLimits {
        cookie_threshold_ip: None,
        block_threshold: None,
        ..DosLimits::default()
    }
}

fn cookie_of(a: Admit) -> Vec<u8> {
    match a {
        Admit::Cookie(c) => c,
        other => panic!("expected a cookie, got {other:?}"),
    }
}

#[test]
fn a_cookie_is_accepted_once_echoed_and_only_for_its_request() {
    let (p, _) = flaky();
    let mut g = Guard::default();
    let t0 = Instant::now();
    let l = always();
    let c = cookie_of(g.admit(Some(0), &l, &p, t0, &req(ip(1), 7, None)));
    assert_eq!(c.len(), COOKIE_LEN);
    assert_eq!(
        g.admit(Some(0), &l, &p, t0, &req(ip(1), 7, Some(&c))),
        Admit::Proven
    );
    // Another address, SPI or nonce: a fresh cookie instead.
    assert!(matches!(
        g.admit(Some(0), &l, &p, t0, &req(ip(2), 7, Some(&c))),
        Admit::Cookie(_)
    ));
    assert!(matches!(
        g.admit(Some(0), &l, &p, t0, &req(ip(1), 8, Some(&c))),
        Admit::Cookie(_)
    ));
    let mut other_nonce = req(ip(1), 7, Some(&c));
    other_nonce.ni = b"another nonce";
    assert!(matches!(
        g.admit(Some(0), &l, &p, t0, &other_nonce),
        Admit::Cookie(_)
    ));
    // A flipped bit, a truncated or a lengthened cookie.
    let mut bad = c.clone();
    bad[20] ^= 1;
    assert!(matches!(
        g.admit(Some(0), &l, &p, t0, &req(ip(1), 7, Some(&bad))),
        Admit::Cookie(_)
    ));
    for bad in [
        &c[..COOKIE_LEN - 1],
        &[c.clone(), vec![0]].concat()[..],
        &c[..3],
    ] {
        assert!(matches!(
            g.admit(Some(0), &l, &p, t0, &req(ip(1), 7, Some(bad))),
            Admit::Cookie(_)
        ));
    }
    // No threshold reached: no cookie needed.
    let mut g = Guard::default();
    assert_eq!(
        g.admit(Some(1), &l, &p, t0, &req(ip(1), 7, None)),
        Admit::Go
    );
    assert_eq!(g.admit(None, &l, &p, t0, &req(ip(1), 7, None)), Admit::Go);
    // A cookie that came back is checked even when none is required: a
    // valid one proves the source, a bad one is ignored.
    let c = cookie_of(g.admit(Some(0), &l, &p, t0, &req(ip(1), 7, None)));
    assert_eq!(
        g.admit(None, &l, &p, t0, &req(ip(1), 7, Some(&c))),
        Admit::Proven
    );
    assert_eq!(
        g.admit(None, &l, &p, t0, &req(ip(2), 7, Some(&c))),
        Admit::Go
    );
}

#[test]
fn cookies_expire_and_survive_one_secret_switch() {
    let (p, _) = flaky();
    let mut g = Guard::default();
    let t0 = Instant::now();
    let l = always();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let c = cookie_of(g.admit(Some(0), &l, &p, t0, &req(ip(1), 7, None)));
    assert_eq!(
        g.admit(Some(0), &l, &p, at(9), &req(ip(1), 7, Some(&c))),
        Admit::Proven
    );
    assert!(matches!(
        g.admit(Some(0), &l, &p, at(10), &req(ip(1), 7, Some(&c))),
        Admit::Cookie(_)
    ));
    // Made just before the secret is switched, checked just after.
    let before = cookie_of(g.admit(Some(0), &l, &p, at(119), &req(ip(1), 9, None)));
    let secret = g.secret.as_deref().copied().unwrap();
    let after = cookie_of(g.admit(Some(0), &l, &p, at(125), &req(ip(1), 10, None)));
    assert_ne!(g.secret.as_deref().copied().unwrap(), secret, "switched");
    assert_eq!(g.previous.as_deref().copied(), Some(secret));
    assert_eq!(
        g.admit(Some(0), &l, &p, at(126), &req(ip(1), 9, Some(&before))),
        Admit::Proven,
        "the previous secret still counts"
    );
    assert_eq!(
        g.admit(Some(0), &l, &p, at(126), &req(ip(1), 10, Some(&after))),
        Admit::Proven
    );
    // A cookie claiming to be from after the switch, made with the old
    // secret, does not pass.
    let mut forged = before.clone();
    forged[..4].copy_from_slice(&after[..4]);
    assert!(matches!(
        g.admit(Some(0), &l, &p, at(126), &req(ip(1), 9, Some(&forged))),
        Admit::Cookie(_)
    ));
    // One from the future neither.
    let mut future = after.clone();
    future[..4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        g.admit(Some(0), &l, &p, at(126), &req(ip(1), 10, Some(&future))),
        Admit::Cookie(_)
    ));
}

#[test]
fn no_random_source_no_cookie_secret_and_the_request_is_dropped() {
    let (p, broken) = flaky();
    broken.store(true, Ordering::Relaxed);
    let mut g = Guard::default();
    let t0 = Instant::now();
    let l = always();
    assert_eq!(
        g.admit(Some(0), &l, &p, t0, &req(ip(1), 7, None)),
        Admit::Drop
    );
    assert!(g.secret.is_none());
    // Once it works again, a secret is drawn.
    broken.store(false, Ordering::Relaxed);
    let c = cookie_of(g.admit(Some(0), &l, &p, t0, &req(ip(1), 7, None)));
    // A failing switch keeps the secret that works.
    broken.store(true, Ordering::Relaxed);
    let later = t0 + Duration::from_secs(200);
    let c2 = cookie_of(g.admit(Some(0), &l, &p, later, &req(ip(1), 7, None)));
    assert_eq!(
        c2[4..],
        {
            let mut g2 = Guard {
                secret: g.secret.clone(),
                epoch: g.epoch,
                ..Guard::default()
            };
            let t = g2.clock(later);
            mac(&p, &g2.secret.unwrap()[..], t, &req(ip(1), 7, None)).unwrap()
        }[..]
    );
    assert_ne!(c, c2);
}

#[test]
fn thresholds_count_half_open_sas_and_cookies_calm_down_slowly() {
    let (p, _) = flaky();
    let mut g = Guard::default();
    let t0 = Instant::now();
    let l = DosLimits {
        cookie_threshold_ip: Some(2),
        block_threshold: Some(4),
        ..DosLimits::default()
    };
    let a = ip(1);
    // Per address: two go, then cookies, then with cookies up to four.
    for n in 0..2u64 {
        assert_eq!(g.admit(Some(30), &l, &p, t0, &req(a, n, None)), Admit::Go);
        g.opened(IkeSaId(n), a, 500);
    }
    let c = cookie_of(g.admit(Some(30), &l, &p, t0, &req(a, 2, None)));
    assert_eq!(
        g.admit(Some(30), &l, &p, t0, &req(a, 2, Some(&c))),
        Admit::Proven
    );
    g.opened(IkeSaId(2), a, 500);
    let c = cookie_of(g.admit(Some(30), &l, &p, t0, &req(a, 3, None)));
    assert_eq!(
        g.admit(Some(30), &l, &p, t0, &req(a, 3, Some(&c))),
        Admit::Proven
    );
    g.opened(IkeSaId(3), a, 500);
    let c = cookie_of(g.admit(Some(30), &l, &p, t0, &req(a, 4, None)));
    assert_eq!(
        g.admit(Some(30), &l, &p, t0, &req(a, 4, Some(&c))),
        Admit::Drop,
        "block_threshold"
    );
    assert_eq!(g.half_open_from(a), 4);
    // Another address is not affected (its own bucket, under the global
    // threshold).
    assert_eq!(
        g.admit(Some(30), &l, &p, t0, &req(ip(77), 0, None)),
        Admit::Go
    );
    // All four complete: the address may start again, but cookies stay
    // required until the threshold was not reached for CALMDOWN.
    for n in 0..4u64 {
        g.closed(IkeSaId(n));
    }
    g.closed(IkeSaId(3));
    assert_eq!((g.half_open(), g.half_open_from(a), g.octets()), (0, 0, 0));
    let t = t0 + CALMDOWN - Duration::from_millis(1);
    assert!(matches!(
        g.admit(Some(30), &l, &p, t, &req(a, 5, None)),
        Admit::Cookie(_)
    ));
    assert_eq!(
        g.admit(Some(30), &l, &p, t0 + CALMDOWN, &req(a, 5, None)),
        Admit::Go
    );
}

#[test]
fn global_limit_and_budget_open_no_more_half_open_sas() {
    let (p, _) = flaky();
    let t0 = Instant::now();
    let l = DosLimits {
        cookie_threshold_ip: None,
        block_threshold: None,
        init_limit_half_open: Some(3),
        half_open_budget: usize::MAX,
    };
    // A cookie threshold not reached: cookies only at the cap.
    let ct = Some(100);
    let mut g = Guard::default();
    for n in 0..3u32 {
        assert_eq!(g.admit(ct, &l, &p, t0, &req(ip(n), 1, None)), Admit::Go);
        g.opened(IkeSaId(n.into()), ip(n), 300);
    }
    // At the cap: a cookie, and no place without one.
    let c = cookie_of(g.admit(ct, &l, &p, t0, &req(ip(9), 1, None)));
    g.closed(IkeSaId(0));
    assert_eq!(g.admit(ct, &l, &p, t0, &req(ip(9), 1, None)), Admit::Go);
    assert_eq!(
        g.admit(ct, &l, &p, t0, &req(ip(9), 1, Some(&c))),
        Admit::Proven
    );
    assert_eq!(g.take_evicted(), None, "under the cap: nothing replaced");
    // The budget: each SA costs HALF_OPEN_COST plus twice its request.
    let per = HALF_OPEN_COST + 600;
    let l = DosLimits {
        init_limit_half_open: None,
        half_open_budget: 2 * per + HALF_OPEN_COST + 600,
        ..l
    };
    let mut g = Guard::default();
    for n in 0..2u32 {
        assert_eq!(g.admit(ct, &l, &p, t0, &req(ip(n), 1, None)), Admit::Go);
        g.opened(IkeSaId(n.into()), ip(n), 300);
    }
    assert_eq!(g.octets(), 2 * per);
    assert_eq!(g.admit(ct, &l, &p, t0, &req(ip(5), 1, None)), Admit::Go);
    let big = InitRequest {
        len: 301,
        ..req(ip(5), 1, None)
    };
    assert!(matches!(g.admit(ct, &l, &p, t0, &big), Admit::Cookie(_)));
    // Counting the same SA twice charges it once.
    g.opened(IkeSaId(1), ip(1), 300);
    assert_eq!((g.half_open(), g.octets()), (2, 2 * per));
}

#[test]
fn block_threshold_stays_above_the_per_address_cookie_threshold() {
    let l = |c, b| DosLimits {
        cookie_threshold_ip: c,
        block_threshold: b,
        ..DosLimits::default()
    };
    assert_eq!(l(Some(3), Some(5)).effective_block_threshold(), Some(5));
    assert_eq!(l(Some(5), Some(5)).effective_block_threshold(), Some(6));
    assert_eq!(l(Some(9), Some(2)).effective_block_threshold(), Some(10));
    assert_eq!(l(None, Some(2)).effective_block_threshold(), Some(2));
    assert_eq!(l(Some(9), None).effective_block_threshold(), None);
    assert_eq!(DosLimits::default().effective_block_threshold(), Some(5));
}

#[test]
fn log_lines_are_limited_per_second() {
    let mut l = LogLimit::default();
    let t0 = Instant::now();
    let allowed = (0..1000).filter(|_| l.allow(t0)).count();
    assert_eq!(allowed, LOG_LINES_PER_SEC as usize);
    assert_eq!(l.suppressed(), 1000 - u64::from(LOG_LINES_PER_SEC));
    let t1 = t0 + Duration::from_secs(1);
    assert!(l.allow(t1));
    assert_eq!(l.suppressed(), 0);
}

#[test]
fn buckets_spread_addresses_and_never_hit_the_global_slot() {
    let mut seen = std::collections::BTreeSet::new();
    for n in 0..1000 {
        let b = bucket(ip(n));
        assert!((1..=BUCKETS).contains(&b));
        seen.insert(b);
    }
    assert_eq!(seen.len(), BUCKETS);
}

#[test]
fn at_the_cap_a_proven_request_replaces_the_oldest_unproven_half_open_sa() {
    let (p, _) = flaky();
    let t0 = Instant::now();
    let l = DosLimits {
        cookie_threshold_ip: None,
        block_threshold: None,
        init_limit_half_open: Some(3),
        half_open_budget: usize::MAX,
    };
    let ct = Some(100);
    let mut g = Guard::default();
    // Two without a cookie (as a spoofed flood's), one with.
    for n in 0..2u32 {
        let id = IkeSaId(n.into());
        assert_eq!(g.admit(ct, &l, &p, t0, &req(ip(n), 1, None)), Admit::Go);
        g.admitted(id, false);
        g.opened(id, ip(n), 300);
    }
    let c = cookie_of(g.admit(Some(0), &l, &p, t0, &req(ip(2), 1, None)));
    assert_eq!(
        g.admit(ct, &l, &p, t0, &req(ip(2), 1, Some(&c))),
        Admit::Proven
    );
    g.admitted(IkeSaId(2), true);
    g.opened(IkeSaId(2), ip(2), 300);
    assert_eq!(g.take_evicted(), None);
    // Full: without a cookie, a cookie; with it, the oldest unproven SA
    // makes room.
    let c = cookie_of(g.admit(ct, &l, &p, t0, &req(ip(7), 1, None)));
    assert_eq!(g.half_open(), 3);
    assert_eq!(
        g.admit(ct, &l, &p, t0, &req(ip(7), 1, Some(&c))),
        Admit::Proven
    );
    assert_eq!(g.take_evicted(), Some(IkeSaId(0)));
    assert_eq!((g.half_open(), g.half_open_from(ip(0))), (2, 0));
    // A request admitted but not opened (refused later) does not mark
    // the next SA of that id proven.
    g.admitted(IkeSaId(3), true);
    g.admitted(IkeSaId(4), false);
    g.opened(IkeSaId(3), ip(7), 300);
    let c = cookie_of(g.admit(ct, &l, &p, t0, &req(ip(8), 1, None)));
    assert_eq!(
        g.admit(ct, &l, &p, t0, &req(ip(8), 1, Some(&c))),
        Admit::Proven
    );
    assert_eq!(g.take_evicted(), Some(IkeSaId(1)));
    g.admitted(IkeSaId(5), true);
    g.opened(IkeSaId(5), ip(8), 300);
    // SA 3 counted as unproven: it goes next; then only proven ones are
    // left and a proven request is ignored.
    let c = cookie_of(g.admit(ct, &l, &p, t0, &req(ip(9), 1, None)));
    assert_eq!(
        g.admit(ct, &l, &p, t0, &req(ip(9), 1, Some(&c))),
        Admit::Proven
    );
    assert_eq!(g.take_evicted(), Some(IkeSaId(3)));
    g.admitted(IkeSaId(6), true);
    g.opened(IkeSaId(6), ip(9), 300);
    let c = cookie_of(g.admit(ct, &l, &p, t0, &req(ip(10), 1, None)));
    assert_eq!(
        g.admit(ct, &l, &p, t0, &req(ip(10), 1, Some(&c))),
        Admit::Drop
    );
    assert_eq!(g.take_evicted(), None);
    assert_eq!(g.half_open(), 3);
    // Cookies off: at the cap, requests are ignored.
    assert_eq!(
        g.admit(None, &l, &p, t0, &req(ip(11), 1, None)),
        Admit::Drop
    );
}
