//! A gateway connection's `redirect` (RFC 5685): where its clients are
//! sent, and in which exchange. iked's own key: strongSwan has no
//! swanctl.conf key for this (its redirects come from provider plugins),
//! see configuration.md, "Redirect".
//!
//! ```yaml
//! redirect:
//!   to: 192.0.2.2        # an IPv4 or IPv6 address or a DNS name
//!   when: ike_sa_init    # or ike_auth (default)
//! ```

use super::yaml::{Errors, Fields, Path, scalar};
use crate::sa::{Gateway, RedirectCfg, RedirectWhen};

/// `redirect` of a connection, if present and valid.
pub(super) fn connection(
    f: &mut Fields<'_>,
    path: &Path,
    errors: &mut Errors,
) -> Option<RedirectCfg> {
    let (node, _) = f.take("redirect")?;
    let p = path.join("redirect");
    let mut r = Fields::new(node, p.clone(), errors)?;
    let to = match r.take("to") {
        Some((n, _)) => {
            let tp = p.join("to");
            scalar(n, &tp, errors).and_then(|s| match Gateway::parse(s) {
                Ok(g) => Some(g),
                Err(e) => {
                    errors.add(n.loc(), &tp, e);
                    None
                }
            })
        }
        None => {
            errors.add(
                node.loc(),
                &p,
                "redirect needs \"to\": the gateway (an address or a DNS name)",
            );
            None
        }
    };
    let when = match r.take("when") {
        None => Some(RedirectWhen::default()),
        Some((n, _)) => {
            let wp = p.join("when");
            match scalar(n, &wp, errors) {
                Some("ike_sa_init") => Some(RedirectWhen::Init),
                Some("ike_auth") => Some(RedirectWhen::Auth),
                Some(other) => {
                    errors.add(
                        n.loc(),
                        &wp,
                        format!("unknown when \"{other}\" (expected ike_sa_init, ike_auth)"),
                    );
                    None
                }
                None => None,
            }
        }
    };
    r.finish(errors, |_| None);
    Some(RedirectCfg {
        to: to?,
        when: when?,
    })
}
