//! The message parser on one datagram, and what the engine does with a
//! parsed message's payloads before any key is involved.

use std::sync::OnceLock;

use ike::crypto::proposal::{self, SelectOptions};
use ike::display;
use ike::pki::Certificate;
use ike::wire::codes::{IdType, ProtocolId};
use ike::wire::sa::Proposal;
use ike::wire::{Header, Message, ParseLimits, Payload, rules};

/// What a responder is configured with, to select from offered SAs.
fn configured() -> &'static [Vec<Proposal>; 2] {
    static C: OnceLock<[Vec<Proposal>; 2]> = OnceLock::new();
    C.get_or_init(|| {
        let ike = proposal::parse_list(
            ProtocolId::IKE,
            &[
                "aes256gcm16-prfsha256-x25519",
                "aes128-sha256-modp2048",
                "chacha20poly1305-prfsha384-ecp384",
            ],
        );
        let esp = proposal::parse_list(ProtocolId::ESP, &["aes128gcm16", "aes128-sha256-esn"]);
        match (ike, esp) {
            (Ok(ike), Ok(esp)) => [ike, esp],
            (e1, e2) => panic!("the fixed proposals do not parse: {e1:?} {e2:?}"),
        }
    })
}

/// Parses `data` as an IKE message. What parses re-emits, and parsing
/// that gives the same message (the parser and the emitter agree on every
/// message the parser accepts). Then the payload rules, the text of
/// traffic selectors and distinguished names, the certificates of CERT
/// payloads and the selection from SA payloads.
pub fn message(data: &[u8]) {
    let limits = ParseLimits::default();
    let _ = Header::peek(data);
    let Ok(m) = Message::parse(data, &limits) else {
        return;
    };
    let again = match m.emit() {
        Ok(bytes) => Message::parse(&bytes, &limits),
        Err(e) => panic!("a parsed message does not emit: {e}\n{m:?}"),
    };
    match again {
        Ok(again) => assert_eq!(again, m, "parse(emit(m)) != m"),
        Err(e) => panic!("a parsed message's emission does not parse: {e}\n{m:?}"),
    }
    let _ = rules::check(&m);
    let (configured_ike, configured_esp) = {
        let c = configured();
        (&c[0], &c[1])
    };
    for p in &m.payloads {
        match p {
            Payload::TsI(ts) | Payload::TsR(ts) => {
                for t in ts {
                    let _ = display::ts_text(t);
                }
            }
            Payload::IdI(id) | Payload::IdR(id) => {
                if id.id_type == IdType::DER_ASN1_DN {
                    let _ = display::dn_text(&id.data);
                }
                let _ = display::IdDisplay(id).to_string();
            }
            Payload::Cert(c) => {
                let _ = Certificate::from_der(&c.data);
            }
            Payload::Sa(offered) => {
                let configured = if offered.iter().any(|p| p.protocol == ProtocolId::IKE) {
                    configured_ike
                } else {
                    configured_esp
                };
                for skip_ke in [false, true] {
                    let opts = SelectOptions {
                        skip_ke,
                        ..Default::default()
                    };
                    if let Ok(s) = proposal::select(configured, offered, opts) {
                        let _ = proposal::ike_suite(&s.proposal);
                        let _ = proposal::child_suite(&s.proposal);
                    }
                }
                for p in offered {
                    let _ = proposal::ike_suite(p);
                    let _ = proposal::child_suite(p);
                }
            }
            _ => {}
        }
    }
}
