//! iked's configuration: YAML that mirrors swanctl.conf's names, parsed
//! into typed values and validated, with every error located
//! (`file:line: key.path: message`). See docs/configuration.md.
//!
//! ```
//! let yaml = "
//! connections:
//!   site-b:
//!     remote_addrs: [198.51.100.1]
//!     local:  { auth: psk, id: gw-a.example.net }
//!     remote: { auth: psk, id: gw-b.example.net }
//!     children:
//!       lan: { local_ts: [10.1.0.0/24], remote_ts: [10.2.0.0/24] }
//! secrets:
//!   ike:
//!     - { ids: [gw-a.example.net, gw-b.example.net], secret: 0x0123456789abcdef }
//! ";
//! let config = ike::config::Config::from_yaml_str(yaml, "iked.yaml").unwrap();
//! let conn = &config.connections()[0];
//! assert_eq!(conn.name, "site-b");
//! assert_eq!(conn.children[0].mode, ike::config::Mode::Tunnel);
//! let psk = config.find_psk(
//!     &"gw-a.example.net".parse().unwrap(),
//!     &"gw-b.example.net".parse().unwrap(),
//! );
//! assert_eq!(psk, Some(&[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef][..]));
//! ```

mod behaviour;
mod build;
mod dos;
mod identity;
mod inactivity;
mod not_planned;
mod policy;
mod pools;
mod radius;
mod redirect;
mod saopt;
#[cfg(test)]
mod tests;
pub mod tree;
mod ts;
mod updown;
mod weak;
mod yaml;

use core::fmt;
use core::str::FromStr;
use std::net::IpAddr;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::wire::codes::ProtocolId;
use crate::wire::sa::Proposal;

pub use behaviour::{Behaviour, Childless, Unique};
pub use dos::{DosSettings, Limit};
pub(crate) use identity::dn_attr_name;
pub use identity::{DistinguishedName, IdMatch, Identity, IdentityError};
pub use inactivity::MAX_INACTIVITY;
pub use policy::{ChildPolicy, ConnPolicy, IdValue, MarkCfg, SetMarkCfg};
pub use pools::PoolCfg;
pub use saopt::{ChildSaOpts, CopyDscp, HwOffload, MAX_REPLAY_WINDOW, TFC_PAD_MTU};
pub use ts::{Address, Family, NetNames, PortRange, TrafficSelector, TsAddresses};
pub use updown::Updown;

/// A configuration file's format: iked's YAML or strongSwan's swanctl.conf
/// (read by the `swanctl-compat` crate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigFormat {
    /// iked's YAML (docs/configuration.md).
    Yaml,
    /// strongSwan's swanctl.conf, read by the `swanctl-compat` crate.
    Swanctl,
}

impl ConfigFormat {
    /// The format a file name implies: `.conf` is swanctl.conf, anything
    /// else YAML.
    pub fn from_path(path: &std::path::Path) -> ConfigFormat {
        match path.extension() {
            Some(e) if e == "conf" => ConfigFormat::Swanctl,
            _ => ConfigFormat::Yaml,
        }
    }
}

impl FromStr for ConfigFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "yaml" => Ok(ConfigFormat::Yaml),
            "swanctl" => Ok(ConfigFormat::Swanctl),
            _ => Err(format!("unknown format {s:?} (yaml or swanctl)")),
        }
    }
}

/// A whole configuration file, validated.
#[derive(Clone, Debug, Default)]
pub struct Config {
    settings: Settings,
    connections: Vec<Connection>,
    ike_secrets: Vec<IkeSecret>,
    eap_secrets: Vec<IkeSecret>,
    key_secrets: Vec<KeySecret>,
    authorities: Vec<Authority>,
    pools: Vec<PoolCfg>,
    /// `radius`: the RADIUS servers (YAML; strongswan.conf's
    /// `eap-radius` section is read by the daemon and wins).
    radius: Option<crate::radius::Settings>,
}

/// `settings`: iked's endpoint-wide settings, strongSwan's `charon.*`
/// options of strongswan.conf (iked's own section; swanctl.conf has none).
/// The daemon's command line overrides them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// `fragment_size`: the largest IP datagram of an IKE fragment
    /// (`charon.fragment_size`; 0: 576 for IPv4, 1280 for IPv6); `None`:
    /// not set (1280).
    pub fragment_size: Option<usize>,
    /// The limits on half-open IKE SAs.
    pub dos: DosSettings,
}

/// `authorities.<name>`: a CA with where its CRLs are.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Authority {
    /// The section name.
    pub name: String,
    /// `cacert` (or swanctl's `file`): the CA certificate.
    pub cacert: CredFile,
    /// `crl_uris`: CRL distribution points for every certificate the CA
    /// issues, asked for before the certificate's own.
    pub crl_uris: Vec<String>,
}

