//! Security associations: SPI allocation, add, update, delete, get, dump.

use std::net::IpAddr;

use netlink_packet_xfrm::{
    self as nx, XfrmAttrs, XfrmMessage,
    state::{AllocSpiMessage, DelGetMessage, GetDumpMessage, ModifyMessage},
};

use crate::alg::{AlgInfo, AlgNames, Transforms, name_from_kernel};
use crate::codec::scrub_attrs;
use crate::conn::{Expect, Handle};
use crate::error::{Error, Op, SaDesc};
use crate::types::{Family, Lifetimes, Mark, Mode, Protocol, Selector, Usage, addr_from_kernel};

/// The largest replay window the kernel accepts: a bitmap of 128 32-bit
/// words ("ESN bitmap length must be <= 128", checked on Linux 6.18).
pub const MAX_REPLAY_WINDOW: u32 = 128 * 32;

/// UDP encapsulation of ESP (RFC 3948, NAT traversal): `espinudp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpEncap {
    /// UDP source port of the encapsulated packets (usually 4500).
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// Original address (NAT-OA) for transport-mode checksum fixups.
    pub original_address: Option<IpAddr>,
}

impl UdpEncap {
    /// ESP in UDP between two ports.
    pub fn new(src_port: u16, dst_port: u16) -> Self {
        Self {
            src_port,
            dst_port,
            original_address: None,
        }
    }
}

/// An SA's sequence numbers and anti-replay bitmap (`XFRMA_REPLAY_VAL`,
/// or `XFRMA_REPLAY_ESN_VAL` for an SA with extended sequence numbers or
/// a window over 32 packets). Read from a live SA ([`SaInfo::replay_state`])
/// and given to one that takes its place ([`SaConfig::replay_state`]), so
/// that the new SA sends on from the last sequence number sent (the peer
/// drops anything at or below the top of its window as a replay) and still
/// knows what it received.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ReplayState {
    /// Highest sequence number received (low 32 bits).
    pub seq: u32,
    /// High 32 bits of it (ESN only).
    pub seq_hi: u32,
    /// Last sequence number sent (low 32 bits).
    pub oseq: u32,
    /// High 32 bits of it (ESN only).
    pub oseq_hi: u32,
    /// Which packets of the window were received, in the kernel's layout:
    /// one word for the legacy form (bit `n`: packet `seq - n`), the
    /// window's words for the ESN form (a ring indexed by sequence number
    /// modulo the window, so only meaningful for the same window size).
    pub bitmap: Vec<u32>,
}

/// How an SA treats the outer IP header and pads, beyond its algorithms
/// (the flags strongSwan sets from `copy_df`, `copy_ecn`, `copy_dscp` and
/// `tfc_padding`). The default is the kernel's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SaOptions {
    /// Do not copy ECN between the inner and the outer header
    /// (`XFRM_STATE_NOECN`).
    pub no_ecn: bool,
    /// Copy the outer DSCP into the inner header when decapsulating
    /// (`XFRM_STATE_DECAP_DSCP`; inbound SAs).
    pub decap_dscp: bool,
    /// Never set DF in the outer IPv4 header (`XFRM_STATE_NOPMTUDISC`;
    /// outbound SAs).
    pub no_pmtu_discovery: bool,
    /// Leave the outer DSCP 0 rather than copying the inner one
    /// (`XFRM_SA_XFLAG_DONT_ENCAP_DSCP` in `XFRMA_SA_EXTRA_FLAGS`;
    /// outbound SAs).
    pub dont_encap_dscp: bool,
    /// Pad ESP packets to this many octets (TFC padding, `XFRMA_TFCPAD`;
    /// the kernel pads at most to the path MTU, so `u32::MAX` means the
    /// MTU); 0: none. ESP only.
    pub tfc_padding: u32,
}

/// Hardware offload of an SA's crypto to a network device
/// (`XFRMA_OFFLOAD_DEV`). A device that cannot offload is left out by the
/// kernel without an error: read the SA back ([`SaInfo::offload`]) to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Offload {
    /// The device; 0: the one the route between the SA's addresses
    /// leaves by (the kernel looks it up).
    pub ifindex: u32,
    /// An inbound SA (`XFRM_OFFLOAD_INBOUND`).
    pub inbound: bool,
}

