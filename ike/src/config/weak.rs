//! Warnings for weak algorithms in configured proposals: iked accepts
//! them (existing peers need them, e.g. Windows' MODP-1024 default), but says
//! so at load time, as strongSwan leaves them out of its defaults.

use super::Config;
use crate::crypto::proposal::default_proposals;
use crate::crypto::proposal::keywords::strongswan_name;
use crate::wire::codes::{EncrId, IntegId, KeId, PrfId, TransformType};
use crate::wire::sa::{Proposal, Transform};

/// Why a transform is weak, or `None`.
fn weakness(t: &Transform) -> Option<&'static str> {
    let id = t.id;
    let ke = t.transform_type == TransformType::KE
        || (TransformType::ADDKE1.0..=TransformType::ADDKE7.0).contains(&t.transform_type.0);
    if ke {
        return [KeId::MODP_768, KeId::MODP_1024, KeId::MODP_1536]
            .contains(&KeId(id))
            .then_some("a MODP group below 2048 bits");
    }
    match t.transform_type {
        TransformType::ENCR if id == EncrId::DES.0 || id == EncrId::TRIPLE_DES.0 => {
            Some("a 64-bit block cipher")
        }
        TransformType::ENCR if id == EncrId::NULL.0 => Some("no encryption"),
        TransformType::INTEG if id == IntegId::HMAC_MD5_96.0 || id == IntegId::HMAC_MD5_128.0 => {
            Some("MD5")
        }
        TransformType::PRF if id == PrfId::HMAC_MD5.0 => Some("MD5"),
        _ => None,
    }
}

/// The weak transforms of a proposal list, each once, as
/// `MODP_1024 (a MODP group below 2048 bits)`. The proposals `default`
/// makes are left out: strongSwan's IKE default has 3DES, and warning
/// about a configuration that does not name it would only be noise.
fn weak_names(proposals: &[Proposal]) -> Vec<String> {
    let defaults: Vec<Vec<Transform>> = proposals
        .first()
        .map(|p| default_proposals(p.protocol))
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.transforms)
        .collect();
    let mut out: Vec<String> = Vec::new();
    for t in proposals
        .iter()
        .filter(|p| !defaults.contains(&p.transforms))
        .flat_map(|p| &p.transforms)
    {
        if let Some(why) = weakness(t) {
            let name = strongswan_name(t.transform_type, t.id)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{}({})", t.transform_type, t.id));
            let s = format!("{name} ({why})");
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

impl Config {
    /// One message per proposal list (a connection's IKE proposals, a
    /// child's ESP or AH proposals) that offers weak algorithms: MODP
    /// groups below 2048 bits, DES and 3DES, MD5, NULL encryption. For
    /// `--check-config` and the log at start and reload.
    pub fn weak_algorithm_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |what: String, proposals: &[Proposal]| {
            let names = weak_names(proposals);
            if !names.is_empty() {
                out.push(format!(
                    "{what} offer weak algorithms: {}",
                    names.join(", ")
                ));
            }
        };
        for c in &self.connections {
            check(
                format!("connection \"{}\": the IKE proposals", c.name),
                &c.proposals,
            );
            for ch in &c.children {
                let at = format!("connection \"{}\", child \"{}\"", c.name, ch.name);
                check(format!("{at}: the ESP proposals"), &ch.esp_proposals);
                check(format!("{at}: the AH proposals"), &ch.ah_proposals);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(ike: &str, esp: &str) -> Config {
        let text = format!(
            "connections:\n  gw:\n    remote_addrs: [192.0.2.2]\n    proposals: [{ike}]\n    \
             local: {{ auth: psk }}\n    remote: {{ auth: psk }}\n    children:\n      net:\n        \
             esp_proposals: [{esp}]\n        local_ts: [10.1.0.0/16]\n        remote_ts: [10.2.0.0/16]\n"
        );
        Config::from_yaml_str(&text, "t.yaml").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn weak_algorithms_are_named_once_per_list() {
        let c = load(
            "aes128-sha256-modp1024, aes256-sha256-modp1024-modp1536",
            "3des-md5-modp1024, null-sha256",
        );
        assert_eq!(
            c.weak_algorithm_warnings(),
            [
                "connection \"gw\": the IKE proposals offer weak algorithms: MODP_1024 (a MODP \
                 group below 2048 bits), MODP_1536 (a MODP group below 2048 bits)",
                "connection \"gw\", child \"net\": the ESP proposals offer weak algorithms: \
                 3DES_CBC (a 64-bit block cipher), HMAC_MD5_96 (MD5), MODP_1024 (a MODP group \
                 below 2048 bits), NULL (no encryption)",
            ]
        );
        let strong = load(
            "aes256gcm16-prfsha384-ecp384, default",
            "aes128gcm16-x25519",
        );
        assert!(strong.weak_algorithm_warnings().is_empty());
    }
}