/// Which secrets section a private key's passphrase comes from; each means
/// its own folder in swanctl (`private/`, `rsa/`, `ecdsa/`, `pkcs8/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// `private`: any key type.
    Private,
    /// `rsa`.
    Rsa,
    /// `ecdsa`.
    Ecdsa,
    /// `pkcs8`.
    Pkcs8,
}

impl KeyKind {
    /// The secrets section name and swanctl folder: `private`, `rsa`,
    /// `ecdsa`, `pkcs8`.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Private => "private",
            KeyKind::Rsa => "rsa",
            KeyKind::Ecdsa => "ecdsa",
            KeyKind::Pkcs8 => "pkcs8",
        }
    }
}

/// `secrets.private[i]` (and `rsa`, `ecdsa`, `pkcs8`): the passphrase of
/// an encrypted private key file.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeySecret {
    /// The section it is in.
    pub kind: KeyKind,
    /// `file`: the key file.
    pub file: CredFile,
    /// `secret`: the passphrase (`0x`/`0s` decoded as for PSKs).
    pub secret: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySecret")
            .field("kind", &self.kind)
            .field("file", &self.file)
            .field("secret", &format_args!("<{} octets>", self.secret.len()))
            .finish()
    }
}

/// `connections.<name>`: one IKE connection.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Connection {
    /// The section name.
    pub name: String,
    /// `version`: 0 (any; iked initiates and answers IKEv2) or 2.
    pub version: u8,
    /// `local_addrs`, default `[%any]`.
    pub local_addrs: Vec<Address>,
    /// `remote_addrs`, default `[%any]`.
    pub remote_addrs: Vec<Address>,
    /// `local_port`, default 500.
    pub local_port: u16,
    /// `remote_port`, default 500.
    pub remote_port: u16,
    /// `proposals`, default `[default]`, numbered 1..n.
    pub proposals: Vec<Proposal>,
    /// `local`: our authentication round.
    pub local: LocalAuth,
    /// `remote`: the peer's authentication round.
    pub remote: RemoteAuth,
    /// `local2`: our second authentication round (RFC 4739; swanctl's
    /// second `local<suffix>` section), done as initiator.
    pub local2: Option<LocalAuth>,
    /// `remote2`: the peer's second authentication round, asked for as
    /// responder.
    pub remote2: Option<RemoteAuth>,
    /// `children`, in file order.
    pub children: Vec<Child>,
    /// `encap`, default `no`: force UDP encapsulation of ESP (NAT
    /// traversal) even when no NAT is detected.
    pub encap: bool,
    /// `mobike`, default `yes` (as swanctl): MOBIKE (RFC 4555), which also
    /// moves IKE to the NAT-T port after IKE_SA_INIT when the peer does
    /// NAT detection, NAT or not.
    pub mobike: bool,
    /// `rekey_time`, `reauth_time`, `over_time`, `rand_time` of the IKE SA.
    pub lifetimes: IkeLifetimes,
    /// `keyingtries`, `childless`.
    pub behaviour: Behaviour,
    /// `dpd_delay`: a liveness check after this long without traffic from
    /// the peer (IKE or ESP); zero (the default): none.
    pub dpd_delay: Duration,
    /// `dpd_timeout`: read for compatibility; IKEv1 only in strongSwan,
    /// IKEv2 declares the peer dead when the retransmissions run out.
    pub dpd_timeout: Duration,
    /// `send_cert`, default `ifasked`.
    pub send_cert: SendCert,
    /// `send_certreq`, default yes: send CERTREQs for our trusted CAs
    /// when the peer authenticates with a signature.
    pub send_certreq: bool,
    /// `fragmentation`: `yes` (default), `accept`, `force` or `no`
    /// (RFC 7383, strongSwan's meaning).
    pub fragmentation: crate::sa::Fragmentation,
    /// `if_id_in`, `if_id_out`: the children's default interface ids.
    pub policy: ConnPolicy,
    /// `pools`: the pools a responder assigns virtual IPs from, in
    /// order (names of `pools` sections).
    pub pools: Vec<String>,
    /// `vips`: the virtual IPs an initiator asks for (`0.0.0.0`, `::`:
    /// any of the family).
    pub vips: Vec<IpAddr>,
    /// `redirect` (iked's own key): where a gateway sends its clients
    /// (RFC 5685).
    pub redirect: Option<crate::sa::RedirectCfg>,
    /// The line of the connection's name in the file.
    pub line: u64,
}

