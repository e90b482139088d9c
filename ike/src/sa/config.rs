//! The runtime configuration the state machines work from: a protocol-level
//! view of a peer (strongSwan's `connections.<name>`) and its children. The
//! daemon converts its YAML configuration into these.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

pub use crate::config::{
    Behaviour, ChildLifetimes, ChildSaOpts, Childless, IkeLifetimes, Mode, Unique,
};
use crate::config::{ChildPolicy, ConnPolicy, IdValue, MarkCfg, SetMarkCfg, SigConstraint};
use crate::crypto::Secret;
use crate::crypto::proposal::Preference;
use crate::pki::cert::Certificate;
use crate::pki::chain::Revocation;
use crate::pki::{PrivateKey, PublicKey};
use crate::wire::sa::Proposal;
use crate::wire::{Identification, ParseLimits, TrafficSelector};

/// One address of `local_addrs` / `remote_addrs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrSpec {
    /// Any address (strongSwan's `%any`): as responder, matches every
    /// address; as initiator, cannot be connected to.
    Any,
    /// This address.
    Addr(IpAddr),
}

impl AddrSpec {
    /// Whether `addr` matches.
    pub fn matches(&self, addr: IpAddr) -> bool {
        match self {
            Self::Any => true,
            Self::Addr(a) => *a == addr,
        }
    }
}

/// One configured traffic selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TsCfg {
    /// strongSwan's `dynamic`: the IKE address of that side (a single
    /// address, every protocol and port).
    Dynamic,
    /// This selector.
    Selector(TrafficSelector),
}

/// A Child SA configuration (`connections.<peer>.children.<name>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildCfg {
    /// Its name, unique within the peer.
    pub name: String,
    /// Our side's traffic selectors (`local_ts`).
    pub local_ts: Vec<TsCfg>,
    /// The peer's side (`remote_ts`).
    pub remote_ts: Vec<TsCfg>,
    /// ESP or AH proposals (all of one protocol), first preferred. A KE
    /// transform in them asks for PFS in CREATE_CHILD_SA; the Child SA of
    /// IKE_AUTH never does its own key exchange.
    pub proposals: Vec<Proposal>,
    /// Tunnel or transport.
    pub mode: Mode,
    /// The options of its kernel SAs (replay window, copy flags, TFC
    /// padding, IPComp).
    pub sa_opts: ChildSaOpts,
    /// When to rekey and expire it.
    pub lifetimes: ChildLifetimes,
    /// Marks, interface ids, priority, fixed reqid, which policies.
    pub policy: ChildPolicy,
    /// `inactivity`: a Child SA whose policies carried nothing for this
    /// long (since its install) is deleted; zero: never.
    pub inactivity: Duration,
}

