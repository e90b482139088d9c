//! The RADIUS client against a real FreeRADIUS (Debian's `freeradius`,
//! installed on first use) on the host's loopback, in a configuration
//! directory of its own (never /etc/freeradius): an EAP-MSCHAPv2
//! conversation through Access-Challenges to an Access-Accept whose
//! MS-MPPE keys give the MSK our own MS-CHAPv2 computes, a wrong password
//! rejected, failover from a dead server, and accounting Start/Stop that
//! FreeRADIUS writes to its detail file with the virtual IP.
//!
//! A lab test (`*_lab`): it needs root for the package and runs by itself
//! (`cargo test -p ike-daemon --test radius_lab -- --nocapture`). It fails,
//! never skips, when FreeRADIUS cannot be installed or started.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ike::eap::{self, Method, Step, mschapv2};
use ike::radius::packet::{Code, attr};
use ike::radius::{self, AcctStatus, Request, Server, Session, Settings, Usage};
use ike_daemon::daemon::radius::{Accounting, Radius};
use zeroize::Zeroizing;

use common::freeradius::{FreeRadius, Spec};

const SECRET: &str = "lab-radius-secret";
const USER: &str = "carol";
const PASSWORD: &str = "Ch4pV2-pw";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "{cmd} failed: {st}");
}

/// A FreeRADIUS in its own directory, on `port` (auth) and `port + 1`
/// (accounting) of 127.0.0.1, for the user [`USER`].
fn freeradius(port: u16) -> FreeRadius {
    FreeRadius::start(Spec {
        dir: repo_root()
            .join("target/radius-lab")
            .join(format!("freeradius-{port}")),
        netns: None,
        listen: "127.0.0.1",
        port,
        client: "127.0.0.1",
        secret: SECRET,
        users: &[(USER, PASSWORD)],
    })
}

fn server(name: &str, port: u16) -> Server {
    Server {
        name: name.into(),
        auth: SocketAddr::from(([127, 0, 0, 1], port)),
        acct: SocketAddr::from(([127, 0, 0, 1], port + 1)),
        secret: Zeroizing::new(SECRET.as_bytes().to_vec()),
        nas_identifier: "iked-lab".into(),
        retransmit_tries: 2,
        retransmit_timeout: Duration::from_millis(300),
        retransmit_base: 1.4,
        preference: 0,
    }
}

fn session(unique: u32) -> Session {
    Session {
        name: "rw-radius".into(),
        unique,
        prefix: 1_765_000_000,
        local: "127.0.0.1:4500".parse().unwrap(),
        remote: "127.0.0.2:4500".parse().unwrap(),
    }
}

/// The EAP packet (`code`, `id`, type 26 and `data`).
fn eap(code: u8, id: u8, data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(data.len() + 5).unwrap();
    let mut v = vec![code, id];
    v.extend_from_slice(&len.to_be_bytes());
    v.push(26);
    v.extend_from_slice(data);
    v
}

/// How an EAP-MSCHAPv2 conversation ended.
struct Outcome {
    code: Code,
    msk: Option<Zeroizing<Vec<u8>>>,
    /// Ours, from the password.
    our_msk: Option<Zeroizing<Vec<u8>>>,
    server: usize,
}

