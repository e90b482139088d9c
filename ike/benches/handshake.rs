//! Handshake CPU cost (docs/performance.md, benchmark 3): both sides of IKE_SA_INIT +
//! IKE_AUTH (PSK, one Child SA, aes256gcm16-prfsha256-<group>) in one
//! process with the real `DefaultProvider`, against the floor: the
//! key-exchange operations alone (initiator keygen, responder keygen +
//! shared secret, initiator shared secret).
//!
//! With certificates (`x25519+ecdsa256`, `x25519+rsa3072`: both sides
//! sign with an end-entity key certified by one CA of the same type, made
//! at start with rcgen; RSA keys are test vectors): the same handshake
//! with RFC 7427 signatures, CERT and CERTREQ, each side validating the
//! other's certificate against its trust store, against the floor of the
//! key exchange plus the signature work any implementation does: two
//! AUTH signatures, their two verifications, and two certificate
//! signature verifications.
//!
//! `cargo bench -p ike --bench handshake` prints, per group, the
//! median time of one handshake and of one floor, and their ratio; both
//! are measured interleaved in the same run so machine load hits both.
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it does one
//! of each, untimed, as a smoke test.
//!
//! For instruction counts (not disturbed by load):
//! `handshake --mode handshake|floor --group x25519 --iters N` runs only
//! that, for `valgrind --tool=callgrind` (`scripts/bench.sh handshake`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_range_loop
)]
// A benchmark program: it times itself with the clock and reads its command
// line, which ike/clippy.toml forbids the library.
#![allow(clippy::disallowed_methods)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ike::crypto::{CryptoProvider, DefaultProvider, Secret, proposal};
use ike::pki::cert::Certificate;
use ike::pki::chain::Revocation;
use ike::pki::store::TrustStore;
use ike::pki::{HashAlg, PrivateKey, SigScheme};
use ike::sa::{
    AddrSpec, ChildCfg, ChildLifetimes, Endpoint, EndpointConfig, Event, IkeLifetimes, KernelOk,
    KernelOp, KernelResult, LocalAuthCfg, LocalCred, Mode, PeerCfg, PskStore, RemoteAuthCfg, TsCfg,
};
use ike::wire::codes::{KeId, ProtocolId};
use ike::wire::{AddressRange, Identification, TrafficSelector};

const GROUPS: [(&str, KeId); 3] = [
    ("x25519", KeId::CURVE25519),
    ("ecp256", KeId::ECP_256),
    ("modp2048", KeId::MODP_2048),
];

/// Certificate cases: name, and the key of the CA and of each side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CertKind {
    Ecdsa256,
    Rsa3072,
}

const CERTS: [(&str, CertKind); 2] = [
    ("x25519+ecdsa256", CertKind::Ecdsa256),
    ("x25519+rsa3072", CertKind::Rsa3072),
];

const RSA3072: [&str; 3] = [
    include_str!("../tests/vectors/keys/rsa3072.pem"),
    include_str!("../tests/vectors/keys/rsa3072b.pem"),
    include_str!("../tests/vectors/keys/rsa3072c.pem"),
];

/// A CA and one end-entity certificate per side.
struct Pki {
    trust: Arc<TrustStore>,
    creds: [Arc<LocalCred>; 2],
    /// For the floor: the CA's key and the sides' keys, and the scheme
    /// RFC 7427 picks for them.
    ca: PrivateKey,
    keys: [PrivateKey; 2],
    scheme: SigScheme,
    /// The CA's signature over [`FLOOR_MSG`] (certificates are signed
    /// once, before any handshake).
    ca_sig: Vec<u8>,
}

/// What the floor signs: about the size of the octets AUTH signs.
const FLOOR_MSG: [u8; 600] = [0x5a; 600];

