//! The built-in watermark transform (`builtin:watermark`).
//!
//! Spark's `withWatermark(event_time, delay)` as a WebAssembly component:
//!
//! - a row whose event time is at or before the watermark (the value when the
//!   batch started) is dropped as `late` — Spark's `<=` rule;
//! - a row without an event time, or with one that is not a timestamp, is
//!   rejected with a reason naming the field (dead-letter or stop, by the
//!   pipeline's error policy);
//! - every other row is kept, unchanged.
//!
//! After the batch it proposes `max event time of the batch − delay`. The host
//! keeps the largest proposal, never moves the watermark back, applies it once
//! the batch has gone through every transform (as Spark does between
//! micro-batches) and checkpoints it with the source offsets. The transform
//! itself keeps nothing between calls.
//!
//! ```json
//! {"name": "watermark", "module": "builtin:watermark",
//!  "config": {"event_time": "published_at", "delay": "2 hours"}}
//! ```
//!
//! Event times are `timestamp` values (µs since the Unix epoch, UTC); `int`
//! values are taken as µs too. The logic ([`process`]) is plain Rust over a
//! [`WatermarkHost`], tested natively against a model of the host; the
//! WebAssembly face (built for `wasm32` only) is a thin layer over it on
//! `tributary-transform-sdk`.

pub use tributary_transform_sdk::duration;

/// Parsed config.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The field holding each row's event time.
    pub event_time: String,
    /// How far the watermark trails the largest event time seen.
    pub delay_micros: i64,
}

const KEYS: [&str; 2] = ["event_time", "delay"];

/// Reads the config the host passes to `init`.
pub fn parse_config(config: &tributary_transform_sdk::Config) -> Result<Config, String> {
    config.only(&KEYS).map_err(|e| format!("watermark: {e}"))?;
    let get = |k: &str| config.get(k);
    let event_time = get("event_time")
        .ok_or("watermark: config needs `event_time`, the field holding each record's event time")?
        .to_string();
    let delay = get("delay").ok_or("watermark: config needs `delay`, e.g. \"2 hours\"")?;
    let delay_micros =
        duration::parse_micros(delay).map_err(|e| format!("watermark: delay {e}"))?;
    Ok(Config {
        event_time,
        delay_micros,
    })
}

/// The host's watermark (`tributary:transform/watermark`), as the logic sees it.
pub trait WatermarkHost {
    /// The watermark the batch is judged against; none before any event.
    fn current(&self) -> Option<i64>;
    /// Proposes a new watermark; the host keeps the largest proposal.
    fn advance(&mut self, to: i64);
}

/// A row's event-time value, as the host passed it.
#[derive(Clone, Debug, PartialEq)]
pub enum EventTime {
    /// Null, or the field is not in the batch.
    Missing,
    /// Microseconds since the Unix epoch.
    Micros(i64),
    /// Present but not a timestamp: what it is instead ("text", "a float"…).
    WrongType(&'static str),
}

/// What happens to one row.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Keep,
    Late,
    Reject(String),
}

/// Judges every row of one batch against the watermark at batch start, then
/// proposes `max event time − delay` if any row had an event time.
pub fn process(
    config: &Config,
    host: &mut impl WatermarkHost,
    times: impl IntoIterator<Item = EventTime>,
) -> Vec<Verdict> {
    let watermark = host.current();
    let mut max: Option<i64> = None;
    let verdicts = times
        .into_iter()
        .map(|t| match t {
            EventTime::Missing => {
                Verdict::Reject(format!("missing event-time field `{}`", config.event_time))
            }
            EventTime::WrongType(what) => Verdict::Reject(format!(
                "event-time field `{}` holds {what}, not a timestamp",
                config.event_time
            )),
            EventTime::Micros(t) => {
                max = Some(max.map_or(t, |m| m.max(t)));
                if watermark.is_some_and(|w| t <= w) {
                    Verdict::Late
                } else {
                    Verdict::Keep
                }
            }
        })
        .collect();
    if let Some(m) = max {
        host.advance(m.saturating_sub(config.delay_micros));
    }
    verdicts
}

/// The WebAssembly face of the transform: SDK types in, [`process`] decides,
/// SDK output out.
#[cfg(target_arch = "wasm32")]
mod guest {
    use tributary_transform_sdk::{
        self as sdk, Batch, DropReason, Output, Transform, ValueRef, watermark,
    };

    use super::{Config, EventTime, Verdict};

    struct Host;