/// When an IKE SA is rekeyed, reauthenticated and deleted (swanctl's
/// connection keys `rekey_time`, `reauth_time`, `over_time`, `rand_time`).
/// Zero turns rekeying or reauthentication off; [`Default`] is all off (what
/// the engine's tests start from), [`IkeLifetimes::strongswan`] the
/// configuration's defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IkeLifetimes {
    /// `rekey_time`: rekey this long after establishment, minus a random
    /// part of `rand_time`.
    pub rekey_time: Duration,
    /// `reauth_time`: reauthenticate this long after establishment (a new
    /// IKE SA with IKE_SA_INIT and IKE_AUTH replaces this one,
    /// make-before-break), minus a random part of `rand_time`.
    pub reauth_time: Duration,
    /// `over_time`: how long after the earlier of `rekey_time` and
    /// `reauth_time` the IKE SA is deleted if neither completed.
    pub over_time: Duration,
    /// `rand_time`: upper bound of the random time subtracted from
    /// `rekey_time` and `reauth_time`.
    pub rand_time: Duration,
}

impl IkeLifetimes {
    /// strongSwan's defaults: `rekey_time` 4h, `reauth_time` 0 (off),
    /// `over_time` and `rand_time` 1440 s.
    pub fn strongswan() -> Self {
        Self::with(None, None, None, None)
    }

    /// strongSwan's derived defaults (vici_config.c) for what is not
    /// given, in whole seconds as charon counts: neither `rekey_time` nor
    /// `reauth_time` given: rekey 4h and no reauthentication; one given: the
    /// other is 0; `over_time`: 10% of the larger of the two; `rand_time`:
    /// the smaller of `over_time` and half the smaller non-zero of the two.
    pub fn with(
        rekey: Option<Duration>,
        reauth: Option<Duration>,
        over: Option<Duration>,
        rand: Option<Duration>,
    ) -> Self {
        let (rekey, reauth) = match (rekey, reauth) {
            (None, None) => (Duration::from_secs(4 * 3600), Duration::ZERO),
            (a, b) => (a.unwrap_or_default(), b.unwrap_or_default()),
        };
        let (rk, ra) = (rekey.as_secs(), reauth.as_secs());
        let over = over.unwrap_or(Duration::from_secs(rk.max(ra) / 10));
        let rand = rand.unwrap_or_else(|| {
            let base = if rk != 0 && ra != 0 {
                rk.min(ra)
            } else {
                rk.max(ra)
            };
            Duration::from_secs(over.as_secs().min(base / 2))
        });
        Self {
            rekey_time: rekey,
            reauth_time: reauth,
            over_time: over,
            rand_time: rand,
        }
    }
}

/// When a Child SA is rekeyed and expires (swanctl's child keys). Zero
/// turns a limit off; [`Default`] is all off (what the engine's tests start
/// from), [`ChildLifetimes::strongswan`] the configuration's defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChildLifetimes {
    /// `rekey_time`: rekey this long after install, minus a random part of
    /// `rand_time`.
    pub rekey_time: Duration,
    /// `life_time`: delete it this long after install if it was not
    /// rekeyed.
    pub life_time: Duration,
    /// `rand_time`: upper bound of the random time subtracted from
    /// `rekey_time`.
    pub rand_time: Duration,
    /// `rekey_bytes`: the kernel's soft byte limit (soft expire: rekey).
    pub rekey_bytes: u64,
    /// `life_bytes`: the kernel's hard byte limit (it deletes the SA).
    pub life_bytes: u64,
    /// `rekey_packets`: the kernel's soft packet limit.
    pub rekey_packets: u64,
    /// `life_packets`: the kernel's hard packet limit.
    pub life_packets: u64,
    /// `rand_bytes`: upper bound of the random count subtracted from
    /// `rekey_bytes` (configuration default `life_bytes - rekey_bytes`).
    pub rand_bytes: u64,
    /// `rand_packets`: upper bound of the random count subtracted from
    /// `rekey_packets` (configuration default `life_packets -
    /// rekey_packets`).
    pub rand_packets: u64,
}

impl ChildLifetimes {
    /// strongSwan's defaults: `rekey_time` 1h, `life_time` 110% of it,
    /// `rand_time` = `life_time - rekey_time`; byte and packet limits off.
    pub fn strongswan() -> Self {
        Self::with(
            LimitKeys::default(),
            LimitKeys::default(),
            LimitKeys::default(),
        )
    }

    /// strongSwan's derived defaults (vici_config.c `check_lifetimes`) for
    /// what is not given, for times (whole seconds), bytes and packets
    /// alike: `rekey` = `life` / 1.1 if only `life` is given (1h for
    /// times, 0 for counts if neither is); `life` = `rekey` × 1.1; `rand` =
    /// `life - rekey` (0 if that is negative). charon computes the 1.1 in
    /// double precision and truncates: `rekey_time = 5s` alone gives
    /// `life_time` 5 s, `life_time = 11s` alone `rekey_time` 10 s (11 / 1.1 rounds to
    /// 10), `life_bytes = 100` alone `rekey_bytes` 90.
    pub fn with(time: LimitKeys, bytes: LimitKeys, packets: LimitKeys) -> Self {
        let time = time.derive(3600);
        let bytes = bytes.derive(0);
        let packets = packets.derive(0);
        Self {
            rekey_time: Duration::from_secs(time.0),
            life_time: Duration::from_secs(time.1),
            rand_time: Duration::from_secs(time.2),
            rekey_bytes: bytes.0,
            life_bytes: bytes.1,
            rand_bytes: bytes.2,
            rekey_packets: packets.0,
            life_packets: packets.1,
            rand_packets: packets.2,
        }
    }
}

