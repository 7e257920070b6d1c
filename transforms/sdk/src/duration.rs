//! Human durations ("2 hours", "90 minutes", "30s", "1500ms", "1 day") to
//! microseconds, parsed here for every transform (and by
//! [`Config::duration_micros`](crate::Config::duration_micros)).

/// Parses `<number> <unit>` or `<number><unit>`, the number a non-negative
/// integer or decimal. Units: ms, s/sec/second(s), m/min/minute(s),
/// h/hr/hour(s), d/day(s), in any case.
pub fn parse_micros(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like \"2 hours\" or \"30s\""))?;
    let unit_micros: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" | "msec" | "millis" | "millisecond" | "milliseconds" => 1e3,
        "s" | "sec" | "secs" | "second" | "seconds" => 1e6,
        "m" | "min" | "mins" | "minute" | "minutes" => 60e6,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600e6,
        "d" | "day" | "days" => 86_400e6,
        "" => return Err(format!("`{text}` needs a unit, e.g. \"{number} seconds\"")),
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (use ms, s, min, h or d)"
            ));
        }
    };
    let micros = (value * unit_micros).round();
    // About 3,000 years: far beyond any sensible window, far from overflow.
    if !(0.0..=1e17).contains(&micros) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(micros as i64)
}

#[cfg(test)]
mod tests {
    use super::parse_micros;

    #[test]
    fn the_documented_forms() {
        assert_eq!(parse_micros("2 hours"), Ok(7_200_000_000));
        assert_eq!(parse_micros("90 minutes"), Ok(5_400_000_000));
        assert_eq!(parse_micros("30s"), Ok(30_000_000));
        assert_eq!(parse_micros("1500ms"), Ok(1_500_000));
        assert_eq!(parse_micros("1 day"), Ok(86_400_000_000));
        assert_eq!(parse_micros("2 Days"), Ok(172_800_000_000));
        assert_eq!(parse_micros("1 hr"), Ok(3_600_000_000));
        assert_eq!(parse_micros("10 sec"), Ok(10_000_000));
        assert_eq!(parse_micros("5m"), Ok(300_000_000));
        assert_eq!(parse_micros("0.5h"), Ok(1_800_000_000));
        assert_eq!(parse_micros("0.1s"), Ok(100_000));
        assert_eq!(parse_micros("0s"), Ok(0));
    }

    #[test]
    fn mistakes_say_what_is_wrong() {
        assert!(parse_micros("2").unwrap_err().contains("needs a unit"));
        assert!(
            parse_micros("2 fortnights")
                .unwrap_err()
                .contains("unknown unit `fortnights`")
        );
        assert!(parse_micros("soon").unwrap_err().contains("not a duration"));
        assert!(parse_micros("-5s").unwrap_err().contains("not a duration"));
        assert!(
            parse_micros("1.2.3s")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(parse_micros("").unwrap_err().contains("not a duration"));
        assert!(
            parse_micros("99999999 days")
                .unwrap_err()
                .contains("out of range")
        );
    }
}
