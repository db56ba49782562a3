//! The protocol-buffer wire format, read without a schema: enough of it to walk the messages
//! that TensorBoard event files and W&B's datastore hold (varints, 64- and 32-bit fields,
//! length-delimited fields), never allocating.
//!
//! A message is a sequence of (tag, value) pairs; the tag is a varint `field << 3 | type`,
//! type 0 a varint, 1 eight bytes, 2 a varint length and that many bytes, 5 four bytes
//! (groups, types 3 and 4, are not used by either format and are refused).

/// One field of a message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1 (a double, fixed64 or sfixed64).
    Fixed64(u64),
    /// Wire type 2 (a string, bytes, a sub-message or a packed repeated field).
    Bytes(&'a [u8]),
    /// Wire type 5 (a float, fixed32 or sfixed32).
    Fixed32(u32),
}

/// The fields of one message, in order. Iteration stops at the first malformed field,
/// after which [`Fields::error`] says what was wrong and at which offset of the message.
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    error: Option<(usize, &'static str)>,
}

impl<'a> Fields<'a> {
    /// The fields of `buf`.
    pub fn new(buf: &'a [u8]) -> Fields<'a> {
        Fields {
            buf,
            pos: 0,
            error: None,
        }
    }

    /// The offset in the message and what was wrong, if iteration stopped early.
    pub fn error(&self) -> Option<(usize, &'static str)> {
        self.error
    }

    /// The values of a packed repeated varint field.
    pub fn packed_varints(bytes: &'a [u8]) -> impl Iterator<Item = u64> + 'a {
        let mut f = Fields::new(bytes);
        std::iter::from_fn(move || f.varint())
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn fail(&mut self, at: usize, what: &'static str) -> Option<(u32, Value<'a>)> {
        self.error = Some((at, what));
        self.pos = self.buf.len();
        None
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (u32, Value<'a>);

    fn next(&mut self) -> Option<(u32, Value<'a>)> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let at = self.pos;
        let Some(tag) = self.varint() else {
            return self.fail(at, "a field's tag runs past the message");
        };
        let field = (tag >> 3) as u32;
        let value = match tag & 7 {
            0 => self.varint().map(Value::Varint),
            1 => self
                .take(8)
                .map(|b| Value::Fixed64(u64::from_le_bytes(b.try_into().expect("8 bytes")))),
            2 => match self.varint() {
                Some(n) => usize::try_from(n)
                    .ok()
                    .and_then(|n| self.take(n))
                    .map(Value::Bytes),
                None => None,
            },
            5 => self
                .take(4)
                .map(|b| Value::Fixed32(u32::from_le_bytes(b.try_into().expect("4 bytes")))),
            _ => return self.fail(at, "a field of a wire type these formats never use"),
        };
        match value {
            Some(v) if field > 0 => Some((field, v)),
            Some(_) => self.fail(at, "a field numbered 0"),
            None => self.fail(at, "a field runs past the end of its message"),
        }
    }
}

/// The values of a packed repeated `float` (4 bytes each) or `double` (8 bytes each) field.
pub fn packed_floats(bytes: &[u8], width: usize) -> impl Iterator<Item = f64> + '_ {
    bytes.chunks_exact(width).map(move |c| {
        if width == 4 {
            f64::from(f32::from_le_bytes(c.try_into().expect("4 bytes")))
        } else {
            f64::from_le_bytes(c.try_into().expect("8 bytes"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_wire_type_and_stops_at_a_cut() {
        // field 1 varint 300; field 2 double 1.5; field 3 bytes "ab"; field 4 float 2.0
        let mut m = vec![0x08, 0xac, 0x02, 0x11];
        m.extend(1.5f64.to_le_bytes());
        m.extend([0x1a, 2, b'a', b'b', 0x25]);
        m.extend(2.0f32.to_le_bytes());
        let got: Vec<_> = Fields::new(&m).collect();
        assert_eq!(
            got,
            vec![
                (1, Value::Varint(300)),
                (2, Value::Fixed64(1.5f64.to_bits())),
                (3, Value::Bytes(b"ab")),
                (4, Value::Fixed32(2.0f32.to_bits())),
            ]
        );
        let cut = &m[..m.len() - 1];
        let mut f = Fields::new(cut);
        assert_eq!(f.by_ref().count(), 3);
        assert_eq!(
            f.error(),
            Some((16, "a field runs past the end of its message"))
        );
    }
}
