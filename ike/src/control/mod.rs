//! The control protocol between `ikectl` and `iked` (docs/control-protocol.md):
//! one JSON [`Request`] per line to the daemon's unix socket, one JSON
//! [`Response`] per line back. Only types and their text form live here
//! (no I/O), so both programs share them. The JSON is stable: fields may
//! be added, never renamed or removed; clients ignore fields they do not
//! know.

mod format;

use serde::{Deserialize, Serialize};

pub use format::{format_pools, format_status, format_traps};

/// Default path of the daemon's control socket.
pub const DEFAULT_SOCKET: &str = "/run/iked/iked.sock";

/// Longest request line the daemon reads (bytes, newline included).
pub const MAX_REQUEST_LINE: usize = 64 * 1024;

/// A command to the daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Bring a connection up and wait until its IKE SA and children are up
    /// (or failed).
    Up {
        /// The connection (`connections.<name>`).
        connection: String,
        /// Only this child (default: all children of the connection).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        child: Option<String>,
        /// Give up waiting after this many seconds (default: wait for the
        /// daemon's verdict; it gives up after its retransmissions).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_secs: Option<u64>,
    },
    /// Delete every IKE SA of a connection and wait until they are gone
    /// (kernel state included).
    Down {
        /// The connection.
        connection: String,
        /// Give up waiting after this many seconds (default 30).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_secs: Option<u64>,
    },
    /// Re-read the configuration file.
    Reload {},
    /// Every IKE SA and Child SA.
    Status {},
    /// The virtual IP pools with their leases (swanctl --list-pools
    /// --leases).
    Pools {},
    /// As a gateway: send the clients of the matching established IKE SAs
    /// to another gateway (RFC 5685; swanctl --redirect).
    Redirect {
        /// An IKE SA's number, or the peer's identity or address as
        /// `status` shows them: every IKE SA that matches.
        target: String,
        /// The gateway: an IPv4 or IPv6 address or a DNS name.
        gateway: String,
    },
}

/// What went wrong, for scripts; the message says it for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request line was not a valid request.
    BadRequest,
    /// No connection of that name.
    UnknownConnection,
    /// The connection has no child of that name.
    UnknownChild,
    /// The connection has nothing to initiate to (no remote address).
    NoRemoteAddress,
    /// Authentication failed (ours of the peer, or the peer's of us).
    AuthenticationFailed,
    /// No common IKE or ESP/AH proposal.
    NoProposalChosen,
    /// No common traffic selectors.
    TsUnacceptable,
    /// The peer did not answer.
    PeerNotResponding,
    /// The IKE SA failed for another reason (see the message).
    IkeFailed,
    /// A Child SA failed for another reason (kernel, mode mismatch...).
    ChildFailed,
    /// The IKE SA was deleted while we waited.
    Deleted,
    /// The wait timed out (the daemon goes on in the background).
    Timeout,
    /// The configuration file has errors (reload); nothing was changed.
    ConfigError,
    /// The daemon is shutting down.
    ShuttingDown,
    /// `redirect`: no established IKE SA matches, or none of those that
    /// do has a client that supports redirects.
    NoSuchSa,
    /// Anything else.
    Internal,
}

/// The daemon's answer to one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    /// `up` succeeded.
    Up {
        /// The connection.
        connection: String,
        /// The IKE SA's unique id.
        ike_sa: u64,
        /// The children now installed.
        children: Vec<String>,
    },
    /// `down` succeeded.
    Down {
        /// The connection.
        connection: String,
        /// The IKE SAs deleted (empty: there were none).
        ike_sas: Vec<u64>,
    },
    /// `reload` succeeded.
    Reloaded {
        /// Connections that are new.
        added: Vec<String>,
        /// Connections no longer configured (their SAs stay up until
        /// deleted).
        removed: Vec<String>,
        /// Connections whose settings changed (existing SAs keep the old
        /// ones; new SAs use the new).
        changed: Vec<String>,
        /// Connections unchanged.
        unchanged: Vec<String>,
    },
    /// `status`.
    Status {
        /// The IKE SAs, in id order.
        ike_sas: Vec<IkeSaStatus>,
        /// Trap policies in the kernel (`start_action: trap`, or a
        /// `close_action`/`dpd_action` of `trap`), by connection and child.
        #[serde(default)]
        traps: Vec<TrapStatus>,
    },
    /// `pools`.
    Pools {
        /// The pools, by name.
        pools: Vec<PoolStatus>,
    },
    /// `redirect`: the IKE SAs whose clients were sent on.
    Redirected {
        /// The IKE SAs.
        ike_sas: Vec<u64>,
        /// Where to.
        gateway: String,
    },
    /// The request failed.
    Error {
        /// Category.
        kind: ErrorKind,
        /// What went wrong, for people.
        message: String,
    },
}

impl Response {
    /// An error response.
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Self {
        Response::Error {
            kind,
            message: message.into(),
        }
    }
}

/// One trapped child in a status answer (strongSwan's `swanctl
/// --list-pols` shows these).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrapStatus {
    /// The connection.
    pub connection: String,
    /// The child.
    pub child: String,
    /// The kernel reqid of the trap policies, which its Child SAs use.
    pub reqid: u32,
    /// `TUNNEL` or `TRANSPORT`.
    pub mode: String,
    /// `ESP` or `AH`.
    pub protocol: String,
    /// Our selectors as configured (`dynamic` resolved to the address).
    pub local_ts: Vec<String>,
    /// The peer's selectors.
    pub remote_ts: Vec<String>,
    /// Why it is there: `start_action`, `close_action` or `dpd_action`.
    pub reason: String,
}