/// The three keys of one kind of child limit as configured (`rekey_*`,
/// `life_*`, `rand_*`; times in whole seconds), `None` where not given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitKeys {
    /// `rekey_time`, `rekey_bytes` or `rekey_packets`.
    pub rekey: Option<u64>,
    /// `life_time`, `life_bytes` or `life_packets`.
    pub life: Option<u64>,
    /// `rand_time`, `rand_bytes` or `rand_packets`.
    pub rand: Option<u64>,
}

impl LimitKeys {
    /// (rekey, life, rand) with charon's defaults, `default_rekey` when
    /// neither limit is given.
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "charon computes in double and converts back truncating; a float \
                  conversion saturates in Rust, so no value panics"
    )]
    fn derive(self, default_rekey: u64) -> (u64, u64, u64) {
        let rekey = match (self.rekey, self.life) {
            (Some(r), _) => r,
            (None, Some(l)) => (l as f64 / 1.1) as u64,
            (None, None) => default_rekey,
        };
        let life = self.life.unwrap_or((rekey as f64 * 1.1) as u64);
        let rand = self.rand.unwrap_or(life.saturating_sub(rekey));
        (rekey, life, rand)
    }
}

impl Connection {
    /// The identity we send: `local.id` if configured, else (as strongSwan
    /// with PSK) the local IP address the IKE SA uses.
    pub fn local_id(&self, local_addr: IpAddr) -> Identity {
        self.local.id.clone().unwrap_or(Identity::from(local_addr))
    }

    /// The child named `name`.
    pub fn child(&self, name: &str) -> Option<&Child> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// How a side authenticates (`auth`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// `psk`: a shared key from `secrets.ike`.
    Psk,
    /// `pubkey`, `rsa`, `rsa/pss`, `ecdsa`, `ed25519`, optionally with
    /// hash suffixes (`rsa-sha384`, `ecdsa-sha256-sha384`,
    /// `pubkey-sha256`): a signature with a certificate's or a raw public
    /// key. The list is what the suffixes allow, in order; empty for
    /// plain `pubkey` (any key, any hash).
    Pubkey(Vec<SigConstraint>),
    /// `eap-mschapv2`, `eap-dynamic`...: EAP (RFC 7296 2.16), as client
    /// in `local`, as server in `remote`.
    Eap(crate::eap::MethodName),
}

impl AuthMethod {
    /// Whether this is a signature method (not `psk`).
    pub fn is_pubkey(&self) -> bool {
        matches!(self, AuthMethod::Pubkey(_))
    }
}

/// A key type in an `auth` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SigKey {
    /// `pubkey`: any key type.
    Any,
    /// `rsa`: RSA with PKCS#1 v1.5 padding.
    Rsa,
    /// `rsa/pss`: RSA with PSS padding.
    RsaPss,
    /// `ecdsa`: ECDSA (P-256, P-384, P-521).
    Ecdsa,
    /// `ed25519`.
    Ed25519,
}

/// A hash in an `auth` value (`-sha256`, ...); `identity` is Ed25519's
/// (RFC 8420).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SigHash {
    /// `sha1`.
    Sha1,
    /// `sha256`.
    Sha256,
    /// `sha384`.
    Sha384,
    /// `sha512`.
    Sha512,
    /// `identity` (no pre-hash: Ed25519).
    Identity,
}

/// One signature scheme an `auth` value allows: a key type, and a hash if
/// one was given (none: any hash for that key type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SigConstraint {
    /// The key type.
    pub key: SigKey,
    /// The hash, if the value names one for this key type.
    pub hash: Option<SigHash>,
    /// A minimum key size in bits (`rsa-2048`, `ecdsa-384`), if given.
    pub min_bits: Option<u32>,
}

/// A credential file named in the configuration, with where it is named
/// (for messages about it). The path is as the configuration means it:
/// absolute, or relative to the configuration file's directory (swanctl.conf
/// names relative to its folders, `certs = gw.pem`, arrive as
/// `x509/gw.pem`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CredFile {
    /// The path.
    pub path: String,
    /// Where the configuration names it.
    pub at: Place,
}

