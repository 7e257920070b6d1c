//! Field values as the dedup logic sees them — the SDK's [`Value`], the WIT
//! `value` itself, so a batch reaches the logic without a copy — and the
//! compact encoding in which `keep = "latest"` keeps a whole row in the
//! host's store.
//!
//! Row encoding (little endian): `u32` field count, then per field its name
//! (`u32` length + UTF-8), a tag byte and the value: 0 null; 1 boolean (one
//! byte); 2 int, 3 float (IEEE bits), 6 timestamp (8 bytes); 4 text, 5 bytes,
//! 7 json (`u32` length + bytes).

use std::borrow::Cow;

pub use tributary_transform_sdk::{Value, ValueRef};

/// The text a key is stored under in the host's store.
pub trait KeyText {
    /// None for null. A key column has one type, so the renderings of
    /// different types never meet.
    fn key_text(&self) -> Option<String>;
}

impl KeyText for Value {
    fn key_text(&self) -> Option<String> {
        key_of(ValueRef::from(self)).map(Cow::into_owned)
    }
}

/// A key cell's text, borrowed from the batch when it is text already.
pub fn key_of(v: ValueRef<'_>) -> Option<Cow<'_, str>> {
    Some(match v {
        ValueRef::Null => return None,
        ValueRef::Text(s) | ValueRef::Json(s) => Cow::Borrowed(s),
        ValueRef::Int(i) | ValueRef::Timestamp(i) => Cow::Owned(i.to_string()),
        ValueRef::Float(f) => Cow::Owned(f.to_string()),
        ValueRef::Boolean(b) => Cow::Owned(b.to_string()),
        ValueRef::Bytes(b) => Cow::Owned(b.iter().map(|x| format!("{x:02x}")).collect()),
    })
}

fn put_len_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Appends `row` (one value per entry of `fields`) to `out`.
pub fn encode_row(out: &mut Vec<u8>, fields: &[String], row: &[Value]) {
    out.extend_from_slice(&(fields.len().min(row.len()) as u32).to_le_bytes());
    for (name, value) in fields.iter().zip(row) {
        put_len_prefixed(out, name.as_bytes());
        match value {
            Value::Null => out.push(0),
            Value::Boolean(b) => out.extend_from_slice(&[1, u8::from(*b)]),
            Value::Int(i) => {
                out.push(2);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Value::Float(f) => {
                out.push(3);
                out.extend_from_slice(&f.to_bits().to_le_bytes());
            }
            Value::Text(s) => {
                out.push(4);
                put_len_prefixed(out, s.as_bytes());
            }
            Value::Bytes(b) => {
                out.push(5);
                put_len_prefixed(out, b);
            }
            Value::Timestamp(t) => {
                out.push(6);
                out.extend_from_slice(&t.to_le_bytes());
            }
            Value::Json(j) => {
                out.push(7);
                put_len_prefixed(out, j.as_bytes());
            }
        }
    }
}

/// A cursor over encoded bytes; every read checks the length.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        self.take(n).map(<[u8]>::to_vec)
    }
    fn text(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?).ok()
    }
}

/// Reads what [`encode_row`] wrote: the row as (field, value) pairs. None when
/// the bytes are not a whole row.
pub fn decode_row(bytes: &[u8]) -> Option<Vec<(String, Value)>> {
    let mut r = Reader(bytes);
    let count = r.u32()? as usize;
    // Every field takes at least 5 bytes: do not trust a huge count.
    let mut row = Vec::with_capacity(count.min(bytes.len() / 5));
    for _ in 0..count {
        let name = r.text()?;
        let value = match r.u8()? {
            0 => Value::Null,
            1 => Value::Boolean(r.u8()? != 0),
            2 => Value::Int(r.u64()? as i64),
            3 => Value::Float(f64::from_bits(r.u64()?)),
            4 => Value::Text(r.text()?),
            5 => Value::Bytes(r.bytes()?),
            6 => Value::Timestamp(r.u64()? as i64),
            7 => Value::Json(r.text()?),
            _ => return None,
        };
        row.push((name, value));
    }
    r.0.is_empty().then_some(row)
}
