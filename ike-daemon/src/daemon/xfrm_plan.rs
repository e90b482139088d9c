//! What a Child SA (or a trap) puts into the kernel's XFRM: pure planning,
//! no I/O and no async runtime, so it is unit-tested as plain functions
//! (tests below). The kernel bridge (`super::kernel`) carries the plans
//! out and records what it installed.
//!
//! Mapping of one [`ChildInstall`] (see [`plan_install`]):
//! - inbound SA: `remote → local`, SPI `spi_in`, keys `*_in`, replay
//!   window and ESN; filled into the larval SA of ALLOCSPI (`UPDSA`);
//! - outbound SA: `local → remote`, SPI `spi_out`, keys `*_out`;
//! - for each pair of one local and one remote selector of the same
//!   family (each address range split into prefixes): policy `out`
//!   (local → remote), `in` (remote → local) and, in tunnel mode, `fwd`
//!   (remote → local), each with one template of the child's protocol and
//!   mode, the tunnel endpoints in tunnel mode, and the child's reqid
//!   ([`PolicyPlan`]);
//! - everything carries xfrm-netlink's owner tag (the handle adds it).
//!
//! A move to new addresses (a NAT mapping changed) is planned from what
//! the SAs and policies were made from ([`SaSource`], [`PolicySource`]):
//! [`moved_sa`], [`moved_policies`]. The removal of a rekeyed Child SA
//! keeps its inbound SAs for a while ([`split_removal`]).
//!
//! A trap (`start_action: trap`) is a Child SA's policies without SAs
//! ([`plan_trap`]), with its routes ([`trap_route_child`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tracing::warn;
use xfrm_netlink::{
    AeadAlg, AesKey, CipherAlg, CompAlg, Direction, Family, Icv, IntegrityAlg, IpPrefix, Key,
    Lifetimes, Limits, Offload, PolicyAction, PolicyConfig, PortMatch, Protocol, SaConfig, SaId,
    SaOptions, Selector, Template, Transforms, UdpEncap,
};

use ike::config::HwOffload;
use ike::crypto::Secret;
use ike::crypto::proposal::keywords::private::AUTH_HMAC_SHA2_256_96;
use ike::crypto::suite::ChildSuite;
use ike::sa::{
    AddrSpec, ChildCfg, ChildInstall, ChildSaOpts, ChildUpdate, IpcompCpis, KernelLimits,
    KernelPolicy, MarkPair, Mode, PeerCfg, TsCfg,
};
use ike::wire::codes::{EncrId, IntegId, ProtocolId};
use ike::wire::{AddressRange, TrafficSelector};

/// charon's policy priority base (`PRIO_BASE`): pass shunts start at it,
/// IPsec and trap policies at twice it, drop shunts at three times it,
/// and more specific selectors get lower (stronger) values.
const PRIORITY_BASE: u32 = 200_000;

/// The class of a policy, for its automatic priority (charon's
/// `policy_priority_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrioClass {
    /// A pass shunt: before everything else.
    Pass,
    /// An installed Child SA's policy.
    Ipsec,
    /// A trap's policy: just after an installed Child SA's with the same
    /// selectors.
    Routed,
    /// A drop shunt: after everything else.
    Drop,
}

/// The kernel lifetimes of a Child SA's SAs, as charon installs them: soft
/// and hard limits of time since the SA was added, bytes and packets (no
/// limits of time since first use).
pub fn lifetimes(l: &KernelLimits) -> Lifetimes {
    Lifetimes {
        soft: Limits {
            bytes: l.soft_bytes,
            packets: l.soft_packets,
            add_seconds: l.soft_secs,
            use_seconds: None,
        },
        hard: Limits {
            bytes: l.hard_bytes,
            packets: l.hard_packets,
            add_seconds: l.hard_secs,
            use_seconds: None,
        },
    }
}

/// What one Child SA puts into the kernel.
#[derive(Debug, Clone)]
pub struct InstallPlan {
    /// The inbound SA.
    pub sa_in: SaConfig,
    /// The outbound SA.
    pub sa_out: SaConfig,
    /// With IPComp, the inbound and the outbound IPComp SA.
    pub comp: Option<(SaConfig, SaConfig)>,
    /// What the ESP/AH SAs' offload requests mean (`hw_offload`).
    pub hw_offload: HwOffload,
    /// The policies, out / in / fwd for each selector pair.
    pub policies: Vec<PolicyConfig>,
}

pub fn protocol(p: ProtocolId) -> Result<Protocol, String> {
    match p {
        ProtocolId::ESP => Ok(Protocol::Esp),
        ProtocolId::AH => Ok(Protocol::Ah),
        other => Err(format!("cannot install a Child SA of protocol {other}")),
    }
}

fn xmode(m: Mode) -> Result<xfrm_netlink::Mode, String> {
    match m {
        Mode::Tunnel => Ok(xfrm_netlink::Mode::Tunnel),
        Mode::Transport => Ok(xfrm_netlink::Mode::Transport),
        Mode::Pass | Mode::Drop => Err(format!("a {m} shunt has no SAs or templates")),
    }
}