/// A place in the configuration: file, line and key path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Place {
    /// The configuration file (an included one if there).
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// The key path, `connections.gw.local.certs[0]`.
    pub path: String,
}

impl Place {
    /// A problem at this place.
    pub fn issue(&self, message: impl Into<String>) -> ConfigIssue {
        ConfigIssue {
            file: self.file.clone(),
            line: self.line,
            path: self.path.clone(),
            message: message.into(),
        }
    }
}

/// `remote.revocation`: how certificate revocation is checked, strongSwan's
/// `strict | ifuri | relaxed` (the certificate checks' own type).
pub use crate::pki::Revocation;

/// `send_cert`: when we send our certificate and its chain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SendCert {
    /// `always`.
    Always,
    /// `ifasked` (default): if the peer sent a CERTREQ.
    #[default]
    IfAsked,
    /// `never`.
    Never,
}

/// `connections.<name>.local`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LocalAuth {
    /// `auth`.
    pub auth: AuthMethod,
    /// `id`; `None` (also for `%any`): the certificate's subject DN with
    /// `certs`, else the local IP address.
    pub id: Option<Identity>,
    /// `certs`: our certificate (the first file's first certificate) and
    /// what else they hold (intermediates we send).
    pub certs: Vec<CredFile>,
    /// `pubkeys`: without `certs`, our raw public key (the first file's),
    /// signed for with its private key; the peer has it configured.
    pub pubkeys: Vec<CredFile>,
    /// `eap_id`: with `auth = eap-*`, the identity we give in EAP (and
    /// our `secrets.eap` entry is for); `None`: `id`.
    pub eap_id: Option<Identity>,
    /// `aaa_id`: with `auth = eap-*`, the identity the EAP server proves
    /// in the method (EAP-TLS: its certificate's), where an AAA backend
    /// runs it; `None`: the peer's IKE identity.
    pub aaa_id: Option<Identity>,
}

/// `connections.<name>.remote`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteAuth {
    /// `auth`.
    pub auth: AuthMethod,
    /// `id`, default `%any`: the identities accepted from the peer.
    pub id: Identity,
    /// `certs`: the peer must authenticate with one of these certificates.
    pub certs: Vec<CredFile>,
    /// `cacerts`: the peer's chain must end at one of these CAs.
    pub cacerts: Vec<CredFile>,
    /// `pubkeys`: raw public keys the peer may authenticate with.
    pub pubkeys: Vec<CredFile>,
    /// `revocation`.
    pub revocation: Revocation,
    /// `eap_id`: with `auth = eap-*`, ask the peer's EAP identity first
    /// (EAP-Identity) and require this one (`%any`: any); `None`: no
    /// EAP-Identity, the peer's IKE identity is its EAP identity.
    pub eap_id: Option<Identity>,
    /// `aaa_id`: with `auth = eap-*`, the identity our side of the method
    /// runs as; `None`: our IKE identity.
    pub aaa_id: Option<Identity>,
}

/// IPsec mode of a Child SA (`children.<name>.mode`). Displays as logs and
/// `ikectl status` show it: `TUNNEL`, `TRANSPORT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// `tunnel` (the default).
    #[default]
    Tunnel,
    /// `transport`: negotiated with N(USE_TRANSPORT_MODE) (RFC 7296 1.3.1).
    Transport,
    /// `pass`: a shunt, no IKE: policies that let the child's traffic
    /// pass in the clear, installed at load (`start_action = trap`).
    Pass,
    /// `drop`: a shunt, no IKE: policies that drop the child's traffic.
    Drop,
}

impl Mode {
    /// Whether this is a shunt (`pass` or `drop`): kernel policies only,
    /// never negotiated.
    pub fn is_shunt(self) -> bool {
        matches!(self, Self::Pass | Self::Drop)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tunnel => "TUNNEL",
            Self::Transport => "TRANSPORT",
            Self::Pass => "PASS",
            Self::Drop => "DROP",
        })
    }
}

/// `children.<name>.start_action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum StartAction {
    /// `none` (default): wait for the peer or `ikectl up`.
    #[default]
    None,
    /// `start`: initiate when the configuration is loaded.
    Start,
    /// `trap`: install trap policies; the first packet that matches them
    /// (the kernel's ACQUIRE) initiates.
    Trap,
}

impl fmt::Display for StartAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StartAction::None => "none",
            StartAction::Start => "start",
            StartAction::Trap => "trap",
        })
    }
}

/// `children.<name>.close_action`: what happens when the peer deletes the
/// Child SA or its IKE SA (strongSwan's names and default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CloseAction {
    /// `none` (default): nothing.
    #[default]
    None,
    /// `trap`: install trap policies, so that the next packet initiates.
    Trap,
    /// `start`: initiate again at once.
    Start,
}

impl fmt::Display for CloseAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseAction::None => "none",
            CloseAction::Trap => "trap",
            CloseAction::Start => "start",
        })
    }
}