    impl super::WatermarkHost for Host {
        fn current(&self) -> Option<i64> {
            watermark::current()
        }
        fn advance(&mut self, to: i64) {
            watermark::advance(to)
        }
    }

    fn event_time(v: ValueRef<'_>) -> EventTime {
        match v {
            ValueRef::Null => EventTime::Missing,
            ValueRef::Timestamp(t) | ValueRef::Int(t) => EventTime::Micros(t),
            ValueRef::Text(_) => EventTime::WrongType("text"),
            ValueRef::Float(_) => EventTime::WrongType("a float"),
            ValueRef::Boolean(_) => EventTime::WrongType("a boolean"),
            ValueRef::Bytes(_) => EventTime::WrongType("bytes"),
            ValueRef::Json(_) => EventTime::WrongType("nested data"),
        }
    }

    struct Watermark(Config);

    impl Transform for Watermark {
        const NAME: &'static str = "watermark";

        fn init(config: sdk::Config) -> Result<Self, String> {
            super::parse_config(&config).map(Watermark)
        }

        fn fields(&self) -> Option<Vec<String>> {
            Some(vec![self.0.event_time.clone()])
        }

        fn process(&mut self, batch: &Batch, out: &mut Output) -> Result<(), String> {
            let column = batch.find(&self.0.event_time);
            // Read in place from the column (no row of values is built).
            let times = batch
                .rows()
                .map(|row| column.map_or(EventTime::Missing, |c| event_time(row.get(c))));
            let verdicts = super::process(&self.0, &mut Host, times);
            out.reserve(verdicts.len());
            for (i, verdict) in verdicts.into_iter().enumerate() {
                let row = i as u32;
                match verdict {
                    Verdict::Keep => out.keep(row),
                    Verdict::Late => out.drop(row, DropReason::Late),
                    Verdict::Reject(reason) => out.reject(row, reason),
                }
            }
            Ok(())
        }
    }

    tributary_transform_sdk::export_transform!(Watermark);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The host's side: the watermark, and the largest proposal of the batch
    /// in flight, applied when the batch is done (never backwards).
    #[derive(Clone, Debug, Default)]
    struct HostModel {
        watermark: Option<i64>,
        proposal: Option<i64>,
    }

    impl WatermarkHost for HostModel {
        fn current(&self) -> Option<i64> {
            self.watermark
        }
        fn advance(&mut self, to: i64) {
            self.proposal = Some(self.proposal.map_or(to, |p| p.max(to)));
        }
    }

    impl HostModel {
        fn end_batch(&mut self) {
            if let Some(p) = self.proposal.take()
                && self.watermark.is_none_or(|w| p > w)
            {
                self.watermark = Some(p);
            }
        }

        /// What the host checkpoints for this transform: only the watermark.
        fn snapshot(&self) -> Vec<u8> {
            // No watermark is no bytes (not eight zero bytes: that would
            // restore as a watermark of 0).
            self.watermark
                .map(|w| w.to_le_bytes().to_vec())
                .unwrap_or_default()
        }

        fn restore(bytes: &[u8]) -> Self {
            Self {
                watermark: bytes.try_into().ok().map(i64::from_le_bytes),
                proposal: None,
            }
        }
    }

    fn cfg(delay: &str) -> Config {
        parse_config(
            &[("event_time", "ts"), ("delay", delay)]
                .into_iter()
                .collect(),
        )
        .unwrap()
    }

    fn micros(batch: &[i64]) -> Vec<EventTime> {
        batch.iter().copied().map(EventTime::Micros).collect()
    }

    /// Runs batches through the transform and the host model; the verdicts of
    /// every batch, and the watermark after each.
    fn run(
        c: &Config,
        host: &mut HostModel,
        batches: &[Vec<i64>],
    ) -> Vec<(Vec<Verdict>, Option<i64>)> {
        batches
            .iter()
            .map(|b| {
                let v = process(c, host, micros(b));
                host.end_batch();
                (v, host.watermark)
            })
            .collect()
    }

    #[test]
    fn late_means_at_or_before_the_watermark() {
        let c = cfg("10s");
        let mut host = HostModel {
            watermark: Some(100),
            proposal: None,
        };
        let verdicts = process(
            &c,
            &mut host,
            [
                EventTime::Micros(99),
                EventTime::Micros(100),
                EventTime::Micros(101),
            ],
        );
        assert_eq!(verdicts, [Verdict::Late, Verdict::Late, Verdict::Keep]);
        assert_eq!(host.proposal, Some(101 - 10_000_000));
    }