/// Runs EAP-MSCHAPv2 as the peer `USER` with `password` through the
/// RADIUS client, as the gateway relays it (each EAP response in an
/// Access-Request with the last State, bound to the server that answered
/// first).
async fn mschapv2_conversation(r: &Radius, password: &str, unique: u32) -> Outcome {
    let settings = Settings::default();
    let s = session(unique);
    let mut state: Option<Vec<u8>> = None;
    let mut bound = None;
    let mut msg = radius::eap_identity(&settings, 0, USER.as_bytes());
    let nt_hash = mschapv2::nt_password_hash(password);
    let mut our_msk = None;
    let mut expect_s = String::new();
    for _round in 0..6 {
        let packet = radius::access_request(&settings, &s, USER.as_bytes(), &msg, state.as_deref());
        let a = r
            .request(Request {
                packet,
                server: bound,
            })
            .await
            .expect("an answer from FreeRADIUS");
        bound = Some(a.server);
        state = a.packet.get(attr::STATE).map(<[u8]>::to_vec);
        if a.packet.code != Code::ACCESS_CHALLENGE {
            if a.packet.code == Code::ACCESS_ACCEPT {
                // RFC 3579: EAP-Success comes in the Access-Accept.
                assert_eq!(a.packet.joined(attr::EAP_MESSAGE).first(), Some(&3));
                println!(
                    "Access-Accept {} request authenticator {}",
                    hex::encode(a.packet.emit().unwrap()),
                    hex::encode(a.request_auth)
                );
            }
            return Outcome {
                code: a.packet.code,
                msk: a.msk,
                our_msk,
                server: a.server,
            };
        }
        let req = a.packet.joined(attr::EAP_MESSAGE);
        assert!(
            req.len() >= 6 && req[0] == 1 && req[4] == 26,
            "EAP-Request/MSCHAPv2: {req:02x?}"
        );
        let (id, op, ms_id) = (req[1], req[5], req[6]);
        match op {
            // Challenge: OpCode, MS-CHAPv2-ID, MS-Length, Value-Size 16,
            // the challenge, the server's name.
            1 => {
                let challenge: [u8; 16] = req[10..26].try_into().unwrap();
                println!("MS-CHAPv2 challenge {}", hex::encode(challenge));
                let peer_challenge = [0x5a; 16];
                let nt =
                    mschapv2::nt_response(&challenge, &peer_challenge, USER.as_bytes(), &nt_hash);
                let mut body = vec![2, ms_id, 0, 0, 49];
                body.extend_from_slice(&peer_challenge);
                body.extend_from_slice(&[0; 8]);
                body.extend_from_slice(&nt);
                body.push(0);
                body.extend_from_slice(USER.as_bytes());
                let ms_len = u16::try_from(body.len()).unwrap().to_be_bytes();
                body[2..4].copy_from_slice(&ms_len);
                msg = eap(2, id, &body);
                our_msk = Some(mschapv2::msk(&nt_hash, &nt));
                expect_s =
                    mschapv2::authenticator_response_text(&mschapv2::authenticator_response(
                        &nt_hash,
                        &nt,
                        &peer_challenge,
                        &challenge,
                        USER.as_bytes(),
                    ));
            }
            // Success request: "S=<40 hex digits> M=...": the server
            // proved it knows the password too.
            3 => {
                let text = String::from_utf8_lossy(&req[9..]).to_string();
                assert!(text.starts_with(&expect_s), "{text} vs {expect_s}");
                msg = eap(2, id, &[3]);
            }
            // Failure request: acknowledge it, the Access-Reject follows.
            4 => msg = eap(2, id, &[4]),
            other => panic!("MSCHAPv2 OpCode {other}"),
        }
    }
    panic!("EAP-MSCHAPv2 did not end in six rounds");
}