impl Pki {
    fn new(kind: CertKind) -> Self {
        let key = |i: usize| {
            match kind {
                CertKind::Ecdsa256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
                CertKind::Rsa3072 => rcgen::KeyPair::from_pem(RSA3072[i]),
            }
            .unwrap()
        };
        let private =
            |k: &rcgen::KeyPair| PrivateKey::from_pem_or_der(&k.serialize_der(), None).unwrap();
        let ca_key = key(0);
        let mut ca = rcgen::CertificateParams::default();
        ca.distinguished_name = rcgen::DistinguishedName::new();
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "bench CA");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::from_params(&ca, &ca_key);
        let mut trust = TrustStore::default();
        trust
            .add_ca(Arc::new(Certificate::from_der(ca_cert.der()).unwrap()))
            .unwrap();
        let ids = ["192.0.2.1.example", "198.51.100.1.example"];
        let mut creds = Vec::new();
        let mut keys = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let k = key(i + 1);
            let p = rcgen::CertificateParams::new(vec![id.to_string()]).unwrap();
            let c = p.signed_by(&k, &issuer).unwrap();
            let c = Arc::new(Certificate::from_der(c.der()).unwrap());
            creds.push(Arc::new(LocalCred::new(private(&k), vec![c])));
            keys.push(private(&k));
        }
        let (Ok(creds), Ok(keys)) = (creds.try_into(), keys.try_into()) else {
            unreachable!("two sides")
        };
        let scheme = match kind {
            CertKind::Ecdsa256 => SigScheme::Ecdsa(HashAlg::Sha256),
            CertKind::Rsa3072 => SigScheme::RsaPkcs1(HashAlg::Sha256),
        };
        let ca = private(&ca_key);
        let ca_sig = ca.sign(scheme, &FLOOR_MSG).unwrap();
        Self {
            trust: Arc::new(trust),
            creds,
            ca,
            keys,
            scheme,
            ca_sig,
        }
    }

    /// The signature work of one handshake with these certificates.
    fn floor(&self) {
        for k in &self.keys {
            let sig = k.sign(self.scheme, &FLOOR_MSG).unwrap();
            k.public_key()
                .verify(self.scheme, &FLOOR_MSG, &sig)
                .unwrap();
        }
        for _ in 0..2 {
            self.ca
                .public_key()
                .verify(self.scheme, &FLOOR_MSG, &self.ca_sig)
                .unwrap();
        }
    }
}

fn net(a: &str, b: &str) -> TsCfg {
    let (Ok(a), Ok(b)) = (a.parse(), b.parse()) else {
        unreachable!("fixed addresses")
    };
    TsCfg::Selector(TrafficSelector::Ipv4(AddressRange::any(a, b)))
}

fn peer_cfg(me: IpAddr, peer: IpAddr, group: &str, mine: TsCfg, theirs: TsCfg) -> PeerCfg {
    let ike = proposal::parse(ProtocolId::IKE, &format!("aes256gcm16-prfsha256-{group}"));
    let esp = proposal::parse(ProtocolId::ESP, "aes256gcm16");
    let (Ok(ike), Ok(esp)) = (ike, esp) else {
        unreachable!("fixed proposals")
    };
    PeerCfg {
        name: "bench".into(),
        local_addrs: vec![AddrSpec::Addr(me)],
        remote_addrs: vec![AddrSpec::Addr(peer)],
        local_port: 500,
        remote_port: 500,
        ike_proposals: ike,
        local_id: Identification::fqdn(&format!("{me}.example")),
        remote_id: Some(Identification::fqdn(&format!("{peer}.example"))),
        children: vec![Arc::new(ChildCfg {
            name: "net".into(),
            local_ts: vec![mine],
            remote_ts: vec![theirs],
            proposals: esp,
            mode: Mode::Tunnel,
            sa_opts: Default::default(),
            lifetimes: ChildLifetimes::default(),
            policy: Default::default(),
            inactivity: Default::default(),
        })],
        encap: false,
        mobike: false,
        lifetimes: IkeLifetimes::default(),
        dpd_delay: std::time::Duration::ZERO,
        local_auth: Default::default(),
        remote_auth: Default::default(),
        send_cert: Default::default(),
        send_certreq: true,
        fragmentation: Default::default(),
        policy: Default::default(),
        behaviour: Default::default(),
        cp: Default::default(),
        redirect: None,
        rounds: Default::default(),
    }
}

