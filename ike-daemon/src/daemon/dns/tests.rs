use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn run_async<F: std::future::Future<Output = ()>>(f: F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f);
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("iked-dns-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A program that appends its arguments and input to `log`, and prints
/// `out` (for resolvectl's queries).
fn fake(dir: &Path, name: &str, out: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    let log = dir.join(format!("{name}.log"));
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\necho \"$*\" >> {log}\ncat | sed 's/^/  /' >> {log}\ncase \"$1\" in dns|domain) [ $# -eq 2 ] && echo '{out}';; esac\nexit 0\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn wanted(local: &str, servers: &[&str]) -> Wanted {
    let mut w = Wanted::new();
    if !servers.is_empty() {
        w.insert(ip(local), servers.iter().map(|s| ip(s)).collect());
    }
    w
}

#[test]
fn rewrite_puts_ours_first_and_takes_only_ours_out() {
    let orig = "# from DHCP\nsearch example.net\nnameserver 192.0.2.53\n";
    let with = rewrite(orig, &[ip("10.1.0.53"), ip("fd00::53")]);
    assert_eq!(
        with,
        "nameserver 10.1.0.53   # by iked\nnameserver fd00::53   # by iked\n\
         # from DHCP\nsearch example.net\nnameserver 192.0.2.53\n"
    );
    // A new set replaces ours; none gives the file back as it was.
    assert_eq!(
        rewrite(&with, &[ip("10.1.0.54")]),
        format!("nameserver 10.1.0.54   # by iked\n{orig}")
    );
    assert_eq!(rewrite(&with, &[]), orig);
    // A line of charon's (or anyone's) stays.
    let charon = "nameserver 10.9.0.1   # by strongSwan\n";
    assert_eq!(rewrite(charon, &[]), charon);
}

#[test]
fn the_target_is_what_is_configured_else_what_the_system_has() {
    let none = |_: &Path| false;
    let all = |_: &Path| true;
    let resolvconf_only = |p: &Path| p == Path::new(DEFAULT_RESOLVCONF);
    let o = DnsOptions::default();
    assert_eq!(choose(&o, &none), Target::File(DEFAULT_FILE.into()));
    assert_eq!(
        choose(&o, &resolvconf_only),
        Target::Resolvconf {
            path: DEFAULT_RESOLVCONF.into(),
            iface: "lo.iked".into()
        }
    );
    assert_eq!(
        choose(&o, &all),
        Target::Resolved {
            path: RESOLVECTL.into()
        }
    );
    let file = DnsOptions {
        file: Some("/lab/resolv.conf".into()),
        ..DnsOptions::default()
    };
    assert_eq!(choose(&file, &all), Target::File("/lab/resolv.conf".into()));
    let rc = DnsOptions {
        resolvconf: Some("/usr/local/sbin/resolvconf".into()),
        resolvconf_iface: Some("wan.vpn".into()),
        ..file.clone()
    };
    assert_eq!(
        choose(&rc, &none),
        Target::Resolvconf {
            path: "/usr/local/sbin/resolvconf".into(),
            iface: "wan.vpn".into()
        }
    );
    let off = DnsOptions {
        choice: Choice::None,
        ..rc
    };
    assert_eq!(choose(&off, &all), Target::None);
    assert_eq!("resolved".parse::<Choice>(), Ok(Choice::Resolved));
    assert!("systemd".parse::<Choice>().is_err());
}

#[test]
fn servers_are_counted_per_ike_sa_and_leave_with_the_last() {
    let d = scratch("count");
    let f = d.join("resolv.conf");
    let orig = "nameserver 192.0.2.53\n";
    // A killed iked's line goes at start.
    std::fs::write(&f, format!("nameserver 10.9.9.9{FILE_MARK}\n{orig}")).unwrap();
    let read = || std::fs::read_to_string(&f).unwrap();
    run_async(async {
        let mut dns = Dns::start(Target::File(f.clone()));
        let settle = || tokio::time::sleep(Duration::from_millis(200));
        settle().await;
        assert_eq!(read(), orig);
        let local = ip("192.0.2.11");
        dns.up(1, local, &[ip("10.1.0.53"), ip("10.1.0.54")]);
        dns.up(2, local, &[ip("10.1.0.54")]);
        settle().await;
        assert_eq!(
            read(),
            format!("nameserver 10.1.0.53{FILE_MARK}\nnameserver 10.1.0.54{FILE_MARK}\n{orig}")
        );
        dns.down(1);
        settle().await;
        assert_eq!(read(), format!("nameserver 10.1.0.54{FILE_MARK}\n{orig}"));
        // A rekeyed SA keeps them; the old number no longer counts.
        dns.moved(2, 3);
        dns.down(2);
        settle().await;
        assert_eq!(read(), format!("nameserver 10.1.0.54{FILE_MARK}\n{orig}"));
        dns.up(4, local, &[ip("fd00::53")]);
        // Shutdown takes every one out.
        dns.finish().await;
    });
    assert_eq!(read(), orig);
}

#[test]
fn resolvconf_gets_every_server_under_one_record() {
    let d = scratch("resolvconf");
    let path = fake(&d, "resolvconf", "");
    run_async(async {
        let mut w = Writer::new(Target::Resolvconf {
            path: path.clone(),
            iface: "lo.iked".into(),
        });
        w.apply(&wanted("192.0.2.11", &["10.1.0.53", "10.1.0.54"]))
            .await;
        // The same set again: resolvconf is not run.
        w.apply(&wanted("192.0.2.11", &["10.1.0.53", "10.1.0.54"]))
            .await;
        w.apply(&wanted("192.0.2.11", &[])).await;
    });
    assert_eq!(
        std::fs::read_to_string(d.join("resolvconf.log")).unwrap(),
        "-a lo.iked\n  nameserver 10.1.0.53\n  nameserver 10.1.0.54\n-d lo.iked\n"
    );
}

#[test]
fn resolved_gets_them_on_the_interface_and_gives_back_what_it_had() {
    let d = scratch("resolved");
    let path = fake(&d, "resolvectl", "Link 1 (lo): 192.0.2.53 example.net");
    run_async(async {
        let mut w = Writer::new(Target::Resolved { path: path.clone() });
        w.apply(&wanted("127.0.0.1", &["10.1.0.53", "fd00::53"]))
            .await;
        w.apply(&wanted("127.0.0.1", &[])).await;
    });
    assert_eq!(
        std::fs::read_to_string(d.join("resolvectl.log")).unwrap(),
        "dns lo\ndomain lo\ndns lo 10.1.0.53 fd00::53\ndomain lo ~.\n\
         dns lo 192.0.2.53 example.net\ndomain lo 192.0.2.53 example.net\n"
    );
}

#[test]
fn resolved_reverts_an_interface_that_had_nothing() {
    let d = scratch("revert");
    let path = fake(&d, "resolvectl", "Link 1 (lo):");
    run_async(async {
        let mut w = Writer::new(Target::Resolved { path: path.clone() });
        w.apply(&wanted("127.0.0.1", &["10.1.0.53"])).await;
        w.apply(&wanted("127.0.0.1", &[])).await;
    });
    let log = std::fs::read_to_string(d.join("resolvectl.log")).unwrap();
    assert!(
        log.ends_with("dns lo 10.1.0.53\ndomain lo ~.\nrevert lo\n"),
        "{log}"
    );
}
