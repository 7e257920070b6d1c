//! The rows of one `process` call, read by field name.
//!
//! [`Batch`] owns the batch the host passed (moved in, never copied). Since
//! contract 0.2.0 that batch is columns: a [`Column`] is found once per
//! batch, then each [`Row`] reads its cells straight from the column's buffer
//! ([`Row::text`], [`Row::int`], [`Row::get`]…) without allocating. Rows of
//! [`Value`]s ([`Row::value`], [`Batch::raw_rows`]) are built the first time
//! one is asked for, once per batch.

use std::cell::OnceCell;

use crate::bindings::tributary::transform::types as wit;
use crate::{Field, Value};

/// One batch of rows. Every row holds one value per entry of
/// [`fields`](Batch::fields), in the same order; only the fields the transform
/// asked for in [`Transform::fields`](crate::Transform::fields) are present.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    fields: Vec<Field>,
    len: usize,
    /// The host's columns (none for a batch built by hand from rows).
    columns: Vec<wit::Column>,
    /// The rows as values: given (a batch built by hand), or built from the
    /// columns when first asked for.
    rows: OnceCell<Vec<Vec<Value>>>,
}

/// A field's position in a [`Batch`], found by [`Batch::column`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Column(usize);

impl Column {
    /// The position of the field in [`Batch::fields`] and in each row.
    pub fn index(self) -> usize {
        self.0
    }
}

/// A borrowed cell: a [`Value`] that points into the batch instead of owning
/// its text or bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueRef<'a> {
    Null,
    Boolean(bool),
    Int(i64),
    Float(f64),
    Text(&'a str),
    Bytes(&'a [u8]),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
    /// Nested data as JSON text.
    Json(&'a str),
}

impl ValueRef<'_> {
    /// The owned value.
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Boolean(b) => Value::Boolean(b),
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Float(f) => Value::Float(f),
            ValueRef::Text(s) => Value::Text(s.to_string()),
            ValueRef::Bytes(b) => Value::Bytes(b.to_vec()),
            ValueRef::Timestamp(t) => Value::Timestamp(t),
            ValueRef::Json(j) => Value::Json(j.to_string()),
        }
    }

    /// What the value is, for messages: "text", "an int", "null"…
    pub fn kind(&self) -> &'static str {
        match self {
            ValueRef::Null => "null",
            ValueRef::Boolean(_) => "a boolean",
            ValueRef::Int(_) => "an int",
            ValueRef::Float(_) => "a float",
            ValueRef::Text(_) => "text",
            ValueRef::Bytes(_) => "bytes",
            ValueRef::Timestamp(_) => "a timestamp",
            ValueRef::Json(_) => "nested data",
        }
    }
}

impl<'a> From<&'a Value> for ValueRef<'a> {
    fn from(v: &'a Value) -> Self {
        match v {
            Value::Null => ValueRef::Null,
            Value::Boolean(b) => ValueRef::Boolean(*b),
            Value::Int(i) => ValueRef::Int(*i),
            Value::Float(f) => ValueRef::Float(*f),
            Value::Text(s) => ValueRef::Text(s),
            Value::Bytes(b) => ValueRef::Bytes(b),
            Value::Timestamp(t) => ValueRef::Timestamp(*t),
            Value::Json(j) => ValueRef::Json(j),
        }
    }
}

/// Value `i` of packed variable-length values (empty if the host's offsets
/// are out of range, which it never sends).
fn packed(p: &wit::Packed, i: usize) -> &[u8] {
    match (p.offsets.get(i), p.offsets.get(i + 1)) {
        (Some(a), Some(b)) => p.data.get(*a as usize..*b as usize).unwrap_or(&[]),
        _ => &[],
    }
}

/// Packed bytes as text (the host sends UTF-8; anything else reads as null).
fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