fn integrity(i: IntegId) -> Result<IntegrityAlg, String> {
    match i {
        IntegId::HMAC_MD5_96 => Ok(IntegrityAlg::HmacMd5_96),
        IntegId::HMAC_MD5_128 => Ok(IntegrityAlg::HmacMd5_128),
        IntegId::HMAC_SHA1_96 => Ok(IntegrityAlg::HmacSha1_96),
        IntegId::HMAC_SHA1_160 => Ok(IntegrityAlg::HmacSha1_160),
        IntegId(AUTH_HMAC_SHA2_256_96) => Ok(IntegrityAlg::HmacSha256_96),
        IntegId::HMAC_SHA2_256_128 => Ok(IntegrityAlg::HmacSha256_128),
        IntegId::HMAC_SHA2_384_192 => Ok(IntegrityAlg::HmacSha384_192),
        IntegId::HMAC_SHA2_512_256 => Ok(IntegrityAlg::HmacSha512_256),
        IntegId::AES_XCBC_96 => Ok(IntegrityAlg::AesXcbc96),
        IntegId::AES_CMAC_96 => Ok(IntegrityAlg::AesCmac96),
        other => Err(format!(
            "integrity algorithm {other} is not supported by iked's kernel bridge"
        )),
    }
}

/// The ESP AEAD of an encryption transform, if it is one the kernel
/// bridge knows.
fn aead(encr: EncrId, bits: Option<u16>) -> Option<Result<AeadAlg, String>> {
    let aes = |make: fn(AesKey) -> AeadAlg| {
        Some(
            bits.and_then(AesKey::from_bits)
                .map(make)
                .ok_or_else(|| format!("{encr} with a {bits:?}-bit key is not supported")),
        )
    };
    match encr {
        EncrId::AES_GCM_8 => aes(|k| AeadAlg::AesGcm(k, Icv::Icv8)),
        EncrId::AES_GCM_12 => aes(|k| AeadAlg::AesGcm(k, Icv::Icv12)),
        EncrId::AES_GCM_16 => aes(|k| AeadAlg::AesGcm(k, Icv::Icv16)),
        EncrId::AES_CCM_8 => aes(|k| AeadAlg::AesCcm(k, Icv::Icv8)),
        EncrId::AES_CCM_12 => aes(|k| AeadAlg::AesCcm(k, Icv::Icv12)),
        EncrId::AES_CCM_16 => aes(|k| AeadAlg::AesCcm(k, Icv::Icv16)),
        EncrId::NULL_AUTH_AES_GMAC => aes(AeadAlg::AesGmac),
        EncrId::CHACHA20_POLY1305 => Some(Ok(AeadAlg::ChaCha20Poly1305)),
        _ => None,
    }
}

/// The ESP cipher (used with an integrity algorithm) of an encryption
/// transform.
fn cipher(encr: EncrId, bits: Option<u16>) -> Result<CipherAlg, String> {
    let aes = |make: fn(AesKey) -> CipherAlg| {
        bits.and_then(AesKey::from_bits)
            .map(make)
            .ok_or_else(|| format!("{encr} with a {bits:?}-bit key is not supported"))
    };
    match encr {
        EncrId::AES_CBC => aes(CipherAlg::AesCbc),
        EncrId::AES_CTR => aes(CipherAlg::AesCtr),
        EncrId::TRIPLE_DES => Ok(CipherAlg::TripleDesCbc),
        EncrId::NULL => Ok(CipherAlg::Null),
        other => Err(format!(
            "encryption algorithm {other} is not supported by iked's kernel bridge"
        )),
    }
}

/// The kernel transforms of a suite with one direction's keys.
pub fn transforms(
    suite: &ChildSuite,
    encr_key: &[u8],
    integ_key: &[u8],
) -> Result<Transforms, String> {
    let integ = suite.integ.filter(|i| *i != IntegId::NONE);
    match (suite.protocol, suite.encr, integ) {
        (ProtocolId::ESP, Some((encr, bits)), integ) => match (aead(encr, bits), integ) {
            (Some(alg), None) => Ok(Transforms::Aead {
                alg: alg?,
                key: Key::from_slice(encr_key),
            }),
            (Some(_), Some(i)) => Err(format!("integrity {i} with the combined-mode {encr}")),
            (None, Some(i)) => Ok(Transforms::CipherIntegrity {
                cipher: cipher(encr, bits)?,
                cipher_key: Key::from_slice(encr_key),
                integrity: integrity(i)?,
                integrity_key: Key::from_slice(integ_key),
            }),
            (None, None) => Err(format!("{encr} without an integrity algorithm")),
        },
        (ProtocolId::AH, None, Some(i)) => Ok(Transforms::IntegrityOnly {
            integrity: integrity(i)?,
            integrity_key: Key::from_slice(integ_key),
        }),
        (_, encr, integ) => Err(format!(
            "no kernel mapping for encryption {encr:?} with integrity {integ:?}"
        )),
    }
}

/// The smallest list of prefixes covering exactly `start..=end`.
pub fn range_to_prefixes(start: IpAddr, end: IpAddr) -> Vec<IpPrefix> {
    let (bits, s, e, v4) = match (start, end) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (
            32u32,
            u128::from(u32::from(a)),
            u128::from(u32::from(b)),
            true,
        ),
        (IpAddr::V6(a), IpAddr::V6(b)) => (128u32, u128::from(a), u128::from(b), false),
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    if s > e {
        return out;
    }
    // The offset of a block's last address from its first: 2^k - 1 (all
    // ones from k = 128 on).
    let span = |k: u32| {
        1u128
            .checked_shl(k)
            .map_or(u128::MAX, |n| n.saturating_sub(1))
    };
    let mut cur = s;
    loop {
        // The largest block aligned at `cur` that ends at or before `e`.
        let mut k = if cur == 0 {
            bits
        } else {
            cur.trailing_zeros().min(bits)
        };
        while k > 0 {
            // `cur <= e` holds, so a block of one address always fits.
            if cur.checked_add(span(k)).is_some_and(|last| last <= e) {
                break;
            }
            k = k.saturating_sub(1);
        }
        let addr = if v4 {
            IpAddr::V4(u32::try_from(cur).unwrap_or(0).into())
        } else {
            IpAddr::V6(cur.into())
        };
        if let Ok(p) = IpPrefix::new(addr, u8::try_from(bits.saturating_sub(k)).unwrap_or(0)) {
            out.push(p);
        }
        if k >= 128 {
            break;
        }
        // No overflow: the block fit, so `cur + span(k) <= e`.
        let last = cur.saturating_add(span(k));
        match last.checked_add(1) {
            Some(next) if last < e => cur = next,
            _ => break,
        }
    }
    out
}

