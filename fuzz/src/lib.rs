//! iked's fuzz targets, one function per target: what each does with an
//! arbitrary input, and which property it checks beyond "no panic, no
//! endless loop, no unbounded allocation". The binaries in `fuzz_targets/`
//! are one line each around these functions (`cargo fuzz`, nightly); the
//! test `tests/corpus.rs` runs every input committed in `corpus/<target>/`
//! through them on stable. docs/fuzzing.md says how to run them.
//!
//! | target | input | checks |
//! |---|---|---|
//! | [`message`] | one datagram | parse, re-emit, parse again gives the same message; payload rules, TS and DN text, CERT payloads parsed, SA payloads selected from |
//! | [`decrypt`] | a mode, an exchange, inner payload octets | sealed with the keys of a captured strongSwan exchange, decrypted, payload rules; as RFC 7383 fragments through the reassembler; AES-CBC with the input's own padding; a raw datagram opened |
//! | [`endpoint`] | a program of network, clock, kernel and operator events | two `Endpoint`s with the deterministic provider, datagrams between them delivered, dropped, repeated, altered, injected |
//! | [`endpoint_ra`] | the same programs | a road warrior (EAP-MSCHAPv2, a virtual IP, MOBIKE moves) and a gateway with a pool |
//! | [`swanctl`] | swanctl.conf text | read; what reads also converts to YAML that reads too |
//! | [`yaml`] | iked YAML text | read; what reads also becomes peer configurations |
//! | [`cert`] | DER or PEM | certificates, CRLs, public and private keys parsed; a chain of the certificates validated |

// A failed property is a panic: that is what the fuzzer reports.
#![allow(clippy::panic)]

mod cert;
mod decrypt;
mod endpoint;
mod message;
mod text;

pub use cert::cert;
pub use decrypt::decrypt;
pub use endpoint::{endpoint, endpoint_ra};
pub use message::message;
pub use text::{swanctl, yaml};

/// A fuzz target: any input, no result (a failure panics).
pub type Target = fn(&[u8]);

/// The targets by name, as `fuzz_targets/` and `corpus/` name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("message", message),
    ("decrypt", decrypt),
    ("endpoint", endpoint),
    ("endpoint_ra", endpoint_ra),
    ("swanctl", swanctl),
    ("yaml", yaml),
    ("cert", cert),
];

/// Reads an input front to back; past its end every read gives zeros, so
/// every input is a valid program.
#[derive(Debug)]
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// Up to `n` octets (fewer at the end).
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// What is left.
    fn rest(&mut self) -> &'a [u8] {
        self.bytes(self.data.len())
    }
}
