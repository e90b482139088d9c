//! The IKE_SA_INIT responder under a flood (RFC 7296 2.6; strongSwan's
//! `network/receiver.c` and the half-open counts of `sa/ike_sa_manager.c`
//! are the model).
//!
//! Every new IKE_SA_INIT request passes [`Guard::admit`] before any
//! per-connection work (the configuration lookup, proposals, the key
//! exchange):
//!
//! 1. A COOKIE is required when the half-open SAs in all reach
//!    `cookie_threshold`, or those of the request's source address reach
//!    `cookie_threshold_ip`, and stays required for [`CALMDOWN`] after the
//!    count last reached it (so a legitimate initiator's retransmissions
//!    are not answered once with and once without one). A request without
//!    a valid cookie gets one and leaves no state.
//! 2. A source address with `block_threshold` half-open SAs is ignored.
//! 3. With `init_limit_half_open` half-open SAs in all, or
//! 4. when the half-open SAs' octets (their IKE_SA_INIT request twice,
//!    for it and the answer, both kept for AUTH, plus [`HALF_OPEN_COST`]
//!    each) would exceed `half_open_budget`: a request that returned a
//!    valid cookie takes the place of the oldest half-open SA whose
//!    request did not ([`Guard::take_evicted`]), any other request gets
//!    a cookie unless `cookie_threshold` is off (so a legitimate
//!    initiator can prove its address while spoofed half-open SAs hold
//!    every place); with no such SA to replace, the request is ignored.
//!
//! A request that returned a valid cookie is [`Admit::Proven`]: its key
//! exchange runs before those of requests that did not
//! ([`crate::sa::JobQueue`]), so a legitimate initiator does not wait
//! behind the key exchanges of the half-open SAs a spoofed flood made
//! before cookies were required.
//!
//! Cookies are `t | HMAC-SHA256(secret, t | IPi | SPIi | Ni)` with `t` the
//! seconds of this guard's clock: valid for [`COOKIE_LIFETIME`], compared
//! in constant time. The secret is drawn from the provider's random source
//! when first needed and replaced after [`SECRET_SWITCH`] of use; cookies
//! made before the switch are checked against the previous secret. When
//! the random source fails there is no secret and requests that need a
//! cookie are dropped, never answered with a predictable one.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use tracing::info;
use zeroize::Zeroizing;

use super::IkeSaId;
use crate::crypto::CryptoProvider;
use crate::wire::codes::PrfId;

/// How long a cookie we sent is accepted (strongSwan: 10 s).
pub const COOKIE_LIFETIME: Duration = Duration::from_secs(10);
/// How long cookies stay required after the threshold was last reached
/// (strongSwan's `COOKIE_CALMDOWN_DELAY`, 10 s).
pub const CALMDOWN: Duration = Duration::from_secs(10);
/// A cookie secret is replaced after this long in use (strongSwan: 120 s;
/// at least [`COOKIE_LIFETIME`], as only one previous secret is kept).
pub const SECRET_SWITCH: Duration = Duration::from_secs(120);
/// What a half-open SA costs beside its two messages, counted against
/// [`DosLimits::half_open_budget`] (the SA, its boxed handshake, keys,
/// index entries; measured about 1.8 KB an IKE SA in docs/performance.md).
pub const HALF_OPEN_COST: usize = 2048;

const SECRET_LEN: usize = 32;
const MAC_LEN: usize = 32;
/// Cookie: 4 octets of time, then the MAC.
const COOKIE_LEN: usize = 4 + MAC_LEN;
/// Per-source calm-down buckets (strongSwan has 32):
/// one address under attack does not make every source send cookies.
const BUCKETS: usize = 31;

/// Limits on half-open IKE SAs (strongSwan's `charon.*` names; `None`:
/// no limit). See the module documentation for the order they apply in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DosLimits {
    /// Half-open SAs of one source address from which its requests must
    /// carry a cookie (`cookie_threshold_ip`, 3); 0: always.
    pub cookie_threshold_ip: Option<usize>,
    /// Half-open SAs of one source address from which its requests are
    /// ignored (`block_threshold`, 5). Raised to `cookie_threshold_ip + 1`
    /// when not above it, as charon does, so a cookie comes first.
    pub block_threshold: Option<usize>,
    /// Half-open SAs in all from which requests are ignored
    /// (`init_limit_half_open`; strongSwan's default: none).
    pub init_limit_half_open: Option<usize>,
    /// Octets all half-open SAs may hold (twice the request plus
    /// 2 KiB each for the SA itself); 64 MiB.
    pub half_open_budget: usize,
}

impl Default for DosLimits {
    fn default() -> Self {
        Self {
            cookie_threshold_ip: Some(3),
            block_threshold: Some(5),
            init_limit_half_open: None,
            half_open_budget: 64 << 20,
        }
    }
}