impl ChildCfg {
    /// What its Child SAs (and trap) under `reqid` are marked, bound and
    /// prioritised with in the kernel: its policy keys, the connection's
    /// interface ids where the child has none, `%unique` resolved from
    /// the reqid (so a Child SA, its rekeyed successors, the Child SA that
    /// takes over its reqid at a reauthentication and its trap all have
    /// the same values, as their policies must).
    pub fn kernel_policy(&self, conn: &ConnPolicy, reqid: u32) -> KernelPolicy {
        let p = &self.policy;
        let mark = |m: Option<MarkCfg>, dir: Dir| {
            m.map(|m| MarkPair {
                value: unique(m.value, reqid, dir),
                mask: m.mask,
            })
        };
        let mark_in = mark(p.mark_in, Dir::In);
        let mark_out = mark(p.mark_out, Dir::Out);
        let set_mark = |s: Option<SetMarkCfg>, same: Option<MarkPair>| {
            s.map(|s| MarkPair {
                value: s.value.unwrap_or(same.map_or(0, |m| m.value)),
                mask: s.mask,
            })
        };
        let if_id = |v: Option<IdValue>, c: Option<IdValue>, dir| {
            v.or(c).map_or(0, |v| unique(v, reqid, dir))
        };
        KernelPolicy {
            mark_in,
            mark_in_sa: p.mark_in_sa,
            mark_out,
            set_mark_in: set_mark(p.set_mark_in, mark_in),
            set_mark_out: set_mark(p.set_mark_out, mark_out),
            if_id_in: if_id(p.if_id_in, conn.if_id_in, Dir::In),
            if_id_out: if_id(p.if_id_out, conn.if_id_out, Dir::Out),
            priority: p.priority,
            policies: p.policies,
            fwd_out: p.policies_fwd_out,
            interface: p.interface.clone(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    In,
    Out,
}

/// A mark or interface id value with `%unique` resolved for `reqid`:
/// `%unique` is the reqid, `%unique-dir` the reqid inbound and the reqid
/// with the top bit set outbound (never charon's reserved 0xfffffffe and
/// 0xffffffff, never 0).
fn unique(v: IdValue, reqid: u32, dir: Dir) -> u32 {
    let v = match (v, dir) {
        (IdValue::Fixed(v), _) => return v,
        (IdValue::Unique, _) | (IdValue::UniqueDir, Dir::In) => reqid & 0x7fff_ffff,
        (IdValue::UniqueDir, Dir::Out) => reqid | 0x8000_0000,
    };
    match v {
        0 | 0x8000_0000 => v | 1,
        0xffff_fffe | 0xffff_ffff => 0xffff_fffd,
        v => v,
    }
}

/// A firewall mark: value and mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MarkPair {
    /// The value.
    pub value: u32,
    /// The mask.
    pub mask: u32,
}

/// A Child SA's marks, interface ids and policy settings as they go into
/// the kernel (its child's [`ChildPolicy`] with `%unique` resolved:
/// [`ChildCfg::kernel_policy`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KernelPolicy {
    /// The mark of the inbound policies (in, fwd), and of the inbound SA
    /// with `mark_in_sa`.
    pub mark_in: Option<MarkPair>,
    /// Put `mark_in` on the inbound SA too.
    pub mark_in_sa: bool,
    /// The mark of the outbound policies and SA.
    pub mark_out: Option<MarkPair>,
    /// The mark the inbound SA sets on decrypted packets.
    pub set_mark_in: Option<MarkPair>,
    /// The mark the outbound SA sets on its packets.
    pub set_mark_out: Option<MarkPair>,
    /// The XFRM interface id of the inbound SA and policies (0: none).
    pub if_id_in: u32,
    /// The XFRM interface id of the outbound SA and policies (0: none).
    pub if_id_out: u32,
    /// A fixed policy priority (0: computed from the selectors).
    pub priority: u32,
    /// Install policies (no: the SAs only).
    pub policies: bool,
    /// Also an outbound fwd policy (tunnel mode).
    pub fwd_out: bool,
    /// The network interface the outbound policies are bound to.
    pub interface: Option<String>,
}

impl Default for KernelPolicy {
    /// Nothing set: no marks, no interface ids, computed priorities,
    /// policies installed.
    fn default() -> Self {
        Self {
            mark_in: None,
            mark_in_sa: false,
            mark_out: None,
            set_mark_in: None,
            set_mark_out: None,
            if_id_in: 0,
            if_id_out: 0,
            priority: 0,
            policies: true,
            fwd_out: false,
            interface: None,
        }
    }
}

// The kernel's view of the configured limits, next to the engine types it
// returns.
impl ChildLifetimes {
    /// The byte and packet limits for the kernel, without jitter.
    pub fn kernel_limits(&self) -> super::KernelLimits {
        self.kernel_limits_with(|_| 0)
    }

    /// The byte and packet limits for the kernel, the soft ones lowered
    /// by `jitter(max)` (a random count below `max`) of `rand_bytes` /
    /// `rand_packets`, at most down to 1 (0 would mean no limit).
    pub fn kernel_limits_with(&self, mut jitter: impl FnMut(u64) -> u64) -> super::KernelLimits {
        let some = |v: u64| (v != 0).then_some(v);
        let mut soft = |v: u64, rand: u64| {
            if v == 0 {
                return None;
            }
            let j = jitter(rand.min(v)).min(v.saturating_sub(1));
            some(v.saturating_sub(j))
        };
        let secs = |d: Duration| {
            (!d.is_zero()).then(|| d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0)))
        };
        super::KernelLimits {
            soft_secs: secs(self.rekey_time),
            hard_secs: secs(self.life_time),
            soft_bytes: soft(self.rekey_bytes, self.rand_bytes),
            hard_bytes: some(self.life_bytes),
            soft_packets: soft(self.rekey_packets, self.rand_packets),
            hard_packets: some(self.life_packets),
        }
    }
}

