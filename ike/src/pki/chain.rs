//! Certificate chain building and validation to trust anchors (filled by the `x509` work).
