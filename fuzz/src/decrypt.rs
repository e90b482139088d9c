//! Decryption and the payload rules with known keys: those of the three
//! strongSwan exchanges in tests/captures (the keys charon logged), so the
//! input's octets get past the ICV check and into the parser of the inner
//! payloads, the padding checks and the reassembler.

use std::sync::OnceLock;

use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
use hmac::{Hmac, Mac};
use ike::crypto::DefaultProvider;
use ike::crypto::keymat::{IkeKeys, SkCiphers, skeyseed};
use ike::crypto::prf::HmacPrf;
use ike::crypto::proposal::{self, SelectOptions};
use ike::crypto::sk::SkCipher;
use ike::crypto::suite::IkeSuite;
use ike::wire::codes::{EncrId, ProtocolId};
use ike::wire::{FragmentLimits, HEADER_LEN, Message, ParseLimits, Reassembler, rules};
use sha2::Sha256;

use crate::Input;

const SUITES: [(&str, &str); 3] = [
    (
        include_str!("../../tests/captures/strongswan-5.9.8/aes256gcm16-prfsha256-x25519/keys.txt"),
        "aes256gcm16-prfsha256-x25519",
    ),
    (
        include_str!("../../tests/captures/strongswan-5.9.8/aes128-sha256-modp2048/keys.txt"),
        "aes128-sha256-modp2048",
    ),
    (
        include_str!(
            "../../tests/captures/strongswan-5.9.8/chacha20poly1305-prfsha384-ecp384/keys.txt"
        ),
        "chacha20poly1305-prfsha384-ecp384",
    ),
];

/// SK and SKF payload types.
const SK: u8 = 46;
const SKF: u8 = 53;

/// The keys of one captured IKE SA.
struct Known {
    suite: IkeSuite,
    keys: IkeKeys,
    spi_i: [u8; 8],
    spi_r: [u8; 8],
}

impl Known {
    /// Seals what `initiator` sends, opens what the other side receives.
    fn ciphers(&self, initiator: bool) -> (Box<dyn SkCipher>, Box<dyn SkCipher>) {
        let provider = DefaultProvider::new();
        let ours = self.keys.sk_ciphers(&provider, &self.suite, initiator);
        let theirs = self.keys.sk_ciphers(&provider, &self.suite, !initiator);
        match (ours, theirs) {
            (Ok(SkCiphers { outbound, .. }), Ok(SkCiphers { inbound, .. })) => (outbound, inbound),
            _ => panic!("the captured suite has no SK cipher"),
        }
    }
}

fn hex_key(text: &str, name: &str) -> Vec<u8> {
    text.lines()
        .filter_map(|l| l.split_once(" = "))
        .find(|(k, _)| k.trim() == name)
        .and_then(|(_, v)| hex::decode(v.trim()).ok())
        .unwrap_or_else(|| panic!("keys.txt has no {name}"))
}

fn spi(text: &str, name: &str) -> [u8; 8] {
    hex_key(text, name)
        .try_into()
        .unwrap_or_else(|_| panic!("{name} is not 8 octets"))
}

fn known() -> &'static [Known] {
    static K: OnceLock<Vec<Known>> = OnceLock::new();
    K.get_or_init(|| {
        SUITES
            .iter()
            .map(|(keys, proposal)| {
                let offered = proposal::parse(ProtocolId::IKE, proposal)
                    .unwrap_or_else(|e| panic!("{proposal}: {e}"));
                let chosen = proposal::select(&offered, &offered, SelectOptions::default())
                    .unwrap_or_else(|e| panic!("{proposal}: {e}"));
                let suite = proposal::ike_suite(&chosen.proposal)
                    .unwrap_or_else(|e| panic!("{proposal}: {e}"));
                let prf = HmacPrf::new(suite.prf).unwrap_or_else(|e| panic!("{proposal}: {e}"));
                let (ni, nr) = (hex_key(keys, "ni"), hex_key(keys, "nr"));
                let seed = skeyseed(&prf, &ni, &nr, &hex_key(keys, "shared_secret"));
                let (spi_i, spi_r) = (spi(keys, "spi_i"), spi(keys, "spi_r"));
                let keys = IkeKeys::derive(&prf, &suite, seed.as_bytes(), &ni, &nr, &spi_i, &spi_r)
                    .unwrap_or_else(|e| panic!("{proposal}: {e}"));
                Known {
                    suite,
                    keys,
                    spi_i,
                    spi_r,
                }
            })
            .collect()
    })
}

