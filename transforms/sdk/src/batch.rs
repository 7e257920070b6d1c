//! The rows of one `process` call, read by field name.
//!
//! [`Batch`] owns the batch the host passed (moved in, never copied) and
//! hands out borrowed views: a [`Column`] is found once per batch, then each
//! [`Row`] reads its cells without allocating.

use crate::bindings::tributary::transform::types as wit;
use crate::{Field, Value};

/// One batch of rows. Every row holds one value per entry of
/// [`fields`](Batch::fields), in the same order; only the fields the transform
/// asked for in [`Transform::fields`](crate::Transform::fields) are present.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    inner: wit::Batch,
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

impl Batch {
    /// A batch built by hand, for tests.
    pub fn new(fields: Vec<Field>, rows: Vec<Vec<Value>>) -> Self {
        Self {
            inner: wit::Batch { fields, rows },
        }
    }

    pub(crate) fn from_wit(inner: wit::Batch) -> Self {
        Self { inner }
    }

    pub fn fields(&self) -> &[Field] {
        &self.inner.fields
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.inner.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.rows.is_empty()
    }

    /// The column of the field `name`, if the batch has it.
    pub fn find(&self, name: &str) -> Option<Column> {
        self.inner
            .fields
            .iter()
            .position(|f| f.name == name)
            .map(Column)
    }

    /// The column of the field `name`, or an error naming it and the fields
    /// the batch has.
    pub fn column(&self, name: &str) -> Result<Column, String> {
        self.find(name).ok_or_else(|| {
            let names: Vec<String> = self
                .inner
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

    /// Row `index`, if there is one.
    pub fn row(&self, index: u32) -> Option<Row<'_>> {
        self.inner
            .rows
            .get(index as usize)
            .map(|values| Row { index, values })
    }

    /// Every row, in order.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = Row<'_>> {
        self.inner.rows.iter().enumerate().map(|(i, values)| Row {
            index: i as u32,
            values,
        })
    }

    /// The rows as the host sent them, for logic written over plain slices.
    pub fn raw_rows(&self) -> &[Vec<Value>] {
        &self.inner.rows
    }
}

/// One row of a [`Batch`]: typed reads of its cells. A typed read is `None`
/// when the cell is null or holds another type; [`value`](Row::value) gives
/// the cell as it is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row<'a> {
    index: u32,
    values: &'a [Value],
}

static NULL: Value = Value::Null;

impl<'a> Row<'a> {
    /// The row's position in the batch: what [`Output`](crate::Output) takes.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Every cell, in the order of [`Batch::fields`].
    pub fn values(&self) -> &'a [Value] {
        self.values
    }

    /// The cell in `column` (null if the row is short, which the host never
    /// sends).
    pub fn value(&self, column: Column) -> &'a Value {
        self.values.get(column.0).unwrap_or(&NULL)
    }

    pub fn text(&self, column: Column) -> Option<&'a str> {
        self.value(column).as_text()
    }

    pub fn int(&self, column: Column) -> Option<i64> {
        self.value(column).as_int()
    }

    pub fn float(&self, column: Column) -> Option<f64> {
        self.value(column).as_float()
    }

    /// Microseconds since the Unix epoch, UTC.
    pub fn timestamp(&self, column: Column) -> Option<i64> {
        self.value(column).as_timestamp()
    }

    pub fn boolean(&self, column: Column) -> Option<bool> {
        self.value(column).as_boolean()
    }

    pub fn bytes(&self, column: Column) -> Option<&'a [u8]> {
        self.value(column).as_bytes()
    }

    /// Nested data as JSON text.
    pub fn json(&self, column: Column) -> Option<&'a str> {
        self.value(column).as_json()
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
}
