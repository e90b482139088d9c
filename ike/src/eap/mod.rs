//! EAP methods for IKEv2 (RFC 7296 2.16), a start on remote access
//! (issue 18). Not used by the engine yet: IKE_AUTH with EAP is still to
//! come.
//!
//! - [`mschapv2`]: MS-CHAPv2's responses and EAP-MSCHAPv2's MSK, with the
//!   RFC 2759 and RFC 3079 known-answer vectors.
//! - [`tls`]: EAP-TLS (RFC 5216, TLS 1.3 per RFC 9190) as server and
//!   client on rustls, driven in memory: fragmentation, the protected
//!   success indication, the MSK; certificates checked by [`crate::pki`].

pub mod mschapv2;
pub mod tls;