/// A port range as a kernel port match, as charon's `ts2ports` makes it:
/// one port exactly, otherwise the smallest covering block (the bits
/// `start` and `end` share, from the top). A range that is not one aligned
/// block widens to that block (`1000-2000` to `0-2047`), reported by the
/// `bool`; the full range and OPAQUE (`65535-0`) are any port.
fn port_match(start: u16, end: u16) -> (PortMatch, bool) {
    if start == end {
        return (PortMatch::exact(start), false);
    }
    // Ones over the leading bits both ends share.
    let mask = !(u16::MAX
        .checked_shr((start ^ end).leading_zeros())
        .unwrap_or(0));
    let port = start & mask;
    let covers = (u32::from(port), u32::from(port | !mask));
    (
        PortMatch { port, mask },
        start <= end && covers != (u32::from(start), u32::from(end)),
    )
}

/// One selector's parts: (start, end, protocol, start port, end port).
pub fn ts_parts(ts: &TrafficSelector) -> Option<(IpAddr, IpAddr, u8, u16, u16)> {
    match ts {
        TrafficSelector::Ipv4(r) => Some((
            r.start.into(),
            r.end.into(),
            r.ip_protocol,
            r.start_port,
            r.end_port,
        )),
        TrafficSelector::Ipv6(r) => Some((
            r.start.into(),
            r.end.into(),
            r.ip_protocol,
            r.start_port,
            r.end_port,
        )),
        TrafficSelector::Unknown { .. } => None,
    }
}

const ICMP: u8 = 1;
const ICMPV6: u8 = 58;

/// The selectors of traffic from `src` to `dst` (each range split into
/// prefixes). ICMP type/code ranges (RFC 4301: type in the high octet)
/// go to the kernel's source port (type) and destination port (code).
fn selectors(src: &TrafficSelector, dst: &TrafficSelector) -> Result<Vec<Selector>, String> {
    let (Some(s), Some(d)) = (ts_parts(src), ts_parts(dst)) else {
        return Ok(Vec::new());
    };
    if s.0.is_ipv4() != d.0.is_ipv4() {
        return Ok(Vec::new());
    }
    let proto = match (s.2, d.2) {
        (0, p) | (p, 0) => p,
        (a, b) if a == b => a,
        _ => return Ok(Vec::new()),
    };
    let (sport, dport) = if proto == ICMP || proto == ICMPV6 {
        // The type/code range of whichever side restricts it.
        let (a, b) = if (s.3, s.4) == (0, u16::MAX) {
            (d.3, d.4)
        } else {
            (s.3, s.4)
        };
        let (t0, t1, c0, c1) = (a >> 8, b >> 8, a & 0xff, b & 0xff);
        let t = if t0 == t1 {
            PortMatch::exact(t0)
        } else {
            PortMatch::ANY
        };
        // Code 0 is any code, as charon installs it: strongSwan writes
        // `[icmp/3]` for type 3 code 0 and means every code of type 3.
        let c = if t0 == t1 && c0 == c1 && c0 != 0 {
            PortMatch::exact(c0)
        } else {
            PortMatch::ANY
        };
        (t, c)
    } else {
        let (sp, w1) = port_match(s.3, s.4);
        let (dp, w2) = port_match(d.3, d.4);
        if w1 || w2 {
            warn!(
                "port range of {} / {} is not a kernel port mask; the policy covers the smallest block around it",
                ike::display::ts_text(src),
                ike::display::ts_text(dst)
            );
        }
        (sp, dp)
    };
    let mut out = Vec::new();
    for sp in range_to_prefixes(s.0, s.1) {
        for dp in range_to_prefixes(d.0, d.1) {
            let mut sel = Selector::new(sp, dp).map_err(|e| e.to_string())?;
            if proto != 0 {
                sel = sel.with_proto(proto);
            }
            sel.src_port = sport;
            sel.dst_port = dport;
            out.push(sel);
        }
    }
    Ok(out)
}

/// A policy's priority as charon computes it (`get_priority` of its
/// kernel-netlink plugin): the class's base, minus 512 per prefix bit of
/// both addresses, 256 for a protocol, 4 per leading one bit of each port
/// mask, 2 for a restriction to an interface, and 1 for all but trap
/// policies. A configured `priority` (non-zero) replaces it.
pub fn priority(sel: &Selector, class: PrioClass, manual: u32) -> u32 {
    if manual != 0 {
        return manual;
    }
    let base = match class {
        PrioClass::Pass => PRIORITY_BASE,
        PrioClass::Ipsec | PrioClass::Routed => 2 * PRIORITY_BASE,
        PrioClass::Drop => 3 * PRIORITY_BASE,
    };
    let bits = |m: u16| m.leading_ones();
    // At most 512 * 256 + 256 + 4 * 32 + 2 + 1 below the smallest base:
    // nothing saturates.
    let prefix_bits =
        u32::from(sel.src.prefix_len()).saturating_add(u32::from(sel.dst.prefix_len()));
    let port_bits = bits(sel.src_port.mask).saturating_add(bits(sel.dst_port.mask));
    base.saturating_sub(prefix_bits.saturating_mul(512))
        .saturating_sub(if sel.proto.is_some() { 256 } else { 0 })
        .saturating_sub(port_bits.saturating_mul(4))
        .saturating_sub(if sel.ifindex.is_some() { 2 } else { 0 })
        .saturating_sub(u32::from(class != PrioClass::Routed))
}