/// `children.<name>.dpd_action`: what happens when the peer is found
/// dead (a liveness check or any other request went unanswered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum DpdAction {
    /// `clear` (default): remove everything.
    #[default]
    Clear,
    /// `trap`: install trap policies, so that the next packet initiates.
    Trap,
    /// `restart`: initiate again at once.
    Restart,
}

impl fmt::Display for DpdAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DpdAction::Clear => "clear",
            DpdAction::Trap => "trap",
            DpdAction::Restart => "restart",
        })
    }
}

/// `connections.<conn>.children.<name>`: one Child SA configuration.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Child {
    /// The section name.
    pub name: String,
    /// `local_ts`, default `[dynamic]`.
    pub local_ts: Vec<TrafficSelector>,
    /// `remote_ts`, default `[dynamic]`.
    pub remote_ts: Vec<TrafficSelector>,
    /// `esp_proposals`, default `[default]`; unused if `ah_proposals` is set.
    pub esp_proposals: Vec<Proposal>,
    /// `ah_proposals`, default none; if set the Child SA uses AH.
    pub ah_proposals: Vec<Proposal>,
    /// `mode`.
    pub mode: Mode,
    /// `start_action`.
    pub start_action: StartAction,
    /// `rekey_time`, `life_time`, `rand_time`, byte and packet limits.
    pub lifetimes: ChildLifetimes,
    /// `close_action`: what to do when the peer deletes the Child SA or
    /// its IKE SA.
    pub close_action: CloseAction,
    /// `dpd_action`: what to do when the peer is found dead.
    pub dpd_action: DpdAction,
    /// `replay_window`, `copy_*`, `tfc_padding`, `hw_offload`, `ipcomp`.
    pub sa_opts: ChildSaOpts,
    /// Marks, interface ids, priority, reqid and which policies.
    pub policy: ChildPolicy,
    /// `updown` and `hostaccess`: the command run as the Child SA comes
    /// and goes (`None`: none).
    pub updown: Option<Updown>,
    /// `inactivity` (default 0: never): delete the Child SA when nothing
    /// passed its policies for that long.
    pub inactivity: Duration,
    /// The line of the child's name in the file.
    pub line: u64,
}

impl Child {
    /// ESP, or AH if `ah_proposals` is configured (as strongSwan).
    pub fn protocol(&self) -> ProtocolId {
        if self.ah_proposals.is_empty() {
            ProtocolId::ESP
        } else {
            ProtocolId::AH
        }
    }

    /// The proposals to negotiate: `ah_proposals` if set, else `esp_proposals`.
    pub fn proposals(&self) -> &[Proposal] {
        if self.ah_proposals.is_empty() {
            &self.esp_proposals
        } else {
            &self.ah_proposals
        }
    }
}

/// `secrets.ike[i]`: a pre-shared key and the identities it is for.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IkeSecret {
    /// `ids`; empty means any peer (strongSwan's `%any` owner).
    pub ids: Vec<Identity>,
    /// The key, decoded from `0x` hex or `0s` base64 if written so.
    pub secret: Zeroizing<Vec<u8>>,
    /// The line of the entry in the file.
    pub line: u64,
}

impl fmt::Debug for IkeSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IkeSecret")
            .field("ids", &self.ids)
            .field("secret", &format_args!("<{} octets>", self.secret.len()))
            .field("line", &self.line)
            .finish()
    }
}

impl IkeSecret {
    /// How well this secret's owners match `id`: the best match of any
    /// listed identity (no ids: `%any`).
    fn owner_match(&self, id: &Identity) -> IdMatch {
        if self.ids.is_empty() {
            return id.matches(&Identity::Any);
        }
        self.ids
            .iter()
            .map(|owner| id.matches(owner))
            .max()
            .unwrap_or(IdMatch::None)
    }
}

impl Config {
    /// Parses and validates a configuration. `file_name` is only used in
    /// messages. Every problem found is in the error, not just the first.
    /// Service names in traffic selectors are not resolved (use
    /// [`Config::from_yaml_str_with`]).
    pub fn from_yaml_str(text: &str, file_name: &str) -> Result<Config, ConfigError> {
        build::build(text, file_name, &NetNames::default())
    }

    /// Like [`Config::from_yaml_str`], with the host's service and
    /// protocol names for traffic selectors (`[tcp/ssh]`).
    pub fn from_yaml_str_with(
        text: &str,
        file_name: &str,
        names: &NetNames,
    ) -> Result<Config, ConfigError> {
        build::build(text, file_name, names)
    }

