//! Tests that need a kernel with ESP, AH and the AEAD/CBC/HMAC crypto
//! modules: the UML lab (see /work/shared/kernel-lab.md). They are
//! `#[ignore]`d so that `cargo test` on a kernel without ESP reports them as
//! ignored rather than failing; run them in the lab with
//!
//! ```text
//! cargo test -p xfrm-netlink --test esp_lab -- --ignored --test-threads=1
//! ```
//!
//! (crypto modules must be loadable on demand in the guest: see the lab
//! notes on `/proc/sys/kernel/modprobe`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::IpAddr;
use std::process::Command;

use common::*;
use xfrm_netlink::*;

fn key(len: usize, seed: u8) -> Key {
    Key::new((0..len).map(|i| seed.wrapping_add(i as u8)).collect())
}

fn integ_info(integrity: IntegrityAlg) -> AlgInfo {
    AlgInfo {
        name: integrity.kernel_name().to_owned(),
        key_bits: integrity.key_len() as u32 * 8,
        icv_bits: integrity.trunc_bits(),
    }
}

/// Every algorithm combination iked can install, with what the kernel should
/// report back: (protocol, transforms, aead, cipher, integrity+trunc).
fn all_transforms() -> Vec<(Protocol, Transforms, AlgNames)> {
    let mut v = Vec::new();
    for (alg, len) in [
        (AeadAlg::AesGcm16_128, 20),
        (AeadAlg::AesGcm16_256, 36),
        (AeadAlg::ChaCha20Poly1305, 36),
    ] {
        v.push((
            Protocol::Esp,
            Transforms::Aead {
                alg,
                key: key(len, 1),
            },
            AlgNames {
                aead: Some(AlgInfo {
                    name: alg.kernel_name().to_owned(),
                    key_bits: len as u32 * 8,
                    icv_bits: 128,
                }),
                ..AlgNames::default()
            },
        ));
    }
    for integrity in [
        IntegrityAlg::HmacSha1_96,
        IntegrityAlg::HmacSha256_128,
        IntegrityAlg::HmacSha384_192,
        IntegrityAlg::HmacSha512_256,
    ] {
        for cipher in [CipherAlg::AesCbc128, CipherAlg::AesCbc256] {
            v.push((
                Protocol::Esp,
                Transforms::CipherIntegrity {
                    cipher,
                    cipher_key: key(cipher.key_len(), 2),
                    integrity,
                    integrity_key: key(integrity.key_len(), 3),
                },
                AlgNames {
                    aead: None,
                    cipher: Some(AlgInfo {
                        name: "cbc(aes)".to_owned(),
                        key_bits: cipher.key_len() as u32 * 8,
                        icv_bits: 0,
                    }),
                    integrity: Some(integ_info(integrity)),
                },
            ));
        }
        v.push((
            Protocol::Ah,
            Transforms::IntegrityOnly {
                integrity,
                integrity_key: key(integrity.key_len(), 4),
            },
            AlgNames {
                integrity: Some(integ_info(integrity)),
                ..AlgNames::default()
            },
        ));
    }
    v
}

#[test]
#[ignore = "needs ESP/AH in the kernel: run in the UML lab with --ignored"]
fn sa_add_get_delete_each_algorithm_ipv4_and_ipv6() {
    in_netns(|_ns, h| async move {
        let mut spi = 0x1000;
        for (src, dst) in [
            ("192.0.2.1", "198.51.100.1"),
            ("2001:db8::1", "2001:db8::2"),
        ] {
            for (proto, transforms, expect) in all_transforms() {
                for mode in [Mode::Transport, Mode::Tunnel] {
                    spi += 1;
                    let cfg = SaConfig::new(ip(src), ip(dst), proto, spi, mode, transforms.clone())
                        .reqid(spi)
                        .replay_window(32);
                    h.sa().add(cfg.clone()).execute().await.unwrap_or_else(|e| {
                        panic!("{proto} {} {mode:?}: {e}", transforms.describe())
                    });
                    let got = h.sa().get(cfg.id()).await.unwrap();
                    assert_eq!(got.algorithms, expect, "{}", transforms.describe());
                    assert_eq!((got.src, got.dst, got.spi), (ip(src), ip(dst), spi));
                    assert_eq!(got.protocol, Some(proto));
                    assert_eq!(got.mode, Some(mode));
                    assert_eq!(got.reqid, spi);
                    assert_eq!(got.replay_window, 32);
                    assert!(got.owned);
                    h.sa().delete(cfg.id()).await.unwrap();
                    let e = h.sa().get(cfg.id()).await.unwrap_err();
                    assert_eq!(e.kernel_kind(), Some(KernelErrorKind::NotFound));
                }
            }
        }
    });
}

