//! `ikectl status`'s human output, modelled on `swanctl --list-sas`.

use core::fmt::Write;

use super::{ChildSaStatus, IkeSaStatus, TrapStatus};

/// The status as text: one block per IKE SA, its children indented.
///
/// ```text
/// site-b: #1, ESTABLISHED, IKEv2, 1a2b3c4d5e6f7081_i* 0102030405060708_r
///   local  'gw-a.example.net' @ 192.0.2.1:500
///   remote 'gw-b.example.net' @ 192.0.2.2:500
///   AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519
///   established 12s ago
///   lan: #1, INSTALLED, TUNNEL, ESP:AES_GCM_16-256
///     installed 12s ago
///     in  c1234567,    840 bytes,    10 packets
///     out c7654321,    840 bytes,    10 packets
///     local  10.1.0.0/24
///     remote 10.2.0.0/24
/// ```
pub fn format_status(sas: &[IkeSaStatus]) -> String {
    let mut out = String::new();
    if sas.is_empty() {
        out.push_str("no IKE SAs\n");
        return out;
    }
    for sa in sas {
        ike(&mut out, sa);
    }
    out
}

/// The trap policies as text, after the IKE SAs (empty if there are
/// none), modelled on `swanctl --list-pols`:
///
/// ```text
/// site-b/lan, reqid 1, TUNNEL, ESP, trapped (start_action)
///   local  10.1.0.0/24
///   remote 10.2.0.0/24
/// ```
pub fn format_traps(traps: &[TrapStatus]) -> String {
    let mut out = String::new();
    for t in traps {
        let _ = writeln!(
            out,
            "{}/{}, reqid {}, {}, {}, trapped ({})",
            t.connection, t.child, t.reqid, t.mode, t.protocol, t.reason
        );
        let _ = writeln!(out, "  local  {}", t.local_ts.join(" "));
        let _ = writeln!(out, "  remote {}", t.remote_ts.join(" "));
    }
    out
}

/// The pools and their leases, modelled on `swanctl --list-pools
/// --leases`:
///
/// ```text
/// rw                   10.3.0.1                                 2 / 1 / 254
///   10.3.0.1                                 online   'carol@example.org'
///   10.3.0.2                                 offline  'dave@example.org'
/// ```
pub fn format_pools(pools: &[super::PoolStatus]) -> String {
    let mut out = String::new();
    if pools.is_empty() {
        out.push_str("no pools\n");
    }
    for p in pools {
        let _ = writeln!(
            out,
            "{:<20} {:<40} {} / {} / {}",
            p.name, p.base, p.online, p.offline, p.size
        );
        for l in &p.leases {
            let _ = writeln!(
                out,
                "  {:<40} {:<8} '{}'",
                l.address,
                if l.online { "online" } else { "offline" },
                l.identity
            );
        }
    }
    out
}

fn ike(out: &mut String, sa: &IkeSaStatus) {
    let name = sa.connection.as_deref().unwrap_or("(unknown)");
    let (mi, mr) = if sa.initiator { ("*", "") } else { ("", "*") };
    let _ = writeln!(
        out,
        "{name}: #{}, {}, IKEv2, {}_i{mi} {}_r{mr}",
        sa.id, sa.state, sa.spi_i, sa.spi_r
    );
    let id = |i: &Option<String>| {
        i.as_deref()
            .map_or("%any".to_string(), |s| format!("'{s}'"))
    };
    let nat = |n: bool| if n { " [NAT]" } else { "" };
    // Virtual IPs after the address, as swanctl --list-sas shows them.
    let vips = |v: &[String]| -> String { v.iter().map(|a| format!(" [{a}]")).collect() };
    let _ = writeln!(
        out,
        "  local  {} @ {}{}{}",
        id(&sa.local_id),
        sa.local_addr,
        nat(sa.nat_local),
        vips(&sa.local_vips)
    );
    let _ = writeln!(
        out,
        "  remote {} @ {}{}{}",
        id(&sa.remote_id),
        sa.remote_addr,
        nat(sa.nat_remote),
        vips(&sa.remote_vips)
    );
    if !sa.dns.is_empty() {
        let _ = writeln!(out, "  dns {}", sa.dns.join(" "));
    }
    if let Some(a) = &sa.algorithms {
        let _ = writeln!(out, "  {a}");
    }
    if sa.encap {
        let _ = writeln!(out, "  ESP in UDP (NAT traversal)");
    }
    if sa.mobike {
        let _ = writeln!(out, "  MOBIKE");
    }
    if let Some(s) = sa.established_secs {
        let _ = writeln!(
            out,
            "  established {}{}",
            ago(s),
            timers(sa.rekey_secs, sa.expire_secs)
        );
    }
    for c in &sa.children {
        child(out, c);
    }
}

fn child(out: &mut String, c: &ChildSaStatus) {
    let _ = write!(
        out,
        "  {}: #{}, {}, {}, {}",
        c.name, c.id, c.state, c.mode, c.protocol
    );
    if let Some(a) = &c.algorithms {
        let _ = write!(out, ":{a}");
    }
    out.push('\n');
    if let Some(s) = c.installed_secs {
        let _ = writeln!(
            out,
            "    installed {}{}",
            ago(s),
            timers(c.rekey_secs, c.expire_secs)
        );
    }
    let _ = writeln!(
        out,
        "    in  {}, {} bytes, {} packets",
        c.spi_in,
        count(c.bytes_in),
        count(c.packets_in)
    );
    let _ = writeln!(
        out,
        "    out {}, {} bytes, {} packets",
        c.spi_out,
        count(c.bytes_out),
        count(c.packets_out)
    );
    let _ = writeln!(out, "    local  {}", ts(&c.local_ts));
    let _ = writeln!(out, "    remote {}", ts(&c.remote_ts));
}

fn count(n: Option<u64>) -> String {
    format!("{:>6}", n.map_or("?".to_string(), |n| n.to_string()))
}

fn ts(list: &[String]) -> String {
    if list.is_empty() {
        "-".to_string()
    } else {
        list.join(" ")
    }
}

/// `12s ago`, `3m 4s ago`, `2h 5m ago`, `3d 4h ago`.
fn ago(secs: u64) -> String {
    format!("{} ago", span(secs))
}

fn span(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// `, rekeying in 50m 3s, expires in 56m 3s` (as swanctl --list-sas).
fn timers(rekey: Option<u64>, expire: Option<u64>) -> String {
    let mut out = String::new();
    if let Some(r) = rekey {
        out.push_str(&format!(", rekeying in {}", span(r)));
    }
    if let Some(e) = expire {
        out.push_str(&format!(", expires in {}", span(e)));
    }
    out
}
