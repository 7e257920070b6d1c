//! Human durations ("2 hours", "90 minutes", "30s", "1500ms", "1 day") to
//! microseconds. Shared by the built-in transforms (included by path: a guest
//! crate of its own for twenty lines would be overkill).

/// Parses `<number> <unit>` or `<number><unit>`; units: ms, s/sec/second(s),
/// m/min/minute(s), h/hour(s), d/day(s).
pub fn parse_micros(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like \"2 hours\" or \"30s\""))?;
    let unit_micros: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" | "millis" | "millisecond" | "milliseconds" => 1e3,
        "s" | "sec" | "secs" | "second" | "seconds" => 1e6,
        "m" | "min" | "mins" | "minute" | "minutes" => 60e6,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600e6,
        "d" | "day" | "days" => 86_400e6,
        "" => return Err(format!("`{text}` needs a unit, e.g. \"{num} seconds\"")),
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (use ms, s, min, h or d)"
            ));
        }
    };
    let micros = value * unit_micros;
    if !micros.is_finite() || !(0.0..=1e17).contains(&micros) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(micros as i64)
}

#[cfg(test)]
mod tests {
    use super::parse_micros;

    #[test]
    fn forms() {
        assert_eq!(parse_micros("2 hours"), Ok(7_200_000_000));
        assert_eq!(parse_micros("90 minutes"), Ok(5_400_000_000));
        assert_eq!(parse_micros("30s"), Ok(30_000_000));
        assert_eq!(parse_micros("1500ms"), Ok(1_500_000));
        assert_eq!(parse_micros("1 day"), Ok(86_400_000_000));
        assert_eq!(parse_micros("0.5h"), Ok(1_800_000_000));
        assert!(parse_micros("2").unwrap_err().contains("needs a unit"));
        assert!(
            parse_micros("2 fortnights")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_micros("soon").unwrap_err().contains("not a duration"));
    }
}