fn xmark(m: MarkPair) -> xfrm_netlink::Mark {
    xfrm_netlink::Mark {
        value: m.value,
        mask: m.mask,
    }
}

/// A policy with a direction's mark and interface id.
fn marked(mut p: PolicyConfig, mark: Option<MarkPair>, if_id: u32) -> PolicyConfig {
    p.mark = mark.map(xmark);
    p.if_id = (if_id != 0).then_some(if_id);
    p
}

/// What the policies of a Child SA or a trap are planned from.
#[derive(Debug, Clone, Copy)]
pub struct PolicyPlan<'a> {
    /// Tunnel or transport: the templates' mode, and whether there are
    /// `fwd` policies.
    pub mode: Mode,
    /// The templates' protocol.
    pub proto: Protocol,
    /// The outer addresses: the tunnel endpoints of tunnel-mode templates.
    pub local: IpAddr,
    /// See `local`.
    pub remote: IpAddr,
    /// The selectors, one policy set per pair of the same family.
    pub local_ts: &'a [TrafficSelector],
    /// See `local_ts`.
    pub remote_ts: &'a [TrafficSelector],
    /// The templates' reqid (shared by a Child SA and its rekeyed ones).
    pub reqid: u32,
    /// Marks, interface ids, fixed priority, which policies.
    pub kernel: &'a KernelPolicy,
    /// The index of `kernel.interface` (resolved by the caller).
    pub ifindex: Option<i32>,
    /// A trap's policies (charon's routed priority) rather than an
    /// installed Child SA's.
    pub routed: bool,
}

/// The policies of a Child SA (or trap) between `p.local` and `p.remote`:
/// none with `policies = no`; out (with `mark_out`, `if_id_out`, bound
/// to `interface`), in and in tunnel mode fwd (with `mark_in`,
/// `if_id_in`), and with `policies_fwd_out` in tunnel mode an outbound
/// fwd policy like the out one, its template without reqid and at a trap's
/// priority (charon's, so it lets forwarded traffic pass a drop policy
/// without taking another tunnel's SA).
pub fn plan_policies(p: &PolicyPlan<'_>) -> Result<Vec<PolicyConfig>, String> {
    let PolicyPlan {
        mode,
        proto,
        local,
        remote,
        local_ts,
        remote_ts,
        reqid,
        kernel: k,
        ifindex,
        routed,
    } = *p;
    if !k.policies {
        return Ok(Vec::new());
    }
    let class = if routed {
        PrioClass::Routed
    } else {
        PrioClass::Ipsec
    };
    let prio = |sel: &Selector, class| priority(sel, class, k.priority);
    let mut out = Vec::new();
    xmode(mode)?;
    let tmpl = |src: IpAddr, dst: IpAddr| match mode {
        Mode::Tunnel => Template::tunnel(proto, reqid, src, dst),
        _ => Template::transport(proto, reqid),
    };
    for l in local_ts {
        for r in remote_ts {
            for mut sel in selectors(l, r)? {
                sel.ifindex = ifindex;
                out.push(marked(
                    PolicyConfig::new(sel, Direction::Out)
                        .priority(prio(&sel, class))
                        .template(tmpl(local, remote)),
                    k.mark_out,
                    k.if_id_out,
                ));
                if mode == Mode::Tunnel && k.fwd_out {
                    let mut t = tmpl(local, remote);
                    t.reqid = 0;
                    let fwd_class = if class == PrioClass::Ipsec {
                        PrioClass::Routed
                    } else {
                        class
                    };
                    out.push(marked(
                        PolicyConfig::new(sel, Direction::Fwd)
                            .priority(prio(&sel, fwd_class))
                            .template(t),
                        k.mark_out,
                        k.if_id_out,
                    ));
                }
            }
            for sel in selectors(r, l)? {
                out.push(marked(
                    PolicyConfig::new(sel, Direction::In)
                        .priority(prio(&sel, class))
                        .template(tmpl(remote, local)),
                    k.mark_in,
                    k.if_id_in,
                ));
                if mode == Mode::Tunnel {
                    out.push(marked(
                        PolicyConfig::new(sel, Direction::Fwd)
                            .priority(prio(&sel, class))
                            .template(tmpl(remote, local)),
                        k.mark_in,
                        k.if_id_in,
                    ));
                }
            }
        }
    }
    if out.is_empty() {
        return Err(
            "the traffic selectors give no kernel policy (no pair of the same family)".into(),
        );
    }
    Ok(out)
}

