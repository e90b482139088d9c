//! Certificate revocation lists (filled by the `x509` work).