/// A peer configuration (`connections.<name>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCfg {
    /// Its name, unique within the endpoint.
    pub name: String,
    /// Addresses we accept (and, as initiator, send from: the first
    /// concrete one; with only [`AddrSpec::Any`], the daemon picks the
    /// source address, see [`Transmit::local`](super::Transmit)).
    pub local_addrs: Vec<AddrSpec>,
    /// Addresses of the peer; the initiator connects to the first concrete one.
    pub remote_addrs: Vec<AddrSpec>,
    /// Our IKE port (500).
    pub local_port: u16,
    /// The peer's IKE port (500).
    pub remote_port: u16,
    /// IKE proposals, first preferred.
    pub ike_proposals: Vec<Proposal>,
    /// Our identity (IDi as initiator, IDr as responder).
    pub local_id: Identification,
    /// The identity the peer must prove; `None` accepts any. As initiator,
    /// a configured one is sent as IDr.
    pub remote_id: Option<Identification>,
    /// The Child SAs (shared with the Child SAs made from them: each kept
    /// a copy, about 470 bytes per tunnel and side).
    pub children: Vec<Arc<ChildCfg>>,
    /// Force UDP encapsulation (swanctl's `encap`): we send a
    /// NAT_DETECTION_SOURCE_IP that matches no address, so both sides
    /// believe we are behind NAT, move IKE to the NAT-T port and install
    /// the Child SAs with ESP in UDP.
    pub encap: bool,
    /// MOBIKE (RFC 4555, swanctl's `mobike`, default yes): announced in
    /// IKE_AUTH; as initiator, IKE moves to the NAT-T port after
    /// IKE_SA_INIT whenever the responder does NAT detection, so that a
    /// later move behind a NAT needs no change of ports (`sa::mobike`).
    pub mobike: bool,
    /// When the IKE SA is rekeyed.
    pub lifetimes: IkeLifetimes,
    /// Dead peer detection (`dpd_delay`): after this long without a
    /// message or ESP/AH traffic from the peer, a liveness check (an empty
    /// INFORMATIONAL); when its retransmissions run out the peer is dead.
    /// Zero: no checks.
    pub dpd_delay: Duration,
    /// How we authenticate (swanctl's `local.auth`, `local.certs`). With
    /// a certificate and `local_id` of ID type 0 (`%any`: no `local.id`
    /// configured), our identity is the certificate's subject DN.
    pub local_auth: LocalAuthCfg,
    /// How the peer must authenticate (`remote.auth`, `remote.cacerts`,
    /// `remote.pubkeys`, `remote.revocation`). A responder never accepts a
    /// peer's AUTH of the other class (a signature for a PSK connection,
    /// or the reverse).
    pub remote_auth: RemoteAuthCfg,
    /// When we send our certificates (swanctl's `send_cert`, default
    /// [`SendCert::IfAsked`]).
    pub send_cert: SendCert,
    /// Whether we send CERTREQ payloads for our trusted CAs
    /// (`send_certreq`, default yes; only with certificate authentication
    /// of the peer).
    pub send_certreq: bool,
    /// IKE fragmentation (RFC 7383, swanctl's `fragmentation`).
    pub fragmentation: Fragmentation,
    /// The children's default interface ids (`if_id_in`, `if_id_out`).
    pub policy: ConnPolicy,
    /// `keyingtries`, `childless`.
    pub behaviour: Behaviour,
    /// `pools` and `vips` (the configuration payload, `cp`).
    pub cp: super::CpCfg,
    /// As a gateway: where to redirect clients (RFC 5685, `redirect`).
    pub redirect: Option<super::RedirectCfg>,
    /// The second authentication rounds (RFC 4739, `local2`/`remote2`)
    /// and `aaa_id` (`sa::rounds`).
    pub rounds: AuthRounds,
}

/// A connection's second authentication rounds (RFC 4739: swanctl's
/// `local-2` / `remote-2`, the YAML's `local2` / `remote2`), after the
/// first ones in [`PeerCfg`]. iked does its own second round as initiator
/// and asks the peer's as responder (the usual remote access: a
/// certificate, then EAP); `sa::rounds`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthRounds {
    /// Our second round (initiator).
    pub local: Option<LocalRound>,
    /// The peer's second round (responder).
    pub remote: Option<RemoteRound>,
}

