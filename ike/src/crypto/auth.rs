//! AUTH with a shared key (RFC 7296 2.15) and the NAT detection hashes
//! (RFC 7296 2.23).

use std::net::IpAddr;

use ring::digest;
use subtle::ConstantTimeEq;

use super::prf::Prf;

/// The pad string of RFC 7296 2.15 (17 octets, no terminator).
pub const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// The octets an AUTH payload signs or MACs (RFC 7296 2.15):
/// `RealMessage | NonceData | prf(SK_p, RestOfIDPayload)`.
///
/// For the initiator: its IKE_SA_INIT request as sent, the responder's Nonce
/// Data, SK_pi and the body of IDi (ID Type, 3 reserved octets,
/// Identification Data: the ID payload without its generic header). For the
/// responder: its IKE_SA_INIT response, the initiator's Nonce Data, SK_pr and
/// the body of IDr.
pub fn signed_octets(
    prf: &dyn Prf,
    real_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    rest_of_id_payload: &[u8],
) -> Vec<u8> {
    let maced_id = prf.compute(sk_p, &[rest_of_id_payload]);
    let mut out = Vec::with_capacity(
        real_message
            .len()
            .saturating_add(peer_nonce.len())
            .saturating_add(maced_id.len()),
    );
    out.extend_from_slice(real_message);
    out.extend_from_slice(peer_nonce);
    out.extend_from_slice(maced_id.as_bytes());
    out
}

/// `AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)`.
pub fn psk_auth(prf: &dyn Prf, shared_key: &[u8], signed_octets: &[u8]) -> Vec<u8> {
    let k = prf.compute(shared_key, &[KEY_PAD]);
    prf.compute(k.as_bytes(), &[signed_octets])
        .as_bytes()
        .to_vec()
}

/// Whether `received` is the AUTH value [`psk_auth`] gives, compared in
/// constant time.
pub fn verify_psk_auth(
    prf: &dyn Prf,
    shared_key: &[u8],
    signed_octets: &[u8],
    received: &[u8],
) -> bool {
    let want = psk_auth(prf, shared_key, signed_octets);
    want.len() == received.len() && bool::from(want.as_slice().ct_eq(received))
}

/// Notification data of NAT_DETECTION_SOURCE_IP and
/// NAT_DETECTION_DESTINATION_IP: `SHA1(SPIi | SPIr | IP | Port)`, the address
/// as 4 or 16 octets and the port in network order. SPIr is zero in the
/// IKE_SA_INIT request.
pub fn nat_detection_hash(spi_i: &[u8; 8], spi_r: &[u8; 8], addr: IpAddr, port: u16) -> [u8; 20] {
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(spi_i);
    ctx.update(spi_r);
    match addr {
        IpAddr::V4(a) => ctx.update(&a.octets()),
        IpAddr::V6(a) => ctx.update(&a.octets()),
    }
    ctx.update(&port.to_be_bytes());
    let mut out = [0u8; 20];
    out.copy_from_slice(ctx.finish().as_ref().get(..20).unwrap_or(&[0; 20]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::prf::HmacPrf;
    use crate::crypto::vectors::v;
    use crate::wire::codes::PrfId;

    #[test]
    fn psk_auth_known_answer() {
        let prf = HmacPrf::new(PrfId::HMAC_SHA2_256).unwrap();
        let nr: Vec<u8> = (0x80..0xa0).collect();
        let signed = signed_octets(
            &prf,
            &v("auth_message"),
            &nr,
            &v("suite_a_sk_pi"),
            &v("auth_id_body"),
        );
        assert_eq!(signed, v("auth_signed_octets"));
        let auth = psk_auth(&prf, &v("auth_psk"), &signed);
        assert_eq!(auth, v("auth_value"));
        assert!(verify_psk_auth(&prf, &v("auth_psk"), &signed, &auth));
        let mut bad = auth.clone();
        bad[31] ^= 0x80;
        assert!(!verify_psk_auth(&prf, &v("auth_psk"), &signed, &bad));
        assert!(!verify_psk_auth(&prf, &v("auth_psk"), &signed, &auth[..31]));
        assert!(!verify_psk_auth(&prf, b"another secret", &signed, &auth));
    }

    #[test]
    fn nat_detection_known_answers() {
        let spi_i = *b"\x01\x02\x03\x04\x05\x06\x07\x08";
        let spi_r = *b"\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8";
        let v4 = nat_detection_hash(&spi_i, &spi_r, "192.0.2.1".parse().unwrap(), 500);
        assert_eq!(v4.as_slice(), v("nat_v4").as_slice());
        let v6 = nat_detection_hash(&spi_i, &spi_r, "2001:db8::1".parse().unwrap(), 4500);
        assert_eq!(v6.as_slice(), v("nat_v6").as_slice());
        let other_port = nat_detection_hash(&spi_i, &spi_r, "192.0.2.1".parse().unwrap(), 4500);
        assert_ne!(v4, other_port);
    }
}