/// Two endpoints with the real provider, and a kernel that says yes.
/// Each handshake gets fresh endpoints (the cost of `Endpoint::new`, a
/// few allocations and 32 random octets, is counted in): SAs left behind
/// would make the run measure a growing endpoint instead.
struct Pair {
    ep: [Endpoint; 2],
    addr: [SocketAddr; 2],
    cfg: [PeerCfg; 2],
    psk: Arc<dyn PskStore>,
    provider: Arc<dyn CryptoProvider>,
    spi: u32,
    trust: Arc<TrustStore>,
}

impl Pair {
    fn new(group: &str) -> Self {
        let l: IpAddr = IpAddr::V4([192, 0, 2, 1].into());
        let r: IpAddr = IpAddr::V4([198, 51, 100, 1].into());
        let psk: Arc<dyn PskStore> =
            Arc::new(|_: &Identification, _: &Identification| Some(Secret::from_slice(b"bench")));
        let provider: Arc<dyn CryptoProvider> = Arc::new(DefaultProvider::new());
        let cfg = [
            peer_cfg(
                l,
                r,
                group,
                net("10.1.0.0", "10.1.255.255"),
                net("10.2.0.0", "10.2.255.255"),
            ),
            peer_cfg(
                r,
                l,
                group,
                net("10.2.0.0", "10.2.255.255"),
                net("10.1.0.0", "10.1.255.255"),
            ),
        ];
        let mk = |c: &PeerCfg| {
            Endpoint::new(
                EndpointConfig::default(),
                vec![c.clone()],
                psk.clone(),
                provider.clone(),
            )
        };
        Self {
            ep: [mk(&cfg[0]), mk(&cfg[1])],
            addr: [SocketAddr::new(l, 500), SocketAddr::new(r, 500)],
            cfg,
            psk,
            provider,
            spi: 0x1000,
            trust: Arc::new(TrustStore::default()),
        }
    }

    /// The handshake with certificates of `pki` (x25519).
    fn with_certs(pki: &Pki) -> Self {
        let mut p = Self::new("x25519");
        for (cfg, cred) in p.cfg.iter_mut().zip(&pki.creds) {
            cfg.local_auth = LocalAuthCfg::Pubkey(cred.clone());
            cfg.remote_auth = RemoteAuthCfg::Pubkey {
                cacerts: Vec::new(),
                pubkeys: Vec::new(),
                revocation: Revocation::Relaxed,
                constraints: Vec::new(),
            };
        }
        p.trust = pki.trust.clone();
        p
    }

    /// One IKE SA with its Child SA, up on both sides, on fresh
    /// endpoints.
    fn handshake(&mut self, now: Instant) {
        for (ep, cfg) in self.ep.iter_mut().zip(&self.cfg) {
            *ep = Endpoint::new(
                EndpointConfig::default(),
                vec![cfg.clone()],
                self.psk.clone(),
                self.provider.clone(),
            );
            ep.set_trust_store(self.trust.clone());
            ep.set_wall_clock(now, std::time::SystemTime::now());
        }
        if self.ep[0].initiate(now, "bench", &[]).is_err() {
            panic!("initiate failed")
        };
        let mut up = [0usize; 2];
        loop {
            let mut progress = false;
            for side in 0..2 {
                while let Some(op) = self.ep[side].poll_kernel_op() {
                    progress = true;
                    let outcome = match op {
                        KernelOp::AllocSpi { .. } => {
                            self.spi += 1;
                            Ok(KernelOk::SpiAllocated(self.spi))
                        }
                        _ => Ok(KernelOk::Done),
                    };
                    if let Some(req) = op.req() {
                        self.ep[side].handle_kernel_result(now, KernelResult { req, outcome });
                    }
                }
                while let Some(t) = self.ep[side].poll_transmit() {
                    progress = true;
                    let to = 1 - side;
                    self.ep[to].handle_datagram(now, self.addr[to], self.addr[side], &t.payload);
                }
                while let Some(e) = self.ep[side].poll_event() {
                    match e {
                        Event::ChildInstalled { .. } => up[side] += 1,
                        Event::IkeFailed { reason, .. } => panic!("IKE SA failed: {reason:?}"),
                        Event::ChildFailed { reason, .. } => panic!("child failed: {reason:?}"),
                        _ => {}
                    }
                }
            }
            if up == [1, 1] {
                break;
            }
            assert!(progress, "handshake stalled: {up:?}");
        }
    }
}

