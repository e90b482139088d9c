//! ike_auth (work in progress).
