//! Compatibility levels and the check behind them.
//!
//! The rules themselves are Avro's schema resolution, as implemented by
//! [`apache_avro::schema_compatibility::SchemaCompatibility`]; this module only
//! decides *which* pairs to check (direction and which earlier versions, from
//! the level) and turns a refusal into a sentence that names the field and the
//! rule, because "incompatible" alone sends people digging.
//!
//! ```text
//! BACKWARD  new schema reads data written with the latest version   can_read(writer = old, reader = new)
//! FORWARD   the latest version reads data written with the new one  can_read(writer = new, reader = old)
//! FULL      both
//! *_TRANSITIVE  the same against every live version, not only the latest
//! NONE      no check
//! ```

use std::error::Error as _;
use std::fmt;

use apache_avro::Schema;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use serde::{Deserialize, Serialize};

/// A subject's (or the global) compatibility level, spelled as Confluent spells it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityLevel {
    /// Confluent's default: consumers on the new schema can read old data.
    #[default]
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
    None,
}

impl CompatibilityLevel {
    pub const ALL: [CompatibilityLevel; 7] = [
        Self::Backward,
        Self::BackwardTransitive,
        Self::Forward,
        Self::ForwardTransitive,
        Self::Full,
        Self::FullTransitive,
        Self::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
            Self::None => "NONE",
        }
    }

    /// Parses a level name; Confluent accepts any case, so do we.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether the check runs against every live version instead of the latest.
    pub fn is_transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }

    fn checks_backward(self) -> bool {
        matches!(
            self,
            Self::Backward | Self::BackwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    fn checks_forward(self) -> bool {
        matches!(
            self,
            Self::Forward | Self::ForwardTransitive | Self::Full | Self::FullTransitive
        )
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks `new` against one earlier version under `level`. `Ok(())` when
/// compatible; otherwise one reason per failed direction, each naming the
/// earlier version, the direction and Avro's reason (field and rule).
pub fn check(
    level: CompatibilityLevel,
    new: &Schema,
    old: &Schema,
    old_version: u32,
) -> Result<(), Vec<String>> {
    let mut reasons = Vec::new();
    if level.checks_backward()
        && let Err(why) = can_read(old, new)
    {
        reasons.push(format!(
            "the new schema cannot read data written with version {old_version} ({level} needs it to): {why}"
        ));
    }
    if level.checks_forward()
        && let Err(why) = can_read(new, old)
    {
        reasons.push(format!(
            "version {old_version} cannot read data written with the new schema ({level} needs it to): {why}"
        ));
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// Why a reader schema cannot read what a writer schema wrote: Avro's rule,
/// and the field it failed on when Avro names it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Incompatible(String);

/// Whether a reader on `reader` can decode everything written with `writer`.
///
/// apache-avro answers `Partial` when only *some* values resolve (a union branch
/// or an enum symbol the reader lacks). Confluent, following Avro's Java
/// checker, refuses those, and so do we: a consumer that fails on the first
/// record using the missing branch is not compatible.
fn can_read(writer: &Schema, reader: &Schema) -> Result<(), Incompatible> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => Ok(()),
        Ok(Compatibility::Partial) => Err(Incompatible(
            "only some values would resolve: a union branch or enum symbol of the writer is missing in the reader (add it, or give the enum a default)"
                .to_owned(),
        )),
        Err(err) => {
            // The interesting part (e.g. `string` vs `int`) is often in the
            // source chain under "Field 'x' does not match".
            let mut text = err.to_string();
            let mut source = err.source();
            while let Some(inner) = source {
                text.push_str(": ");
                text.push_str(&inner.to_string());
                source = inner.source();
            }
            if matches!(
                err,
                apache_avro::error::CompatibilityError::MissingDefaultValue(_)
            ) {
                text.push_str(
                    " (give the new field a default, e.g. type [\"null\", T] with \"default\": null)",
                );
            }
            Err(Incompatible(text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: &str) -> Schema {
        Schema::parse_str(&format!(
            r#"{{"type":"record","name":"Article","fields":[{fields}]}}"#
        ))
        .expect("test schema parses")
    }

    #[test]
    fn level_names_round_trip_and_parse_any_case() {
        for level in CompatibilityLevel::ALL {
            assert_eq!(CompatibilityLevel::parse(level.as_str()), Some(level));
            let json = serde_json::to_string(&level).unwrap();
            assert_eq!(json, format!("\"{}\"", level.as_str()));
        }
        assert_eq!(
            CompatibilityLevel::parse("full_transitive"),
            Some(CompatibilityLevel::FullTransitive)
        );
        assert_eq!(CompatibilityLevel::parse("SIDEWAYS"), None);
    }

    #[test]
    fn backward_allows_optional_field_and_refuses_required_one_naming_it() {
        let v1 = schema(r#"{"name":"id","type":"string"}"#);
        let optional = schema(
            r#"{"name":"id","type":"string"},{"name":"lang","type":["null","string"],"default":null}"#,
        );
        let required = schema(r#"{"name":"id","type":"string"},{"name":"words","type":"int"}"#);
        assert_eq!(
            check(CompatibilityLevel::Backward, &optional, &v1, 1),
            Ok(())
        );
        let reasons = check(CompatibilityLevel::Backward, &required, &v1, 1).unwrap_err();
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("'words'"), "{reasons:?}");
        assert!(reasons[0].contains("default"), "{reasons:?}");
        // FORWARD is the other direction: old readers ignore the extra field.
        assert_eq!(
            check(CompatibilityLevel::Forward, &required, &v1, 1),
            Ok(())
        );
        assert_eq!(check(CompatibilityLevel::None, &required, &v1, 1), Ok(()));
    }

    #[test]
    fn type_change_names_field_and_both_types_and_promotions_pass() {
        let v1 = schema(r#"{"name":"words","type":"string"}"#);
        let v2 = schema(r#"{"name":"words","type":"int"}"#);
        let reasons = check(CompatibilityLevel::Backward, &v2, &v1, 1).unwrap_err();
        assert!(reasons[0].contains("'words'"), "{reasons:?}");
        let lower = reasons[0].to_lowercase();
        assert!(
            lower.contains("'string'") && lower.contains("'int'"),
            "{reasons:?}"
        );
        let int = schema(r#"{"name":"n","type":"int"}"#);
        let long = schema(r#"{"name":"n","type":"long"}"#);
        assert_eq!(check(CompatibilityLevel::Backward, &long, &int, 1), Ok(()));
        // long -> int is not a promotion, so FULL fails in the forward direction.
        let reasons = check(CompatibilityLevel::Full, &long, &int, 1).unwrap_err();
        assert_eq!(reasons.len(), 1);
        assert!(
            reasons[0].starts_with("version 1 cannot read"),
            "{reasons:?}"
        );
    }

    #[test]
    fn partial_union_match_counts_as_incompatible() {
        let wide = schema(r#"{"name":"v","type":["null","string","int"]}"#);
        let narrow = schema(r#"{"name":"v","type":["null","string"]}"#);
        let reasons = check(CompatibilityLevel::Backward, &narrow, &wide, 3).unwrap_err();
        assert!(reasons[0].contains("union branch"), "{reasons:?}");
    }
}
