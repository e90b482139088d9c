//! Security policies: add, update, delete, get, dump.

use std::fmt;
use std::net::IpAddr;

use netlink_packet_xfrm::{
    self as nx, XfrmAttrs, XfrmMessage,
    policy::{DelGetMessage, ModifyMessage},
};

use crate::conn::{Expect, Handle};
use crate::error::{Error, Op};
use crate::types::{
    Direction, Family, Lifetimes, Mark, Mode, Protocol, Selector, Usage, addr_from_kernel,
};

/// What a policy does with matching traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyAction {
    /// Let it pass: through the templates' SAs if it has templates
    /// (an IPsec or trap policy), in the clear if not (a bypass policy).
    Allow,
    /// Drop it.
    Block,
}

/// An SA template of a policy: which SA must process matching traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Template {
    /// ESP or AH.
    pub protocol: Protocol,
    /// Tunnel or transport.
    pub mode: Mode,
    /// Request id; the SA must have the same one (0: any).
    pub reqid: u32,
    /// Tunnel endpoints `(src, dst)`; required for tunnel mode.
    pub tunnel: Option<(IpAddr, IpAddr)>,
    /// A specific SPI, if any (0 / `None`: any).
    pub spi: Option<u32>,
    /// Optional ("use" level): traffic may pass without the SA (inbound).
    pub optional: bool,
}

impl Template {
    /// A transport-mode template.
    pub fn transport(protocol: Protocol, reqid: u32) -> Self {
        Self {
            protocol,
            mode: Mode::Transport,
            reqid,
            tunnel: None,
            spi: None,
            optional: false,
        }
    }

    /// A tunnel-mode template between two tunnel endpoints.
    pub fn tunnel(protocol: Protocol, reqid: u32, src: IpAddr, dst: IpAddr) -> Self {
        Self {
            protocol,
            mode: Mode::Tunnel,
            reqid,
            tunnel: Some((src, dst)),
            spi: None,
            optional: false,
        }
    }

    fn to_kernel(self, selector_family: Family) -> Result<nx::UserTemplate, Error> {
        let mut t = nx::UserTemplate::default();
        t.protocol(self.protocol.number());
        t.mode(self.mode.number());
        t.reqid(self.reqid);
        t.spi(self.spi.unwrap_or(0));
        t.optional(self.optional);
        t.family = selector_family.af();
        match (self.mode, self.tunnel) {
            (Mode::Tunnel, Some((src, dst))) => {
                if Family::of(&src) != Family::of(&dst) {
                    return Err(Error::InvalidArgument(format!(
                        "tunnel endpoints mix address families: {src} and {dst}"
                    )));
                }
                t.source(&src);
                t.destination(&dst);
            }
            (Mode::Tunnel, None) => {
                return Err(Error::InvalidArgument(
                    "a tunnel-mode template needs the tunnel endpoints".to_owned(),
                ));
            }
            (Mode::Transport, Some((src, dst))) => {
                // Allowed by the kernel: restricts the SA's addresses.
                t.source(&src);
                t.destination(&dst);
            }
            (Mode::Transport, None) => {}
        }
        Ok(t)
    }

    fn from_kernel(t: &nx::UserTemplate) -> Option<Self> {
        let family = Family::from_af(t.family)?;
        let src = addr_from_kernel(&t.saddr, family);
        let dst = addr_from_kernel(&t.id.daddr, family);
        Some(Self {
            protocol: Protocol::from_number(t.id.proto)?,
            mode: Mode::from_number(t.mode)?,
            reqid: t.reqid,
            tunnel: (!(src.is_unspecified() && dst.is_unspecified())).then_some((src, dst)),
            spi: (t.id.spi != 0).then_some(t.id.spi),
            optional: t.optional != 0,
        })
    }
}