impl DosLimits {
    /// `block_threshold` as applied: above `cookie_threshold_ip`.
    pub fn effective_block_threshold(&self) -> Option<usize> {
        match (self.block_threshold, self.cookie_threshold_ip) {
            (Some(b), Some(c)) if c >= b => Some(c.saturating_add(1)),
            (b, _) => b,
        }
    }
}

/// An IKE_SA_INIT request as the guard sees it.
pub(crate) struct InitRequest<'a> {
    pub(crate) ip: IpAddr,
    pub(crate) spi_i: u64,
    pub(crate) ni: &'a [u8],
    /// The data of the COOKIE notify, if it is the first payload.
    pub(crate) cookie: Option<&'a [u8]>,
    /// Octets of the request.
    pub(crate) len: usize,
}

/// What to do with a new IKE_SA_INIT request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Go on with it; nothing proves its source address (no valid
    /// COOKIE): its key exchange waits behind all other CPU work
    /// ([`crate::sa::JobQueue`]).
    Go,
    /// Go on with it: it returned a valid COOKIE, so its source address
    /// is proven (it is not one of a spoofed flood's).
    Proven,
    /// Answer with this COOKIE, keep nothing.
    Cookie(Vec<u8>),
    /// Ignore it (the reason was logged, rate-limited).
    Drop,
}

/// The half-open SAs' counts and octets, the cookie secrets, and the
/// rate limit of per-packet log lines.
#[derive(Debug, Default)]
pub(crate) struct Guard {
    /// Origin of the cookie clock (the first request seen).
    epoch: Option<Instant>,
    secret: Option<Zeroizing<[u8; SECRET_LEN]>>,
    previous: Option<Zeroizing<[u8; SECRET_LEN]>>,
    /// Cookie-clock second `secret` was first used at: cookies stamped
    /// before it were made with `previous`.
    secret_since: u32,
    /// When each threshold was last reached: [0] the global one, then the
    /// per-source buckets.
    reached: [Option<Instant>; BUCKETS + 1],
    /// Half-open SAs per source address.
    per_ip: HashMap<IpAddr, usize>,
    /// Each half-open SA's source and octets charged.
    held: HashMap<IkeSaId, (IpAddr, usize)>,
    octets: usize,
    /// The half-open SAs whose request returned no valid cookie, oldest
    /// (lowest id) first.
    unproven: BTreeSet<IkeSaId>,
    /// The last request admitted: its SA's id and whether it was proven
    /// ([`Guard::admitted`], taken by [`Guard::opened`]).
    last: Option<(IkeSaId, bool)>,
    /// A half-open SA uncounted to make room for a proven request: the
    /// endpoint removes it.
    evicted: Option<IkeSaId>,
    /// Per-packet log lines and events.
    pub(crate) log: LogLimit,
}

impl Guard {
    /// Half-open SAs counted, in all.
    #[cfg(test)]
    pub(crate) fn half_open(&self) -> usize {
        self.held.len()
    }

    /// Half-open SAs from `ip`.
    pub(crate) fn half_open_from(&self, ip: IpAddr) -> usize {
        self.per_ip.get(&ip).copied().unwrap_or(0)
    }

    /// Octets charged against the budget.
    #[cfg(test)]
    pub(crate) fn octets(&self) -> usize {
        self.octets
    }

