//! Encoding requests and decoding kernel messages without panicking.
//!
//! `netlink-packet-xfrm` slices its input by fixed struct sizes before
//! checking lengths, so a short message would panic inside it. Every message
//! is therefore length-checked here first (and parsed under `catch_unwind` as
//! a last resort); only the message types this crate uses are parsed at all.

use netlink_packet_core::{
    NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_xfrm::{self as nx, XfrmAttrs, XfrmMessage};
use zeroize::{Zeroize, Zeroizing};

/// One decoded netlink message.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// An XFRM message.
    Xfrm { seq: u32, msg: Box<XfrmMessage> },
    /// An error or ACK (errno 0 for an ACK, positive otherwise).
    Ack {
        seq: u32,
        errno: i32,
        ext_ack: Option<String>,
    },
    /// End of a dump (errno non-zero if the dump failed).
    Done { seq: u32, errno: i32 },
    /// A message that could not be decoded.
    Bad { seq: u32, reason: String },
    /// A message type this crate ignores.
    Ignored,
}

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLMSG_HDRLEN: usize = 16;

/// Smallest payload the parser of each message type can read safely.
fn min_len(msg_type: u16) -> Option<usize> {
    Some(match msg_type {
        nx::XFRM_MSG_NEWSA | nx::XFRM_MSG_UPDSA => nx::XFRM_USER_SA_INFO_LEN,
        nx::XFRM_MSG_DELSA | nx::XFRM_MSG_GETSA => nx::XFRM_USER_SA_ID_LEN,
        nx::XFRM_MSG_NEWPOLICY | nx::XFRM_MSG_UPDPOLICY => nx::XFRM_USER_POLICY_INFO_LEN,
        nx::XFRM_MSG_DELPOLICY | nx::XFRM_MSG_GETPOLICY => nx::XFRM_USER_POLICY_ID_LEN,
        nx::XFRM_MSG_ALLOCSPI => nx::XFRM_USER_SPI_INFO_LEN,
        nx::XFRM_MSG_ACQUIRE => nx::XFRM_USER_ACQUIRE_LEN,
        nx::XFRM_MSG_EXPIRE => nx::XFRM_USER_EXPIRE_LEN,
        nx::XFRM_MSG_POLEXPIRE => nx::XFRM_USER_POLICY_EXPIRE_LEN,
        nx::XFRM_MSG_MAPPING => nx::XFRM_USER_MAPPING_LEN,
        nx::XFRM_MSG_FLUSHSA => 1,
        nx::XFRM_MSG_FLUSHPOLICY => 0,
        _ => return None,
    })
}

/// Decodes every netlink message in one datagram.
pub(crate) fn decode_datagram(mut data: &[u8]) -> Vec<Decoded> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let Ok(buf) = NetlinkBuffer::new_checked(data) else {
            out.push(Decoded::Bad {
                seq: 0,
                reason: "truncated netlink header".to_owned(),
            });
            break;
        };
        let len = buf.length() as usize;
        let seq = buf.sequence_number();
        let msg_type = buf.message_type();
        let payload = data.get(NLMSG_HDRLEN..len).unwrap_or(&[]);
        out.push(decode_one(msg_type, seq, payload));
        // Messages are 4-byte aligned within a datagram.
        let next = len.saturating_add(3) & !3;
        if next == 0 {
            break;
        }
        data = data.get(next..).unwrap_or(&[]);
    }
    out
}