#[test]
#[ignore = "needs ESP/AH in the kernel: run in the UML lab with --ignored"]
fn sa_with_all_options_then_update_and_duplicate() {
    in_netns(|_ns, h| async move {
        let lifetimes = Lifetimes {
            soft: Limits {
                bytes: Some(1 << 20),
                packets: Some(1000),
                add_seconds: Some(300),
                use_seconds: Some(200),
            },
            hard: Limits {
                bytes: Some(2 << 20),
                packets: Some(2000),
                add_seconds: Some(360),
                use_seconds: Some(240),
            },
        };
        let sel = Selector::new(prefix("10.1.0.0", 16), prefix("10.2.0.0", 16)).unwrap();
        let cfg = SaConfig::new(
            ip("192.0.2.1"),
            ip("198.51.100.1"),
            Protocol::Esp,
            0xc000_0001,
            Mode::Tunnel,
            Transforms::Aead {
                alg: AeadAlg::AesGcm16_256,
                key: key(36, 9),
            },
        )
        .reqid(77)
        .selector(sel)
        .esn(true)
        .replay_window(128)
        .lifetimes(lifetimes)
        .encap(UdpEncap::new(4500, 4500))
        .mark(Mark {
            value: 0x10,
            mask: 0xff,
        })
        .if_id(5);
        h.sa().add(cfg.clone()).execute().await.unwrap();
        let got = h.sa().get(cfg.id()).await.unwrap();
        assert!(got.esn);
        assert_eq!(got.replay_window, 128);
        assert_eq!(got.lifetimes, lifetimes);
        assert_eq!(got.encap, Some(UdpEncap::new(4500, 4500)));
        assert_eq!(got.mark, cfg.mark);
        assert_eq!(got.if_id, Some(5));
        assert_eq!(got.selector, Some(sel));
        assert_eq!(got.usage.packets, 0);

        let e = h.sa().add(cfg.clone()).execute().await.unwrap_err();
        assert_eq!(e.kernel_kind(), Some(KernelErrorKind::AlreadyExists));
        assert!(
            e.to_string()
                .starts_with("SA already exists: ESP SPI 0xc0000001 to 198.51.100.1"),
            "{e}"
        );

        // Without the mark the kernel does not find it.
        let mut unmarked = cfg.id();
        unmarked.mark = None;
        assert!(h.sa().get(unmarked).await.is_err());

        // Update: new lifetimes.
        let mut l2 = lifetimes;
        l2.hard.add_seconds = Some(3600);
        h.sa()
            .update(cfg.clone().lifetimes(l2))
            .execute()
            .await
            .unwrap();
        assert_eq!(h.sa().get(cfg.id()).await.unwrap().lifetimes, l2);

        let dump = h.sa().dump().await.unwrap();
        assert_eq!(dump.len(), 1);
        assert!(dump[0].owned);
    });
}

#[test]
#[ignore = "needs ESP/AH in the kernel: run in the UML lab with --ignored"]
fn alloc_spi_then_update_fills_in_the_larval_sa() {
    in_netns(|_ns, h| async move {
        let (peer, me) = (ip("198.51.100.1"), ip("192.0.2.1"));
        for proto in [Protocol::Esp, Protocol::Ah] {
            let spi = h
                .sa()
                .alloc_spi(peer, me, proto, 0xc000_0000, 0xcfff_ffff, 3)
                .await
                .unwrap();
            let transforms = match proto {
                Protocol::Esp => Transforms::Aead {
                    alg: AeadAlg::ChaCha20Poly1305,
                    key: key(36, 5),
                },
                Protocol::Ah => Transforms::IntegrityOnly {
                    integrity: IntegrityAlg::HmacSha256_128,
                    integrity_key: key(32, 6),
                },
            };
            let cfg = SaConfig::new(peer, me, proto, spi, Mode::Tunnel, transforms).reqid(3);
            h.sa().update(cfg.clone()).execute().await.unwrap();
            let got = h.sa().get(cfg.id()).await.unwrap();
            assert!(got.owned, "update writes the owner tag");
            assert!(got.algorithms.aead.is_some() || got.algorithms.integrity.is_some());
        }
    });
}

