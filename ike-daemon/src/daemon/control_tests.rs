//! The driver's control handlers on a driver without sockets whose kernel
//! connection never runs: requests that need no kernel operation are
//! answered as in the daemon, and nothing reaches the host's kernel.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

/// A driver for the YAML configuration `yaml` (addresses only, no names
/// to resolve). The kernel connection is not spawned: an operation would
/// wait forever rather than change the host's XFRM state.
async fn driver(yaml: &str) -> Driver {
    let config =
        Config::from_yaml_str_with(yaml, "test.yaml", &swanctl_compat::netdb::system()).unwrap();
    let path = std::env::temp_dir().join("iked-control-test.yaml");
    let credentials = creds::read(&config, &path).unwrap();
    let ports = Ports::default();
    let resolved = resolve::resolve(&from_config::names_to_resolve(&config)).await;
    let creds::Loaded { peers, store } =
        creds::build(&config, &credentials, &resolved, ports).unwrap();
    let config = Arc::new(config);
    let mut ep = Endpoint::new(
        EndpointConfig::default(),
        peers.clone(),
        Arc::new(ConfigPsk::new(config.clone())),
        Arc::new(DefaultProvider::new()),
    );
    ep.set_trust_store(store.clone());
    let (_conn, handle) = xfrm_netlink::new_connection().unwrap();
    let (kernel_tx, _) = mpsc::unbounded_channel();
    let (crl_tx, _) = mpsc::unbounded_channel();
    let (resolve_tx, _) = mpsc::unbounded_channel();
    Driver {
        ep,
        kernel: Kernel::new(handle),
        sockets: Vec::new(),
        ports,
        config_path: path,
        config_format: Some(ConfigFormat::Yaml),
        fragment_size: None,
        peers,
        kernel_tx,
        crl: crl::CrlFetcher::new(crl::CrlFetchLimits::default()),
        crl_tx,
        resolve_tx,
        accounting: None,
        dns: None,
        radius: None,
        eap_tx: mpsc::unbounded_channel().0,
        workers: None,
        in_flight: BTreeSet::new(),
        next_op: 0,
        wall_at: None,
        failed_ups: AfterOps::default(),
        ups: Vec::new(),
        downs: Vec::new(),
        shutdown: None,
        config,
        store,
        traps: HashMap::new(),
        acquiring: HashMap::new(),
        gone: HashMap::new(),
        trap_todo: Vec::new(),
        updown: updown::Updowns::new(Duration::from_secs(5)),
    }
}

const GATEWAY: &str = "secrets:\n  ike:\n    - { ids: [gw], secret: not-a-real-secret-0123456789 }\n\
connections:\n  gw:\n    remote_addrs: [192.0.2.1]\n    \
local: { auth: psk, id: gw }\n    remote: { auth: psk, id: gw }\n    \
children:\n      net: { local_ts: [10.1.0.0/16], remote_ts: [10.2.0.0/16] }\n";

/// Sends `request` to the driver as the control socket does and drains
/// the endpoint, as the loop does after each input.
async fn send(d: &mut Driver, request: Request) -> oneshot::Receiver<Response> {
    let (reply, rx) = oneshot::channel();
    d.control(ControlCmd { request, reply }).await;
    d.drain().await;
    rx
}

#[tokio::test]
async fn a_control_request_with_a_huge_timeout_is_answered_not_a_crash() {
    let mut d = driver(GATEWAY).await;
    // The largest timeout the protocol carries, as a client sends it.
    let up = ike::control::decode_request(
        "{\"command\":\"up\",\"connection\":\"gw\",\"timeout_secs\":18446744073709551615}",
    )
    .unwrap();
    let mut up_rx = send(&mut d, up).await;
    assert_eq!(d.ups.len(), 1, "the up waits for its IKE SA");
    // The IKE SA's own retransmission timer stays the next wake-up; the
    // timeout adds none it cannot represent.
    assert_eq!(d.next_wake(), d.ep.poll_timeout());
    d.timeout();
    assert!(up_rx.try_recv().is_err(), "not timed out at once");

    let mut down_rx = send(
        &mut d,
        Request::Down {
            connection: "gw".into(),
            timeout_secs: Some(u64::MAX),
        },
    )
    .await;
    // The half-open IKE SA is gone: both requests are answered.
    match down_rx.try_recv().unwrap() {
        Response::Down { connection, .. } => assert_eq!(connection, "gw"),
        r => panic!("down: {r:?}"),
    }
    assert!(
        matches!(up_rx.try_recv().unwrap(), Response::Error { .. }),
        "the up fails with its IKE SA"
    );
    assert!(d.ups.is_empty() && d.downs.is_empty());
}

#[tokio::test]
async fn a_down_with_nothing_up_and_a_zero_timeout_are_answered_at_once() {
    let mut d = driver(GATEWAY).await;
    // Nothing up: answered at once, whatever the timeout.
    let mut rx = send(
        &mut d,
        Request::Down {
            connection: "gw".into(),
            timeout_secs: Some(u64::MAX),
        },
    )
    .await;
    assert!(matches!(rx.try_recv().unwrap(), Response::Down { .. }));
    // A timeout that fits still ends the wait of an up.
    let mut rx = send(
        &mut d,
        Request::Up {
            connection: "gw".into(),
            child: None,
            timeout_secs: Some(0),
        },
    )
    .await;
    d.timeout();
    assert!(
        matches!(
            rx.try_recv().unwrap(),
            Response::Error {
                kind: ErrorKind::Timeout,
                ..
            }
        ),
        "a zero timeout is over at once"
    );
}

#[test]
fn a_deadline_beyond_the_clock_is_none() {
    let now = Instant::now();
    assert_eq!(
        deadline_after(now, Duration::from_secs(5)),
        Some(now + Duration::from_secs(5))
    );
    assert_eq!(deadline_after(now, Duration::from_secs(u64::MAX)), None);
    assert_eq!(deadline_after(now, Duration::MAX), None);
}

#[tokio::test]
async fn a_redirect_names_what_it_did_not_find_and_refuses_a_bad_gateway() {
    let mut d = driver(GATEWAY).await;
    let redirect = |target: &str, gateway: &str| Request::Redirect {
        target: target.into(),
        gateway: gateway.into(),
    };
    let mut rx = send(&mut d, redirect("gw", "gw b")).await;
    match rx.try_recv().unwrap() {
        Response::Error { kind, message } => {
            assert_eq!(kind, ErrorKind::BadRequest);
            assert!(message.contains("bad gateway \"gw b\""), "{message}");
        }
        r => panic!("{r:?}"),
    }
    let mut rx = send(&mut d, redirect("alice@ra.example", "192.0.2.2")).await;
    match rx.try_recv().unwrap() {
        Response::Error { kind, message } => {
            assert_eq!(kind, ErrorKind::NoSuchSa);
            assert_eq!(message, "no IKE SA matches 'alice@ra.example'");
        }
        r => panic!("{r:?}"),
    }
    // An IKE SA being set up (by number) cannot be redirected.
    let now = Instant::now();
    let id = d.ep.initiate(now, "gw", &[]).unwrap();
    let mut rx = send(&mut d, redirect(&id.0.to_string(), "gw-b.example")).await;
    match rx.try_recv().unwrap() {
        Response::Error { kind, message } => {
            assert_eq!(kind, ErrorKind::NoSuchSa);
            assert!(message.ends_with("cannot do that now"), "{message}");
        }
        r => panic!("{r:?}"),
    }
}