    /// The decision for a new request (see the module documentation).
    pub(crate) fn admit(
        &mut self,
        cookie_threshold: Option<usize>,
        limits: &DosLimits,
        provider: &dyn CryptoProvider,
        now: Instant,
        req: &InitRequest<'_>,
    ) -> Admit {
        let total = self.held.len();
        let from_ip = self.half_open_from(req.ip);
        let global = self.required(0, cookie_threshold, total, now);
        let local = self.required(bucket(req.ip), limits.cookie_threshold_ip, from_ip, now);
        // Checked whenever one came back, required or not: a proven
        // source's key exchange runs first.
        let proven = req.cookie.is_some() && self.valid_cookie(provider, now, req);
        if (global || local) && !proven {
            return match self.make_cookie(provider, now, req) {
                Some(c) => Admit::Cookie(c),
                None => {
                    if self.log.allow(now) {
                        info!(
                            "no cookie secret (the random source failed), ignoring IKE_SA_INIT from {}",
                            req.ip
                        );
                    }
                    Admit::Drop
                }
            };
        }
        if let Some(b) = limits.effective_block_threshold()
            && from_ip >= b
        {
            if self.log.allow(now) {
                info!(
                    "ignoring IKE_SA_INIT from {}: per-address half-open IKE SA limit of {b} reached",
                    req.ip
                );
            }
            return Admit::Drop;
        }
        let at_cap = limits.init_limit_half_open.is_some_and(|l| total >= l);
        // The answer is about as long as the request.
        let want = HALF_OPEN_COST.saturating_add(req.len.saturating_mul(2));
        let over = |octets: usize| octets.saturating_add(want) > limits.half_open_budget;
        if at_cap || over(self.octets) {
            if !proven {
                // Cookies off (`cookie_threshold`): ignored, as charon does.
                let cookie = cookie_threshold.and_then(|_| self.make_cookie(provider, now, req));
                if let Some(c) = cookie {
                    return Admit::Cookie(c);
                }
                if self.log.allow(now) {
                    info!(
                        "ignoring IKE_SA_INIT from {}: {} half-open IKE SAs holding {} of {} octets",
                        req.ip, total, self.octets, limits.half_open_budget
                    );
                }
                return Admit::Drop;
            }
            // One place frees room for it, if it is under the budget then.
            let victim = self.unproven.first().copied().filter(|v| {
                let freed = self.held.get(v).map_or(0, |h| h.1);
                !over(self.octets.saturating_sub(freed))
            });
            let Some(victim) = victim else {
                if self.log.allow(now) {
                    info!(
                        "ignoring IKE_SA_INIT from {}: {} half-open IKE SAs holding {} of {} octets, none without a cookie",
                        req.ip, total, self.octets, limits.half_open_budget
                    );
                }
                return Admit::Drop;
            };
            if self.log.allow(now) {
                info!(
                    "half-open IKE SA limit reached: dropping the oldest one without a cookie for IKE_SA_INIT from {}, which returned one",
                    req.ip
                );
            }
            self.closed(victim);
            self.evicted = Some(victim);
        }
        if proven { Admit::Proven } else { Admit::Go }
    }

    /// The request [`Guard::admit`] let go on becomes SA `id` if it is
    /// opened next; `proven`: it returned a valid cookie.
    pub(crate) fn admitted(&mut self, id: IkeSaId, proven: bool) {
        self.last = Some((id, proven));
    }

    /// The half-open SA [`Guard::admit`] uncounted to make room, which
    /// the endpoint is to remove.
    pub(crate) fn take_evicted(&mut self) -> Option<IkeSaId> {
        self.evicted.take()
    }

    /// A responder SA became half-open with a request of `len` octets:
    /// charged for it and an answer as long (which may come later, from a
    /// worker), as [`Guard::admit`] estimated.
    pub(crate) fn opened(&mut self, id: IkeSaId, ip: IpAddr, len: usize) {
        let charge = HALF_OPEN_COST.saturating_add(len.saturating_mul(2));
        if let Some((old_ip, old)) = self.held.insert(id, (ip, charge)) {
            self.octets = self.octets.saturating_sub(old);
            self.uncount(old_ip);
        }
        self.octets = self.octets.saturating_add(charge);
        let n = self.per_ip.entry(ip).or_insert(0);
        *n = n.saturating_add(1);
        if self.last.take() != Some((id, true)) {
            self.unproven.insert(id);
        }
    }

    /// `id` is no longer half-open (established or gone); nothing if it
    /// was not counted.
    pub(crate) fn closed(&mut self, id: IkeSaId) {
        if let Some((ip, charge)) = self.held.remove(&id) {
            self.unproven.remove(&id);
            self.octets = self.octets.saturating_sub(charge);
            self.uncount(ip);
            super::endpoint::trim_map(&mut self.held);
        }
    }

