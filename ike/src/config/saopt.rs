//! A child's options for its kernel SAs, with strongSwan's meaning
//! (vici_config.c parses them, child_sa.c and kernel_netlink_ipsec.c put
//! them into the kernel): `replay_window`, `copy_df`, `copy_ecn`,
//! `copy_dscp`, `tfc_padding`, `hw_offload`, `ipcomp`; `per_cpu_sas` is
//! refused (not planned yet).

use super::tree::Node;
use super::yaml::{Errors, Fields, Path, scalar};

/// The largest replay window the kernel takes: a bitmap of 128 32-bit
/// words (`XFRMA_REPLAY_ESN_VAL`).
pub const MAX_REPLAY_WINDOW: u32 = 128 * 32;

/// `tfc_padding = mtu`: pad every ESP packet up to the path MTU (the
/// kernel takes the smaller of the two; strongSwan passes -1).
pub const TFC_PAD_MTU: u32 = u32::MAX;

/// `children.<name>`: the options of the Child SA's kernel SAs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ChildSaOpts {
    /// `replay_window`, default 32 (charon's `replay_window` setting):
    /// the inbound SA's anti-replay window in packets, 0 for none. Over
    /// 32, or with ESN, it goes in the kernel's bitmap form.
    pub replay_window: u32,
    /// `copy_df`, default yes: copy the DF bit of the inner IPv4 header
    /// to the outer one; `no` sets `XFRM_STATE_NOPMTUDISC` (the outer
    /// header never has DF).
    pub copy_df: bool,
    /// `copy_ecn`, default yes: copy the ECN bits between inner and outer
    /// header; `no` sets `XFRM_STATE_NOECN`.
    pub copy_ecn: bool,
    /// `copy_dscp`, default `out`.
    pub copy_dscp: CopyDscp,
    /// `tfc_padding`, default 0: pad the outbound ESP packets of a
    /// tunnel-mode SA to this length (RFC 4303 TFC padding);
    /// [`TFC_PAD_MTU`] for `mtu`.
    pub tfc_padding: u32,
    /// `hw_offload`, default `no`.
    pub hw_offload: HwOffload,
    /// `ipcomp`, default no: propose (and accept) IPComp with DEFLATE
    /// (RFC 3173; IPCOMP_SUPPORTED, RFC 7296 2.22).
    pub ipcomp: bool,
}

impl Default for ChildSaOpts {
    /// strongSwan's defaults.
    fn default() -> Self {
        Self {
            replay_window: 32,
            copy_df: true,
            copy_ecn: true,
            copy_dscp: CopyDscp::Out,
            tfc_padding: 0,
            hw_offload: HwOffload::No,
            ipcomp: false,
        }
    }
}

/// `copy_dscp`: which way the DSCP bits are copied between the inner and
/// the outer IP header of tunnel-mode SAs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CopyDscp {
    /// `out` (default): to the outer header when encapsulating, not back
    /// (the kernel's default both ways).
    #[default]
    Out,
    /// `in`: from the outer header when decapsulating
    /// (`XFRM_STATE_DECAP_DSCP` inbound), outbound the outer DSCP is 0
    /// (`XFRM_SA_XFLAG_DONT_ENCAP_DSCP`).
    In,
    /// `yes`: both ways.
    Yes,
    /// `no`: neither (outer DSCP 0).
    No,
}

impl CopyDscp {
    /// Inbound SAs copy the outer DSCP to the inner header.
    pub fn decap(self) -> bool {
        matches!(self, CopyDscp::Yes | CopyDscp::In)
    }

    /// Outbound SAs copy the inner DSCP to the outer header.
    pub fn encap(self) -> bool {
        matches!(self, CopyDscp::Yes | CopyDscp::Out)
    }
}

/// `hw_offload`: whether the kernel is asked to offload the SAs' crypto
/// to the network device (`XFRMA_OFFLOAD_DEV`, the device the route to
/// the peer leaves by).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HwOffload {
    /// `no` (default).
    #[default]
    No,
    /// `auto`: offloaded if the device can, else silently not.
    Auto,
    /// `yes` (or 6.0's `crypto`): crypto offload or the install fails.
    Yes,
}

