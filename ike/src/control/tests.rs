#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn sample_status() -> Vec<IkeSaStatus> {
    vec![IkeSaStatus {
        id: 1,
        connection: Some("site-b".into()),
        state: "ESTABLISHED".into(),
        initiator: true,
        spi_i: "1a2b3c4d5e6f7081".into(),
        spi_r: "0102030405060708".into(),
        local_addr: "192.0.2.1:500".into(),
        remote_addr: "192.0.2.2:500".into(),
        local_id: Some("gw-a.example.net".into()),
        remote_id: Some("gw-b.example.net".into()),
        algorithms: Some("AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519".into()),
        established_secs: Some(12),
        rekey_secs: Some(14_000),
        expire_secs: Some(15_700),
        nat_local: false,
        nat_remote: false,
        encap: false,
        local_vips: Vec::new(),
        remote_vips: Vec::new(),
        dns: Vec::new(),
        mobike: false,
        children: vec![ChildSaStatus {
            id: 1,
            name: "lan".into(),
            state: "INSTALLED".into(),
            mode: "TUNNEL".into(),
            protocol: "ESP".into(),
            spi_in: "c1234567".into(),
            spi_out: "c7654321".into(),
            local_ts: vec!["10.1.0.0/24".into()],
            remote_ts: vec!["10.2.0.0/24".into()],
            algorithms: Some("AES_GCM_16-256".into()),
            installed_secs: Some(3725),
            rekey_secs: Some(125),
            expire_secs: None,
            reqid: 3,
            bytes_in: Some(840),
            packets_in: Some(10),
            bytes_out: Some(1680),
            packets_out: None,
        }],
    }]
}