/// Everything needed to install an SA.
#[derive(Debug, Clone)]
pub struct SaConfig {
    /// Outer source address.
    pub src: IpAddr,
    /// Outer destination address.
    pub dst: IpAddr,
    /// ESP or AH.
    pub protocol: Protocol,
    /// SPI (host byte order).
    pub spi: u32,
    /// Tunnel or transport.
    pub mode: Mode,
    /// Algorithms and keys.
    pub transforms: Transforms,
    /// Request id linking the SA to its policies' templates.
    pub reqid: u32,
    /// Traffic selector; `None`: host-to-host for transport mode, any traffic
    /// of any family for tunnel mode.
    pub selector: Option<Selector>,
    /// Anti-replay window in packets (0: none).
    pub replay_window: u32,
    /// Extended sequence numbers (RFC 4303).
    pub esn: bool,
    /// Initial sequence numbers and bitmap (`None`: all zero, a new SA).
    pub replay_state: Option<ReplayState>,
    /// Soft and hard lifetimes.
    pub lifetimes: Lifetimes,
    /// UDP encapsulation (NAT traversal).
    pub encap: Option<UdpEncap>,
    /// Mark the SA matches.
    pub mark: Option<Mark>,
    /// XFRM interface id.
    pub if_id: Option<u32>,
    /// Header flags and TFC padding.
    pub options: SaOptions,
    /// Hardware offload.
    pub offload: Option<Offload>,
    /// The mark the SA sets on the packets it processes
    /// (`XFRMA_SET_MARK` and `XFRMA_SET_MARK_MASK`).
    pub set_mark: Option<Mark>,
}

impl SaConfig {
    /// An SA with the given identity and transforms; reqid 0, no replay
    /// window, no lifetimes, no encapsulation, mark or interface id.
    pub fn new(
        src: IpAddr,
        dst: IpAddr,
        protocol: Protocol,
        spi: u32,
        mode: Mode,
        transforms: Transforms,
    ) -> Self {
        Self {
            src,
            dst,
            protocol,
            spi,
            mode,
            transforms,
            reqid: 0,
            selector: None,
            replay_window: 0,
            esn: false,
            replay_state: None,
            lifetimes: Lifetimes::default(),
            encap: None,
            mark: None,
            if_id: None,
            options: SaOptions::default(),
            offload: None,
            set_mark: None,
        }
    }

    /// Asks for hardware offload.
    pub fn offload(mut self, offload: Offload) -> Self {
        self.offload = Some(offload);
        self
    }

