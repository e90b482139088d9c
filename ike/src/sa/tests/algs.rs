//! IKE SAs with each algorithm iked implements beyond AES-GCM, AES-CBC,
//! HMAC-SHA and the common groups, end to end between two in-process peers:
//! both sides derive the same keys (the IKE_AUTH exchange only succeeds if
//! SK_e, SK_a and SK_p agree), a second child brings a PFS group through
//! CREATE_CHILD_SA, and an IKE rekey exercises the PRF as the old SA's
//! (RFC 7296 2.18) and the fixed-key SKEYSEED of AES-XCBC/CMAC.

use std::sync::Arc;

use super::harness::*;
use super::secs;
use crate::crypto::proposal;
use crate::wire::codes::{EncrId, IntegId, KeId, PrfId};

#[test]
fn ike_sas_with_each_new_algorithm_come_up_and_rekey() {
    for (ike_prop, esp_pfs, encr, integ, prf, ke) in [
        (
            "aes192-sha256-modp2048",
            "aes128gcm16-modp1536",
            EncrId::AES_CBC,
            Some(IntegId::HMAC_SHA2_256_128),
            PrfId::HMAC_SHA2_256,
            KeId::MODP_2048,
        ),
        (
            "aes128ctr-aesxcbc-x25519",
            "aes128ctr-aesxcbc-ecp521",
            EncrId::AES_CTR,
            Some(IntegId::AES_XCBC_96),
            PrfId::AES128_XCBC,
            KeId::CURVE25519,
        ),
        (
            "aes256ctr-aescmac-prfaescmac-ecp521",
            "aes256gmac-x25519",
            EncrId::AES_CTR,
            Some(IntegId::AES_CMAC_96),
            PrfId::AES128_CMAC,
            KeId::ECP_521,
        ),
        (
            "3des-md5-modp1024",
            "3des-md5-modp1024",
            EncrId::TRIPLE_DES,
            Some(IntegId::HMAC_MD5_96),
            PrfId::HMAC_MD5,
            KeId::MODP_1024,
        ),
        (
            "aes256ccm8-prfaescmac-modp2048",
            "aes128ccm12-modp3072",
            EncrId::AES_CCM_8,
            None,
            PrfId::AES128_CMAC,
            KeId::MODP_2048,
        ),
        (
            "aes192gcm16-aes128gcm12-prfsha384-ecp384",
            "aes192gcm12-ecp384",
            EncrId::AES_GCM_16,
            None,
            PrfId::HMAC_SHA2_384,
            KeId::ECP_384,
        ),
        (
            "aes192ctr-sha1-prfaesxcbc-modp1536",
            "null-sha256_96-modp6144",
            EncrId::AES_CTR,
            Some(IntegId::HMAC_SHA1_96),
            PrfId::AES128_XCBC,
            KeId::MODP_1536,
        ),
    ] {
        let mut s = Setup::default();
        for (i, side) in s.peers.iter_mut().enumerate() {
            let (me, them) = if i == 0 {
                ("10.1.", "10.2.")
            } else {
                ("10.2.", "10.1.")
            };
            side[0].ike_proposals = ike(ike_prop);
            let mut second = child(
                "pfs",
                vec![subnet(&format!("{me}80.0"), &format!("{me}80.255"))],
                vec![subnet(&format!("{them}80.0"), &format!("{them}80.255"))],
            );
            Arc::make_mut(&mut second).proposals = esp(esp_pfs);
            side[0].children.push(second);
        }
        let mut p = Pair::new(s);
        let now = p.now;
        let id = p.a().ep.initiate(now, "site-b", &["net", "pfs"]).unwrap();
        p.run_for(secs(10));
        let info = p.a().ep.ike_sa(id).unwrap();
        let suite = info.suite.unwrap();
        assert_eq!(
            (suite.encr, suite.integ, suite.prf, suite.ke),
            (encr, integ, prf, ke),
            "{ike_prop}"
        );
        assert_eq!(info.children.len(), 2, "{ike_prop}: {:?}", p.a().events());
        p.assert_kernels_match();
        let pfs = p
            .a()
            .kernel
            .installed
            .values()
            .find(|c| c.name == "pfs")
            .unwrap()
            .clone();
        assert_eq!(
            pfs.suite.ke,
            proposal::parse(crate::wire::codes::ProtocolId::ESP, esp_pfs).unwrap()[0]
                .transforms
                .iter()
                .find(|t| t.transform_type == crate::wire::codes::TransformType::KE)
                .map(|t| KeId(t.id)),
            "{ike_prop}: PFS group of the second child"
        );
        // An IKE rekey: the new SA is keyed through the old PRF.
        let now = p.now;
        let theirs = p.b().ep.ike_sas().next().unwrap().id;
        p.peers[1].ep.rekey_ike(now, theirs).unwrap();
        p.run_for(secs(10));
        let new = p.a().ep.ike_sas().next().unwrap();
        assert_ne!(new.id, id, "{ike_prop}: rekeyed");
        assert_eq!(new.children.len(), 2, "{ike_prop}");
        // It still carries traffic: a child delete goes through it.
        let now = p.now;
        let child = new.children[0].id;
        p.peers[0].ep.terminate_child(now, new.id, child).unwrap();
        p.run_for(secs(5));
        assert_eq!(
            p.b().ep.ike_sas().next().unwrap().children.len(),
            1,
            "{ike_prop}: the delete over the rekeyed SA arrived"
        );
    }
}
