//! The canonical codec (SPEC.md §10.1): a bounded reader and the writers.
//!
//! Integers are big-endian and fixed-width. A list is a `u32` count followed
//! by its items; the count is checked against a cap from the round config or
//! a protocol constant, and against the bytes that remain, before anything is
//! allocated. A whole message must be consumed exactly.

use crate::error::{DecodeErrorKind, Error, Result};

/// A cursor over a message that never reads past its end.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    message: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], message: &'static str) -> Self {
        Self { buf, message }
    }

    pub(crate) fn err(&self, field: &'static str, kind: DecodeErrorKind) -> Error {
        Error::Decode {
            message: self.message,
            field,
            kind,
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(self.err(field, DecodeErrorKind::Truncated));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let Some((head, tail)) = self.buf.split_first_chunk::<N>() else {
            return Err(self.err(field, DecodeErrorKind::Truncated));
        };
        self.buf = tail;
        Ok(*head)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8> {
        self.array::<1>(field).map(|[b]| b)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32> {
        self.array::<4>(field).map(u32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64> {
        self.array::<8>(field).map(u64::from_be_bytes)
    }

    /// A `u32` count of items of `item_len` bytes each, at most `max`, and
    /// no more than the remaining bytes can hold.
    pub(crate) fn count(
        &mut self,
        field: &'static str,
        max: usize,
        item_len: usize,
    ) -> Result<usize> {
        let claimed = self.u32(field)?;
        let count = usize::try_from(claimed).unwrap_or(usize::MAX);
        if count > max {
            return Err(self.err(
                field,
                DecodeErrorKind::TooLong {
                    len: u64::from(claimed),
                    max: u64::try_from(max).unwrap_or(u64::MAX),
                },
            ));
        }
        if count
            .checked_mul(item_len)
            .is_none_or(|n| n > self.buf.len())
        {
            return Err(self.err(field, DecodeErrorKind::Truncated));
        }
        Ok(count)
    }

    /// A list of strictly increasing `u32` ids (canonical: sorted, no
    /// duplicates), at most `max` of them.
    pub(crate) fn id_list(&mut self, field: &'static str, max: usize) -> Result<Vec<u32>> {
        let count = self.count(field, max, 4)?;
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            let id = self.u32(field)?;
            if ids.last().is_some_and(|last| *last >= id) {
                return Err(self.err(field, DecodeErrorKind::NotCanonical));
            }
            ids.push(id);
        }
        Ok(ids)
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(self) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.err("end", DecodeErrorKind::TrailingBytes))
        }
    }
}

/// Writes a `u32` count; counts are bounded by protocol caps far below 2^32.
pub(crate) fn put_count(out: &mut Vec<u8>, count: usize) {
    out.extend_from_slice(&u32::try_from(count).unwrap_or(u32::MAX).to_be_bytes());
}

/// Writes a list of ids with its count.
pub(crate) fn put_ids(out: &mut Vec<u8>, ids: &[u32]) {
    put_count(out, ids.len());
    for id in ids {
        out.extend_from_slice(&id.to_be_bytes());
    }
}

/// Checks that ids are strictly increasing (the canonical order).
pub(crate) fn strictly_increasing<T>(items: &[T], key: impl Fn(&T) -> u32) -> bool {
    items.windows(2).all(|w| match w {
        [a, b] => key(a) < key(b),
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_bounds_every_read() {
        let mut r = Reader::new(&[0, 0, 0, 2, 1, 2, 3], "test");
        assert_eq!(
            r.count("n", 1, 1).unwrap_err(),
            Error::Decode {
                message: "test",
                field: "n",
                kind: DecodeErrorKind::TooLong { len: 2, max: 1 }
            }
        );
        let mut r = Reader::new(&[0, 0, 0, 9, 1, 2, 3], "test");
        assert!(matches!(
            r.count("n", 100, 1),
            Err(Error::Decode {
                kind: DecodeErrorKind::Truncated,
                ..
            })
        ));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff], "test");
        assert!(r.count("n", usize::MAX, 8).is_err());
        let r = Reader::new(&[1], "test");
        assert!(matches!(
            r.finish(),
            Err(Error::Decode {
                kind: DecodeErrorKind::TrailingBytes,
                ..
            })
        ));
    }

    #[test]
    fn id_lists_must_increase() {
        let mut ok = Vec::new();
        put_ids(&mut ok, &[1, 5, 9]);
        assert_eq!(
            Reader::new(&ok, "t").id_list("ids", 3).unwrap(),
            vec![1, 5, 9]
        );
        for bad in [[1_u32, 1, 2], [3, 2, 4]] {
            let mut b = Vec::new();
            put_ids(&mut b, &bad);
            assert!(matches!(
                Reader::new(&b, "t").id_list("ids", 3),
                Err(Error::Decode {
                    kind: DecodeErrorKind::NotCanonical,
                    ..
                })
            ));
        }
    }
}