/// The fields of the IKE header the input chooses.
#[derive(Clone, Copy)]
struct Head {
    exchange: u8,
    flags: u8,
    message_id: u32,
}

/// The octets before the IV: IKE header and SK (or SKF, with its number
/// and total) generic header, with the lengths for `body_len` octets of
/// IV, ciphertext and ICV.
fn authenticated(
    k: &Known,
    h: Head,
    inner_first: u8,
    fragment: Option<(u16, u16)>,
    body_len: usize,
) -> Vec<u8> {
    let generic = if fragment.is_some() { 8 } else { 4 };
    let payload_len = u16::try_from(generic + body_len).unwrap_or(u16::MAX);
    let total = u32::try_from(HEADER_LEN + generic + body_len).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(HEADER_LEN + generic + body_len);
    out.extend_from_slice(&k.spi_i);
    out.extend_from_slice(&k.spi_r);
    out.push(if fragment.is_some() { SKF } else { SK });
    out.push(0x20);
    out.push(h.exchange);
    out.push(h.flags);
    out.extend_from_slice(&h.message_id.to_be_bytes());
    out.extend_from_slice(&total.to_be_bytes());
    out.push(inner_first);
    out.push(0);
    out.extend_from_slice(&payload_len.to_be_bytes());
    if let Some((number, total)) = fragment {
        out.extend_from_slice(&number.to_be_bytes());
        out.extend_from_slice(&total.to_be_bytes());
    }
    out
}

fn seal(
    k: &Known,
    sealer: &mut dyn SkCipher,
    h: Head,
    inner_first: u8,
    fragment: Option<(u16, u16)>,
    plain: &[u8],
) -> Option<Vec<u8>> {
    let mut out = authenticated(k, h, inner_first, fragment, sealer.sealed_len(plain.len()));
    sealer.seal(&mut out, plain).ok()?;
    Some(out)
}

/// A datagram decrypted: the payload rules, and the message sealed again
/// decrypts to itself.
fn check_opened(m: &Message, sealer: &mut dyn SkCipher, opener: &dyn SkCipher) {
    let limits = ParseLimits::default();
    let _ = rules::check(m);
    let again = m
        .emit_sealed(sealer)
        .unwrap_or_else(|e| panic!("a decrypted message does not seal again: {e}\n{m:?}"));
    let mut reparsed = Message::parse(&again, &limits)
        .unwrap_or_else(|e| panic!("a sealed message does not parse: {e}\n{m:?}"));
    if let Err(e) = reparsed.decrypt(&again, opener, &limits) {
        panic!("a message sealed again does not decrypt: {e}\n{m:?}");
    }
    assert_eq!(&reparsed, m, "decrypt(seal(m)) != m");
}

fn open_and_check(datagram: &[u8], sealer: &mut dyn SkCipher, opener: &dyn SkCipher) {
    let limits = ParseLimits::default();
    let Ok(mut m) = Message::parse(datagram, &limits) else {
        return;
    };
    if m.decrypt(datagram, opener, &limits).is_ok() {
        check_opened(&m, sealer, opener);
    }
}

/// AES-128-CBC with HMAC-SHA-256-128 (the `aes128-sha256` capture's
/// algorithms) over `plain` as the input gives it, padding and Pad Length
/// included (zeros complete the last block): the padding checks see what
/// a peer could send.
fn seal_cbc_raw(k: &Known, h: Head, inner_first: u8, iv: &[u8], plain: &[u8]) -> Option<Vec<u8>> {
    let (ek, ak) = if h.flags & 0x08 != 0 {
        (k.keys.sk_ei.as_bytes(), k.keys.sk_ai.as_bytes())
    } else {
        (k.keys.sk_er.as_bytes(), k.keys.sk_ar.as_bytes())
    };
    let mut iv16 = [0u8; 16];
    iv16.iter_mut().zip(iv).for_each(|(d, s)| *d = *s);
    let mut ct = plain.to_vec();
    ct.resize(plain.len().div_ceil(16).max(1) * 16, 0);
    let len = ct.len();
    cbc::Encryptor::<aes::Aes128>::new_from_slices(ek, &iv16)
        .ok()?
        .encrypt_padded_mut::<NoPadding>(&mut ct, len)
        .ok()?;
    let mut out = authenticated(k, h, inner_first, None, 16 + len + 16);
    let mut mac = Hmac::<Sha256>::new_from_slice(ak).ok()?;
    mac.update(&out);
    mac.update(&iv16);
    mac.update(&ct);
    let icv = mac.finalize().into_bytes();
    out.extend_from_slice(&iv16);
    out.extend_from_slice(&ct);
    out.extend_from_slice(icv.get(..16)?);
    Some(out)
}