/// Our second round: the identity sent as its IDi and how we prove it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalRound {
    /// `local2.id`; `None`: as charon, our certificate's subject with
    /// `pubkey`, else our IKE address.
    pub id: Option<Identification>,
    /// `local2.auth` (and its `certs`, `eap_id`).
    pub auth: LocalAuthCfg,
}

/// The peer's second round: the identities accepted as its IDi and how it
/// proves them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRound {
    /// `remote2.id`; `None`: any.
    pub id: Option<Identification>,
    /// `remote2.auth` (and its `cacerts`, `eap_id`...).
    pub auth: RemoteAuthCfg,
}

/// How we authenticate ourselves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LocalAuthCfg {
    /// With a pre-shared key from the [`PskStore`].
    #[default]
    Psk,
    /// With a signature by our private key (RFC 7427 digital signature
    /// if the peer announced SIGNATURE_HASH_ALGORITHMS, else the classic
    /// RSA or ECDSA method of the key), and our certificates if any.
    Pubkey(Arc<LocalCred>),
    /// As an EAP client (`auth = eap-<name>`, initiator only): our first
    /// IKE_AUTH request goes without AUTH, the responder runs EAP, and
    /// AUTH follows from its MSK (`sa/eap_auth.rs`).
    Eap(EapLocal),
}

/// Our side of EAP (swanctl's `local.auth = eap-*`, `local.eap_id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EapLocal {
    /// The method.
    pub method: crate::eap::MethodName,
    /// The identity we give in EAP (EAP-Identity, the method's user
    /// name) and our `eap` secret is for; `None`: our IKE identity.
    pub eap_id: Option<Identification>,
    /// `aaa_id`: the identity the EAP server proves inside the method
    /// (EAP-TLS: its certificate must name it) and our `eap` secret is
    /// looked up with, where an AAA backend behind the gateway runs the
    /// method; `None`: the gateway's IKE identity.
    pub aaa_id: Option<Identification>,
    /// EAP-TLS: our certificate and key (`local.certs`).
    pub cred: Option<Arc<LocalCred>>,
}

/// How the peer authenticates with EAP (swanctl's `remote.auth = eap-*`,
/// `remote.eap_id`).
#[derive(Clone, Debug)]
pub struct EapRemote {
    /// The method.
    pub method: crate::eap::MethodName,
    /// `eap_id`: if set, the server asks the peer's identity first
    /// (EAP-Identity) and it must match this (ID type 0: `%any`, any);
    /// `None`: no EAP-Identity, the method runs for IDi.
    pub eap_id: Option<Identification>,
    /// `aaa_id`: the identity the method runs as (the EAP-MSCHAPv2
    /// secrets are looked up for it and the user); `None`: our IKE
    /// identity.
    pub aaa_id: Option<Identification>,
    /// EAP-TLS: `remote.cacerts` (one of them must be on the peer's
    /// certificate path, as with `pubkey`).
    pub cacerts: Vec<Arc<Certificate>>,
    /// EAP-TLS: `remote.revocation`.
    pub revocation: Revocation,
}

/// Certificates compare by their DER.
impl PartialEq for EapRemote {
    fn eq(&self, other: &Self) -> bool {
        self.method == other.method
            && self.eap_id == other.eap_id
            && self.aaa_id == other.aaa_id
            && self.revocation == other.revocation
            && self.cacerts.len() == other.cacerts.len()
            && self
                .cacerts
                .iter()
                .zip(&other.cacerts)
                .all(|(a, b)| a.der() == b.der())
    }
}

impl Eq for EapRemote {}

/// Our private key and the certificates that go with it.
pub struct LocalCred {
    /// The private key AUTH is signed with.
    pub key: PrivateKey,
    /// Our end-entity certificate first, then the chain to send with it
    /// (intermediates, no trust anchor); empty: a raw public key the peer
    /// has configured.
    pub certs: Vec<Arc<Certificate>>,
    /// An RSA key signs with RSASSA-PSS rather than PKCS#1 v1.5 (swanctl's
    /// `auth = rsa/pss`; only with RFC 7427, which the peer must announce).
    pub rsa_pss: bool,
}