/// The keys of this module from a child's mapping.
pub(super) fn child_sa_opts(f: &mut Fields<'_>, path: &Path, errors: &mut Errors) -> ChildSaOpts {
    let d = ChildSaOpts::default();
    let mut o = d;
    if let Some((n, p)) = value(f, "replay_window", path, errors) {
        match uint32(n) {
            Some(w) if w <= MAX_REPLAY_WINDOW => o.replay_window = w,
            Some(w) => errors.add(
                n.loc(),
                &p,
                format!(
                    "replay_window {w} is larger than the kernel's maximum of \
                     {MAX_REPLAY_WINDOW} packets"
                ),
            ),
            None => errors.add(
                n.loc(),
                &p,
                format!(
                    "bad replay_window \"{}\" (expected a number of packets)",
                    text(n)
                ),
            ),
        }
    }
    o.copy_df = flag(f, "copy_df", d.copy_df, path, errors);
    o.copy_ecn = flag(f, "copy_ecn", d.copy_ecn, path, errors);
    if let Some((n, p)) = value(f, "copy_dscp", path, errors) {
        match text(n) {
            "out" => o.copy_dscp = CopyDscp::Out,
            "in" => o.copy_dscp = CopyDscp::In,
            "yes" => o.copy_dscp = CopyDscp::Yes,
            "no" => o.copy_dscp = CopyDscp::No,
            s => errors.add(
                n.loc(),
                &p,
                format!("unknown copy_dscp \"{s}\" (expected out, in, yes or no)"),
            ),
        }
    }
    if let Some((n, p)) = value(f, "tfc_padding", path, errors) {
        match text(n) {
            "mtu" => o.tfc_padding = TFC_PAD_MTU,
            s => match uint32(n) {
                Some(v) => o.tfc_padding = v,
                None => errors.add(
                    n.loc(),
                    &p,
                    format!("bad tfc_padding \"{s}\" (expected a length in octets, or mtu)"),
                ),
            },
        }
    }
    if let Some((n, p)) = value(f, "hw_offload", path, errors) {
        match text(n) {
            "no" => o.hw_offload = HwOffload::No,
            "auto" => o.hw_offload = HwOffload::Auto,
            "yes" | "crypto" => o.hw_offload = HwOffload::Yes,
            s @ "packet" => errors.add(
                n.loc(),
                &p,
                format!("hw_offload = {s} (packet offload) is not supported yet"),
            ),
            s => errors.add(
                n.loc(),
                &p,
                format!("unknown hw_offload \"{s}\" (expected no, auto, yes, crypto or packet)"),
            ),
        }
    }
    o.ipcomp = flag(f, "ipcomp", d.ipcomp, path, errors);
    if let Some((n, p)) = value(f, "per_cpu_sas", path, errors) {
        match text(n) {
            s if is_false(s) => {}
            s @ ("yes" | "true" | "enabled" | "1" | "encap") => errors.add(
                n.loc(),
                &p,
                format!(
                    "per_cpu_sas = {s}: per-CPU SAs (RFC 9611) are not planned yet (they need \
                     the kernel's XFRMA_SA_PCPU, Linux 6.13, with ESP; see docs/interop.md)"
                ),
            ),
            s => errors.add(
                n.loc(),
                &p,
                format!("bad value \"{s}\" (expected no, yes or encap)"),
            ),
        }
    }
    o
}

/// A key's scalar value and its path, if present (a non-scalar is
/// reported).
fn value<'n>(
    f: &mut Fields<'n>,
    key: &'static str,
    path: &Path,
    errors: &mut Errors,
) -> Option<(&'n Node, Path)> {
    let (n, _) = f.take(key)?;
    let p = path.join(key);
    scalar(n, &p, errors)?;
    Some((n, p))
}

fn text(n: &Node) -> &str {
    match &n.kind {
        super::tree::Kind::Scalar(s) => s.as_str(),
        _ => "",
    }
}

fn is_false(s: &str) -> bool {
    matches!(s, "no" | "false" | "disabled" | "0")
}

/// A boolean as strongSwan's settings read it; `default` when absent.
fn flag(
    f: &mut Fields<'_>,
    key: &'static str,
    default: bool,
    path: &Path,
    errors: &mut Errors,
) -> bool {
    let Some((n, p)) = value(f, key, path, errors) else {
        return default;
    };
    match text(n) {
        "yes" | "true" | "enabled" | "1" => true,
        s if is_false(s) => false,
        s => {
            errors.add(
                n.loc(),
                &p,
                format!("bad value \"{s}\" (expected yes or no)"),
            );
            default
        }
    }
}

