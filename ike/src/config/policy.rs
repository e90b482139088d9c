//! Route-based VPNs and the kernel policies of a child: swanctl's
//! `mark_in`, `mark_in_sa`, `mark_out`, `set_mark_in`, `set_mark_out`,
//! `if_id_in`, `if_id_out` (child and connection level), `priority`,
//! `reqid`, `policies`, `policies_fwd_out` and `interface`, read with
//! charon's syntax and defaults (strongSwan's `vici_config.c` and
//! `mark_from_string` / `if_id_from_string`).

use super::yaml::{Errors, Fields, Path, scalar};

/// A mark or interface id value: a number, or `%unique` / `%unique-dir`
/// (allocated when a Child SA is set up: one value for both directions,
/// or one per direction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdValue {
    /// This number.
    Fixed(u32),
    /// `%unique`: a new value per Child SA (per IKE SA at connection
    /// level), the same for in and out.
    Unique,
    /// `%unique-dir`: a new value per direction.
    UniqueDir,
}

/// `mark_in` / `mark_out`: the firewall mark (`value/mask`) the kernel
/// matches against packets for the policies (and SAs) of that direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MarkCfg {
    /// The value; a fixed one is already masked (as charon does).
    pub value: IdValue,
    /// The mask, default `0xffffffff`.
    pub mask: u32,
}

/// `set_mark_in` / `set_mark_out`: the mark the SA puts on the packets it
/// processes (`XFRMA_SET_MARK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SetMarkCfg {
    /// The value; `None`: `%same`, the value of the direction's
    /// `mark_in` / `mark_out` (resolved, so `%unique` too).
    pub value: Option<u32>,
    /// The mask, default `0xffffffff`.
    pub mask: u32,
}

/// The policy keys of a child (`Child::policy`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ChildPolicy {
    /// `mark_in`: inbound policies (in, fwd) match it; the inbound SA too
    /// with `mark_in_sa`. `None`: no mark (charon's `0/0`).
    pub mark_in: Option<MarkCfg>,
    /// `mark_in_sa`, default no: put `mark_in` on the inbound SA as well.
    pub mark_in_sa: bool,
    /// `mark_out`: the outbound policies and the outbound SA match it.
    pub mark_out: Option<MarkCfg>,
    /// `set_mark_in`: the mark the inbound SA sets on decrypted packets.
    pub set_mark_in: Option<SetMarkCfg>,
    /// `set_mark_out`: the mark the outbound SA sets on ESP packets.
    pub set_mark_out: Option<SetMarkCfg>,
    /// `if_id_in`: the XFRM interface id of the inbound SA and policies;
    /// `None` (or 0): the connection's.
    pub if_id_in: Option<IdValue>,
    /// `if_id_out`: the same for the outbound direction.
    pub if_id_out: Option<IdValue>,
    /// `priority`: a fixed policy priority; 0 (default): computed from
    /// the selectors as charon does.
    pub priority: u32,
    /// `reqid`: a fixed reqid; 0 (default): allocated.
    pub reqid: u32,
    /// `policies`, default yes: no: install the SAs only (route-based VPNs
    /// whose policies come from elsewhere).
    pub policies: bool,
    /// `policies_fwd_out`, default no: also an outbound fwd policy (for
    /// forwarded traffic that a drop policy would otherwise catch).
    pub policies_fwd_out: bool,
    /// `interface`: restricts the outbound policies (and the outbound SA's
    /// selector) to traffic leaving through this network interface.
    pub interface: Option<String>,
}

impl Default for ChildPolicy {
    fn default() -> Self {
        Self {
            mark_in: None,
            mark_in_sa: false,
            mark_out: None,
            set_mark_in: None,
            set_mark_out: None,
            if_id_in: None,
            if_id_out: None,
            priority: 0,
            reqid: 0,
            policies: true,
            policies_fwd_out: false,
            interface: None,
        }
    }
}

/// The connection-level policy keys (`Connection::policy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ConnPolicy {
    /// `if_id_in`: the default of the children's `if_id_in`; `%unique`
    /// here is one value per IKE SA, shared by its Child SAs.
    pub if_id_in: Option<IdValue>,
    /// `if_id_out`: the same for `if_id_out`.
    pub if_id_out: Option<IdValue>,
    /// Whether the connection has only shunts (`mode = pass | drop`) and
    /// no `local`/`remote` rounds: it is never negotiated.
    pub shunts_only: bool,
}