/// Everything needed to install a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Traffic it applies to.
    pub selector: Selector,
    /// In, out or forward.
    pub direction: Direction,
    /// Allow or block.
    pub action: PolicyAction,
    /// Priority: lower values win.
    pub priority: u32,
    /// SA templates (empty for bypass and drop policies).
    pub templates: Vec<Template>,
    /// Mark the policy matches.
    pub mark: Option<Mark>,
    /// XFRM interface id.
    pub if_id: Option<u32>,
    /// Lifetimes (rarely used for policies).
    pub lifetimes: Lifetimes,
}

impl PolicyConfig {
    /// An allow policy without templates; add templates for IPsec or trap
    /// policies.
    pub fn new(selector: Selector, direction: Direction) -> Self {
        Self {
            selector,
            direction,
            action: PolicyAction::Allow,
            priority: 0,
            templates: Vec::new(),
            mark: None,
            if_id: None,
            lifetimes: Lifetimes::default(),
        }
    }

    /// Sets the action.
    pub fn action(mut self, action: PolicyAction) -> Self {
        self.action = action;
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: u32) -> Self {
        self.priority = priority;
        self
    }

    /// Appends a template.
    pub fn template(mut self, template: Template) -> Self {
        self.templates.push(template);
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

    /// Sets the lifetimes.
    pub fn lifetimes(mut self, lifetimes: Lifetimes) -> Self {
        self.lifetimes = lifetimes;
        self
    }

    /// The id to get or delete this policy.
    pub fn id(&self) -> PolicyId {
        PolicyId {
            selector: self.selector,
            direction: self.direction,
            mark: self.mark,
            if_id: self.if_id,
        }
    }

    pub(crate) fn to_message(&self, owner_tag: u32, update: bool) -> Result<XfrmMessage, Error> {
        let info = nx::UserPolicyInfo {
            selector: self.selector.to_kernel(owner_tag),
            lifetime_cfg: self.lifetimes.to_kernel(),
            priority: self.priority,
            direction: self.direction.number(),
            action: match self.action {
                PolicyAction::Allow => nx::XFRM_POLICY_ALLOW,
                PolicyAction::Block => nx::XFRM_POLICY_BLOCK,
            },
            ..Default::default()
        };
        let mut nlas = Vec::new();
        if !self.templates.is_empty() {
            let family = self.selector.family();
            let tmpls = self
                .templates
                .iter()
                .map(|t| t.to_kernel(family))
                .collect::<Result<Vec<_>, _>>()?;
            nlas.push(XfrmAttrs::Template(tmpls));
        }
        if let Some(m) = self.mark {
            nlas.push(XfrmAttrs::Mark(m.to_kernel()));
        }
        if let Some(id) = self.if_id {
            nlas.push(XfrmAttrs::IfId(id));
        }
        let msg = ModifyMessage {
            user_policy_info: info,
            nlas,
        };
        Ok(if update {
            XfrmMessage::UpdatePolicy(msg)
        } else {
            XfrmMessage::AddPolicy(msg)
        })
    }
}

/// Identifies one of iked's policies: selector, direction, mark, interface
/// id. (The owner tag is added by the handle, so a foreign policy with the
/// same selector is never matched.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyId {
    /// Selector.
    pub selector: Selector,
    /// Direction.
    pub direction: Direction,
    /// Mark, if the policy has one.
    pub mark: Option<Mark>,
    /// Interface id, if the policy has one.
    pub if_id: Option<u32>,
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.direction, self.selector)?;
        if let Some(m) = self.mark {
            write!(f, " mark 0x{:x}/0x{:x}", m.value, m.mask)?;
        }
        if let Some(i) = self.if_id {
            write!(f, " if_id {i}")?;
        }
        Ok(())
    }
}