    /// Sets the header flags and TFC padding.
    pub fn options(mut self, options: SaOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the reqid.
    pub fn reqid(mut self, reqid: u32) -> Self {
        self.reqid = reqid;
        self
    }

    /// Sets the selector.
    pub fn selector(mut self, selector: Selector) -> Self {
        self.selector = Some(selector);
        self
    }

    /// Sets the anti-replay window (packets).
    pub fn replay_window(mut self, window: u32) -> Self {
        self.replay_window = window;
        self
    }

    /// Enables extended sequence numbers.
    pub fn esn(mut self, esn: bool) -> Self {
        self.esn = esn;
        self
    }

    /// Starts the SA from a replay state, usually one read from the SA it
    /// replaces ([`SaInfo::replay_state`]). The form sent follows the
    /// window as without it; a bitmap whose length does not fit that form
    /// (another window size) is sent as all zero, keeping the sequence
    /// numbers.
    pub fn replay_state(mut self, state: ReplayState) -> Self {
        self.replay_state = Some(state);
        self
    }

    /// Sets the lifetimes.
    pub fn lifetimes(mut self, lifetimes: Lifetimes) -> Self {
        self.lifetimes = lifetimes;
        self
    }

    /// Sets UDP encapsulation.
    pub fn encap(mut self, encap: UdpEncap) -> Self {
        self.encap = Some(encap);
        self
    }

    /// Sets the mark.
    pub fn mark(mut self, mark: Mark) -> Self {
        self.mark = Some(mark);
        self
    }

    /// Sets the XFRM interface id.
    pub fn if_id(mut self, if_id: u32) -> Self {
        self.if_id = Some(if_id);
        self
    }

    /// Sets the mark the SA puts on the packets it processes.
    pub fn set_mark(mut self, mark: Mark) -> Self {
        self.set_mark = Some(mark);
        self
    }

    /// The SA's id, for delete and get.
    pub fn id(&self) -> SaId {
        SaId {
            dst: self.dst,
            spi: self.spi,
            protocol: self.protocol,
            mark: self.mark,
        }
    }

    fn desc(&self) -> SaDesc {
        SaDesc {
            proto: self.protocol,
            spi: self.spi,
            dst: self.dst,
        }
    }

    /// Builds the `XFRM_MSG_NEWSA`/`UPDSA` message. Keys are copied into it:
    /// the connection zeroizes them after encoding.
    pub(crate) fn to_message(&self, owner_tag: u32, update: bool) -> Result<XfrmMessage, Error> {
        let family = Family::of(&self.src);
        if family != Family::of(&self.dst) {
            return Err(Error::InvalidArgument(format!(
                "SA endpoints mix address families: {} and {}",
                self.src, self.dst
            )));
        }
        if self.spi == 0 {
            return Err(Error::InvalidArgument("SPI 0 is reserved".to_owned()));
        }
        if let (Some(sel), Mode::Transport) = (self.selector, self.mode)
            && sel.family() != family
        {
            // The kernel refuses it with EPROTONOSUPPORT, which would read
            // as "no ESP support" (seen in the UML lab, Linux 6.1).
            return Err(Error::InvalidArgument(format!(
                "selector {sel} does not fit the transport-mode SA {} -> {}: \
                 only tunnel mode can carry traffic of another address family",
                self.src, self.dst
            )));
        }
        self.transforms.validate(self.protocol)?;
        if self.replay_window > MAX_REPLAY_WINDOW {
            return Err(Error::InvalidArgument(format!(
                "replay window {} is larger than the kernel's maximum {MAX_REPLAY_WINDOW}",
                self.replay_window
            )));
        }
        if self.esn && self.replay_window == 0 {
            // The kernel refuses ESN without a window (EINVAL), outbound too.
            return Err(Error::InvalidArgument(
                "ESN needs a replay window of at least 1 packet".to_owned(),
            ));
        }
        if self.options.tfc_padding != 0 && self.protocol != Protocol::Esp {
            // The kernel refuses XFRMA_TFCPAD on other SAs (EINVAL).
            return Err(Error::InvalidArgument(
                "TFC padding is for ESP only".to_owned(),
            ));
        }
        if self.encap.is_some() && self.protocol != Protocol::Esp {
            return Err(Error::InvalidArgument(
                "UDP encapsulation is for ESP only".to_owned(),
            ));
        }

        let mut info = nx::UserSaInfo {
            family: family.af(),
            saddr: nx::Address::from_ip(&self.src),
            id: nx::Id {
                daddr: nx::Address::from_ip(&self.dst),
                spi: self.spi,
                proto: self.protocol.number(),
            },
            mode: self.mode.number(),
            reqid: self.reqid,
            lifetime_cfg: self.lifetimes.to_kernel(),
            ..Default::default()
        };
        info.selector = match (self.selector, self.mode) {
            (Some(sel), _) => sel.to_kernel(owner_tag),
            (None, Mode::Transport) => Selector::hosts(self.src, self.dst)?.to_kernel(owner_tag),
            (None, Mode::Tunnel) => {
                // Any inner family: a zero selector with XFRM_STATE_AF_UNSPEC,
                // still carrying the owner tag.
                info.flags |= nx::XFRM_STATE_AF_UNSPEC;
                nx::Selector {
                    user: owner_tag,
                    ..Default::default()
                }
            }
        };

        if self.protocol == Protocol::Ah && family == Family::V4 {
            // RFC 4302 3.3.3.2.1: over IPv4 the AH header with its ICV is
            // padded to a multiple of 32 bits. Linux pads to 64 bits unless
            // told otherwise, and a peer that follows the RFC (strongSwan
            // sets this flag too) then drops every packet.
            info.flags |= nx::XFRM_STATE_ALIGN4;
        }
        let o = self.options;
        for (on, flag) in [
            (o.no_ecn, nx::XFRM_STATE_NOECN),
            (o.decap_dscp, nx::XFRM_STATE_DECAP_DSCP),
            (o.no_pmtu_discovery, nx::XFRM_STATE_NOPMTUDISC),
        ] {
            if on {
                info.flags |= flag;
            }
        }
        let mut nlas = self.transforms.to_attrs();
        if o.dont_encap_dscp {
            nlas.push(XfrmAttrs::ExtraFlags(nx::XFRM_SA_XFLAG_DONT_ENCAP_DSCP));
        }
        if o.tfc_padding != 0 {
            nlas.push(XfrmAttrs::TfcPadding(o.tfc_padding));
        }
        if let Some(off) = self.offload {
            let ifindex = i32::try_from(off.ifindex).map_err(|_| {
                Error::InvalidArgument(format!("interface index {} is too large", off.ifindex))
            })?;
            nlas.push(XfrmAttrs::OffloadDevice(nx::UserOffloadDev {
                ifindex,
                flags: if off.inbound {
                    nx::XFRM_OFFLOAD_INBOUND
                } else {
                    0
                },
            }));
        }
        let state = self.replay_state.clone().unwrap_or_default();
        if self.esn || self.replay_window > 32 {
            // The bitmap form; the kernel wants the legacy window at 0 then.
            let bmp_len = self.replay_window.div_ceil(32);
            // <= 128 words (checked above).
            let words = usize::try_from(bmp_len).unwrap_or(0);
            let bmp = if state.bitmap.len() == words {
                state.bitmap
            } else {
                vec![0; words]
            };
            nlas.push(XfrmAttrs::ReplayStateEsn(nx::ReplayEsn {
                bmp_len,
                oseq: state.oseq,
                seq: state.seq,
                oseq_hi: state.oseq_hi,
                seq_hi: state.seq_hi,
                replay_window: self.replay_window,
                bmp,
            }));
            if self.esn {
                info.flags |= nx::XFRM_STATE_ESN;
            }
        } else {
            // <= 32 here, so it fits.
            info.replay_window = u8::try_from(self.replay_window).unwrap_or(32);
            if self.replay_state.is_some() {
                let bitmap = match state.bitmap.as_slice() {
                    [one] => *one,
                    _ => 0,
                };
                nlas.push(XfrmAttrs::ReplayState(nx::Replay {
                    oseq: state.oseq,
                    seq: state.seq,
                    bitmap,
                }));
            }
        }
        if let Some(e) = self.encap {
            nlas.push(XfrmAttrs::EncapsulationTemplate(nx::EncapTmpl {
                encap_type: nx::UDP_ENCAP_ESPINUDP,
                encap_sport: e.src_port,
                encap_dport: e.dst_port,
                encap_oa: e
                    .original_address
                    .map(|a| nx::Address::from_ip(&a))
                    .unwrap_or_default(),
            }));
        }
        if let Some(m) = self.mark {
            nlas.push(XfrmAttrs::Mark(m.to_kernel()));
        }
        if let Some(id) = self.if_id {
            nlas.push(XfrmAttrs::IfId(id));
        }
        if let Some(m) = self.set_mark {
            nlas.push(XfrmAttrs::MarkVal(m.value));
            nlas.push(XfrmAttrs::MarkMask(m.mask));
        }
        let msg = ModifyMessage {
            user_sa_info: info,
            nlas,
        };
        Ok(if update {
            XfrmMessage::UpdateSa(msg)
        } else {
            XfrmMessage::AddSa(msg)
        })
    }
}

/// Identifies an SA: destination, SPI, protocol (and mark, if it has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SaId {
    /// Outer destination address.
    pub dst: IpAddr,
    /// SPI (host byte order).
    pub spi: u32,
    /// ESP or AH.
    pub protocol: Protocol,
    /// The SA's mark, if it was installed with one (the kernel's lookup
    /// matches it).
    pub mark: Option<Mark>,
}