#[test]
fn requests_round_trip_and_have_the_documented_form() {
    let cases = [
        (
            Request::Up {
                connection: "site-b".into(),
                child: Some("lan".into()),
                timeout_secs: Some(30),
            },
            r#"{"command":"up","connection":"site-b","child":"lan","timeout_secs":30}"#,
        ),
        (
            Request::Up {
                connection: "site-b".into(),
                child: None,
                timeout_secs: None,
            },
            r#"{"command":"up","connection":"site-b"}"#,
        ),
        (
            Request::Down {
                connection: "site-b".into(),
                timeout_secs: None,
            },
            r#"{"command":"down","connection":"site-b"}"#,
        ),
        (Request::Reload {}, r#"{"command":"reload"}"#),
        (Request::Status {}, r#"{"command":"status"}"#),
        (
            Request::Redirect {
                target: "alice@ra.example".into(),
                gateway: "192.0.2.2".into(),
            },
            r#"{"command":"redirect","target":"alice@ra.example","gateway":"192.0.2.2"}"#,
        ),
    ];
    for (req, json) in cases {
        let line = encode_line(&req);
        assert_eq!(line, format!("{json}\n"));
        assert_eq!(decode_request(&line).unwrap(), req);
    }
}

#[test]
fn responses_round_trip() {
    let cases = [
        Response::Up {
            connection: "site-b".into(),
            ike_sa: 3,
            children: vec!["lan".into()],
        },
        Response::Down {
            connection: "site-b".into(),
            ike_sas: vec![3, 4],
        },
        Response::Reloaded {
            added: vec!["new".into()],
            removed: vec![],
            changed: vec!["site-b".into()],
            unchanged: vec!["x".into()],
        },
        Response::Status {
            ike_sas: sample_status(),
            traps: vec![sample_trap()],
        },
        Response::Pools {
            pools: vec![sample_pool()],
        },
        Response::Redirected {
            ike_sas: vec![3],
            gateway: "gw-b.example".into(),
        },
        Response::error(
            ErrorKind::AuthenticationFailed,
            "peer sent AUTHENTICATION_FAILED",
        ),
    ];
    for r in cases {
        let line = encode_line(&r);
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        assert_eq!(decode_response(&line).unwrap(), r);
    }
    assert_eq!(
        encode_line(&Response::error(ErrorKind::PeerNotResponding, "x")),
        "{\"result\":\"error\",\"kind\":\"peer_not_responding\",\"message\":\"x\"}\n"
    );
}

#[test]
fn bad_requests_are_errors_not_panics() {
    for bad in [
        "",
        "{",
        "null",
        "[]",
        r#"{"command":"explode"}"#,
        r#"{"command":"up"}"#,
        r#"{"command":"up","connection":5}"#,
        r#"{"command":"status","extra":1}"#,
        r#"{"command":"up","connection":"a","timeout_secs":-1}"#,
        "\u{0}\u{ff}",
    ] {
        assert!(decode_request(bad).is_err(), "{bad:?} must be rejected");
    }
}

#[test]
fn responses_accept_unknown_fields() {
    // Stability promise: clients ignore fields added later.
    let r = decode_response(r#"{"result":"down","connection":"a","ike_sas":[],"new":true}"#);
    assert_eq!(
        r.unwrap(),
        Response::Down {
            connection: "a".into(),
            ike_sas: vec![]
        }
    );
}

#[test]
fn status_text_is_swanctl_like() {
    let text = format_status(&sample_status());
    let expected = "\
site-b: #1, ESTABLISHED, IKEv2, 1a2b3c4d5e6f7081_i* 0102030405060708_r
  local  'gw-a.example.net' @ 192.0.2.1:500
  remote 'gw-b.example.net' @ 192.0.2.2:500
  AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519
  established 12s ago, rekeying in 3h 53m, expires in 4h 21m
  lan: #1, INSTALLED, TUNNEL, ESP:AES_GCM_16-256
    installed 1h 2m ago, rekeying in 2m 5s
    in  c1234567,    840 bytes,     10 packets
    out c7654321,   1680 bytes,      ? packets
    local  10.1.0.0/24
    remote 10.2.0.0/24
";
    assert_eq!(text, expected);
    assert_eq!(format_status(&[]), "no IKE SAs\n");
}

#[test]
fn status_text_of_a_responder_in_setup() {
    let mut s = sample_status();
    s[0].initiator = false;
    s[0].connection = None;
    s[0].state = "CONNECTING".into();
    s[0].remote_id = None;
    s[0].algorithms = None;
    s[0].established_secs = None;
    s[0].nat_local = true;
    s[0].children.clear();
    assert_eq!(
        format_status(&s),
        "\
(unknown): #1, CONNECTING, IKEv2, 1a2b3c4d5e6f7081_i 0102030405060708_r*
  local  'gw-a.example.net' @ 192.0.2.1:500 [NAT]
  remote %any @ 192.0.2.2:500
"
    );
}

#[test]
fn status_from_a_daemon_without_rekey_fields_still_decodes() {
    let mut v = serde_json::to_value(Response::Status {
        ike_sas: sample_status(),
        traps: vec![],
    })
    .unwrap();
    // Nor the traps.
    v.as_object_mut().unwrap().remove("traps");
    let sa = &mut v["ike_sas"][0];
    let obj = sa.as_object_mut().unwrap();
    obj.remove("rekey_secs");
    obj.remove("expire_secs");
    let child = obj["children"][0].as_object_mut().unwrap();
    child.remove("rekey_secs");
    child.remove("expire_secs");
    child.remove("reqid");
    let line = v.to_string();
    let Response::Status { ike_sas, traps } = decode_response(&line).unwrap() else {
        panic!("not a status");
    };
    assert!(traps.is_empty());
    assert_eq!(ike_sas[0].rekey_secs, None);
    assert_eq!(ike_sas[0].children[0].reqid, 0);
    let text = format_status(&ike_sas);
    assert!(text.contains("  established 12s ago\n"), "{text}");
}

fn sample_trap() -> TrapStatus {
    TrapStatus {
        connection: "site-b".into(),
        child: "lan".into(),
        reqid: 1,
        mode: "TUNNEL".into(),
        protocol: "ESP".into(),
        local_ts: vec!["10.1.0.0/24".into()],
        remote_ts: vec!["10.2.0.0/24".into(), "10.3.0.0/24".into()],
        reason: "start_action".into(),
    }
}

#[test]
fn traps_are_listed_as_json_and_text() {
    let line = encode_line(&Response::Status {
        ike_sas: vec![],
        traps: vec![sample_trap()],
    });
    assert!(
        line.contains(
            r#""traps":[{"connection":"site-b","child":"lan","reqid":1,"mode":"TUNNEL","protocol":"ESP","local_ts":["10.1.0.0/24"],"remote_ts":["10.2.0.0/24","10.3.0.0/24"],"reason":"start_action"}]"#
        ),
        "{line}"
    );
    assert_eq!(
        format_traps(&[sample_trap()]),
        "site-b/lan, reqid 1, TUNNEL, ESP, trapped (start_action)\n  local  10.1.0.0/24\n  remote 10.2.0.0/24 10.3.0.0/24\n"
    );
    assert_eq!(format_traps(&[]), "");
}

fn sample_pool() -> PoolStatus {
    PoolStatus {
        name: "rw".into(),
        base: "10.3.0.1".into(),
        size: 254,
        online: 1,
        offline: 1,
        leases: vec![
            LeaseStatus {
                address: "10.3.0.1".into(),
                identity: "carol@example.org".into(),
                online: true,
            },
            LeaseStatus {
                address: "10.3.0.2".into(),
                identity: "dave@example.org".into(),
                online: false,
            },
        ],
    }
}

#[test]
fn pools_and_virtual_ips_print_as_swanctl_lists_them() {
    let text = format_pools(&[sample_pool()]);
    assert_eq!(
        text,
        "rw                   10.3.0.1                                 1 / 1 / 254\n  \
         10.3.0.1                                 online   'carol@example.org'\n  \
         10.3.0.2                                 offline  'dave@example.org'\n"
    );
    assert_eq!(format_pools(&[]), "no pools\n");
    let mut sa = sample_status();
    sa[0].local_vips = vec!["10.3.0.1".into()];
    sa[0].dns = vec!["10.2.0.53".into()];
    let text = format_status(&sa);
    assert!(
        text.contains("  local  'gw-a.example.net' @ 192.0.2.1:500 [10.3.0.1]\n"),
        "{text}"
    );
    assert!(text.contains("  dns 10.2.0.53\n"), "{text}");
    // Absent from the JSON when there are none (older ikectl read it).
    assert!(
        !encode_line(&Response::Status {
            ike_sas: sample_status(),
            traps: vec![]
        })
        .contains("vips")
    );
}