    #[test]
    fn rows_without_a_usable_time_are_rejected_and_propose_nothing() {
        let c = cfg("1 hour");
        let mut host = HostModel::default();
        let verdicts = process(
            &c,
            &mut host,
            [EventTime::Missing, EventTime::WrongType("text")],
        );
        assert_eq!(
            verdicts,
            [
                Verdict::Reject("missing event-time field `ts`".into()),
                Verdict::Reject("event-time field `ts` holds text, not a timestamp".into()),
            ]
        );
        assert_eq!(host.proposal, None, "no event time, no proposal");
    }

    #[test]
    fn the_watermark_trails_the_largest_time_by_the_delay() {
        let c = cfg("2 hours");
        let hour = 3_600_000_000;
        let mut host = HostModel::default();
        let out = run(
            &c,
            &mut host,
            &[vec![5 * hour, 3 * hour], vec![4 * hour], vec![]],
        );
        assert_eq!(out[0].0, [Verdict::Keep, Verdict::Keep], "no watermark yet");
        assert_eq!(out[0].1, Some(3 * hour));
        assert_eq!(out[1].0, [Verdict::Keep]);
        assert_eq!(out[1].1, Some(3 * hour), "4h − 2h would move it back");
        assert_eq!(out[2].1, Some(3 * hour), "an empty batch changes nothing");
        // Far past times saturate instead of wrapping round.
        let mut early = HostModel::default();
        process(&c, &mut early, micros(&[i64::MIN + 1]));
        assert_eq!(early.proposal, Some(i64::MIN));
    }

    #[test]
    fn config_errors_name_the_key() {
        let err =
            |pairs: &[(&str, &str)]| parse_config(&pairs.iter().copied().collect()).unwrap_err();
        assert!(err(&[("delay", "1h")]).contains("`event_time`"));
        assert!(err(&[("event_time", "t")]).contains("`delay`"));
        assert!(err(&[("event_time", "t"), ("delay", "")]).contains("`delay`"));
        assert!(err(&[("event_time", "t"), ("delay", "soon")]).contains("watermark: delay `soon`"));
        assert!(
            err(&[("event_time", "t"), ("delay", "1h"), ("dealy", "1h")])
                .contains("unknown config key `dealy`")
        );
        assert_eq!(cfg(" 90 minutes ").delay_micros, 5_400_000_000);
    }

    fn arb_batches() -> impl Strategy<Value = Vec<Vec<i64>>> {
        prop::collection::vec(prop::collection::vec(0i64..10_000, 0..30), 1..20)
    }

    proptest! {
        /// Batch after batch: the watermark never moves back, it is always the
        /// largest event time seen so far minus the delay, and a row is kept
        /// exactly when its time is after the watermark its batch started with.
        #[test]
        fn watermark_is_monotone_and_late_uses_at_or_before(batches in arb_batches(), delay in 0i64..3_000) {
            let c = Config { event_time: "ts".into(), delay_micros: delay };
            let mut host = HostModel::default();
            let mut max_seen: Option<i64> = None;
            for b in &batches {
                let before = host.watermark;
                let verdicts = process(&c, &mut host, micros(b));
                host.end_batch();
                prop_assert_eq!(verdicts.len(), b.len());
                for (t, v) in b.iter().zip(&verdicts) {
                    let late = before.is_some_and(|w| *t <= w);
                    prop_assert_eq!(v, if late { &Verdict::Late } else { &Verdict::Keep });
                }
                prop_assert!(host.watermark >= before);
                max_seen = b.iter().copied().chain(max_seen).max();
                prop_assert_eq!(host.watermark, max_seen.map(|m| m - delay));
            }
        }

        /// The transform holds nothing: restoring the host's checkpoint after
        /// `a` and running `b` gives what running `a ++ b` in one go gives.
        #[test]
        fn restore_snapshot_then_b_equals_a_then_b(a in arb_batches(), b in arb_batches()) {
            let c = cfg("1ms");
            let mut host = HostModel::default();
            let whole: Vec<_> = [a.clone(), b.clone()].concat();
            let expected = run(&c, &mut host, &whole);

            let mut first = HostModel::default();
            let mut got = run(&c, &mut first, &a);
            let mut restored = HostModel::restore(&first.snapshot());
            let fresh = parse_config(&[("event_time", "ts"), ("delay", "1ms")].into_iter().collect()).unwrap();
            got.extend(run(&fresh, &mut restored, &b));
            prop_assert_eq!(got, expected);
        }
    }
}
