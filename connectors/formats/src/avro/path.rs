//! [`PathError`]: a problem at a place in a value or schema, named by its
//! field path (`field `a.b`: ...`).

/// A problem at a place in a value or schema: `field `a.b`: ...`.
#[derive(Debug)]
pub(crate) struct PathError {
    /// Field names, innermost first.
    pub(crate) path: Vec<String>,
    pub(crate) reason: String,
}

impl PathError {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self {
            path: Vec::new(),
            reason: reason.into(),
        }
    }
    pub(crate) fn within(mut self, field: &str) -> Self {
        self.path.push(field.to_string());
        self
    }
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path: Vec<&str> = self.path.iter().rev().map(String::as_str).collect();
        write!(f, "field `{}`: {}", path.join("."), self.reason)
    }
}
