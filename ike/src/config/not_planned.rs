//! swanctl keys iked does not plan to support yet, each with the reason
//! (docs/interop.md lists them): a configuration that uses one is refused
//! with its file, line and key, saying so, instead of "unknown key".

/// The message for `key` if it is one of them.
pub(super) fn not_planned(key: &str) -> Option<String> {
    let why = match key {
        "label" | "label_mode" => {
            "SELinux labels on SAs and policies need a kernel and a policy with SELinux \
             enforcing, which neither machine iked is tested on runs"
        }
        "mediation" | "mediated_by" | "mediation_peer" => {
            "IKEv2 mediation is strongSwan's own extension (an expired draft), which no \
             other implementation speaks"
        }
        "groups" => {
            "group membership is proven by X.509 attribute certificates, which iked does \
             not read, or by a RADIUS server (remote access)"
        }
        _ => return None,
    };
    Some(format!(
        "the swanctl key \"{key}\" is not planned yet: {why} (docs/interop.md)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_says_why_and_others_are_not_listed() {
        for k in [
            "label",
            "label_mode",
            "mediation",
            "mediated_by",
            "mediation_peer",
            "groups",
        ] {
            let m = not_planned(k).unwrap();
            assert!(
                m.starts_with(&format!("the swanctl key \"{k}\" is not planned yet: ")),
                "{m}"
            );
        }
        assert_eq!(not_planned("updown"), None);
        assert_eq!(not_planned("labels"), None);
    }
}