/// An unsigned 32-bit number as strtoul(3) reads it with base 0 (what
/// strongSwan's `parse_uint32` does): `0x` hex, a leading `0` octal, else
/// decimal; nothing else around it.
fn uint32(n: &Node) -> Option<u32> {
    let s = text(n);
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (s.get(1..).unwrap_or(""), 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    use super::*;

    fn child(keys: &str) -> Result<ChildSaOpts, ConfigError> {
        let yaml = format!(
            "connections:\n  c:\n    remote_addrs: [192.0.2.2]\n    local: {{ auth: psk }}\n    \
             remote: {{ auth: psk }}\n    children:\n      lan:\n{keys}        local_ts: [10.1.0.0/24]\n"
        );
        let c = Config::from_yaml_str(&yaml, "t.yaml")?;
        Ok(c.connections()[0].children[0].sa_opts)
    }

    fn error(keys: &str) -> String {
        match child(keys) {
            Ok(o) => panic!("accepted: {o:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_are_strongswans() {
        let o = child("").unwrap();
        assert_eq!(o, ChildSaOpts::default());
        assert_eq!(o.replay_window, 32);
        assert!(o.copy_df && o.copy_ecn && !o.ipcomp);
        assert_eq!(o.copy_dscp, CopyDscp::Out);
        assert_eq!(o.tfc_padding, 0);
        assert_eq!(o.hw_offload, HwOffload::No);
    }

    #[test]
    fn values() {
        let o = child(
            "        replay_window: 1024\n        copy_df: no\n        copy_ecn: false\n        \
             copy_dscp: yes\n        tfc_padding: mtu\n        hw_offload: no\n        \
             ipcomp: yes\n        per_cpu_sas: no\n",
        )
        .unwrap();
        assert_eq!(o.replay_window, 1024);
        assert!(!o.copy_df && !o.copy_ecn && o.ipcomp);
        assert_eq!(o.copy_dscp, CopyDscp::Yes);
        assert_eq!(o.tfc_padding, TFC_PAD_MTU);
        // strtoul base 0, as strongSwan: hex, octal, decimal.
        assert_eq!(
            child("        replay_window: 0x40\n")
                .unwrap()
                .replay_window,
            64
        );
        assert_eq!(
            child("        replay_window: 010\n").unwrap().replay_window,
            8
        );
        assert_eq!(
            child("        replay_window: 0\n").unwrap().replay_window,
            0
        );
        assert_eq!(
            child("        tfc_padding: 1500\n").unwrap().tfc_padding,
            1500
        );
        for (v, h) in [
            ("auto", HwOffload::Auto),
            ("yes", HwOffload::Yes),
            ("crypto", HwOffload::Yes),
            ("no", HwOffload::No),
        ] {
            let o = child(&format!("        hw_offload: {v}\n")).unwrap();
            assert_eq!(o.hw_offload, h, "{v}");
        }
        for (v, d) in [
            ("in", CopyDscp::In),
            ("out", CopyDscp::Out),
            ("no", CopyDscp::No),
        ] {
            let o = child(&format!("        copy_dscp: {v}\n")).unwrap();
            assert_eq!(o.copy_dscp, d);
        }
        assert!(CopyDscp::Yes.decap() && CopyDscp::Yes.encap());
        assert!(CopyDscp::In.decap() && !CopyDscp::In.encap());
        assert!(!CopyDscp::Out.decap() && CopyDscp::Out.encap());
        assert!(!CopyDscp::No.decap() && !CopyDscp::No.encap());
    }

    #[test]
    fn bad_values_are_located() {
        let e = error("        replay_window: 5000\n");
        assert!(
            e.starts_with(
                "t.yaml:8: connections.c.children.lan.replay_window: replay_window 5000 \
                 is larger than the kernel's maximum of 4096"
            ),
            "{e}"
        );
        for (keys, want) in [
            ("        replay_window: 32k\n", "bad replay_window \"32k\""),
            ("        replay_window: 09\n", "bad replay_window \"09\""),
            ("        replay_window: -1\n", "bad replay_window \"-1\""),
            ("        copy_df: maybe\n", "copy_df: bad value \"maybe\""),
            ("        copy_dscp: both\n", "unknown copy_dscp \"both\""),
            ("        tfc_padding: max\n", "bad tfc_padding \"max\""),
            (
                "        hw_offload: always\n",
                "unknown hw_offload \"always\"",
            ),
            (
                "        hw_offload: packet\n",
                "hw_offload = packet (packet offload) is not supported yet",
            ),
            ("        ipcomp: [yes]\n", "ipcomp: expected a string"),
            ("        ipcomp: deflate\n", "ipcomp: bad value \"deflate\""),
        ] {
            let e = error(keys);
            assert!(e.contains(want), "{keys}: {e}");
            assert!(e.starts_with("t.yaml:8: "), "{keys}: {e}");
        }
    }

    #[test]
    fn per_cpu_sas_is_not_planned() {
        for v in ["yes", "encap"] {
            let e = error(&format!("        per_cpu_sas: {v}\n"));
            assert!(
                e.contains("children.lan.per_cpu_sas: per_cpu_sas = ")
                    && e.contains("not planned yet"),
                "{e}"
            );
        }
        assert!(error("        per_cpu_sas: sometimes\n").contains("bad value \"sometimes\""));
    }
}