impl SaId {
    fn desc(&self) -> SaDesc {
        SaDesc {
            proto: self.protocol,
            spi: self.spi,
            dst: self.dst,
        }
    }

    pub(crate) fn to_message(self, delete: bool) -> XfrmMessage {
        let mut id = nx::UserSaId::default();
        id.destination(&self.dst);
        id.spi = self.spi;
        id.proto = self.protocol.number();
        let mut nlas = Vec::new();
        if let Some(m) = self.mark {
            nlas.push(XfrmAttrs::Mark(m.to_kernel()));
        }
        let msg = DelGetMessage {
            user_sa_id: id,
            nlas,
        };
        if delete {
            XfrmMessage::DeleteSa(msg)
        } else {
            XfrmMessage::GetSa(msg)
        }
    }
}

/// Replay and integrity counters of an SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SaStats {
    /// Packets dropped as outside the replay window.
    pub replay_window: u32,
    /// Packets dropped as replays.
    pub replay: u32,
    /// Packets that failed the integrity check.
    pub integrity_failed: u32,
}

/// An SA as the kernel reports it (get, dump, events). Keys are never
/// included: they are zeroized on receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaInfo {
    /// Outer source address.
    pub src: IpAddr,
    /// Outer destination address.
    pub dst: IpAddr,
    /// ESP or AH; `None` for other protocols (IPComp, ...).
    pub protocol: Option<Protocol>,
    /// The raw IP protocol number.
    pub protocol_number: u8,
    /// SPI (host byte order).
    pub spi: u32,
    /// Mode; `None` for modes this crate does not model (BEET, ...).
    pub mode: Option<Mode>,
    /// Request id.
    pub reqid: u32,
    /// Selector; `None` for a tunnel SA's any-family selector.
    pub selector: Option<Selector>,
    /// True if iked installed it (the selector carries this handle's tag).
    pub owned: bool,
    /// Replay window (packets).
    pub replay_window: u32,
    /// Extended sequence numbers.
    pub esn: bool,
    /// Sequence numbers and anti-replay bitmap (`None` if the kernel
    /// reported neither replay attribute: a larval SA).
    pub replay_state: Option<ReplayState>,
    /// Configured lifetimes.
    pub lifetimes: Lifetimes,
    /// Bytes and packets so far (current lifetime).
    pub usage: Usage,
    /// Replay and integrity counters.
    pub stats: SaStats,
    /// Algorithm names (no keys).
    pub algorithms: AlgNames,
    /// UDP encapsulation.
    pub encap: Option<UdpEncap>,
    /// Mark.
    pub mark: Option<Mark>,
    /// XFRM interface id.
    pub if_id: Option<u32>,
    /// Header flags and TFC padding.
    pub options: SaOptions,
    /// The device the kernel offloads it to, if it does.
    pub offload: Option<Offload>,
}