/// Cell `row` of a host column.
fn cell(c: &wit::Column, row: usize) -> ValueRef<'_> {
    if let Some(v) = &c.validity
        && v.get(row / 8).is_none_or(|b| b & (1 << (row % 8)) == 0)
    {
        return ValueRef::Null;
    }
    use wit::Values as V;
    match &c.values {
        V::Boolean(x) => x.get(row).map_or(ValueRef::Null, |b| ValueRef::Boolean(*b)),
        V::Int(x) => x.get(row).map_or(ValueRef::Null, |i| ValueRef::Int(*i)),
        V::Float(x) => x.get(row).map_or(ValueRef::Null, |f| ValueRef::Float(*f)),
        V::Timestamp(x) => x
            .get(row)
            .map_or(ValueRef::Null, |t| ValueRef::Timestamp(*t)),
        V::Text(p) => text(packed(p, row)).map_or(ValueRef::Null, ValueRef::Text),
        V::Json(p) => text(packed(p, row)).map_or(ValueRef::Null, ValueRef::Json),
        V::Bytes(p) => ValueRef::Bytes(packed(p, row)),
    }
}

impl Batch {
    /// A batch built by hand, for tests.
    pub fn new(fields: Vec<Field>, rows: Vec<Vec<Value>>) -> Self {
        Self {
            fields,
            len: rows.len(),
            columns: Vec::new(),
            rows: OnceCell::from(rows),
        }
    }

    pub(crate) fn from_wit(batch: wit::Batch) -> Self {
        Self {
            fields: batch.fields,
            len: batch.len as usize,
            columns: batch.columns,
            rows: OnceCell::new(),
        }
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The column of the field `name`, if the batch has it.
    pub fn find(&self, name: &str) -> Option<Column> {
        self.fields.iter().position(|f| f.name == name).map(Column)
    }

    /// The column of the field `name`, or an error naming the fields the
    /// batch has (for a transform's `Err`).
    pub fn column(&self, name: &str) -> Result<Column, String> {
        self.find(name).ok_or_else(|| {
            let names: Vec<String> = self
                .fields
                .iter()
                .map(|f| format!("`{}`", f.name))
                .collect();
            format!(
                "the batch has no field `{name}` (it has {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )
        })
    }

    /// Row `index`, if the batch has it.
    pub fn row(&self, index: u32) -> Option<Row<'_>> {
        ((index as usize) < self.len).then_some(Row { index, batch: self })
    }

    /// The rows, in order.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = Row<'_>> {
        (0..self.len as u32).map(|index| Row { index, batch: self })
    }

    /// Every row as values, one per field (built on first use).
    pub fn raw_rows(&self) -> &[Vec<Value>] {
        self.rows.get_or_init(|| {
            (0..self.len)
                .map(|r| self.columns.iter().map(|c| cell(c, r).to_value()).collect())
                .collect()
        })
    }

    /// The cell at `row` of `column`, borrowed.
    fn get(&self, row: usize, column: Column) -> ValueRef<'_> {
        match self.rows.get() {
            Some(rows) => rows
                .get(row)
                .and_then(|r| r.get(column.0))
                .map_or(ValueRef::Null, ValueRef::from),
            None => self
                .columns
                .get(column.0)
                .map_or(ValueRef::Null, |c| cell(c, row)),
        }
    }
}

/// One row of a [`Batch`]: its position, and typed reads of its cells.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row<'a> {
    index: u32,
    batch: &'a Batch,
}

static NULL: Value = Value::Null;