/// A number as C's `strtoul(s, _, 0)` reads it (`0x` hex, a leading `0`
/// octal, else decimal), the whole string, within 32 bits.
fn c_number(s: &str) -> Option<u32> {
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1
        && let Some(o) = s.strip_prefix('0')
    {
        (o, 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

/// Splits a leading `%unique` / `%unique-dir` (any case) off `s`.
fn unique_prefix(s: &str) -> Option<(IdValue, &str)> {
    let head = s.get(..7)?;
    if !head.eq_ignore_ascii_case("%unique") {
        return None;
    }
    let rest = s.get(7..)?;
    match rest.get(..4) {
        Some(d) if d.eq_ignore_ascii_case("-dir") => Some((IdValue::UniqueDir, rest.get(4..)?)),
        _ => Some((IdValue::Unique, rest)),
    }
}

/// `mark_in` / `mark_out`: `value[/mask]`, value a number, `%unique` or
/// `%unique-dir`; a fixed value is masked.
pub(crate) fn parse_mark(s: &str) -> Result<MarkCfg, String> {
    let bad = || {
        format!(
            "bad mark \"{s}\" (expected value[/mask], the value a number, %unique or %unique-dir)"
        )
    };
    let (v, mask) = match s.split_once('/') {
        Some((v, m)) => (v, c_number(m).ok_or_else(bad)?),
        None => (s, u32::MAX),
    };
    let value = match unique_prefix(v) {
        Some((u, "")) => u,
        Some(_) => return Err(bad()),
        None => IdValue::Fixed(c_number(v).ok_or_else(bad)? & mask),
    };
    Ok(MarkCfg { value, mask })
}

/// `set_mark_in` / `set_mark_out`: `value[/mask]`, value a number or
/// `%same`; a fixed value is masked.
pub(crate) fn parse_set_mark(s: &str) -> Result<SetMarkCfg, String> {
    let bad = || format!("bad mark \"{s}\" (expected value[/mask], the value a number or %same)");
    let (v, mask) = match s.split_once('/') {
        Some((v, m)) => (v, Some(m)),
        None => (s, None),
    };
    let mask = match mask {
        Some(m) => c_number(m).ok_or_else(bad)?,
        None => u32::MAX,
    };
    let value = if v.eq_ignore_ascii_case("%same") {
        None
    } else if v.len() >= 7
        && v.get(..7)
            .is_some_and(|h| h.eq_ignore_ascii_case("%unique"))
    {
        return Err(format!(
            "bad mark \"{s}\": %unique is for mark_in/mark_out; set_mark takes a number or %same"
        ));
    } else {
        Some(c_number(v).ok_or_else(bad)? & mask)
    };
    Ok(SetMarkCfg { value, mask })
}

/// `if_id_in` / `if_id_out`: a number, `%unique` or `%unique-dir`; 0 is
/// none (`None`).
pub(crate) fn parse_if_id(s: &str) -> Result<Option<IdValue>, String> {
    let bad = || format!("bad interface id \"{s}\" (expected a number, %unique or %unique-dir)");
    match unique_prefix(s) {
        Some((v, "")) => Ok(Some(v)),
        Some(_) => Err(bad()),
        None => match c_number(s).ok_or_else(bad)? {
            0 => Ok(None),
            v => Ok(Some(IdValue::Fixed(v))),
        },
    }
}

/// A 32-bit number key (`priority`, `reqid`).
fn number(f: &mut Fields<'_>, key: &'static str, path: &Path, errors: &mut Errors) -> u32 {
    let Some((node, _)) = f.take(key) else {
        return 0;
    };
    let p = path.join(key);
    let Some(s) = scalar(node, &p, errors) else {
        return 0;
    };
    match c_number(s) {
        Some(v) => v,
        None => {
            errors.add(
                node.loc(),
                &p,
                format!("bad {key} \"{s}\" (expected a number from 0 to 4294967295)"),
            );
            0
        }
    }
}

/// Takes a key parsed by `parse`, reporting its error at the value.
fn value<T>(
    f: &mut Fields<'_>,
    key: &'static str,
    path: &Path,
    errors: &mut Errors,
    parse: fn(&str) -> Result<T, String>,
) -> Option<T> {
    let (node, _) = f.take(key)?;
    let p = path.join(key);
    let s = scalar(node, &p, errors)?;
    match parse(s) {
        Ok(v) => Some(v),
        Err(e) => {
            errors.add(node.loc(), &p, e);
            None
        }
    }
}

/// Reads a child's policy keys from `f`.
pub(super) fn child_policy(f: &mut Fields<'_>, path: &Path, errors: &mut Errors) -> ChildPolicy {
    let boolean = |f: &mut Fields<'_>, key: &'static str, errors: &mut Errors| {
        f.take(key)
            .map(|v| super::build::boolean(Some(v), &path.join(key), errors))
    };
    let mut out = ChildPolicy {
        mark_in: value(f, "mark_in", path, errors, parse_mark),
        mark_in_sa: boolean(f, "mark_in_sa", errors).unwrap_or(false),
        mark_out: value(f, "mark_out", path, errors, parse_mark),
        set_mark_in: value(f, "set_mark_in", path, errors, parse_set_mark),
        set_mark_out: value(f, "set_mark_out", path, errors, parse_set_mark),
        if_id_in: value(f, "if_id_in", path, errors, parse_if_id).flatten(),
        if_id_out: value(f, "if_id_out", path, errors, parse_if_id).flatten(),
        priority: number(f, "priority", path, errors),
        reqid: number(f, "reqid", path, errors),
        policies: boolean(f, "policies", errors).unwrap_or(true),
        policies_fwd_out: boolean(f, "policies_fwd_out", errors).unwrap_or(false),
        interface: None,
    };
    if let Some((node, _)) = f.take("interface") {
        let p = path.join("interface");
        if let Some(s) = scalar(node, &p, errors) {
            // IFNAMSIZ: 15 octets and the terminating zero.
            if s.is_empty() || s.len() > 15 || s.contains(['/', ' ']) {
                errors.add(
                    node.loc(),
                    &p,
                    format!("bad interface name \"{s}\" (1 to 15 characters, no / or space)"),
                );
            } else {
                out.interface = Some(s.to_owned());
            }
        }
    }
    out
}

/// Reads a connection's policy keys from `f`.
pub(super) fn conn_policy(f: &mut Fields<'_>, path: &Path, errors: &mut Errors) -> ConnPolicy {
    ConnPolicy {
        if_id_in: value(f, "if_id_in", path, errors, parse_if_id).flatten(),
        if_id_out: value(f, "if_id_out", path, errors, parse_if_id).flatten(),
        shunts_only: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_as_charon_reads_them() {
        let m = |s| parse_mark(s).unwrap();
        assert_eq!(
            m("42"),
            MarkCfg {
                value: IdValue::Fixed(42),
                mask: u32::MAX
            }
        );
        assert_eq!(
            m("0x12/0xff"),
            MarkCfg {
                value: IdValue::Fixed(0x12),
                mask: 0xff
            }
        );
        // The value is masked; octal as strtoul.
        assert_eq!(
            m("0x1234/0xff"),
            MarkCfg {
                value: IdValue::Fixed(0x34),
                mask: 0xff
            }
        );
        assert_eq!(m("010").value, IdValue::Fixed(8));
        assert_eq!(m("0").value, IdValue::Fixed(0));
        assert_eq!(
            m("%unique"),
            MarkCfg {
                value: IdValue::Unique,
                mask: u32::MAX
            }
        );
        assert_eq!(
            m("%UNIQUE-dir/0xffff"),
            MarkCfg {
                value: IdValue::UniqueDir,
                mask: 0xffff
            }
        );
        for bad in [
            "",
            "x",
            "1/",
            "/1",
            "%uniquex",
            "%unique/",
            "%same",
            "4294967296",
            "1/2/3",
            "-1",
            "08",
            "0x",
        ] {
            assert!(parse_mark(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn set_marks_as_charon_reads_them() {
        assert_eq!(
            parse_set_mark("%same").unwrap(),
            SetMarkCfg {
                value: None,
                mask: u32::MAX
            }
        );
        assert_eq!(
            parse_set_mark("%same/0xff00").unwrap(),
            SetMarkCfg {
                value: None,
                mask: 0xff00
            }
        );
        assert_eq!(
            parse_set_mark("0x1234/0xff").unwrap(),
            SetMarkCfg {
                value: Some(0x34),
                mask: 0xff
            }
        );
        let e = parse_set_mark("%unique").unwrap_err();
        assert!(e.contains("%same"), "{e}");
        assert!(parse_set_mark("%samex").is_err());
        assert!(parse_set_mark("1/x").is_err());
    }

    #[test]
    fn interface_ids_as_charon_reads_them() {
        assert_eq!(parse_if_id("7").unwrap(), Some(IdValue::Fixed(7)));
        assert_eq!(parse_if_id("0x10").unwrap(), Some(IdValue::Fixed(16)));
        assert_eq!(parse_if_id("0").unwrap(), None);
        assert_eq!(parse_if_id("%unique").unwrap(), Some(IdValue::Unique));
        assert_eq!(
            parse_if_id("%unique-dir").unwrap(),
            Some(IdValue::UniqueDir)
        );
        for bad in ["%unique/1", "1/2", "x", "", "%unique-dirx"] {
            assert!(parse_if_id(bad).is_err(), "{bad}");
        }
    }

    fn issues(child: &str, conn: &str) -> Vec<String> {
        let yaml = format!(
            "connections:\n  c:\n    remote_addrs: [192.0.2.2]\n{conn}    local: {{ auth: psk }}\n    \
             remote: {{ auth: psk }}\n    children:\n      k:\n{child}"
        );
        match crate::config::Config::from_yaml_str(&yaml, "t.yaml") {
            Ok(_) => Vec::new(),
            Err(e) => e.issues.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn bad_values_are_located() {
        let e = issues(
            "        mark_in: 1/x\n        set_mark_out: '%unique'\n        if_id_in: '%uniq'\n        \
             priority: -1\n        reqid: 0x100000000\n        policies: maybe\n        \
             interface: eth0/1\n",
            "    if_id_out: 1x\n",
        );
        let want = [
            "t.yaml:4: connections.c.if_id_out: bad interface id \"1x\"",
            "t.yaml:9: connections.c.children.k.mark_in: bad mark \"1/x\"",
            "t.yaml:10: connections.c.children.k.set_mark_out: bad mark \"%unique\": %unique is for",
            "t.yaml:11: connections.c.children.k.if_id_in: bad interface id \"%uniq\"",
            "t.yaml:12: connections.c.children.k.priority: bad priority \"-1\"",
            "t.yaml:13: connections.c.children.k.reqid: bad reqid \"0x100000000\"",
            "t.yaml:14: connections.c.children.k.policies: bad value \"maybe\"",
            "t.yaml:15: connections.c.children.k.interface: bad interface name \"eth0/1\"",
        ];
        for w in want {
            assert!(e.iter().any(|i| i.starts_with(w)), "{w} not in {e:#?}");
        }
    }

    #[test]
    fn shunts_need_trap_fixed_marks_and_no_authentication() {
        let shunt = |extra: &str| {
            format!(
                "connections:\n  s:\n    children:\n      p:\n        mode: pass\n        \
                 local_ts: [0.0.0.0/0]\n        remote_ts: ['0.0.0.0/0[tcp/22]']\n{extra}"
            )
        };
        let c = crate::config::Config::from_yaml_str(
            &shunt("        start_action: trap\n        priority: 2\n"),
            "t.yaml",
        )
        .unwrap();
        let conn = &c.connections()[0];
        assert!(conn.policy.shunts_only);
        assert_eq!(conn.children[0].mode, crate::config::Mode::Pass);
        assert_eq!(conn.children[0].policy.priority, 2);
        let e = |text: &str| {
            crate::config::Config::from_yaml_str(text, "t.yaml")
                .unwrap_err()
                .to_string()
        };
        assert!(e(&shunt("")).contains(
            "t.yaml:4: connections.s.children.p.mode: a pass shunt is installed with \
             start_action = trap (as charon does); set it"
        ));
        assert!(
            e(&shunt(
                "        start_action: trap\n        mark_out: '%unique'\n"
            ))
            .contains("t.yaml:4: connections.s.children.p: a shunt's marks are fixed"),
        );
        // Beside a child that is negotiated, the rounds are needed.
        let mixed = shunt("        start_action: trap\n      t: {}\n");
        assert!(
            e(&mixed).contains("connections.s.local: missing"),
            "{}",
            e(&mixed)
        );
        // drop too.
        let d = crate::config::Config::from_yaml_str(
            &shunt("        start_action: trap\n").replace("mode: pass", "mode: drop"),
            "t.yaml",
        )
        .unwrap();
        assert_eq!(
            d.connections()[0].children[0].mode,
            crate::config::Mode::Drop
        );
    }
}