/// The policies of a `pass` or `drop` shunt, as charon's shunt manager
/// installs them: for each pair of a local and a remote selector of one
/// family whose protocols agree, out (and with `policies_fwd_out` an
/// outbound fwd), in and fwd policies without templates, `pass` allowing
/// and `drop` blocking the traffic, at charon's pass or fallback priority
/// (or the configured `priority`), with the child's fixed marks and bound
/// to its `interface` (`ifindex`) both ways. `dynamic` is any address of
/// either family (charon's `%any` hosts). No interface ids (charon sets
/// none on shunts).
pub fn plan_shunt(
    child: &ike::config::Child,
    ifindex: Option<i32>,
) -> Result<Vec<PolicyConfig>, String> {
    let (action, class) = match child.mode {
        Mode::Pass => (PolicyAction::Allow, PrioClass::Pass),
        Mode::Drop => (PolicyAction::Block, PrioClass::Drop),
        m => return Err(format!("a {m} child is not a shunt")),
    };
    let any = || {
        [
            TrafficSelector::Ipv4(AddressRange::any(
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::BROADCAST,
            )),
            TrafficSelector::Ipv6(AddressRange::any(
                Ipv6Addr::UNSPECIFIED,
                Ipv6Addr::from(u128::MAX),
            )),
        ]
    };
    let resolve = |list: &[ike::config::TrafficSelector]| -> Vec<TrafficSelector> {
        list.iter()
            .flat_map(|t| match ike::from_config::ts_cfg(t) {
                TsCfg::Selector(s) => vec![s],
                TsCfg::Dynamic => any().to_vec(),
            })
            .collect()
    };
    let fixed = |m: Option<ike::config::MarkCfg>| -> Result<Option<xfrm_netlink::Mark>, String> {
        match m {
            None => Ok(None),
            Some(ike::config::MarkCfg {
                value: ike::config::IdValue::Fixed(value),
                mask,
            }) => Ok(Some(xfrm_netlink::Mark { value, mask })),
            Some(_) => Err(
                "a shunt's marks are fixed values (%unique has no tunnel to be unique to)".into(),
            ),
        }
    };
    let p = &child.policy;
    let (mark_in, mark_out) = (fixed(p.mark_in)?, fixed(p.mark_out)?);
    let pol = |mut sel: Selector, dir, mark| {
        sel.ifindex = ifindex;
        let mut c = PolicyConfig::new(sel, dir)
            .action(action)
            .priority(priority(&sel, class, p.priority));
        c.mark = mark;
        c
    };
    let (lts, rts) = (resolve(&child.local_ts), resolve(&child.remote_ts));
    let mut out = Vec::new();
    for l in &lts {
        for r in &rts {
            for sel in selectors(l, r)? {
                out.push(pol(sel, Direction::Out, mark_out));
                if p.policies_fwd_out {
                    out.push(pol(sel, Direction::Fwd, mark_out));
                }
            }
            for sel in selectors(r, l)? {
                out.push(pol(sel, Direction::In, mark_in));
                out.push(pol(sel, Direction::Fwd, mark_in));
            }
        }
    }
    if out.is_empty() {
        return Err(
            "the traffic selectors give no kernel policy (no pair of the same family)".into(),
        );
    }
    Ok(out)
}

/// What a Child SA's two SAs are made from: its install without what only
/// the policies, the routes and the engine need (name, selectors, ids).
#[derive(Debug, Clone)]
pub struct SaKeys {
    protocol: ProtocolId,
    mode: Mode,
    spi_in: u32,
    spi_out: u32,
    suite: ChildSuite,
    encr_in: Secret,
    integ_in: Secret,
    encr_out: Secret,
    integ_out: Secret,
    esn: bool,
    sa_opts: ChildSaOpts,
    ipcomp: Option<IpcompCpis>,
    reqid: u32,
    limits: KernelLimits,
    kernel: KernelPolicy,
}

impl SaKeys {
    /// The parts of `c` its SAs are made from.
    pub fn of(c: &ChildInstall) -> Self {
        Self {
            protocol: c.protocol,
            mode: c.mode,
            spi_in: c.spi_in,
            spi_out: c.spi_out,
            suite: c.suite,
            encr_in: c.encr_in.clone(),
            integ_in: c.integ_in.clone(),
            encr_out: c.encr_out.clone(),
            integ_out: c.integ_out.clone(),
            esn: c.esn,
            sa_opts: c.sa_opts,
            ipcomp: c.ipcomp,
            reqid: c.reqid,
            limits: c.limits,
            kernel: c.kernel.clone(),
        }
    }

    /// The inbound and the outbound SA between `local` and `remote` (with
    /// ESP in UDP between their ports if `encap`). With IPComp in tunnel
    /// mode, they are in transport mode inside the IPComp SAs' tunnel
    /// ([`SaKeys::plan_comp`]), with a selector of any traffic of the outer
    /// family (charon installs them without one), since the inner packets
    /// they carry are the tunnel's.
    pub fn plan(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        encap: bool,
    ) -> Result<(SaConfig, SaConfig), String> {
        let c = self;
        let reqid = c.reqid;
        let proto = protocol(c.protocol)?;
        let (lport, rport) = (local.port(), remote.port());
        let (local, remote) = (local.ip(), remote.ip());
        if local.is_ipv4() != remote.is_ipv4() {
            return Err(format!(
                "outer addresses of different families: {local} and {remote}"
            ));
        }
        let t_in = transforms(&c.suite, c.encr_in.as_bytes(), c.integ_in.as_bytes())?;
        let t_out = transforms(&c.suite, c.encr_out.as_bytes(), c.integ_out.as_bytes())?;
        let window = c.sa_opts.replay_window.min(xfrm_netlink::MAX_REPLAY_WINDOW);
        // ESN needs a replay window (the kernel keeps its bitmap).
        let window = if c.esn { window.max(32) } else { window };
        let inner = c.ipcomp.is_some() && c.mode == Mode::Tunnel;
        let (mode, opts_mode) = if inner {
            (xfrm_netlink::Mode::Transport, Mode::Transport)
        } else {
            (xmode(c.mode)?, c.mode)
        };
        let (opts_in, opts_out) = sa_options(&c.sa_opts, proto, opts_mode);
        let k = &c.kernel;
        let sa = |src, dst, spi, t, ports: (u16, u16), options, inbound: bool| {
            let mut sa = SaConfig::new(src, dst, proto, spi, mode, t)
                .reqid(reqid)
                .replay_window(window)
                .esn(c.esn)
                .lifetimes(lifetimes(&c.limits))
                .options(options);
            if inner {
                sa = sa.selector(Selector::any(Family::of(&src)));
            }
            if c.sa_opts.hw_offload != HwOffload::No {
                // The device the route to the peer leaves by (0: the
                // kernel looks it up), as charon's local address's.
                sa = sa.offload(Offload {
                    ifindex: 0,
                    inbound,
                });
            }
            if encap {
                sa = sa.encap(UdpEncap::new(ports.0, ports.1));
            }
            // As charon: the inbound SA carries mark_in only with
            // mark_in_sa, the outbound one mark_out.
            let (mark, if_id, set_mark) = if inbound {
                (
                    k.mark_in.filter(|_| k.mark_in_sa),
                    k.if_id_in,
                    k.set_mark_in,
                )
            } else {
                (k.mark_out, k.if_id_out, k.set_mark_out)
            };
            sa.mark = mark.map(xmark);
            sa.if_id = (if_id != 0).then_some(if_id);
            sa.set_mark = set_mark.map(xmark);
            sa
        };
        Ok((
            sa(remote, local, c.spi_in, t_in, (rport, lport), opts_in, true),
            sa(
                local,
                remote,
                c.spi_out,
                t_out,
                (lport, rport),
                opts_out,
                false,
            ),
        ))
    }