impl SaInfo {
    /// The id to delete or get this SA.
    pub fn id(&self) -> Option<SaId> {
        Some(SaId {
            dst: self.dst,
            spi: self.spi,
            protocol: self.protocol?,
            mark: self.mark,
        })
    }

    /// Reads a kernel SA; scrubs the keys in `nlas`.
    pub(crate) fn from_kernel(
        info: &nx::UserSaInfo,
        nlas: &mut [XfrmAttrs],
        owner_tag: u32,
    ) -> Result<Self, Error> {
        let family = Family::from_af(info.family).ok_or_else(|| {
            Error::Decode(format!("SA of unknown address family {}", info.family))
        })?;
        let mut out = SaInfo {
            src: addr_from_kernel(&info.saddr, family),
            dst: addr_from_kernel(&info.id.daddr, family),
            protocol: Protocol::from_number(info.id.proto),
            protocol_number: info.id.proto,
            spi: info.id.spi,
            mode: Mode::from_number(info.mode),
            reqid: info.reqid,
            selector: Selector::from_kernel(&info.selector),
            owned: info.selector.user == owner_tag,
            replay_window: u32::from(info.replay_window),
            esn: info.flags & nx::XFRM_STATE_ESN != 0,
            replay_state: None,
            lifetimes: Lifetimes::from_kernel(&info.lifetime_cfg),
            usage: Usage::from_kernel(&info.lifetime_cur),
            stats: SaStats {
                replay_window: info.stats.replay_window,
                replay: info.stats.replay,
                integrity_failed: info.stats.integrity_failed,
            },
            algorithms: AlgNames::default(),
            encap: None,
            mark: None,
            if_id: None,
            options: SaOptions {
                no_ecn: info.flags & nx::XFRM_STATE_NOECN != 0,
                decap_dscp: info.flags & nx::XFRM_STATE_DECAP_DSCP != 0,
                no_pmtu_discovery: info.flags & nx::XFRM_STATE_NOPMTUDISC != 0,
                ..SaOptions::default()
            },
            offload: None,
        };
        for a in nlas.iter() {
            match a {
                XfrmAttrs::EncryptionAlgAead(x) => {
                    out.algorithms.aead = Some(AlgInfo {
                        name: name_from_kernel(&x.alg_name),
                        key_bits: x.alg_key_len,
                        icv_bits: x.alg_icv_len,
                    });
                }
                XfrmAttrs::EncryptionAlg(x) => {
                    out.algorithms.cipher = Some(AlgInfo {
                        name: name_from_kernel(&x.alg_name),
                        key_bits: x.alg_key_len,
                        icv_bits: 0,
                    });
                }
                // The kernel reports HMACs both as ALG_AUTH_TRUNC and as the
                // legacy ALG_AUTH (no truncation length); prefer the former.
                XfrmAttrs::AuthenticationAlgTrunc(x) => {
                    out.algorithms.integrity = Some(AlgInfo {
                        name: name_from_kernel(&x.alg_name),
                        key_bits: x.alg_key_len,
                        icv_bits: x.alg_trunc_len,
                    });
                }
                XfrmAttrs::CompressionAlg(x) => {
                    out.algorithms.compression = Some(AlgInfo {
                        name: name_from_kernel(&x.alg_name),
                        key_bits: 0,
                        icv_bits: 0,
                    });
                }
                XfrmAttrs::AuthenticationAlg(x) if out.algorithms.integrity.is_none() => {
                    out.algorithms.integrity = Some(AlgInfo {
                        name: name_from_kernel(&x.alg_name),
                        key_bits: x.alg_key_len,
                        icv_bits: 0,
                    });
                }
                XfrmAttrs::ReplayStateEsn(r) => {
                    out.replay_window = r.replay_window;
                    let words = usize::try_from(r.bmp_len).unwrap_or(usize::MAX);
                    out.replay_state = Some(ReplayState {
                        seq: r.seq,
                        seq_hi: r.seq_hi,
                        oseq: r.oseq,
                        oseq_hi: r.oseq_hi,
                        bitmap: r.bmp.iter().take(words).copied().collect(),
                    });
                }
                // The kernel sends one of the two (the ESN form for an SA
                // that has it).
                XfrmAttrs::ReplayState(r) if out.replay_state.is_none() => {
                    out.replay_state = Some(ReplayState {
                        seq: r.seq,
                        seq_hi: 0,
                        oseq: r.oseq,
                        oseq_hi: 0,
                        bitmap: vec![r.bitmap],
                    });
                }
                XfrmAttrs::EncapsulationTemplate(e) => {
                    let oa = addr_from_kernel(&e.encap_oa, family);
                    out.encap = Some(UdpEncap {
                        src_port: e.encap_sport,
                        dst_port: e.encap_dport,
                        original_address: (!oa.is_unspecified()).then_some(oa),
                    });
                }
                XfrmAttrs::Mark(m) => {
                    out.mark = Some(Mark {
                        value: m.value,
                        mask: m.mask,
                    })
                }
                XfrmAttrs::IfId(id) => out.if_id = Some(*id),
                XfrmAttrs::ExtraFlags(x) => {
                    out.options.dont_encap_dscp = x & nx::XFRM_SA_XFLAG_DONT_ENCAP_DSCP != 0;
                }
                XfrmAttrs::TfcPadding(t) => out.options.tfc_padding = *t,
                XfrmAttrs::OffloadDevice(d) => {
                    out.offload = Some(Offload {
                        ifindex: u32::try_from(d.ifindex).unwrap_or(0),
                        inbound: d.flags & nx::XFRM_OFFLOAD_INBOUND != 0,
                    });
                }
                _ => {}
            }
        }
        scrub_attrs(nlas);
        Ok(out)
    }
}

