//! Checked cursor over untrusted bytes, and length-patching helpers for
//! emitting. Every read is bounds-checked and reports what was being read.

use super::error::{EmitError, ErrorKind};

/// A cursor over a byte slice that never panics: each read either returns
/// the requested bytes or an [`ErrorKind::Truncated`] naming the field.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Octets not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes the next `n` octets.
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ErrorKind> {
        let (head, tail) = self.buf.split_at_checked(n).ok_or(ErrorKind::Truncated {
            what,
            need: n,
            have: self.buf.len(),
        })?;
        self.buf = tail;
        Ok(head)
    }

    /// Takes the next `N` octets as an array.
    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], ErrorKind> {
        let s = self.take(N, what)?;
        // `take` returned exactly N octets, so this cannot fail; map it anyway.
        s.try_into().map_err(|_| ErrorKind::Truncated {
            what,
            need: N,
            have: s.len(),
        })
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, ErrorKind> {
        self.array::<1>(what).map(|[b]| b)
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, ErrorKind> {
        self.array(what).map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, ErrorKind> {
        self.array(what).map(u32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, ErrorKind> {
        self.array(what).map(u64::from_be_bytes)
    }

    /// Takes everything that is left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }

    /// Reads a 16-bit length that counts the `header` octets already read,
    /// itself and the body, and takes the body. The length must be at least
    /// `min` (which is at least `header + 2`).
    pub(crate) fn body16(
        &mut self,
        header: usize,
        min: usize,
        what: &'static str,
    ) -> Result<&'a [u8], ErrorKind> {
        let len = usize::from(self.u16(what)?);
        let body = len
            .checked_sub(header.saturating_add(2))
            .filter(|_| len >= min)
            .ok_or(ErrorKind::TooShort { what, len, min })?;
        self.take(body, what).map_err(|_| ErrorKind::Overrun {
            what,
            len,
            have: self.remaining().saturating_add(header).saturating_add(2),
        })
    }

    /// Fails unless every octet was consumed.
    pub(crate) fn finish(&self) -> Result<(), ErrorKind> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(ErrorKind::TrailingData(n)),
        }
    }
}

/// Where a length field that is only known after its structure has been
/// written goes; see [`Len16::finish`].
#[derive(Debug)]
#[must_use]
pub(crate) struct Len16 {
    /// Offset of the structure's first octet: the length counts from there.
    start: usize,
    /// Offset of the 2-octet length field.
    at: usize,
}

impl Len16 {
    /// Writes a zero placeholder for a 16-bit length field of the structure
    /// that starts at `start`.
    pub(crate) fn new(out: &mut Vec<u8>, start: usize) -> Self {
        let at = out.len();
        out.extend_from_slice(&[0, 0]);
        Self { start, at }
    }

    /// Patches the length to cover everything written since `start`.
    pub(crate) fn finish(self, out: &mut [u8], what: &'static str) -> Result<(), EmitError> {
        let len = out.len().saturating_sub(self.start);
        let v = u16::try_from(len).map_err(|_| EmitError::TooLong {
            what,
            len,
            max: u16::MAX.into(),
        })?;
        patch(out, self.at, &v.to_be_bytes())
    }
}

/// Overwrites `bytes.len()` octets at `at`.
pub(crate) fn patch(out: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), EmitError> {
    at.checked_add(bytes.len())
        .and_then(|end| out.get_mut(at..end))
        .map(|dst| dst.copy_from_slice(bytes))
        .ok_or(EmitError::Internal("length field out of place"))
}

/// Converts a count or length into the width of its wire field.
pub(crate) fn fit<T: TryFrom<usize> + Bounded>(
    len: usize,
    what: &'static str,
) -> Result<T, EmitError> {
    T::try_from(len).map_err(|_| EmitError::TooLong {
        what,
        len,
        max: T::MAX_USIZE,
    })
}

/// The largest value of an unsigned wire field, as a usize.
pub(crate) trait Bounded {
    const MAX_USIZE: usize;
}
impl Bounded for u8 {
    const MAX_USIZE: usize = u8::MAX as usize;
}
impl Bounded for u16 {
    const MAX_USIZE: usize = u16::MAX as usize;
}
impl Bounded for u32 {
    const MAX_USIZE: usize = u32::MAX as usize;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_checked() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16("x"), Ok(0x0102));
        assert_eq!(
            r.u16("y"),
            Err(ErrorKind::Truncated {
                what: "y",
                need: 2,
                have: 1
            })
        );
        assert_eq!(r.finish(), Err(ErrorKind::TrailingData(1)));
        assert_eq!(r.u8("z"), Ok(3));
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn body16_checks_both_bounds() {
        // Length 3 is shorter than its own 4-octet header.
        // Length 3 is shorter than its own 2-octet header and length field.
        let mut r = Reader::new(&[0, 3, 0, 0]);
        assert_eq!(
            r.body16(2, 4, "s"),
            Err(ErrorKind::TooShort {
                what: "s",
                len: 3,
                min: 4
            })
        );
        let mut r = Reader::new(&[0, 5, 0, 0, 0]);
        assert_eq!(
            r.body16(2, 8, "s"),
            Err(ErrorKind::TooShort {
                what: "s",
                len: 5,
                min: 8
            })
        );
        let mut r = Reader::new(&[0, 9, 1, 2]);
        assert_eq!(
            r.body16(2, 4, "s"),
            Err(ErrorKind::Overrun {
                what: "s",
                len: 9,
                have: 6
            })
        );
        let mut r = Reader::new(&[0, 4, 1, 2, 7]);
        assert_eq!(r.body16(0, 2, "s"), Ok(&[1u8, 2][..]));
    }

    #[test]
    fn len16_patches_and_rejects_overflow() {
        let mut out = vec![9];
        let m = Len16::new(&mut out, 0);
        out.push(5);
        m.finish(&mut out, "t").unwrap();
        assert_eq!(out, [9, 0, 4, 5]);
        let mut big = Vec::new();
        let m = Len16::new(&mut big, 0);
        big.resize(70_000, 0);
        assert!(matches!(
            m.finish(&mut big, "t"),
            Err(EmitError::TooLong { len: 70_000, .. })
        ));
    }
}
