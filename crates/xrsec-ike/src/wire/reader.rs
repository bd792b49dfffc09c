//! A cursor over received bytes: every read is checked against what is left,
//! and a length-prefixed part is read through [`Reader::sub`] so that its own
//! reads cannot run into the bytes that follow it.

use super::WireError;

#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn left(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Everything not read yet; the reader is left empty.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }

    pub(crate) fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if len > self.buf.len() {
            return Err(WireError::Truncated { what });
        }
        let (head, tail) = self.buf.split_at(len);
        self.buf = tail;
        Ok(head)
    }

    /// A reader over the next `len` bytes; fails without consuming anything
    /// when fewer are left, reporting `BadLength` because `len` came from a
    /// length field that points past its container.
    pub(crate) fn sub(&mut self, len: usize, what: &'static str) -> Result<Reader<'a>, WireError> {
        if len > self.buf.len() {
            return Err(WireError::BadLength { what });
        }
        let (head, tail) = self.buf.split_at(len);
        self.buf = tail;
        Ok(Reader { buf: head })
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], WireError> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Skips reserved bytes: RFC 7296 3.2 and following say reserved fields
    /// MUST be ignored on receipt, so their value is not checked.
    pub(crate) fn skip_reserved(
        &mut self,
        len: usize,
        what: &'static str,
    ) -> Result<(), WireError> {
        self.take(len, what).map(|_| ())
    }

    /// Fails when bytes are left over after a structure that must fill its
    /// container exactly.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::TrailingBytes { what })
        }
    }
}

/// Panics with a message naming the field when an owned representation is too
/// large for its length field: emitting is the caller's data, not the peer's,
/// so an oversize value is a bug in the caller.
pub(crate) fn emit_len_u16(len: usize, what: &'static str) -> u16 {
    u16::try_from(len).unwrap_or_else(|_| panic!("{what} of {len} does not fit its 16-bit field"))
}

pub(crate) fn emit_len_u8(len: usize, what: &'static str) -> u8 {
    u8::try_from(len).unwrap_or_else(|_| panic!("{what} of {len} does not fit its 8-bit field"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_fields_in_order() {
        let mut r = Reader::new(&[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(r.u8("a"), Ok(1));
        assert_eq!(r.u16("b"), Ok(0x0203));
        assert_eq!(r.u32("c"), Ok(0x0405_0607));
        assert!(r.is_empty());
        assert_eq!(r.u8("d"), Err(WireError::Truncated { what: "d" }));
    }

    #[test]
    fn sub_reader_cannot_read_past_its_length() {
        let mut r = Reader::new(&[1, 2, 3]);
        let mut sub = r.sub(2, "part").unwrap();
        assert_eq!(sub.u16("x"), Ok(0x0102));
        assert!(sub.u8("y").is_err());
        assert_eq!(r.left(), 1);
        assert_eq!(
            r.sub(2, "part").unwrap_err(),
            WireError::BadLength { what: "part" }
        );
        assert_eq!(r.left(), 1, "a failed sub consumes nothing");
    }

    #[test]
    fn finish_rejects_leftover_bytes() {
        let r = Reader::new(&[0]);
        assert_eq!(
            r.finish("thing"),
            Err(WireError::TrailingBytes { what: "thing" })
        );
    }
}