    /// The child's `hw_offload`.
    pub fn hw_offload(&self) -> HwOffload {
        self.sa_opts.hw_offload
    }

    /// The inbound and the outbound IPComp SA if the Child SA has IPComp:
    /// DEFLATE with the CPI as SPI, in the Child SA's mode (the tunnel
    /// endpoints' SAs in tunnel mode), without replay window, lifetimes
    /// or UDP encapsulation, as charon installs them. The copy flags go
    /// here too, since in tunnel mode this SA makes the outer header
    /// (charon leaves them at their "no" values on IPComp SAs).
    pub fn plan_comp(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<Option<(SaConfig, SaConfig)>, String> {
        let Some(cpis) = self.ipcomp else {
            return Ok(None);
        };
        let mode = xmode(self.mode)?;
        let (opts_in, opts_out) = sa_options(&self.sa_opts, Protocol::Comp, self.mode);
        let k = &self.kernel;
        // As charon: the IPComp SA has its ESP SA's mark and interface id
        // (no set mark: the ESP SA sets it).
        let sa = |src, dst, cpi: u16, options, inbound: bool| {
            let mut sa = SaConfig::new(
                src,
                dst,
                Protocol::Comp,
                u32::from(cpi),
                mode,
                Transforms::Compression {
                    alg: CompAlg::Deflate,
                },
            )
            .reqid(self.reqid)
            .options(options);
            let (mark, if_id) = if inbound {
                (k.mark_in.filter(|_| k.mark_in_sa), k.if_id_in)
            } else {
                (k.mark_out, k.if_id_out)
            };
            sa.mark = mark.map(xmark);
            sa.if_id = (if_id != 0).then_some(if_id);
            sa
        };
        let (local, remote) = (local.ip(), remote.ip());
        Ok(Some((
            sa(remote, local, cpis.cpi_in, opts_in, true),
            sa(local, remote, cpis.cpi_out, opts_out, false),
        )))
    }
}

/// The policies of a Child SA with IPComp as charon makes them: each
/// template becomes two, the IPComp one first (the Child SA's mode and
/// tunnel endpoints; optional in `in` and `fwd` policies, as the peer
/// sends packets that do not shrink uncompressed, which the kernel's own
/// IPIP tunnel SA takes), then the ESP (or AH) one in transport mode.
pub fn ipcomp_templates(policies: &mut [PolicyConfig]) {
    for p in policies {
        let mut both = Vec::with_capacity(p.templates.len().saturating_mul(2));
        for t in &p.templates {
            both.push(Template {
                protocol: Protocol::Comp,
                optional: p.direction != Direction::Out,
                ..*t
            });
            both.push(Template {
                mode: xfrm_netlink::Mode::Transport,
                tunnel: None,
                ..*t
            });
        }
        p.templates = both;
    }
}

/// The header flags and padding of a Child SA's inbound and outbound SA
/// (strongSwan's kernel_netlink_ipsec.c, `add_sa`): ECN is copied unless
/// `copy_ecn = no`; inbound, the outer DSCP is copied in with `copy_dscp`
/// `yes` or `in`; outbound, DF is copied unless `copy_df = no`, the DSCP
/// is copied out unless `copy_dscp` is `no` or `in`, and TFC padding
/// applies to tunnel-mode ESP only (the kernel pads nothing else).
pub fn sa_options(o: &ChildSaOpts, proto: Protocol, mode: Mode) -> (SaOptions, SaOptions) {
    let inbound = SaOptions {
        no_ecn: !o.copy_ecn,
        decap_dscp: o.copy_dscp.decap(),
        ..SaOptions::default()
    };
    let outbound = SaOptions {
        no_ecn: !o.copy_ecn,
        no_pmtu_discovery: !o.copy_df,
        dont_encap_dscp: !o.copy_dscp.encap(),
        tfc_padding: if proto == Protocol::Esp && mode == Mode::Tunnel {
            o.tfc_padding
        } else {
            0
        },
        ..SaOptions::default()
    };
    (inbound, outbound)
}

/// Everything [`ChildInstall`] puts into the kernel, with its reqid (its
/// `interface`, if any, left unbound: [`plan_install_bound`]).
pub fn plan_install(c: &ChildInstall) -> Result<InstallPlan, String> {
    plan_install_bound(c, None)
}

/// [`plan_install`] with `ifindex` the index of the child's `interface`.
pub fn plan_install_bound(c: &ChildInstall, ifindex: Option<i32>) -> Result<InstallPlan, String> {
    let reqid = c.reqid;
    let proto = protocol(c.protocol)?;
    let keys = SaKeys::of(c);
    let (sa_in, sa_out) = keys.plan(c.local, c.remote, c.encap)?;
    let (local, remote) = (c.local.ip(), c.remote.ip());
    let mut policies = plan_policies(&PolicyPlan {
        mode: c.mode,
        proto,
        local,
        remote,
        local_ts: &c.local_ts,
        remote_ts: &c.remote_ts,
        reqid,
        kernel: &c.kernel,
        ifindex,
        routed: false,
    })?;
    if c.ipcomp.is_some() {
        ipcomp_templates(&mut policies);
    }
    Ok(InstallPlan {
        sa_in,
        sa_out,
        comp: keys.plan_comp(c.local, c.remote)?,
        hw_offload: c.sa_opts.hw_offload,
        policies,
    })
}

/// An installed SA (inbound or not) moved to the addresses and
/// encapsulation ports of `u` (a NAT mapping changed).
pub fn moved_sa(sa: &SaConfig, inbound: bool, u: &ChildUpdate) -> SaConfig {
    let (local, remote) = (u.local, u.remote);
    let mut sa = sa.clone();
    let (src, dst) = if inbound {
        (remote, local)
    } else {
        (local, remote)
    };
    sa.src = src.ip();
    sa.dst = dst.ip();
    // IPComp SAs are never encapsulated (their packets go on in ESP).
    sa.encap =
        (u.encap && sa.protocol == Protocol::Esp).then(|| UdpEncap::new(src.port(), dst.port()));
    sa
}

/// An address as a move from `old` (local, remote) to `new` changes it.
pub fn moved_addr(old: (IpAddr, IpAddr), new: (IpAddr, IpAddr)) -> impl Fn(IpAddr) -> IpAddr {
    move |a| {
        if a == old.0 {
            new.0
        } else if a == old.1 {
            new.1
        } else {
            a
        }
    }
}

/// Policies whose templates' tunnel endpoints move from `old` (local,
/// remote) to `new`.
pub fn moved_policies(
    policies: &[PolicyConfig],
    old: (IpAddr, IpAddr),
    new: (IpAddr, IpAddr),
) -> Vec<PolicyConfig> {
    let moved = moved_addr(old, new);
    let mut out = policies.to_vec();
    for p in &mut out {
        for t in &mut p.templates {
            if let Some((s, d)) = t.tunnel {
                t.tunnel = Some((moved(s), moved(d)));
            }
        }
    }
    out
}

/// What a Child SA's kernel SAs were made from.
#[derive(Debug, Clone)]
pub struct SaSource {
    /// Its install's keys, SPIs and settings.
    pub keys: SaKeys,
    /// The addresses of its inbound and of its outbound SA, if in (each
    /// as installed or last moved).
    pub sa_in: Option<SaAddrs>,
    /// See `sa_in`.
    pub sa_out: Option<SaAddrs>,
}

/// The outer addresses and encapsulation an SA was installed (or last
/// moved) with: with its Child SA's install, all there is to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaAddrs {
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
    /// ESP in UDP between the two ports.
    pub encap: bool,
}