/// SA requests; from [`Handle::sa`].
#[derive(Debug, Clone)]
pub struct SaHandle(pub(crate) Handle);

impl Handle {
    /// SA requests.
    pub fn sa(&self) -> SaHandle {
        SaHandle(self.clone())
    }
}

impl SaHandle {
    /// Adds an SA (`XFRM_MSG_NEWSA`); fails with `AlreadyExists` if one with
    /// the same destination, SPI and protocol exists.
    pub fn add(&self, config: SaConfig) -> SaAddRequest {
        SaAddRequest {
            handle: self.0.clone(),
            config,
            update: false,
        }
    }

    /// Fills in a larval SA reserved with [`SaHandle::alloc_spi`], or
    /// updates a live SA (`XFRM_MSG_UPDSA`). On a live SA the kernel only
    /// takes the new lifetimes, encapsulation ports and selector; it keeps
    /// the algorithms and keys (rekeying means a new SA with a new SPI).
    pub fn update(&self, config: SaConfig) -> SaAddRequest {
        SaAddRequest {
            handle: self.0.clone(),
            config,
            update: true,
        }
    }

    /// Reserves an inbound SPI in `min..=max` for an SA from `src` to `dst`
    /// (`XFRM_MSG_ALLOCSPI`). The kernel keeps a larval SA for it until it
    /// is filled in by [`SaHandle::update`] or expires (after
    /// `net.core.xfrm_acq_expires` seconds, 30 by default).
    pub async fn alloc_spi(
        &self,
        src: IpAddr,
        dst: IpAddr,
        protocol: Protocol,
        min: u32,
        max: u32,
        reqid: u32,
    ) -> Result<u32, Error> {
        let msg = alloc_spi_message(src, dst, protocol, min, max, reqid)?;
        let op = Op::AllocSpi {
            proto: protocol,
            dst,
            min,
            max,
        };
        let replies = self.0.request(msg, Expect::One, &op).await?;
        for r in &replies {
            if let XfrmMessage::AddSa(m) | XfrmMessage::UpdateSa(m) = &r.0 {
                return Ok(m.user_sa_info.id.spi);
            }
        }
        Err(Error::UnexpectedReply(
            "ALLOCSPI answered without an SA".to_owned(),
        ))
    }

