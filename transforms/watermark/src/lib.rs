//! The built-in watermark transform (`builtin:watermark`).
//!
//! Config: `event_time` (the field) and `delay` ("2 hours"). For each batch:
//! a row whose event time is at or before the watermark is dropped as `late`
//! (Spark's `<=` rule); a row without an event time is rejected with a reason;
//! the rest are kept. After the batch it proposes `max event time − delay` as
//! the new watermark; the host keeps the largest proposal, applies it when the
//! batch has passed every transform (as Spark does between micro-batches), and
//! checkpoints it. The logic is plain Rust ([`decide`]), tested natively; the
//! WebAssembly bindings are a thin layer over it.

pub mod duration;

/// Parsed config.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub event_time: String,
    pub delay_micros: i64,
}

/// Reads the config pairs the host passes to `init`.
pub fn parse_config(pairs: &[(String, String)]) -> Result<Config, String> {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    for (k, _) in pairs {
        if k != "event_time" && k != "delay" {
            return Err(format!(
                "watermark: unknown config key `{k}` (expected `event_time` and `delay`)"
            ));
        }
    }
    let event_time = get("event_time").filter(|v| !v.is_empty()).ok_or(
        "watermark: config needs `event_time`, the field holding each record's event time",
    )?;
    let delay = get("delay").ok_or("watermark: config needs `delay`, e.g. \"2 hours\"")?;
    let delay_micros =
        duration::parse_micros(&delay).map_err(|e| format!("watermark: delay {e}"))?;
    Ok(Config {
        event_time,
        delay_micros,
    })
}

/// A row's event time as the host showed it.
#[derive(Clone, Debug, PartialEq)]
pub enum EventTime {
    Missing,
    Micros(i64),
    /// Present but not a timestamp; the name of what it is.
    WrongType(&'static str),
}

/// What happens to one row.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Keep,
    Late,
    Reject(String),
}

/// Decides every row of a batch against `watermark` (the value at batch start)
/// and returns the watermark to propose afterwards, if any row had a time.
pub fn decide(
    config: &Config,
    watermark: Option<i64>,
    times: &[EventTime],
) -> (Vec<Decision>, Option<i64>) {
    let mut max: Option<i64> = None;
    let decisions = times
        .iter()
        .map(|t| match t {
            EventTime::Missing => {
                Decision::Reject(format!("missing event-time field `{}`", config.event_time))
            }
            EventTime::WrongType(what) => Decision::Reject(format!(
                "event-time field `{}` holds {what}, not a timestamp",
                config.event_time
            )),
            EventTime::Micros(t) => {
                max = Some(max.map_or(*t, |m| m.max(*t)));
                match watermark {
                    Some(w) if *t <= w => Decision::Late,
                    _ => Decision::Keep,
                }
            }
        })
        .collect();
    (
        decisions,
        max.map(|m| m.saturating_sub(config.delay_micros)),
    )
}