impl SaAddrs {
    /// The addresses `c` is installed with.
    pub fn of(c: &ChildInstall) -> Self {
        Self {
            local: c.local,
            remote: c.remote,
            encap: c.encap,
        }
    }
}

impl SaSource {
    /// The SAs as installed (`true`: inbound; inbound first).
    pub fn sa_configs(&self) -> Result<Vec<(bool, SaConfig)>, String> {
        let src = self;
        let mut out = Vec::new();
        for (inbound, addrs) in [(true, src.sa_in), (false, src.sa_out)] {
            let Some(a) = addrs else {
                continue;
            };
            let (sa_in, sa_out) = src.keys.plan(a.local, a.remote, a.encap)?;
            if let Some((c_in, c_out)) = src.keys.plan_comp(a.local, a.remote)? {
                out.push((inbound, if inbound { c_in } else { c_out }));
            }
            out.push((inbound, if inbound { sa_in } else { sa_out }));
        }
        Ok(out)
    }
}

/// What a reqid's policies were planned from: an owned [`PolicyPlan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    /// As [`PolicyPlan::mode`].
    pub mode: Mode,
    /// As [`PolicyPlan::proto`].
    pub proto: Protocol,
    /// As [`PolicyPlan::local`] (as installed or last moved).
    pub local: IpAddr,
    /// As [`PolicyPlan::remote`] (as installed or last moved).
    pub remote: IpAddr,
    /// As [`PolicyPlan::local_ts`].
    pub local_ts: Vec<TrafficSelector>,
    /// As [`PolicyPlan::remote_ts`].
    pub remote_ts: Vec<TrafficSelector>,
    /// As [`PolicyPlan::reqid`].
    pub reqid: u32,
    /// As [`PolicyPlan::kernel`].
    pub kernel: KernelPolicy,
    /// As [`PolicyPlan::ifindex`].
    pub ifindex: Option<i32>,
    /// The Child SA has IPComp ([`ipcomp_templates`]).
    pub ipcomp: bool,
}

impl PolicySource {
    /// What the policies of `c` are planned from.
    pub fn of(c: &ChildInstall, ifindex: Option<i32>) -> Result<Self, String> {
        Ok(Self {
            mode: c.mode,
            proto: protocol(c.protocol)?,
            local: c.local.ip(),
            remote: c.remote.ip(),
            local_ts: c.local_ts.clone(),
            remote_ts: c.remote_ts.clone(),
            reqid: c.reqid,
            kernel: c.kernel.clone(),
            ifindex,
            ipcomp: c.ipcomp.is_some(),
        })
    }

