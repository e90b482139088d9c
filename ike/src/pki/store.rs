//! The trust store: CA certificates, intermediates, CRLs (filled by the `x509` work).
