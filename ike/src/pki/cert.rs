//! X.509 certificates: parsing, fields, identities (filled by the `x509` work).