    /// Reads one SA.
    pub async fn get(&self, id: SaId) -> Result<SaInfo, Error> {
        let op = Op::GetSa(id.desc());
        let mut replies = self
            .0
            .request(id.to_message(false), Expect::One, &op)
            .await?;
        for r in replies.iter_mut() {
            if let XfrmMessage::AddSa(m) | XfrmMessage::UpdateSa(m) = &mut r.0 {
                return SaInfo::from_kernel(&m.user_sa_info, &mut m.nlas, self.0.owner_tag());
            }
        }
        Err(Error::UnexpectedReply(
            "GETSA answered without an SA".to_owned(),
        ))
    }

    /// Deletes an SA that iked installed. Reads it first and refuses
    /// ([`Error::NotOwned`]) to delete another daemon's SA.
    pub async fn delete(&self, id: SaId) -> Result<(), Error> {
        let sa = self.get(id).await?;
        if !sa.owned {
            return Err(Error::NotOwned(format!("SA {}", id.desc())));
        }
        self.delete_unchecked(id).await
    }

    /// Frees an SPI reserved with [`SaHandle::alloc_spi`] that will not be
    /// used: deletes the larval SA (no algorithms, the kernel's own
    /// selector, so no owner tag). Refuses ([`Error::NotOwned`]) an SA
    /// that has algorithms: that one is installed, by iked or another
    /// daemon, and [`SaHandle::delete`] is the way to remove iked's.
    pub async fn release_spi(&self, id: SaId) -> Result<(), Error> {
        let sa = self.get(id).await?;
        let a = &sa.algorithms;
        if a.aead.is_some()
            || a.cipher.is_some()
            || a.integrity.is_some()
            || a.compression.is_some()
        {
            return Err(Error::NotOwned(format!(
                "SA {} is not a larval SPI reservation",
                id.desc()
            )));
        }
        self.delete_unchecked(id).await
    }

