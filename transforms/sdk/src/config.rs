//! The transform's `config`, as the host passes it to `init`: the pipeline's
//! JSON object flattened to `(key, value)` pairs, strings as they are and
//! other values as JSON text (`{"window": 5}` arrives as `("window", "5")`).
//!
//! Values are read trimmed, and a blank value counts as absent, so `""` and a
//! missing key fail the same way with the same message.

use std::str::FromStr;

use crate::duration;

/// The config pairs of one `init`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pairs: Vec<(String, String)>,
}

impl Config {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    /// The pairs as the host sent them, in order, untrimmed.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The value of `key`, trimmed; none when absent or blank.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The value of `key`, or an error saying the config needs it.
    pub fn require(&self, key: &str) -> Result<&str, String> {
        self.get(key).ok_or_else(|| format!("config needs `{key}`"))
    }

    /// The first key that is not one of `known`.
    pub fn unknown_key(&self, known: &[&str]) -> Option<&str> {
        self.pairs
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| !known.contains(k))
    }

    /// Refuses a key that is not one of `known`, listing the known ones: a
    /// misspelt key fails at `init` instead of being silently ignored.
    pub fn only(&self, known: &[&str]) -> Result<(), String> {
        match self.unknown_key(known) {
            None => Ok(()),
            Some(k) => Err(format!(
                "unknown config key `{k}` (expected {})",
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// The value of `key` parsed as a `T` (a number, usually); none when
    /// absent.
    pub fn parse<T: FromStr>(&self, key: &str) -> Result<Option<T>, String>
    where
        T::Err: std::fmt::Display,
    {
        self.get(key)
            .map(|v| {
                v.parse()
                    .map_err(|e| format!("config `{key}` = `{v}`: {e}"))
            })
            .transpose()
    }

    /// The value of `key` as `true` or `false`; none when absent.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, String> {
        self.get(key)
            .map(|v| match v {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(format!("config `{key}` = `{v}`: must be true or false")),
            })
            .transpose()
    }

    /// The value of `key` as a duration ("2 hours", "30s", see
    /// [`duration::parse_micros`]) in microseconds; none when absent.
    pub fn duration_micros(&self, key: &str) -> Result<Option<i64>, String> {
        self.get(key)
            .map(|v| duration::parse_micros(v).map_err(|e| format!("config `{key}`: {e}")))
            .transpose()
    }

    /// The value of `key` as a comma-separated list, items trimmed, blank
    /// items left out; empty when absent.
    pub fn list(&self, key: &str) -> Vec<&str> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl From<Vec<(String, String)>> for Config {
    fn from(pairs: Vec<(String, String)>) -> Self {
        Self::new(pairs)
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for Config {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(pairs: I) -> Self {
        Self::new(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Config;

    fn config(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().copied().collect()
    }

    #[test]
    fn values_are_trimmed_and_blank_is_absent() {
        let c = config(&[("a", "  x "), ("b", "   ")]);
        assert_eq!(c.get("a"), Some("x"));
        assert_eq!(c.get("b"), None);
        assert_eq!(c.get("c"), None);
        assert_eq!(c.require("a"), Ok("x"));
        assert_eq!(c.require("b").unwrap_err(), "config needs `b`");
        assert_eq!(c.pairs()[0].1, "  x ", "pairs stay as sent");
    }

    #[test]
    fn unknown_keys_are_named_with_the_known_ones() {
        let c = config(&[("delay", "1h"), ("dealy", "2h")]);
        assert_eq!(c.unknown_key(&["delay"]), Some("dealy"));
        assert_eq!(
            c.only(&["delay", "event_time"]).unwrap_err(),
            "unknown config key `dealy` (expected `delay`, `event_time`)"
        );
        assert_eq!(c.only(&["delay", "dealy"]), Ok(()));
        assert_eq!(Config::default().only(&[]), Ok(()));
    }

    #[test]
    fn typed_values() {
        let c = config(&[
            ("n", " 42 "),
            ("x", "4.5"),
            ("bad", "many"),
            ("on", "true"),
            ("off", "false"),
            ("yes", "yes"),
            ("window", "2 hours"),
            ("soon", "soon"),
        ]);
        assert_eq!(c.parse::<u32>("n"), Ok(Some(42)));
        assert_eq!(c.parse::<f64>("x"), Ok(Some(4.5)));
        assert_eq!(c.parse::<u32>("missing"), Ok(None));
        assert_eq!(
            c.parse::<u32>("bad").unwrap_err(),
            "config `bad` = `many`: invalid digit found in string"
        );
        assert_eq!(c.boolean("on"), Ok(Some(true)));
        assert_eq!(c.boolean("off"), Ok(Some(false)));
        assert_eq!(c.boolean("missing"), Ok(None));
        assert!(
            c.boolean("yes")
                .unwrap_err()
                .contains("must be true or false")
        );
        assert_eq!(c.duration_micros("window"), Ok(Some(7_200_000_000)));
        assert_eq!(c.duration_micros("missing"), Ok(None));
        assert!(
            c.duration_micros("soon")
                .unwrap_err()
                .starts_with("config `soon`: `soon` is not a duration")
        );
    }

    #[test]
    fn lists_split_on_commas() {
        let c = config(&[("block", " bbc, ap,,  "), ("one", "x"), ("none", " ")]);
        assert_eq!(c.list("block"), ["bbc", "ap"]);
        assert_eq!(c.list("one"), ["x"]);
        assert!(c.list("none").is_empty());
        assert!(c.list("missing").is_empty());
    }
}