/// The floor: what any IKEv2 implementation must compute for the key
/// exchange of one IKE SA.
fn floor(p: &dyn CryptoProvider, ke: KeId) {
    let Ok(i) = p.start_key_exchange(ke) else {
        panic!("keygen failed")
    };
    let Ok((r_pub, r_secret)) = p.respond_key_exchange(ke, i.public_value()) else {
        panic!("responder failed")
    };
    let Ok(i_secret) = i.complete(&r_pub) else {
        panic!("initiator failed")
    };
    assert_eq!(i_secret.as_bytes(), r_secret.as_bytes());
}

fn per_op(n: u32, mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed() / n
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let provider = DefaultProvider::new();
    // Instruction-count mode: only the named work, for callgrind.
    if let Some(mode) = arg(&args, "--mode") {
        let group = arg(&args, "--group").unwrap_or_else(|| "x25519".into());
        let iters: u32 = arg(&args, "--iters")
            .and_then(|s| s.parse().ok())
            .unwrap_or(10);
        let Some(&(_, ke)) = GROUPS.iter().find(|(g, _)| *g == group) else {
            panic!("unknown group {group}")
        };
        let mut pair = Pair::new(&group);
        let now = Instant::now();
        for _ in 0..iters {
            match mode.as_str() {
                "handshake" => pair.handshake(now),
                "floor" => floor(&provider, ke),
                "none" => {}
                m => panic!("unknown mode {m}"),
            }
        }
        return;
    }
    // `cargo test --all-targets` runs this without `--bench`: one of each,
    // checked, untimed (benchmarks are not part of the test suite).
    if !args.iter().any(|a| a == "--bench") {
        for (group, ke) in GROUPS {
            Pair::new(group).handshake(Instant::now());
            floor(&provider, ke);
        }
        for (_, kind) in CERTS {
            let pki = Pki::new(kind);
            Pair::with_certs(&pki).handshake(Instant::now());
            pki.floor();
        }
        println!("handshake bench: smoke run ok (time it with cargo bench)");
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let rounds = if quick { 3 } else { 11 };
    let filter: Option<&String> = args.iter().skip(1).find(|a| !a.starts_with("--"));
    println!(
        "{:<16} {:>14} {:>14} {:>7}   (median of {rounds} interleaved batches)",
        "group", "handshake", "floor", "ratio"
    );
    let cases: Vec<(&str, KeId, Option<Pki>)> = GROUPS
        .iter()
        .map(|&(g, ke)| (g, ke, None))
        .chain(
            CERTS
                .iter()
                .map(|&(name, kind)| (name, KeId::CURVE25519, Some(Pki::new(kind)))),
        )
        .collect();
    for (group, ke, pki) in &cases {
        if filter.is_some_and(|f| !group.contains(f.as_str())) {
            continue;
        }
        let mut pair = match pki {
            Some(pki) => Pair::with_certs(pki),
            None => Pair::new(group),
        };
        let floor = || {
            floor(&provider, *ke);
            if let Some(pki) = pki {
                pki.floor();
            }
        };
        let now = Instant::now();
        // Warm up, and size batches to about 100 ms.
        pair.handshake(now);
        let one = per_op(3, || pair.handshake(now)).max(Duration::from_micros(1));
        let n = u32::try_from((Duration::from_millis(100).as_nanos() / one.as_nanos()).max(3))
            .unwrap_or(3);
        let (mut hs, mut fl) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            hs.push(per_op(n, || pair.handshake(now)));
            fl.push(per_op(n, floor));
        }
        let (h, f) = (median(&mut hs), median(&mut fl));
        println!(
            "{group:<16} {:>11.1} us {:>11.1} us {:>6.2}x",
            h.as_secs_f64() * 1e6,
            f.as_secs_f64() * 1e6,
            h.as_secs_f64() / f.as_secs_f64()
        );
    }
}