#[test]
#[ignore = "needs ESP/AH in the kernel: run in the UML lab with --ignored"]
fn flush_owned_leaves_a_foreign_sa_alone() {
    in_netns(|ns, h| async move {
        ns.ip(&[
            "xfrm",
            "state",
            "add",
            "src",
            "192.0.2.1",
            "dst",
            "198.51.100.1",
            "proto",
            "esp",
            "spi",
            "0x999",
            "mode",
            "tunnel",
            "aead",
            "rfc4106(gcm(aes))",
            "0x0102030405060708090a0b0c0d0e0f1011121314",
            "128",
        ]);
        for spi in [0x1001, 0x1002] {
            let cfg = SaConfig::new(
                ip("192.0.2.1"),
                ip("198.51.100.1"),
                Protocol::Esp,
                spi,
                Mode::Tunnel,
                Transforms::Aead {
                    alg: AeadAlg::AesGcm16_128,
                    key: key(20, 1),
                },
            );
            h.sa().add(cfg).execute().await.unwrap();
        }
        let foreign = SaId {
            dst: ip("198.51.100.1"),
            spi: 0x999,
            protocol: Protocol::Esp,
            mark: None,
        };
        let e = h.sa().delete(foreign).await.unwrap_err();
        assert!(matches!(e, Error::NotOwned(_)), "{e}");
        let r = h.flush_owned().await.unwrap();
        assert_eq!((r.sas, r.foreign_sas), (2, 1), "{r:?}");
        let left = h.sa().dump().await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].spi, 0x999);
        assert!(ns.ip_output(&["xfrm", "state"]).contains("spi 0x00000999"));
    });
}

/// Installs a tunnel between `me` and `peer` (both SAs and in/out
/// policies) on one side; the other side mirrors it.
async fn install_side(
    h: &Handle,
    me: IpAddr,
    peer: IpAddr,
    spi_out: u32,
    spi_in: u32,
    soft_packets: Option<u64>,
) {
    let t = |seed| Transforms::Aead {
        alg: AeadAlg::AesGcm16_256,
        key: key(36, seed),
    };
    // The same key per direction on both sides.
    let (seed_out, seed_in) = if spi_out < spi_in { (1, 2) } else { (2, 1) };
    // ESN must match on both ends (it changes the ICV input).
    let out_sa = SaConfig::new(me, peer, Protocol::Esp, spi_out, Mode::Tunnel, t(seed_out))
        .reqid(1)
        .esn(true)
        .replay_window(128)
        .lifetimes(Lifetimes {
            soft: Limits {
                packets: soft_packets,
                ..Limits::default()
            },
            hard: Limits::default(),
        });
    let in_sa = SaConfig::new(peer, me, Protocol::Esp, spi_in, Mode::Tunnel, t(seed_in))
        .reqid(1)
        .esn(true)
        .replay_window(128);
    h.sa().add(out_sa).execute().await.unwrap();
    h.sa().add(in_sa).execute().await.unwrap();
    let tmpl_out = Template::tunnel(Protocol::Esp, 1, me, peer);
    let tmpl_in = Template::tunnel(Protocol::Esp, 1, peer, me);
    h.policy()
        .add(
            PolicyConfig::new(Selector::hosts(me, peer).unwrap(), Direction::Out)
                .template(tmpl_out),
        )
        .execute()
        .await
        .unwrap();
    h.policy()
        .add(PolicyConfig::new(Selector::hosts(peer, me).unwrap(), Direction::In).template(tmpl_in))
        .execute()
        .await
        .unwrap();
}

