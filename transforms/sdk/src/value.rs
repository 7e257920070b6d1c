//! [`Value`], one field's value, and reading it without a `match` at every
//! use.

/// One field value. (Contract 0.1.0 passed these across the boundary; 0.2.0
/// passes columns, and the SDK builds a `Value` only when a transform asks
/// for one: [`Row::value`](crate::Row::value), [`Output::update`](crate::Output::update).)
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Boolean(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
    /// Nested data (lists, maps, structs) as a JSON document.
    Json(String),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Microseconds since the Unix epoch, UTC.
    pub fn as_timestamp(&self) -> Option<i64> {
        match self {
            Value::Timestamp(t) => Some(*t),
            _ => None,
        }
    }

    pub fn as_boolean(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Nested data as JSON text.
    pub fn as_json(&self) -> Option<&str> {
        match self {
            Value::Json(j) => Some(j),
            _ => None,
        }
    }

    /// What the value is, for messages: "text", "an int", "null"…
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Boolean(_) => "a boolean",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
            Value::Timestamp(_) => "a timestamp",
            Value::Json(_) => "nested data",
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use crate::Value;

    #[test]
    fn each_read_takes_only_its_own_type() {
        let all = [
            Value::Null,
            Value::Boolean(true),
            Value::Int(1),
            Value::Float(1.5),
            Value::Text("t".into()),
            Value::Bytes(vec![1]),
            Value::Timestamp(2),
            Value::Json("[]".into()),
        ];
        let reads = |v: &Value| {
            [
                v.is_null(),
                v.as_boolean().is_some(),
                v.as_int().is_some(),
                v.as_float().is_some(),
                v.as_text().is_some(),
                v.as_bytes().is_some(),
                v.as_timestamp().is_some(),
                v.as_json().is_some(),
            ]
        };
        for (i, v) in all.iter().enumerate() {
            let hits = reads(v);
            assert!(hits[i], "{v:?}");
            assert_eq!(hits.iter().filter(|h| **h).count(), 1, "{v:?}");
        }
        assert_eq!(Value::Json("{}".into()).kind(), "nested data");
        assert_eq!(Value::from(Some(3i64)), Value::Int(3));
        assert_eq!(Value::from(None::<&str>), Value::Null);
    }
}