fn id_message(
    selector: nx::Selector,
    index: u32,
    direction: u8,
    mark: Option<Mark>,
    if_id: Option<u32>,
    delete: bool,
) -> XfrmMessage {
    let mut nlas = Vec::new();
    if let Some(m) = mark {
        nlas.push(XfrmAttrs::Mark(m.to_kernel()));
    }
    if let Some(i) = if_id {
        nlas.push(XfrmAttrs::IfId(i));
    }
    let msg = DelGetMessage {
        user_policy_id: nx::UserPolicyId {
            selector,
            index,
            direction,
        },
        nlas,
    };
    if delete {
        XfrmMessage::DeletePolicy(msg)
    } else {
        XfrmMessage::GetPolicy(msg)
    }
}

impl PolicyId {
    pub(crate) fn to_message(self, owner_tag: u32, delete: bool) -> XfrmMessage {
        id_message(
            self.selector.to_kernel(owner_tag),
            0,
            self.direction.number(),
            self.mark,
            self.if_id,
            delete,
        )
    }
}

/// A policy as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    /// Selector (`None` if of an unknown family).
    pub selector: Option<Selector>,
    /// Direction (`None` for per-socket policies' directions).
    pub direction: Option<Direction>,
    /// Action.
    pub action: PolicyAction,
    /// Priority.
    pub priority: u32,
    /// The kernel's index of the policy.
    pub index: u32,
    /// Templates.
    pub templates: Vec<Template>,
    /// Mark.
    pub mark: Option<Mark>,
    /// Interface id.
    pub if_id: Option<u32>,
    /// Configured lifetimes.
    pub lifetimes: Lifetimes,
    /// Current use.
    pub usage: Usage,
    /// True if iked installed it (its selector carries this handle's tag).
    pub owned: bool,
    /// A per-socket policy (e.g. an IKE socket's bypass, see
    /// [`crate::bypass_socket`]): dumps include them (`direction` is `None`),
    /// but they belong to their socket and vanish with it.
    pub per_socket: bool,
}

impl PolicyInfo {
    /// The id to get or delete the policy, if it has a known selector and
    /// direction.
    pub fn id(&self) -> Option<PolicyId> {
        Some(PolicyId {
            selector: self.selector?,
            direction: self.direction?,
            mark: self.mark,
            if_id: self.if_id,
        })
    }

    pub(crate) fn from_kernel(
        info: &nx::UserPolicyInfo,
        nlas: &[XfrmAttrs],
        owner_tag: u32,
    ) -> Self {
        let mut out = PolicyInfo {
            selector: Selector::from_kernel(&info.selector),
            direction: Direction::from_number(info.direction),
            action: if info.action == nx::XFRM_POLICY_BLOCK {
                PolicyAction::Block
            } else {
                PolicyAction::Allow
            },
            priority: info.priority,
            index: info.index,
            templates: Vec::new(),
            mark: None,
            if_id: None,
            lifetimes: Lifetimes::from_kernel(&info.lifetime_cfg),
            usage: Usage::from_kernel(&info.lifetime_cur),
            owned: info.selector.user == owner_tag,
            // The low 3 bits of the index are the direction; per-socket
            // policies use XFRM_POLICY_MAX + direction.
            per_socket: (info.index & 7) >= u32::from(nx::XFRM_POLICY_MAX),
        };
        for a in nlas {
            match a {
                XfrmAttrs::Template(ts) => {
                    out.templates = ts.iter().filter_map(Template::from_kernel).collect();
                }
                XfrmAttrs::Mark(m) => {
                    out.mark = Some(Mark {
                        value: m.value,
                        mask: m.mask,
                    })
                }
                XfrmAttrs::IfId(i) => out.if_id = Some(*i),
                _ => {}
            }
        }
        out
    }
}

/// Policy requests; from [`Handle::policy`].
#[derive(Debug, Clone)]
pub struct PolicyHandle(pub(crate) Handle);

impl Handle {
    /// Policy requests.
    pub fn policy(&self) -> PolicyHandle {
        PolicyHandle(self.clone())
    }
}