#[test]
#[ignore = "needs ESP/AH in the kernel: run in the UML lab with --ignored"]
fn esp_tunnel_between_namespaces_counts_traffic_and_soft_expires() {
    let a = Netns::create();
    let b = Netns::create();
    a.ip(&[
        "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", &b.name,
    ]);
    a.ip(&["addr", "add", "10.9.0.1/24", "dev", "va"]);
    a.ip(&["link", "set", "va", "up"]);
    b.ip(&["addr", "add", "10.9.0.2/24", "dev", "vb"]);
    b.ip(&["link", "set", "vb", "up"]);
    let (ia, ib) = (ip("10.9.0.1"), ip("10.9.0.2"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        a.switch_to();
        let (ca, ha) = new_connection().unwrap();
        tokio::spawn(ca);
        let mut events_a = ha.events(EventGroups::DAEMON).unwrap();
        b.switch_to();
        let (cb, hb) = new_connection().unwrap();
        tokio::spawn(cb);

        install_side(&ha, ia, ib, 0x1000, 0x2000, Some(2)).await;
        install_side(&hb, ib, ia, 0x2000, 0x1000, None).await;

        let out = Command::new("ip")
            .args([
                "netns", "exec", &a.name, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.9.0.2",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ping through the tunnel: {}",
            String::from_utf8_lossy(&out.stdout)
        );

        let id = |spi, dst| SaId {
            dst,
            spi,
            protocol: Protocol::Esp,
            mark: None,
        };
        let a_out = ha.sa().get(id(0x1000, ib)).await.unwrap();
        let b_in = hb.sa().get(id(0x1000, ib)).await.unwrap();
        let b_out = hb.sa().get(id(0x2000, ia)).await.unwrap();
        assert!(a_out.usage.packets >= 3, "{a_out:?}");
        assert!(a_out.usage.bytes > 0);
        assert!(b_in.usage.packets >= 3, "{b_in:?}");
        assert!(b_out.usage.packets >= 3, "{b_out:?}");
        assert!(a_out.usage.use_time > 0);

        // A's outbound SA passed its soft packet limit (2): rekey time.
        match with_timeout("soft EXPIRE", events_a.next_event())
            .await
            .unwrap()
            .unwrap()
        {
            XfrmEvent::Expire(e) => {
                assert!(!e.hard);
                assert_eq!(e.sa.spi, 0x1000);
                assert!(e.sa.owned);
            }
            other => panic!("expected Expire, got {other:?}"),
        }
    });
}

#[test]
#[ignore = "needs ESP/AH in the kernel: run in the UML lab with --ignored"]
fn udp_encapsulated_sa_reports_a_nat_mapping_change() {
    let (a, b) = veth_pair();
    let (ia, ib) = (ip("10.9.0.1"), ip("10.9.0.2"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let t = || Transforms::Aead {
            alg: AeadAlg::AesGcm16_128,
            key: key(20, 7),
        };
        // B expects A's ESP-in-UDP from port 4500 ...
        b.switch_to();
        let (cb, hb) = new_connection().unwrap();
        tokio::spawn(cb);
        let mut events_b = hb.events(EventGroups::DAEMON).unwrap();
        let _ike_b = udp_encap_socket(ib, 4500);
        hb.sa()
            .add(
                SaConfig::new(ia, ib, Protocol::Esp, 0x4242, Mode::Tunnel, t())
                    .reqid(9)
                    .encap(UdpEncap::new(4500, 4500)),
            )
            .execute()
            .await
            .unwrap();
        // ... but A's (as if behind a NAT that changed) come from 4501.
        a.switch_to();
        let (ca, ha) = new_connection().unwrap();
        tokio::spawn(ca);
        ha.sa()
            .add(
                SaConfig::new(ia, ib, Protocol::Esp, 0x4242, Mode::Tunnel, t())
                    .reqid(9)
                    .encap(UdpEncap::new(4501, 4500)),
            )
            .execute()
            .await
            .unwrap();
        ha.policy()
            .add(
                PolicyConfig::new(Selector::hosts(ia, ib).unwrap(), Direction::Out)
                    .template(Template::tunnel(Protocol::Esp, 9, ia, ib)),
            )
            .execute()
            .await
            .unwrap();
        let sock = std::net::UdpSocket::bind((ia, 0)).unwrap();
        sock.send_to(b"hello", (ib, 9)).unwrap();

        match with_timeout("MAPPING", events_b.next_event())
            .await
            .unwrap()
            .unwrap()
        {
            XfrmEvent::Mapping(m) => {
                assert_eq!((m.dst, m.spi, m.reqid), (ib, 0x4242, 9));
                assert_eq!(m.protocol, Some(Protocol::Esp));
                assert_eq!(m.old, std::net::SocketAddr::new(ia, 4500));
                assert_eq!(m.new, std::net::SocketAddr::new(ia, 4501));
            }
            other => panic!("expected Mapping, got {other:?}"),
        }
        let sa = hb
            .sa()
            .get(SaId {
                dst: ib,
                spi: 0x4242,
                protocol: Protocol::Esp,
                mark: None,
            })
            .await
            .unwrap();
        assert!(sa.usage.packets >= 1, "{sa:?}");
    });
}