    /// The policies as planned (and installed).
    pub fn policies(&self) -> Result<Vec<PolicyConfig>, String> {
        let mut p = plan_policies(&PolicyPlan {
            mode: self.mode,
            proto: self.proto,
            local: self.local,
            remote: self.remote,
            local_ts: &self.local_ts,
            remote_ts: &self.remote_ts,
            reqid: self.reqid,
            kernel: &self.kernel,
            ifindex: self.ifindex,
            routed: false,
        })?;
        if self.ipcomp {
            ipcomp_templates(&mut p);
        }
        Ok(p)
    }
}

/// The SAs of a removed Child SA to delete now, and those to keep for a
/// while: when the Child SA was replaced by a rekey (`keep_inbound`), its
/// inbound SAs (destination `local`) stay, to decrypt the packets the peer
/// sent on them before it switched to the new SAs and that arrive after
/// the rekey's Delete (ESP queued behind IKE, several paths). Its
/// outbound SAs go at once: traffic has switched to the new ones.
pub fn split_removal(sas: &[SaId], local: IpAddr, keep_inbound: bool) -> (Vec<SaId>, Vec<SaId>) {
    sas.iter()
        .partition(|sa| !(keep_inbound && sa.dst == local))
}

/// The tunnel endpoints and selectors of a trap: the first concrete local
/// and remote address (a wildcard local one lets the kernel pick the
/// source by route), `dynamic` as that address.
pub fn trap_selectors(
    peer: &PeerCfg,
    child: &ChildCfg,
) -> Result<(IpAddr, IpAddr, Vec<TrafficSelector>, Vec<TrafficSelector>), String> {
    let first = |v: &[AddrSpec]| {
        v.iter().find_map(|a| match a {
            AddrSpec::Addr(ip) => Some(*ip),
            AddrSpec::Any => None,
        })
    };
    let remote = first(&peer.remote_addrs)
        .ok_or("a trap needs a remote address in remote_addrs (not only %any)")?;
    let local = match first(&peer.local_addrs) {
        Some(l) if l.is_ipv4() == remote.is_ipv4() => l,
        _ if remote.is_ipv4() => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        _ => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let host = |ip: IpAddr| match ip {
        IpAddr::V4(a) => TrafficSelector::Ipv4(AddressRange::any(a, a)),
        IpAddr::V6(a) => TrafficSelector::Ipv6(AddressRange::any(a, a)),
    };
    let resolve = |list: &[TsCfg], addr: IpAddr, side: &str| -> Result<Vec<_>, String> {
        list.iter()
            .map(|t| match t {
                TsCfg::Selector(s) => Ok(s.clone()),
                TsCfg::Dynamic if !addr.is_unspecified() => Ok(host(addr)),
                TsCfg::Dynamic => Err(format!(
                    "a trap with dynamic {side}_ts needs a {side} address in {side}_addrs"
                )),
            })
            .collect()
    };
    let lts = resolve(&child.local_ts, local, "local")?;
    let rts = resolve(&child.remote_ts, remote, "remote")?;
    Ok((local, remote, lts, rts))
}

/// The trap policies of `child` of `peer` under `reqid` (`ifindex`: the
/// index of the child's `interface`).
pub fn plan_trap(
    peer: &PeerCfg,
    child: &ChildCfg,
    reqid: u32,
    ifindex: Option<i32>,
) -> Result<Vec<PolicyConfig>, String> {
    let (local, remote, lts, rts) = trap_selectors(peer, child)?;
    let proto = protocol(ike::sa::child_protocol(child))?;
    plan_policies(&PolicyPlan {
        mode: child.mode,
        proto,
        local,
        remote,
        local_ts: &lts,
        remote_ts: &rts,
        reqid,
        kernel: &child.kernel_policy(&peer.policy, reqid),
        ifindex,
        routed: true,
    })
}

/// The routes of a trap are those of a Child SA with its selectors and
/// tunnel endpoints (so that forwarded traffic reaches the trap's policy
/// before the tunnel is up, as strongSwan routes trap policies): a
/// stand-in Child SA without keys, with an id no Child SA has.
pub fn trap_route_child(
    peer: &PeerCfg,
    child: &ChildCfg,
    reqid: u32,
) -> Option<ike::sa::ChildInstall> {
    let (local, remote, lts, rts) = trap_selectors(peer, child).ok()?;
    let protocol = ike::sa::child_protocol(child);
    Some(ike::sa::ChildInstall {
        id: trap_route_id(reqid),
        ike_sa: ike::sa::IkeSaId(0),
        name: format!("trap of {}/{}", peer.name, child.name),
        mode: child.mode,
        protocol,
        local: std::net::SocketAddr::new(local, peer.local_port),
        remote: std::net::SocketAddr::new(remote, peer.remote_port),
        spi_in: 0,
        spi_out: 0,
        suite: ike::crypto::suite::ChildSuite {
            protocol,
            encr: None,
            integ: None,
            ke: None,
            esn: false,
        },
        encr_in: ike::crypto::Secret::new(Vec::new()),
        integ_in: ike::crypto::Secret::new(Vec::new()),
        encr_out: ike::crypto::Secret::new(Vec::new()),
        integ_out: ike::crypto::Secret::new(Vec::new()),
        local_ts: lts,
        vips: Vec::new(),
        remote_ts: rts,
        esn: false,
        sa_opts: Default::default(),
        ipcomp: None,
        initiator: true,
        reqid,
        limits: Default::default(),
        encap: false,
        kernel: child.kernel_policy(&peer.policy, reqid),
    })
}

/// The route book's id of a trap's routes: from the top of the id space,
/// which Child SA ids (counted from 1) never reach.
pub fn trap_route_id(reqid: u32) -> ike::sa::ChildId {
    ike::sa::ChildId(u64::MAX.saturating_sub(u64::from(reqid)))
}

#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod saopt_tests;
#[cfg(test)]
pub(crate) mod tests;