/// One virtual IP pool in a `pools` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolStatus {
    /// Its name (`pools.<name>`).
    pub name: String,
    /// The first address it assigns.
    pub base: String,
    /// How many addresses it has.
    pub size: u32,
    /// Addresses in use.
    pub online: usize,
    /// Addresses kept for identities that are not connected.
    pub offline: usize,
    /// Every lease, by address.
    pub leases: Vec<LeaseStatus>,
}

/// One lease of a pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseStatus {
    /// The address.
    pub address: String,
    /// The identity it belongs to.
    pub identity: String,
    /// In use by an IKE SA (else kept for the identity's next one).
    pub online: bool,
}

/// One IKE SA in a status answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkeSaStatus {
    /// Unique id (strongSwan's `#n`).
    pub id: u64,
    /// The connection, once known (a responder learns it during the setup).
    pub connection: Option<String>,
    /// `CONNECTING`, `ESTABLISHED`, `REKEYING`, `REKEYED`, `DELETING`.
    pub state: String,
    /// Whether we initiated it.
    pub initiator: bool,
    /// Initiator's SPI, 16 hex digits.
    pub spi_i: String,
    /// Responder's SPI, 16 hex digits (zeros until known).
    pub spi_r: String,
    /// Our address and port, `192.0.2.1:500` / `[2001:db8::1]:500`.
    pub local_addr: String,
    /// The peer's address and port.
    pub remote_addr: String,
    /// Our identity, once known.
    pub local_id: Option<String>,
    /// The peer's authenticated identity, once known.
    pub remote_id: Option<String>,
    /// The algorithms, `AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519`.
    pub algorithms: Option<String>,
    /// Seconds since it was established.
    pub established_secs: Option<u64>,
    /// Seconds until we rekey it (null: no rekey scheduled).
    #[serde(default)]
    pub rekey_secs: Option<u64>,
    /// Seconds until it is deleted unless rekeyed (null: never).
    #[serde(default)]
    pub expire_secs: Option<u64>,
    /// A NAT is in front of us.
    pub nat_local: bool,
    /// A NAT is in front of the peer.
    pub nat_remote: bool,
    /// IKE on the NAT-T port and the Child SAs with ESP in UDP (NAT on
    /// either side, or `encap`). Absent from older daemons: false.
    #[serde(default)]
    pub encap: bool,
    /// Our virtual IPs (`vips`, as the peer assigned them). Absent from
    /// older daemons: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local_vips: Vec<String>,
    /// The peer's virtual IPs (assigned from `pools`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remote_vips: Vec<String>,
    /// The DNS servers the peer sent with our virtual IPs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// MOBIKE (RFC 4555) negotiated. Absent from older daemons: false.
    #[serde(default)]
    pub mobike: bool,
    /// Its Child SAs.
    pub children: Vec<ChildSaStatus>,
}

/// One Child SA in a status answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildSaStatus {
    /// Unique id (strongSwan's `#n` of a child, shown as `{n}`).
    pub id: u64,
    /// Its configuration name.
    pub name: String,
    /// `CREATED`, `INSTALLING`, `INSTALLED`, `REKEYING`, `REKEYED`,
    /// `DELETING`.
    pub state: String,
    /// `TUNNEL` or `TRANSPORT`.
    pub mode: String,
    /// `ESP` or `AH`.
    pub protocol: String,
    /// Inbound SPI, 8 hex digits.
    pub spi_in: String,
    /// Outbound SPI, 8 hex digits.
    pub spi_out: String,
    /// Our negotiated selectors (`10.1.0.0/24`, `10.1.0.1..10.1.0.9[6/80]`).
    pub local_ts: Vec<String>,
    /// The peer's negotiated selectors.
    pub remote_ts: Vec<String>,
    /// The algorithms, `AES_GCM_16-256` / `AES_CBC-128/HMAC_SHA2_256_128/ESN`.
    pub algorithms: Option<String>,
    /// Seconds since it was installed.
    pub installed_secs: Option<u64>,
    /// Seconds until we rekey it (null: no rekey scheduled).
    #[serde(default)]
    pub rekey_secs: Option<u64>,
    /// Seconds until it is deleted unless rekeyed (null: never).
    #[serde(default)]
    pub expire_secs: Option<u64>,
    /// Its kernel reqid (kept across rekeys).
    #[serde(default)]
    pub reqid: u32,
    /// Bytes decrypted by the inbound SA (from the kernel; `None` if it
    /// could not be read).
    pub bytes_in: Option<u64>,
    /// Packets of the inbound SA.
    pub packets_in: Option<u64>,
    /// Bytes of the outbound SA.
    pub bytes_out: Option<u64>,
    /// Packets of the outbound SA.
    pub packets_out: Option<u64>,
}

/// A message that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid control message: {0}")]
pub struct DecodeError(#[from] serde_json::Error);

/// A message as one line of JSON, newline included.
pub fn encode_line<T: Serialize>(msg: &T) -> String {
    // Serializing these types cannot fail (string keys, no maps with
    // non-string keys, no floats); stay total anyway.
    let mut s = serde_json::to_string(msg).unwrap_or_else(|e| {
        serde_json::json!({"result": "error", "kind": "internal", "message": e.to_string()})
            .to_string()
    });
    s.push('\n');
    s
}

/// Reads a request line (trailing newline allowed).
pub fn decode_request(line: &str) -> Result<Request, DecodeError> {
    Ok(serde_json::from_str(line.trim_end())?)
}

/// Reads a response line (trailing newline allowed).
pub fn decode_response(line: &str) -> Result<Response, DecodeError> {
    Ok(serde_json::from_str(line.trim_end())?)
}

#[cfg(test)]
mod tests;