    /// Validates a located tree from another front end (swanctl.conf, read
    /// by the `swanctl-compat` crate) with the same schema and messages as
    /// the YAML. `files[i]` is the name of [`tree::FileId`]`(i)` in
    /// messages. Every problem found is in the error, sorted by file
    /// (`FileId` order), then line.
    pub fn from_tree<S: AsRef<str>>(root: &tree::Node, files: &[S]) -> Result<Config, ConfigError> {
        build::build_tree(root, files, &NetNames::default())
    }

    /// Like [`Config::from_tree`], with the host's service and protocol
    /// names for traffic selectors.
    pub fn from_tree_with<S: AsRef<str>>(
        root: &tree::Node,
        files: &[S],
        names: &NetNames,
    ) -> Result<Config, ConfigError> {
        build::build_tree(root, files, names)
    }

    /// Gives back the room the lists grew while they were built: a list
    /// of one item was made with room for four, which the daemon kept
    /// for every connection (about 1.4 KB of a connection's 2.5 KB).
    /// Secrets are not moved (their old buffers would not be wiped).
    fn compact(&mut self) {
        fn proposals(v: &mut Vec<Proposal>) {
            v.shrink_to_fit();
            for p in v {
                p.transforms.shrink_to_fit();
            }
        }
        self.connections.shrink_to_fit();
        for c in &mut self.connections {
            c.local_addrs.shrink_to_fit();
            c.remote_addrs.shrink_to_fit();
            proposals(&mut c.proposals);
            c.children.shrink_to_fit();
            for ch in &mut c.children {
                ch.local_ts.shrink_to_fit();
                ch.remote_ts.shrink_to_fit();
                proposals(&mut ch.esp_proposals);
                proposals(&mut ch.ah_proposals);
            }
        }
    }

    /// The endpoint-wide `settings`.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The connections in file order.
    pub fn connections(&self) -> &[Connection] {
        &self.connections
    }

