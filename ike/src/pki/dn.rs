//! Distinguished names and strongSwan's DN matching (filled by the `x509` work).