#[tokio::test(flavor = "current_thread")]
async fn freeradius_eap_mschapv2_msk_failover_and_accounting() {
    sh(&format!(
        "bash -c \". '{}'; lab_ensure_packages freeradius\"",
        repo_root().join("tests/lab/packages.sh").display()
    ));
    let port = 20_000 + u16::try_from(std::process::id() % 20_000).unwrap() / 2 * 2;
    let fr = freeradius(port);

    // A dead server first in the list (nothing listens on its port): the
    // first request fails over to FreeRADIUS after its two tries.
    let mut dead = server("dead", port + 2);
    dead.preference = 10;
    let r = Radius::spawn(vec![dead, server("freeradius", port)]);

    let t0 = Instant::now();
    let ok = mschapv2_conversation(&r, PASSWORD, 1).await;
    println!("EAP-MSCHAPv2 through RADIUS in {:?}", t0.elapsed());
    assert_eq!(ok.code, Code::ACCESS_ACCEPT);
    assert_eq!(ok.server, 1, "answered by FreeRADIUS after failover");
    let msk = ok.msk.expect("MS-MPPE keys in the Access-Accept");
    assert_eq!(msk.len(), 64);
    assert_eq!(
        *msk,
        *ok.our_msk.unwrap(),
        "the MSK FreeRADIUS sent is MS-CHAPv2's"
    );

    // The dead server is now known unreachable: the next conversation
    // goes to FreeRADIUS at once (no 0.72 s of retransmissions first).
    let t1 = Instant::now();
    let bad = mschapv2_conversation(&r, "wrong", 2).await;
    assert_eq!(bad.code, Code::ACCESS_REJECT);
    assert!(bad.msk.is_none());
    assert!(
        t1.elapsed() < Duration::from_millis(500),
        "{:?}",
        t1.elapsed()
    );

    // Accounting Start and Stop with the virtual IP and the usage.
    let settings = Settings::default();
    let vip = ["10.3.0.7".parse().unwrap()];
    let start = radius::accounting_request(
        &settings,
        &session(1),
        AcctStatus::Start,
        USER.as_bytes(),
        &vip,
        None,
    );
    let a = r
        .request(Request {
            packet: start,
            server: None,
        })
        .await
        .unwrap();
    assert_eq!(a.packet.code, Code::ACCOUNTING_RESPONSE);
    let usage = Usage {
        seconds: 42,
        in_octets: 8400,
        out_octets: 8400,
        in_packets: 100,
        out_packets: 100,
        cause: 1,
    };
    let stop = radius::accounting_request(
        &settings,
        &session(1),
        AcctStatus::Stop,
        USER.as_bytes(),
        &vip,
        Some(&usage),
    );
    let a = r
        .request(Request {
            packet: stop,
            server: None,
        })
        .await
        .unwrap();
    assert_eq!(a.packet.code, Code::ACCOUNTING_RESPONSE);
    let detail = fr.detail();
    println!("FreeRADIUS detail file:\n{detail}");
    for want in [
        "Acct-Status-Type = Start",
        "Acct-Status-Type = Stop",
        "Framed-IP-Address = 10.3.0.7",
        "Acct-Session-Id = \"1765000000-1\"",
        "Acct-Session-Time = 42",
        "Acct-Input-Octets = 8400",
        "User-Name = \"carol\"",
        "NAS-Identifier = \"iked-lab\"",
        "Acct-Terminate-Cause = User-Request",
    ] {
        assert!(detail.contains(want), "no {want} in the detail file");
    }

    // The engine's EAP-RADIUS method (the gateway's side) between our
    // EAP-MSCHAPv2 client method and FreeRADIUS: both end with the same
    // MSK, the one AUTH is computed from.
    let mut gw =
        eap::radius::Radius::new(Settings::default(), session(3), USER.as_bytes().to_vec());
    let mut rw = mschapv2::Client::new(USER.as_bytes(), PASSWORD, [0x33; 16]);
    let mut step = gw.initiate(0);
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 10, "EAP-RADIUS did not end");
        step = match step {
            Step::Wait(eap::Ask::Radius(req)) => gw.resume(match r.request(req).await {
                Ok(a) => eap::Answer::Radius(a),
                Err(e) => eap::Answer::Failed(e.to_string()),
            }),
            Step::Send(to_peer) => match rw.process(&to_peer) {
                Step::Send(resp) => gw.process(&resp),
                other => panic!("client: {other:?}"),
            },
            Step::Success => break,
            other => panic!("gateway: {other:?}"),
        };
    }
    assert_eq!(gw.eap_type(), eap::EapType::MSCHAPV2);
    // The client takes its MSK with the server's EAP-Success.
    let success = ike::wire::Eap {
        code: eap::code::SUCCESS,
        identifier: 0,
        data: Vec::new(),
    };
    let _ = rw.process(&success);
    assert!(gw.makes_msk());
    assert_eq!(gw.msk().map(<[u8]>::to_vec), rw.msk().map(<[u8]>::to_vec));
    assert!(gw.msk().is_some());

    // The daemon's accounting of an IKE SA: Start when it is up, Stop
    // with the session time and the cause when it goes.
    let mut acct = Accounting::new(r.clone(), Settings::default(), 1_765_000_001);
    let up = Instant::now();
    acct.start(
        up,
        9,
        "rw-radius",
        "127.0.0.1:4500".parse().unwrap(),
        "127.0.0.3:4500".parse().unwrap(),
        b"dave".to_vec(),
        vec!["10.3.0.9".parse().unwrap()],
    );
    acct.moved(9, 10);
    acct.stop(up + Duration::from_secs(5), 10, 1);
    // The requests go out on their own tasks, and FreeRADIUS writes a
    // record line by line: wait until both records are there and the
    // Stop has all its attributes (a read in the middle of the Stop's
    // lines missed the last ones under load).
    let wants = [
        "Acct-Status-Type = Stop",
        "Framed-IP-Address = 10.3.0.9",
        "Calling-Station-Id = \"127.0.0.3[4500]\"",
        "NAS-Port = 9",
        "Acct-Session-Time = 5",
        "Acct-Terminate-Cause = User-Request",
    ];
    let complete = |detail: &str| {
        detail.matches("Acct-Session-Id = \"1765000001-9\"").count() >= 2
            && detail.find("User-Name = \"dave\"").is_some_and(|i| {
                let dave = &detail[i..];
                wants.iter().all(|w| dave.contains(w))
            })
    };
    let t = Instant::now();
    while !complete(&fr.detail()) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no complete Start and Stop for dave ({wants:?}):\n{}",
            fr.detail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(fr);
}