    /// The connection named `name`.
    pub fn connection(&self, name: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.name == name)
    }

    /// The IKE pre-shared keys in file order.
    pub fn ike_secrets(&self) -> &[IkeSecret] {
        &self.ike_secrets
    }

    /// The EAP secrets (`secrets.eap`: users' passwords) in file order.
    pub fn eap_secrets(&self) -> &[IkeSecret] {
        &self.eap_secrets
    }

    /// The passphrases of private key files, in file order.
    pub fn key_secrets(&self) -> &[KeySecret] {
        &self.key_secrets
    }

    /// The `authorities` sections in file order.
    pub fn authorities(&self) -> &[Authority] {
        &self.authorities
    }

    /// The `pools` sections in file order.
    pub fn pools(&self) -> &[PoolCfg] {
        &self.pools
    }

    /// `radius`: the RADIUS servers for EAP-RADIUS and accounting, if the
    /// file names any.
    pub fn radius(&self) -> Option<&crate::radius::Settings> {
        self.radius.as_ref()
    }

    /// Every credential file the configuration names, with where.
    pub fn cred_files(&self) -> impl Iterator<Item = &CredFile> {
        let conns = self.connections.iter().flat_map(|c| {
            c.local
                .certs
                .iter()
                .chain(&c.local.pubkeys)
                .chain(&c.remote.certs)
                .chain(&c.remote.cacerts)
                .chain(&c.remote.pubkeys)
        });
        conns
            .chain(self.authorities.iter().map(|a| &a.cacert))
            .chain(self.key_secrets.iter().map(|k| &k.file))
    }

    /// Attaches file names to the places recorded while building.
    fn name_places(&mut self, name: &dyn Fn(&str) -> String) {
        self.map_places(&|p: &mut Place| p.file = name(&p.file));
    }

    /// Changes every place the configuration recorded (of its credential
    /// files): for a front end whose key paths differ from the YAML's
    /// (swanctl-compat names `secrets.private-gw.file` for
    /// `secrets.private[0].file`).
    pub fn map_places(&mut self, f: &dyn Fn(&mut Place)) {
        let fix = |c: &mut CredFile| f(&mut c.at);
        for c in &mut self.connections {
            c.local
                .certs
                .iter_mut()
                .chain(&mut c.local.pubkeys)
                .chain(&mut c.remote.certs)
                .chain(&mut c.remote.cacerts)
                .chain(&mut c.remote.pubkeys)
                .for_each(fix);
        }
        self.authorities.iter_mut().for_each(|a| fix(&mut a.cacert));
        self.key_secrets.iter_mut().for_each(|k| fix(&mut k.file));
    }

    /// Everything [`Config::psk_warnings`], [`Config::weak_algorithm_warnings`]
    /// and [`Config::pool_warnings`] say, for `--check-config`, the start-up
    /// log and a reload.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = self.psk_warnings();
        out.extend(self.weak_algorithm_warnings());
        out.extend(self.pool_warnings());
        out
    }

    /// Pool names of connections that `pools` does not define. charon
    /// loads such a configuration and asks its other attribute providers
    /// (the dhcp, attr-sql and eap-radius plugins) for them; iked has
    /// none of those, so a client asking for an address from only such
    /// pools is answered INTERNAL_ADDRESS_FAILURE. A warning, not an
    /// error: the configuration loads as it does for charon.
    pub fn pool_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.connections {
            for name in c
                .pools
                .iter()
                .filter(|n| !self.pools.iter().any(|p| p.name == **n))
            {
                let what = match name.as_str() {
                    "dhcp" => " (charon's dhcp plugin)",
                    "radius" => {
                        " (charon's eap-radius plugin: addresses the RADIUS server assigns)"
                    }
                    _ => " (charon's attr-sql pools, or a typo)",
                };
                out.push(format!(
                    "connection {}: pools names \"{name}\", which pools does not define{what}: \
                     iked has no other source of addresses, so no client gets one from it",
                    c.name
                ));
            }
        }
        out
    }

    /// Connections whose specific remote identity (not `%any`) is
    /// authenticated with a PSK that no secret names it for: the secret
    /// [`Config::find_psk`] would use names only our identity (or none),
    /// so anyone holding it can claim that identity. One message per
    /// connection, for `--check-config` and the start-up log.
    pub fn psk_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.connections {
            if c.remote.auth != AuthMethod::Psk || c.remote.id == Identity::Any {
                continue;
            }
            let remote = &c.remote.id;
            let named = self
                .ike_secrets
                .iter()
                .any(|s| s.ids.iter().any(|o| remote.matches(o) == IdMatch::Perfect));
            if named {
                continue;
            }
            // Without local.id, the local address is the identity (when
            // the connection has one).
            let local = c.local.id.clone().unwrap_or_else(|| {
                c.local_addrs
                    .iter()
                    .find_map(|a| match a {
                        Address::Ip(ip) => Some(Identity::from(*ip)),
                        _ => None,
                    })
                    .unwrap_or(Identity::Any)
            });
            let Some(s) = self.find_psk_secret(&local, remote) else {
                continue;
            };
            let owners = if s.ids.is_empty() {
                "any identity".to_owned()
            } else {
                s.ids
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push(format!(
                "connection {}: remote.id {remote} is authenticated with the secret at line {} \
                 (for {owners}), which does not name it: anyone holding that secret can claim \
                 {remote}; list {remote} in the secret's ids",
                c.name, s.line
            ));
        }
        out
    }

    /// The pre-shared key for an IKE SA between `local` and `remote`, chosen
    /// as strongSwan's credential manager does: a secret is a candidate if
    /// one of its ids matches `local` or `remote` (a secret without ids
    /// matches both as `%any`); the candidate with the highest sum of the
    /// two matches wins (perfect 20, `%any` 1), the first in the file on a
    /// tie. So a secret listing both ids beats one listing one of them,
    /// which beats one for any peer.
    pub fn find_psk(&self, local: &Identity, remote: &Identity) -> Option<&[u8]> {
        self.find_psk_secret(local, remote)
            .map(|s| s.secret.as_slice())
    }

    /// The EAP secret (`secrets.eap`) between `local` and `remote` (a
    /// server and its user), chosen as [`Config::find_psk`] chooses.
    pub fn find_eap(&self, local: &Identity, remote: &Identity) -> Option<&[u8]> {
        best_secret(&self.eap_secrets, local, remote).map(|s| s.secret.as_slice())
    }

    /// The secret [`Config::find_psk`] chooses.
    fn find_psk_secret(&self, local: &Identity, remote: &Identity) -> Option<&IkeSecret> {
        best_secret(&self.ike_secrets, local, remote)
    }
}

/// Of `secrets`, the one for `local` and `remote` ([`Config::find_psk`]'s
/// choice).
fn best_secret<'a>(
    secrets: &'a [IkeSecret],
    local: &Identity,
    remote: &Identity,
) -> Option<&'a IkeSecret> {
    let mut best: Option<(u32, &IkeSecret)> = None;
    for s in secrets {
        let me = s.owner_match(local);
        let other = s.owner_match(remote);
        if me == IdMatch::None && other == IdMatch::None {
            continue;
        }
        let score = me.score().saturating_add(other.score());
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, s));
        }
    }
    best.map(|(_, s)| s)
}

impl FromStr for Identity {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Identity::parse(s)
    }
}

/// One located problem in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The file name given to [`Config::from_yaml_str`] (or the one of
    /// the node's file for [`Config::from_tree`]).
    pub file: String,
    /// 1-based line; 0 if the YAML parser could not tell.
    pub line: u64,
    /// The key path, `connections.site-b.children.lan.mode`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file, self.line, self.path, self.message
        )
    }
}

/// Everything wrong with a configuration, in file order; displays one
/// issue per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The problems, sorted by line.
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