    fn uncount(&mut self, ip: IpAddr) {
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&ip);
                super::endpoint::trim_map(&mut self.per_ip);
            }
        }
    }

    /// Whether a threshold asks for cookies: reached now, or within
    /// [`CALMDOWN`] of when it last was.
    fn required(
        &mut self,
        idx: usize,
        threshold: Option<usize>,
        count: usize,
        now: Instant,
    ) -> bool {
        let Some(t) = threshold else {
            return false;
        };
        let Some(slot) = self.reached.get_mut(idx) else {
            return false;
        };
        if count >= t {
            *slot = Some(now);
            return true;
        }
        slot.is_some_and(|at| now.saturating_duration_since(at) < CALMDOWN)
    }

    /// Seconds of the cookie clock at `now`.
    fn clock(&mut self, now: Instant) -> u32 {
        let epoch = *self.epoch.get_or_insert(now);
        u32::try_from(now.saturating_duration_since(epoch).as_secs()).unwrap_or(u32::MAX)
    }

    /// A secret to make a cookie with at `now`: drawn when there is none,
    /// replaced after [`SECRET_SWITCH`] (the old one kept as previous);
    /// `None` if the random source fails and there is none.
    fn current_secret(
        &mut self,
        provider: &dyn CryptoProvider,
        t: u32,
    ) -> Option<[u8; SECRET_LEN]> {
        let due = match &self.secret {
            None => true,
            Some(_) => u64::from(t.saturating_sub(self.secret_since)) > SECRET_SWITCH.as_secs(),
        };
        if due {
            match draw(provider) {
                Some(s) => {
                    self.previous = self.secret.replace(s);
                    self.secret_since = t;
                    if self.previous.is_some() {
                        info!("new cookie secret after {} s", SECRET_SWITCH.as_secs());
                    }
                }
                None => info!("drawing a new cookie secret failed, keeping the old one"),
            }
        }
        self.secret.as_deref().copied()
    }

    fn make_cookie(
        &mut self,
        provider: &dyn CryptoProvider,
        now: Instant,
        req: &InitRequest<'_>,
    ) -> Option<Vec<u8>> {
        let t = self.clock(now);
        let secret = Zeroizing::new(self.current_secret(provider, t)?);
        let mac = mac(provider, &secret[..], t, req)?;
        let mut c = Vec::with_capacity(COOKIE_LEN);
        c.extend_from_slice(&t.to_be_bytes());
        c.extend_from_slice(&mac);
        Some(c)
    }

    fn valid_cookie(
        &mut self,
        provider: &dyn CryptoProvider,
        now: Instant,
        req: &InitRequest<'_>,
    ) -> bool {
        let Some(cookie) = req.cookie else {
            return false;
        };
        let (Some(stamp), Some(got)) = (cookie.get(..4), cookie.get(4..)) else {
            return false;
        };
        if cookie.len() != COOKIE_LEN {
            return false;
        }
        let mut b = [0u8; 4];
        b.copy_from_slice(stamp);
        let t = u32::from_be_bytes(b);
        let now_t = self.clock(now);
        if t > now_t || u64::from(now_t.saturating_sub(t)) >= COOKIE_LIFETIME.as_secs() {
            return false;
        }
        let secret = if t >= self.secret_since {
            self.secret.as_ref()
        } else {
            self.previous.as_ref()
        };
        let Some(secret) = secret else {
            return false;
        };
        let Some(want) = mac(provider, &secret[..], t, req) else {
            return false;
        };
        bool::from(want.as_slice().ct_eq(got))
    }
}

fn draw(provider: &dyn CryptoProvider) -> Option<Zeroizing<[u8; SECRET_LEN]>> {
    let v = Zeroizing::new(provider.random_vec(SECRET_LEN).ok()?);
    let mut s = Zeroizing::new([0u8; SECRET_LEN]);
    if v.len() != SECRET_LEN {
        return None;
    }
    s.copy_from_slice(&v);
    Some(s)
}

fn mac(
    provider: &dyn CryptoProvider,
    secret: &[u8],
    t: u32,
    req: &InitRequest<'_>,
) -> Option<Vec<u8>> {
    let prf = provider.prf(PrfId::HMAC_SHA2_256).ok()?;
    let ip = match req.ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let out = prf.compute(
        secret,
        &[&t.to_be_bytes(), &ip, &req.spi_i.to_be_bytes(), req.ni],
    );
    let out = out.as_bytes();
    (out.len() == MAC_LEN).then(|| out.to_vec())
}

/// The per-source calm-down bucket of `ip` (1..=BUCKETS).
fn bucket(ip: IpAddr) -> usize {
    let octets: Vec<u8> = match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    // FNV-1a: spread, not secret.
    let h = octets.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let idx = usize::try_from(h).unwrap_or(0) % BUCKETS;
    idx.saturating_add(1)
}

/// Per-packet log lines allowed per second.
pub const LOG_LINES_PER_SEC: u32 = 10;

/// A rate limit for lines a datagram can cause: [`LOG_LINES_PER_SEC`]
/// a second, then one line saying how many were left out.
#[derive(Debug, Default)]
pub(crate) struct LogLimit {
    window: Option<Instant>,
    lines: u32,
    suppressed: u64,
}

impl LogLimit {
    /// Whether a line may go out at `now`.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        let fresh = self
            .window
            .is_none_or(|w| now.saturating_duration_since(w) >= Duration::from_secs(1));
        if fresh {
            if self.suppressed > 0 {
                info!(
                    "{} more lines about received IKE_SA_INIT requests left out",
                    self.suppressed
                );
            }
            self.window = Some(now);
            self.lines = 0;
            self.suppressed = 0;
        }
        if self.lines < LOG_LINES_PER_SEC {
            self.lines = self.lines.saturating_add(1);
            true
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
            false
        }
    }

    /// Lines left out in the current window.
    #[cfg(test)]
    pub(crate) fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests;