impl LocalCred {
    /// A credential of `key` and `certs` (end entity first), RSA keys
    /// signing with PKCS#1 v1.5.
    pub fn new(key: PrivateKey, certs: Vec<Arc<Certificate>>) -> Self {
        Self {
            key,
            certs,
            rsa_pss: false,
        }
    }
}

impl std::fmt::Debug for LocalCred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCred")
            .field("key", &self.key.key_type())
            .field("rsa_pss", &self.rsa_pss)
            .field(
                "certs",
                &self
                    .certs
                    .iter()
                    .map(|c| c.subject_text())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The same credential (loaded once, shared).
impl PartialEq for LocalCred {
    fn eq(&self, other: &Self) -> bool {
        self.key.public_key().spki_der() == other.key.public_key().spki_der()
            && self.rsa_pss == other.rsa_pss
            && self.certs.len() == other.certs.len()
            && self
                .certs
                .iter()
                .zip(&other.certs)
                .all(|(a, b)| a.der() == b.der())
    }
}

impl Eq for LocalCred {}

/// How the peer must authenticate.
#[derive(Clone, Debug, Default)]
pub enum RemoteAuthCfg {
    /// With a pre-shared key from the [`PskStore`].
    #[default]
    Psk,
    /// With a signature: by the key of a certificate that validates
    /// against the endpoint's trust store (`Endpoint::set_trust_store`)
    /// and names the peer's identity, or by one of `pubkeys`.
    Pubkey {
        /// `remote.cacerts`: if not empty, one of them must be on the
        /// peer's certificate path.
        cacerts: Vec<Arc<Certificate>>,
        /// `remote.pubkeys`: raw public keys the peer may sign with
        /// (then no certificate is needed).
        pubkeys: Vec<PublicKey>,
        /// `remote.revocation` (strongSwan's meaning).
        revocation: Revocation,
        /// `remote.auth`'s signature constraints: the peer's key and the
        /// scheme of its AUTH signature must satisfy one of them (empty:
        /// any key, any scheme).
        constraints: Vec<SigConstraint>,
    },
    /// With EAP, we the server (responder only): its first IKE_AUTH
    /// request has no AUTH, and AUTH from the method's MSK ends it
    /// (`sa/eap_auth.rs`).
    Eap(EapRemote),
}

impl PartialEq for RemoteAuthCfg {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Psk, Self::Psk) => true,
            (
                Self::Pubkey {
                    cacerts: a,
                    pubkeys: b,
                    revocation: c,
                    constraints: d,
                },
                Self::Pubkey {
                    cacerts: x,
                    pubkeys: y,
                    revocation: z,
                    constraints: w,
                },
            ) => {
                a.len() == x.len()
                    && a.iter().zip(x).all(|(a, x)| a.der() == x.der())
                    && b.len() == y.len()
                    && b.iter().zip(y).all(|(b, y)| b.spki_der() == y.spki_der())
                    && c == z
                    && d == w
            }
            (Self::Eap(a), Self::Eap(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for RemoteAuthCfg {}

/// When we send our certificate and its chain (swanctl's `send_cert`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SendCert {
    /// In every IKE_AUTH message that authenticates us.
    Always,
    /// Only if the peer sent a CERTREQ (strongSwan's default).
    #[default]
    IfAsked,
    /// Never (the peer has our certificate or public key).
    Never,
}

/// IKE fragmentation (RFC 7383) of a connection, with strongSwan's
/// meaning of swanctl's `fragmentation`. Fragments the peer sends are
/// reassembled whatever this says, as strongSwan does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Fragmentation {
    /// `yes` (the default): announce support in IKE_SA_INIT and send
    /// encrypted messages larger than the fragment size in fragments if
    /// the peer announced support too.
    #[default]
    Yes,
    /// `accept`: announce support, never send fragments.
    Accept,
    /// `force`: as `yes`, and fragment even if the peer did not announce
    /// support (strongSwan's IKEv2 meaning; IKE_SA_INIT is never
    /// fragmented).
    Force,
    /// `no`: do not announce support, never send fragments.
    No,
}

impl Fragmentation {
    /// Whether we announce IKEV2_FRAGMENTATION_SUPPORTED.
    pub fn announce(self) -> bool {
        !matches!(self, Self::No)
    }
}

impl PeerCfg {
    /// The child named `name`.
    pub fn child(&self, name: &str) -> Option<&Arc<ChildCfg>> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// Pre-shared keys, looked up by both identities as swanctl's `secrets`
/// section does (`ike-x { id-a = ..., id-b = ..., secret = ... }`).
pub trait PskStore: Send + Sync {
    /// The key shared between `local` and `remote`, if any.
    fn psk(&self, local: &Identification, remote: &Identification) -> Option<Secret>;
}

impl<F> PskStore for F
where
    F: Fn(&Identification, &Identification) -> Option<Secret> + Send + Sync,
{
    fn psk(&self, local: &Identification, remote: &Identification) -> Option<Secret> {
        self(local, remote)
    }
}

/// A list of shared keys, each for a set of identities: a key applies to a
/// pair when both IDs are in its set, or its set has one ID and the other is
/// anyone (swanctl's rule for a secret with a single ID).
#[derive(Clone, Debug, Default)]
pub struct PskTable {
    /// `(ids, key)` entries; the first that applies wins.
    pub entries: Vec<(Vec<Identification>, Secret)>,
}

impl PskStore for PskTable {
    fn psk(&self, local: &Identification, remote: &Identification) -> Option<Secret> {
        let both = self
            .entries
            .iter()
            .find(|(ids, _)| ids.contains(local) && ids.contains(remote));
        let one = || {
            self.entries
                .iter()
                .find(|(ids, _)| ids.len() == 1 && (ids.contains(local) || ids.contains(remote)))
        };
        both.or_else(one).map(|(_, k)| k.clone())
    }
}

/// The smallest [`EndpointConfig::fragment_size`] other than 0; a
/// configured 1 to 255 is raised to it. (So an empty INFORMATIONAL
/// message is never fragmented.)
pub const MIN_FRAGMENT_SIZE: usize = 256;

/// [`EndpointConfig::init_window`]'s default: strongSwan's
/// `charon.block_threshold`, the half-open IKE SAs a default charon
/// accepts from one address (it drops IKE_SA_INIT beyond them).
pub const DEFAULT_INIT_WINDOW: usize = 5;

/// Endpoint-wide protocol settings (strongSwan's `charon.*` options).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EndpointConfig {
    /// First retransmission timeout (`retransmit_timeout`, 4 s).
    pub retransmit_timeout: Duration,
    /// Back-off factor (`retransmit_base`, 1.8).
    pub retransmit_base: f64,
    /// Retransmissions before giving up (`retransmit_tries`, 5).
    pub retransmit_tries: u32,
    /// How long a responder keeps an IKE SA that has not completed IKE_AUTH
    /// (`half_open_timeout`, 30 s).
    pub half_open_timeout: Duration,
    /// Half-open SAs from which on IKE_SA_INIT requests must carry a
    /// cookie (`cookie_threshold`, strongSwan: 30); `None`: never.
    pub cookie_threshold: Option<usize>,
    /// The other limits on half-open IKE SAs (`sa::dos`).
    pub dos: super::DosLimits,
    /// Whose proposal order wins as responder.
    pub preference: Preference,
    /// Most INVALID_KE_PAYLOAD retries of one IKE_SA_INIT.
    pub max_invalid_ke_retries: u32,
    /// Bounds for parsing received messages.
    pub limits: ParseLimits,
    /// Our NAT-T port (4500): where IKE moves when NAT is detected
    /// (RFC 7296 2.23) and the source port of ESP in UDP.
    pub natt_port: u16,
    /// Interval of NAT keepalives (RFC 3948 2.3) from the side behind NAT
    /// (strongSwan's `charon.keep_alive`, 20 s); zero: none.
    pub keep_alive: Duration,
    /// A Child SA deleted for `inactivity` takes its IKE SA along if it
    /// was the only one (strongSwan's `charon.inactivity_close_ike`, no).
    pub inactivity_close_ike: bool,
    /// Largest IP datagram an IKE fragment is sent in (strongSwan's
    /// `charon.fragment_size`, 1280); 0: 576 for IPv4, 1280 for IPv6.
    /// The IP and UDP headers and the non-ESP marker are subtracted from
    /// it for the IKE message.
    pub fragment_size: usize,
    /// Bounds on reassembling the peer's fragmented messages.
    pub reassembly: super::ReassemblyLimits,
    /// What the peer of one IKE SA can make us hold (`sa::limits`).
    pub peer_limits: super::PeerLimits,
    /// Where the key exchanges run: inline, or handed to the driver's
    /// workers (`Endpoint::poll_compute`).
    pub compute: super::ComputeMode,
    /// Most IKE SAs we initiate toward one peer address that may be
    /// between IKE_SA_INIT and the end of IKE_AUTH at once; more wait
    /// their turn (`pacing`). 0: no limit.
    pub init_window: usize,
    /// Follow a gateway's REDIRECT (RFC 5685; strongSwan's
    /// `charon.follow_redirects`, yes) and announce it in IKE_SA_INIT.
    pub follow_redirects: bool,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            retransmit_timeout: Duration::from_secs(4),
            retransmit_base: 1.8,
            retransmit_tries: 5,
            half_open_timeout: Duration::from_secs(30),
            cookie_threshold: Some(30),
            dos: super::DosLimits::default(),
            preference: Preference::Configured,
            max_invalid_ke_retries: 5,
            limits: ParseLimits::default(),
            natt_port: 4500,
            keep_alive: Duration::from_secs(20),
            inactivity_close_ike: false,
            fragment_size: 1280,
            reassembly: super::ReassemblyLimits::default(),
            peer_limits: super::PeerLimits::default(),
            compute: super::ComputeMode::Inline,
            init_window: DEFAULT_INIT_WINDOW,
            follow_redirects: true,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn soft_limits_are_lowered_by_up_to_their_range_never_to_zero() {
        let l = ChildLifetimes {
            rekey_bytes: 1000,
            life_bytes: 1100,
            rand_bytes: 100,
            rekey_packets: 50,
            life_packets: 0,
            rand_packets: 500,
            ..ChildLifetimes::default()
        };
        assert_eq!(l.kernel_limits().soft_bytes, Some(1000));
        assert_eq!(l.kernel_limits().soft_packets, Some(50));
        let mut asked = Vec::new();
        let k = l.kernel_limits_with(|max| {
            asked.push(max);
            max.saturating_sub(1)
        });
        // The range is capped at the limit; the hard limits stay.
        assert_eq!(asked, [100, 50]);
        assert_eq!(k.soft_bytes, Some(901));
        assert_eq!(k.soft_packets, Some(1));
        assert_eq!((k.hard_bytes, k.hard_packets), (Some(1100), None));
        // A jitter source that overshoots still leaves a limit of 1.
        let k = l.kernel_limits_with(|_| u64::MAX);
        assert_eq!((k.soft_bytes, k.soft_packets), (Some(1), Some(1)));
        // No limit, no jitter.
        let off = ChildLifetimes {
            rand_bytes: 10,
            ..ChildLifetimes::default()
        };
        let k = off.kernel_limits_with(|_| panic!("no limit, no jitter"));
        assert_eq!((k.soft_bytes, k.soft_packets), (None, None));
    }

    #[test]
    fn time_limits_are_the_rekey_and_life_times_in_whole_seconds_rounded_up() {
        let l = |rekey: Duration, life: Duration| {
            let k = ChildLifetimes {
                rekey_time: rekey,
                life_time: life,
                rand_time: Duration::from_secs(1),
                ..ChildLifetimes::default()
            }
            .kernel_limits_with(|_| 0);
            (k.soft_secs, k.hard_secs)
        };
        let s = Duration::from_secs;
        // charon's defaults; rekey_time = 5s alone (life 5 s).
        assert_eq!(l(s(3600), s(3960)), (Some(3600), Some(3960)));
        assert_eq!(l(s(5), s(5)), (Some(5), Some(5)));
        // Never before our own timers: fractions round up.
        assert_eq!(
            l(Duration::from_millis(4500), Duration::from_millis(5001)),
            (Some(5), Some(6))
        );
        // Zero is no limit.
        assert_eq!(l(s(0), s(60)), (None, Some(60)));
        assert_eq!(l(s(60), s(0)), (Some(60), None));
        assert_eq!(l(s(0), s(0)), (None, None));
        assert_eq!(l(Duration::MAX, Duration::MAX).1, Some(u64::MAX));
    }
}