    /// Deletes an SA without checking who installed it.
    pub(crate) async fn delete_unchecked(&self, id: SaId) -> Result<(), Error> {
        let op = Op::DeleteSa(id.desc());
        self.0
            .request(id.to_message(true), Expect::Ack, &op)
            .await?;
        Ok(())
    }

    /// Lists every SA in the namespace (iked's and others'; see
    /// [`SaInfo::owned`]).
    pub async fn dump(&self) -> Result<Vec<SaInfo>, Error> {
        let msg = XfrmMessage::GetDumpSa(GetDumpMessage { nlas: Vec::new() });
        let mut replies = self.0.request(msg, Expect::Dump, &Op::DumpSa).await?;
        let mut out = Vec::with_capacity(replies.len());
        for r in replies.iter_mut() {
            if let XfrmMessage::AddSa(m) | XfrmMessage::UpdateSa(m) = &mut r.0 {
                match SaInfo::from_kernel(&m.user_sa_info, &mut m.nlas, self.0.owner_tag()) {
                    Ok(sa) => out.push(sa),
                    Err(e) => tracing::warn!("skipping an SA in the dump: {e}"),
                }
            }
        }
        Ok(out)
    }
}

pub(crate) fn alloc_spi_message(
    src: IpAddr,
    dst: IpAddr,
    protocol: Protocol,
    min: u32,
    max: u32,
    reqid: u32,
) -> Result<XfrmMessage, Error> {
    if Family::of(&src) != Family::of(&dst) {
        return Err(Error::InvalidArgument(format!(
            "SA endpoints mix address families: {src} and {dst}"
        )));
    }
    if min == 0 || min > max {
        return Err(Error::InvalidArgument(format!(
            "SPI range 0x{min:08x}..=0x{max:08x} is empty or includes 0"
        )));
    }
    let mut info = nx::UserSpiInfo::default();
    info.info.source(&src);
    info.info.destination(&dst);
    info.info.id.proto = protocol.number();
    info.info.reqid = reqid;
    info.min = min;
    info.max = max;
    Ok(XfrmMessage::AllocSpi(AllocSpiMessage {
        spi_info: info,
        nlas: Vec::new(),
    }))
}

/// A pending add or update of an SA.
#[derive(Debug)]
pub struct SaAddRequest {
    handle: Handle,
    config: SaConfig,
    update: bool,
}

impl SaAddRequest {
    /// The netlink message this request sends (for inspection and tests; it
    /// contains the keys).
    pub fn message(&self) -> Result<XfrmMessage, Error> {
        self.config.to_message(self.handle.owner_tag(), self.update)
    }

    /// Sends it.
    pub async fn execute(self) -> Result<(), Error> {
        let msg = self.message()?;
        let (names, modules) = self.config.transforms.names_and_modules();
        let op = Op::AddSa {
            sa: self.config.desc(),
            family: Family::of(&self.config.dst),
            update: self.update,
            algs: self.config.transforms.describe(),
            names_modules: (names, modules),
        };
        self.handle.request(msg, Expect::Ack, &op).await?;
        Ok(())
    }
}
