//! Known answers computed by tests/vectors/ikev2_vectors.py (Python's
//! hmac, hashlib and pow; see that script), committed as its output.

const VECTORS: &str = include_str!("../../tests/vectors/ikev2_vectors.txt");

/// The value named `name`; panics (in tests only) if it is missing.
pub(crate) fn v(name: &str) -> Vec<u8> {
    for line in VECTORS.lines() {
        let mut it = line.splitn(2, ' ');
        if it.next() == Some(name) {
            return hex::decode(it.next().unwrap_or("").trim()).unwrap();
        }
    }
    panic!("no vector {name}");
}