/// The first octet picks the captured suite and the mode; then the
/// exchange type, the flags (I and R), the Message ID and the first inner
/// payload type; the rest is the inner payloads (or, in mode 2, a whole
/// datagram). Modes: 0 sealed in one SK payload; 1 cut into SKF
/// fragments (count, order and the Total Fragments field from the input)
/// through a [`Reassembler`]; 2 a raw datagram opened with both sides'
/// keys, also as a fragment; 3 AES-CBC with the input's own padding (the
/// `aes128-sha256` capture).
pub fn decrypt(data: &[u8]) {
    let mut input = Input::new(data);
    let pick = input.u8();
    let mode = (pick / 3) % 4;
    let suite = if mode == 3 { 1 } else { usize::from(pick % 3) };
    let Some(k) = known().get(suite) else {
        return;
    };
    let exchange = match input.u8() {
        x @ 0..=191 => 34 + x % 4,
        x => x,
    };
    let flags = match input.u8() {
        x @ 0..=127 => x & 0x28,
        x => x,
    };
    let message_id = u32::from(input.u8());
    // No payload, or one of SA (33) to EAP (48); above 127 as it is.
    let inner_first = match input.u8() {
        x @ 0..=127 => match x % 17 {
            0 => 0,
            n => 32 + n,
        },
        x => x,
    };
    let h = Head {
        exchange,
        flags,
        message_id,
    };
    let (mut sealer, opener) = k.ciphers(flags & 0x08 != 0);
    match mode {
        0 => {
            let plain = input.rest();
            if let Some(d) = seal(k, sealer.as_mut(), h, inner_first, None, plain) {
                open_and_check(&d, sealer.as_mut(), opener.as_ref());
            }
        }
        1 => {
            let count = usize::from(input.u8() % 8) + 1;
            let rotate = usize::from(input.u8());
            let total = match input.u8() {
                0 => u16::try_from(count).unwrap_or(u16::MAX),
                t => u16::from(t),
            };
            let plain = input.rest();
            let size = plain.len().div_ceil(count).max(1);
            let mut frags: Vec<Vec<u8>> = Vec::new();
            for (i, chunk) in plain.chunks(size).enumerate() {
                let number = u16::try_from(i + 1).unwrap_or(u16::MAX);
                let first = if i == 0 { inner_first } else { 0 };
                frags.extend(seal(
                    k,
                    sealer.as_mut(),
                    h,
                    first,
                    Some((number, total)),
                    chunk,
                ));
            }
            if !frags.is_empty() {
                let at = rotate % frags.len();
                frags.rotate_left(at);
            }
            let mut r = Reassembler::new(FragmentLimits::default(), ParseLimits::default());
            for f in &frags {
                if let Ok(Some(m)) = r.push(f, opener.as_ref()) {
                    if matches!(m.encrypted(), Some(ike::wire::Encrypted::Open(_))) {
                        check_opened(&m, sealer.as_mut(), opener.as_ref());
                    } else {
                        let _ = rules::check(&m);
                    }
                }
            }
        }
        2 => {
            let datagram = input.rest();
            open_and_check(datagram, sealer.as_mut(), opener.as_ref());
            let (mut sealer2, opener2) = k.ciphers(flags & 0x08 == 0);
            open_and_check(datagram, sealer2.as_mut(), opener2.as_ref());
            let mut r = Reassembler::new(FragmentLimits::default(), ParseLimits::default());
            let _ = r.push(datagram, opener.as_ref());
        }
        _ => {
            debug_assert_eq!(k.suite.encr, EncrId::AES_CBC);
            let iv = input.bytes(16);
            let plain = input.rest();
            if let Some(d) = seal_cbc_raw(k, h, inner_first, iv, plain) {
                let limits = ParseLimits::default();
                if let Ok(mut m) = Message::parse(&d, &limits)
                    && m.decrypt(&d, opener.as_ref(), &limits).is_ok()
                {
                    check_opened(&m, sealer.as_mut(), opener.as_ref());
                }
            }
        }
    }
}