fn decode_one(msg_type: u16, seq: u32, payload: &[u8]) -> Decoded {
    match msg_type {
        NLMSG_ERROR => {
            let Some(code) = payload.get(..4) else {
                return Decoded::Bad {
                    seq,
                    reason: "short NLMSG_ERROR".to_owned(),
                };
            };
            let code = i32::from_ne_bytes([code[0], code[1], code[2], code[3]]);
            Decoded::Ack {
                seq,
                errno: code.saturating_neg(),
                ext_ack: parse_ext_ack(payload.get(4..).unwrap_or(&[])),
            }
        }
        NLMSG_DONE => {
            let errno = payload
                .get(..4)
                .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]).saturating_neg())
                .unwrap_or(0);
            Decoded::Done { seq, errno }
        }
        t => {
            let Some(min) = min_len(t) else {
                return Decoded::Ignored;
            };
            if payload.len() < min {
                return Decoded::Bad {
                    seq,
                    reason: format!(
                        "XFRM message type {t} has {} octets, needs {min}",
                        payload.len()
                    ),
                };
            }
            let parsed =
                std::panic::catch_unwind(|| XfrmMessage::parse_with_param_safe(payload, t));
            match parsed {
                Ok(Ok(msg)) => Decoded::Xfrm {
                    seq,
                    msg: Box::new(msg),
                },
                Ok(Err(e)) => Decoded::Bad {
                    seq,
                    reason: format!("XFRM message type {t}: {e}"),
                },
                Err(_) => Decoded::Bad {
                    seq,
                    reason: format!("XFRM message type {t}: parser panicked"),
                },
            }
        }
    }
}

trait ParseSafe: Sized {
    fn parse_with_param_safe(buf: &[u8], t: u16) -> Result<Self, String>;
}

impl ParseSafe for XfrmMessage {
    fn parse_with_param_safe(buf: &[u8], t: u16) -> Result<Self, String> {
        use netlink_packet_core::ParseableParametrized;
        XfrmMessage::parse_with_param(buf, t).map_err(|e| e.to_string())
    }
}

/// The `NLMSGERR_ATTR_MSG` text after the echoed request header
/// (the socket sets `NETLINK_CAP_ACK`, so only the header is echoed).
fn parse_ext_ack(rest: &[u8]) -> Option<String> {
    // rest: the echoed nlmsghdr, then TLVs.
    let echoed_len = NLMSG_HDRLEN;
    let mut tlvs = rest.get(echoed_len..)?;
    while tlvs.len() >= 4 {
        let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]);
        if len < 4 {
            break;
        }
        let value = tlvs.get(4..len)?;
        if kind == NLMSGERR_ATTR_MSG {
            let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
            let text = String::from_utf8_lossy(value.get(..end)?).into_owned();
            return (!text.is_empty()).then_some(text);
        }
        let next = len.checked_add(3)? & !3;
        tlvs = tlvs.get(next..)?;
    }
    None
}

/// Zeroizes every key inside a message (requests after sending, replies
/// after reading).
pub(crate) fn scrub(msg: &mut XfrmMessage) {
    let nlas: &mut Vec<XfrmAttrs> = match msg {
        XfrmMessage::AddSa(m) | XfrmMessage::UpdateSa(m) => &mut m.nlas,
        XfrmMessage::AllocSpi(m) => &mut m.nlas,
        XfrmMessage::DeleteSa(m) | XfrmMessage::GetSa(m) => &mut m.nlas,
        _ => return,
    };
    scrub_attrs(nlas);
}

/// Zeroizes the keys in a list of attributes.
pub(crate) fn scrub_attrs(nlas: &mut [XfrmAttrs]) {
    for a in nlas.iter_mut() {
        match a {
            XfrmAttrs::AuthenticationAlg(x)
            | XfrmAttrs::EncryptionAlg(x)
            | XfrmAttrs::CompressionAlg(x) => x.alg_key.zeroize(),
            XfrmAttrs::AuthenticationAlgTrunc(x) => x.alg_key.zeroize(),
            XfrmAttrs::EncryptionAlgAead(x) => x.alg_key.zeroize(),
            XfrmAttrs::Other(_) | XfrmAttrs::Unspec(_) => {}
            _ => {}
        }
    }
}

/// Encodes a request into a buffer that zeroizes itself when dropped, then
/// scrubs the keys from the message.
pub(crate) fn encode(msg: XfrmMessage, flags: u16, seq: u32) -> Zeroizing<Vec<u8>> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | flags;
    header.sequence_number = seq;
    let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    nl.finalize();
    let mut buf = Zeroizing::new(vec![0u8; nl.buffer_len()]);
    nl.serialize(&mut buf);
    if let NetlinkPayload::InnerMessage(inner) = &mut nl.payload {
        scrub(inner);
    }
    buf
}