impl<'a> Row<'a> {
    /// The row's position in the batch: what [`Output`](crate::Output) takes.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Every value of the row, one per field (the batch's rows of values are
    /// built on first use).
    pub fn values(&self) -> &'a [Value] {
        &self.batch.raw_rows()[self.index as usize]
    }

    /// The value in `column` (null for a column the batch does not have).
    /// Builds the batch's rows of values on first use: [`get`](Self::get)
    /// and the typed reads do not.
    pub fn value(&self, column: Column) -> &'a Value {
        self.values().get(column.0).unwrap_or(&NULL)
    }

    /// The value in `column`, borrowed from the batch, without building
    /// anything.
    pub fn get(&self, column: Column) -> ValueRef<'a> {
        self.batch.get(self.index as usize, column)
    }

    /// Text, or `None` for null or another type.
    pub fn text(&self, column: Column) -> Option<&'a str> {
        match self.get(column) {
            ValueRef::Text(s) => Some(s),
            _ => None,
        }
    }

    /// An int, or `None` for null or another type (a timestamp is not an
    /// int).
    pub fn int(&self, column: Column) -> Option<i64> {
        match self.get(column) {
            ValueRef::Int(i) => Some(i),
            _ => None,
        }
    }

    pub fn float(&self, column: Column) -> Option<f64> {
        match self.get(column) {
            ValueRef::Float(f) => Some(f),
            _ => None,
        }
    }

    /// Microseconds since the Unix epoch, UTC.
    pub fn timestamp(&self, column: Column) -> Option<i64> {
        match self.get(column) {
            ValueRef::Timestamp(t) => Some(t),
            _ => None,
        }
    }

    pub fn boolean(&self, column: Column) -> Option<bool> {
        match self.get(column) {
            ValueRef::Boolean(b) => Some(b),
            _ => None,
        }
    }

    pub fn bytes(&self, column: Column) -> Option<&'a [u8]> {
        match self.get(column) {
            ValueRef::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Nested data as JSON text.
    pub fn json(&self, column: Column) -> Option<&'a str> {
        match self.get(column) {
            ValueRef::Json(j) => Some(j),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FieldType;

    fn batch() -> Batch {
        let field = |name: &str, r#type| Field {
            name: name.into(),
            type_: r#type,
            nullable: true,
        };
        Batch::new(
            vec![
                field("title", FieldType::Text),
                field("at", FieldType::Timestamp),
            ],
            vec![
                vec![Value::Text("a b".into()), Value::Timestamp(5)],
                vec![Value::Null, Value::Int(7)],
            ],
        )
    }

    #[test]
    fn columns_by_name() {
        let b = batch();
        assert_eq!(b.find("at"), Some(Column(1)));
        assert_eq!(b.find("nope"), None);
        assert_eq!(
            b.column("nope").unwrap_err(),
            "the batch has no field `nope` (it has `title`, `at`)"
        );
        assert_eq!(
            Batch::new(vec![], vec![]).column("x").unwrap_err(),
            "the batch has no field `x` (it has none)"
        );
    }

    #[test]
    fn typed_reads_are_strict() {
        let b = batch();
        let (title, at) = (b.column("title").unwrap(), b.column("at").unwrap());
        let rows: Vec<Row<'_>> = b.rows().collect();
        assert_eq!(b.len(), 2);
        assert_eq!(rows[0].index(), 0);
        assert_eq!(rows[0].text(title), Some("a b"));
        assert_eq!(rows[0].timestamp(at), Some(5));
        assert_eq!(rows[0].int(at), None, "a timestamp is not an int");
        assert_eq!(rows[1].index(), 1);
        assert_eq!(rows[1].text(title), None, "null");
        assert_eq!(rows[1].int(at), Some(7));
        assert_eq!(rows[1].value(Column(9)), &Value::Null);
        assert_eq!(b.row(1), Some(rows[1]));
        assert_eq!(b.row(2), None);
    }

    /// The host's columns read the same as rows of values: nulls from the
    /// validity bitmap, text and bytes from the packed buffer.
    #[test]
    fn columns_read_as_rows() {
        let field = |name: &str, r#type| Field {
            name: name.into(),
            type_: r#type,
            nullable: true,
        };
        let b = Batch::from_wit(wit::Batch {
            fields: vec![
                field("title", FieldType::Text),
                field("at", FieldType::Timestamp),
            ],
            len: 3,
            columns: vec![
                wit::Column {
                    values: wit::Values::Text(wit::Packed {
                        offsets: vec![0, 3, 3, 5],
                        data: b"a bxy".to_vec(),
                    }),
                    validity: Some(vec![0b101]),
                },
                wit::Column {
                    values: wit::Values::Timestamp(vec![5, 6, 7]),
                    validity: None,
                },
            ],
        });
        let (title, at) = (b.column("title").unwrap(), b.column("at").unwrap());
        let rows: Vec<Row<'_>> = b.rows().collect();
        assert_eq!(rows[0].text(title), Some("a b"));
        assert_eq!(rows[1].get(title), ValueRef::Null);
        assert_eq!(rows[2].text(title), Some("xy"));
        assert_eq!(rows[2].timestamp(at), Some(7));
        assert_eq!(rows[2].int(at), None);
        assert_eq!(
            b.raw_rows(),
            [
                vec![Value::Text("a b".into()), Value::Timestamp(5)],
                vec![Value::Null, Value::Timestamp(6)],
                vec![Value::Text("xy".into()), Value::Timestamp(7)],
            ]
        );
        assert_eq!(rows[1].value(at), &Value::Timestamp(6));
    }
}