/// A pending add or update of a policy.
#[derive(Debug)]
pub struct PolicyAddRequest {
    handle: Handle,
    config: PolicyConfig,
    update: bool,
}

impl PolicyAddRequest {
    /// The netlink message this request sends.
    pub fn message(&self) -> Result<XfrmMessage, Error> {
        self.config.to_message(self.handle.owner_tag(), self.update)
    }

    /// Sends it.
    pub async fn execute(self) -> Result<(), Error> {
        let msg = self.message()?;
        let op = Op::AddPolicy {
            dir: self.config.direction,
            sel: self.config.selector,
            update: self.update,
        };
        self.handle.request(msg, Expect::Ack, &op).await?;
        Ok(())
    }
}

impl PolicyHandle {
    /// Adds a policy; fails with `AlreadyExists` if iked has one with the
    /// same id.
    pub fn add(&self, config: PolicyConfig) -> PolicyAddRequest {
        PolicyAddRequest {
            handle: self.0.clone(),
            config,
            update: false,
        }
    }

    /// Adds or replaces a policy.
    pub fn update(&self, config: PolicyConfig) -> PolicyAddRequest {
        PolicyAddRequest {
            handle: self.0.clone(),
            config,
            update: true,
        }
    }

    /// Reads one of iked's policies.
    pub async fn get(&self, id: PolicyId) -> Result<PolicyInfo, Error> {
        let op = Op::GetPolicy(id.to_string());
        let msg = id.to_message(self.0.owner_tag(), false);
        let replies = self.0.request(msg, Expect::One, &op).await?;
        for r in &replies {
            if let XfrmMessage::AddPolicy(m) | XfrmMessage::UpdatePolicy(m) = &r.0 {
                return Ok(PolicyInfo::from_kernel(
                    &m.user_policy_info,
                    &m.nlas,
                    self.0.owner_tag(),
                ));
            }
        }
        Err(Error::UnexpectedReply(
            "GETPOLICY answered without a policy".to_owned(),
        ))
    }

    /// Deletes one of iked's policies (a foreign policy with the same
    /// selector is not matched: the owner tag is part of the key).
    pub async fn delete(&self, id: PolicyId) -> Result<(), Error> {
        let op = Op::DeletePolicy(id.to_string());
        let msg = id.to_message(self.0.owner_tag(), true);
        self.0.request(msg, Expect::Ack, &op).await?;
        Ok(())
    }

    /// Deletes a policy by the kernel's index (as read from a dump); refuses
    /// if it is not iked's.
    pub async fn delete_by_index(&self, policy: &PolicyInfo) -> Result<(), Error> {
        if !policy.owned {
            return Err(Error::NotOwned(format!("policy index {}", policy.index)));
        }
        let Some(dir) = policy.direction else {
            return Err(Error::InvalidArgument(format!(
                "policy index {} has no direction",
                policy.index
            )));
        };
        let op = Op::DeletePolicy(format!("index {}", policy.index));
        let msg = id_message(
            nx::Selector::default(),
            policy.index,
            dir.number(),
            policy.mark,
            policy.if_id,
            true,
        );
        self.0.request(msg, Expect::Ack, &op).await?;
        Ok(())
    }

    /// Lists every policy of the namespace, including per-socket policies
    /// ([`PolicyInfo::per_socket`]).
    pub async fn dump(&self) -> Result<Vec<PolicyInfo>, Error> {
        let msg = id_message(nx::Selector::default(), 0, 0, None, None, false);
        let replies = self.0.request(msg, Expect::Dump, &Op::DumpPolicy).await?;
        let tag = self.0.owner_tag();
        Ok(replies
            .iter()
            .filter_map(|r| match &r.0 {
                XfrmMessage::AddPolicy(m) | XfrmMessage::UpdatePolicy(m) => {
                    Some(PolicyInfo::from_kernel(&m.user_policy_info, &m.nlas, tag))
                }
                _ => None,
            })
            .collect())
    }
}