/// The WebAssembly face of the transform. The generated bindings use unsafe
/// code for the canonical ABI; nothing else here does.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod guest {
    wit_bindgen::generate!({ path: "../../wit", world: "transform" });

    use exports::tributary::transform::processor::Guest;
    use tributary::transform::types::{Batch, DropReason, Dropped, Emit, Output, Rejected, Value};
    use tributary::transform::watermark;

    use super::{Config, Decision, EventTime};

    /// Set once by `init`; the guest is single-threaded.
    static CONFIG_CELL: std::sync::OnceLock<Config> = std::sync::OnceLock::new();

    struct Watermark;

    impl Guest for Watermark {
        fn init(config: Vec<(String, String)>) -> Result<Option<Vec<String>>, String> {
            let c = super::parse_config(&config)?;
            let field = c.event_time.clone();
            let _ = CONFIG_CELL.set(c);
            Ok(Some(vec![field]))
        }

        fn process(batch: Batch) -> Result<Output, String> {
            let c = CONFIG_CELL
                .get()
                .ok_or("watermark: process called before init")?;
            let times: Vec<EventTime> = batch
                .rows
                .iter()
                .map(|row| match row.first() {
                    None | Some(Value::Null) => EventTime::Missing,
                    Some(Value::Timestamp(t)) | Some(Value::Int(t)) => EventTime::Micros(*t),
                    Some(Value::Text(_)) => EventTime::WrongType("text"),
                    Some(Value::Float(_)) => EventTime::WrongType("a float"),
                    Some(Value::Boolean(_)) => EventTime::WrongType("a boolean"),
                    Some(Value::Bytes(_)) => EventTime::WrongType("bytes"),
                    Some(Value::Json(_)) => EventTime::WrongType("nested data"),
                })
                .collect();
            let (decisions, proposal) = super::decide(c, watermark::current(), &times);
            let mut out = Output {
                emit: Vec::with_capacity(decisions.len()),
                dropped: Vec::new(),
                rejected: Vec::new(),
            };
            for (i, d) in decisions.into_iter().enumerate() {
                let row = i as u32;
                match d {
                    Decision::Keep => out.emit.push(Emit::Keep(row)),
                    Decision::Late => out.dropped.push(Dropped {
                        row,
                        reason: DropReason::Late,
                    }),
                    Decision::Reject(reason) => out.rejected.push(Rejected { row, reason }),
                }
            }
            if let Some(p) = proposal {
                watermark::advance(p);
            }
            Ok(out)
        }

        fn on_watermark(_watermark: i64) -> Result<Output, String> {
            Ok(Output {
                emit: Vec::new(),
                dropped: Vec::new(),
                rejected: Vec::new(),
            })
        }
    }

    export!(Watermark);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        parse_config(&[
            ("event_time".into(), "ts".into()),
            ("delay".into(), "10s".into()),
        ])
        .unwrap()
    }

    #[test]
    fn late_means_at_or_before_the_watermark() {
        let times = [
            EventTime::Micros(99),
            EventTime::Micros(100),
            EventTime::Micros(101),
            EventTime::Missing,
        ];
        let (d, p) = decide(&cfg(), Some(100), &times);
        assert_eq!(d[0], Decision::Late);
        assert_eq!(
            d[1],
            Decision::Late,
            "equal to the watermark is late (Spark's <=)"
        );
        assert_eq!(d[2], Decision::Keep);
        assert_eq!(
            d[3],
            Decision::Reject("missing event-time field `ts`".into())
        );
        assert_eq!(p, Some(101 - 10_000_000));
        let (d, p) = decide(&cfg(), None, &[EventTime::Micros(5)]);
        assert_eq!((d, p), (vec![Decision::Keep], Some(5 - 10_000_000)));
        assert_eq!(decide(&cfg(), None, &[EventTime::Missing]).1, None);
    }

    #[test]
    fn config_errors_name_the_key() {
        assert!(
            parse_config(&[("delay".into(), "1h".into())])
                .unwrap_err()
                .contains("`event_time`")
        );
        assert!(
            parse_config(&[("event_time".into(), "t".into())])
                .unwrap_err()
                .contains("`delay`")
        );
        let typo = parse_config(&[
            ("event_time".into(), "t".into()),
            ("dealy".into(), "1h".into()),
        ]);
        assert!(typo.unwrap_err().contains("unknown config key `dealy`"));
    }

    proptest::proptest! {
        /// Fed batch after batch the way the host does (keep the largest
        /// proposal), the watermark never moves back, and no kept row is at or
        /// before the watermark it was judged against.
        #[test]
        fn watermark_is_monotone_and_kept_rows_are_after_it(batches in proptest::collection::vec(proptest::collection::vec(0i64..1_000_000_000, 0..50), 1..20)) {
            let c = cfg();
            let mut wm: Option<i64> = None;
            for batch in batches {
                let times: Vec<EventTime> = batch.iter().map(|t| EventTime::Micros(*t)).collect();
                let (d, proposal) = decide(&c, wm, &times);
                for (t, d) in batch.iter().zip(&d) {
                    if *d == Decision::Keep { proptest::prop_assert!(wm.is_none_or(|w| *t > w)); }
                    else { proptest::prop_assert!(wm.is_some_and(|w| *t <= w)); }
                }
                let next = match (wm, proposal) { (Some(w), Some(p)) => Some(w.max(p)), (w, p) => w.or(p) };
                proptest::prop_assert!(next >= wm);
                wm = next;
            }
        }
    }
}
