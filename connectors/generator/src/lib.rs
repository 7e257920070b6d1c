//! A deterministic, seeded source of news articles: the stand-in for a Kafka
//! topic of articles, with the mess real feeds have — duplicates, out-of-order
//! and late events.
//!
//! Record `n` is a pure function of `(seed, n)`, so a run that resumes at
//! offsets `{"position": n}` produces exactly what an uninterrupted run would,
//! and a test can compute the exact set of ids a pipeline must deliver
//! ([`describe_expected`]).
//!
//! What each record is, by construction (`spacing` = `event_spacing_ms`,
//! `jitter` = `out_of_order_ms`):
//! - **normal**: id `a-<n>`, published around `start_time + n·spacing ± jitter`;
//! - **duplicate** (`duplicate_ratio`): an exact copy of one of the previous
//!   `duplicate_distance` records (same id and content);
//! - **late** (`late_ratio`): id `late-<n>`, published `late_by_ms` before the
//!   stream's current time. Late records start only once the stream time has
//!   passed `late_by_ms`, so a watermark exists to judge them.
//!
//! A watermark delay `d` with `2·jitter < d` never drops a normal record, and a
//! late record is late for any `d ≤ late_by_ms − jitter − batch_size·spacing`;
//! with the defaults (1 s spacing, 60 s jitter, 3 h late) a `"2 hours"`
//! watermark with batches up to 3000 records drops exactly the late ones, and
//! dedup drops exactly the duplicates.
//!
//! ```json
//! {"type": "generator", "seed": 42, "records": 100000, "rate_per_sec": 50000}
//! ```

#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::builder::{StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;
use tributary_connector::{
    ConnectorContext, Error, FromConfig, Offsets, Poll, Result, Source, SourceBatch, UTC,
    parse_config,
};

/// Config of the `generator` source.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorConfig {
    /// Seed of the stream: the same seed gives the same records.
    pub seed: u64,
    /// Records in all; the source ends after them. 0: never ends.
    pub records: u64,
    /// Records per second at most; 0: as fast as the pipeline takes them.
    pub rate_per_sec: u64,
    /// Event time of record 0 (RFC 3339).
    pub start_time: String,
    /// Event-time distance between consecutive records, in milliseconds.
    pub event_spacing_ms: u64,
    /// Share of records that repeat an earlier record exactly.
    pub duplicate_ratio: f64,
    /// How many records back a duplicate's original can be.
    pub duplicate_distance: u64,
    /// Event times of normal records move up to this much either way, in ms.
    pub out_of_order_ms: u64,
    /// Share of records that arrive late.
    pub late_ratio: f64,
    /// How far behind the stream a late record's event time is, in ms.
    pub late_by_ms: u64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            records: 100_000,
            rate_per_sec: 0,
            start_time: "2026-01-01T00:00:00Z".into(),
            event_spacing_ms: 1_000,
            duplicate_ratio: 0.1,
            duplicate_distance: 500,
            out_of_order_ms: 60_000,
            late_ratio: 0.01,
            late_by_ms: 3 * 3_600_000,
        }
    }
}

impl GeneratorConfig {
    fn check(&self) -> Result<i64> {
        let start = chrono::DateTime::parse_from_rfc3339(&self.start_time)
            .map_err(|e| {
                Error::config(format!(
                    "generator: start_time `{}` is not RFC 3339: {e}",
                    self.start_time
                ))
            })?
            .timestamp_micros();
        for (name, v) in [
            ("duplicate_ratio", self.duplicate_ratio),
            ("late_ratio", self.late_ratio),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::config(format!(
                    "generator: {name} must be between 0 and 1, got {v}"
                )));
            }
        }
        if self.duplicate_ratio + self.late_ratio > 1.0 {
            return Err(Error::config(
                "generator: duplicate_ratio + late_ratio must be at most 1",
            ));
        }
        if self.duplicate_distance == 0 {
            return Err(Error::config(
                "generator: duplicate_distance must be at least 1",
            ));
        }
        Ok(start)
    }
}

/// One generated article.
#[derive(Clone, Debug, PartialEq)]
pub struct Article {
    pub id: String,
    pub source: String,
    pub title: String,
    pub url: String,
    pub author: Option<String>,
    pub body: String,
    pub published_at_micros: i64,
}

/// What record `n` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Normal,
    /// A copy of the record at this earlier position.
    Duplicate(u64),
    Late,
}

/// splitmix64: a few lines, and its output never changes with a crate
/// version — the whole point of a seeded, resumable stream.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Draw(u64);
impl Draw {
    fn new(seed: u64, n: u64, salt: u64) -> Self {
        Self(mix(seed ^ mix(n ^ mix(salt))))
    }
    fn next(&mut self) -> u64 {
        self.0 = mix(self.0);
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The kind of record `n`.
pub fn kind(config: &GeneratorConfig, n: u64) -> Kind {
    let mut d = Draw::new(config.seed, n, 1);
    let r = d.unit();
    let stream_ms = n.saturating_mul(config.event_spacing_ms);
    // Late records only once the stream is older than `late_by`, so that
    // earlier batches have set a watermark to judge them.
    let late_allowed = stream_ms >= config.late_by_ms;
    if late_allowed && r < config.late_ratio {
        return Kind::Late;
    }
    if n > 0 && r >= 1.0 - config.duplicate_ratio {
        let back = 1 + d.below(config.duplicate_distance.min(n));
        return Kind::Duplicate(n - back);
    }
    Kind::Normal
}

const SOURCES: &[&str] = &[
    "reuters", "ap", "bbc", "dpa", "afp", "guardian", "nikkei", "elpais",
];
const WORDS: &[&str] = &[
    "market", "election", "storm", "rally", "court", "vaccine", "summit", "strike", "energy",
    "river", "bridge", "budget", "launch", "harvest", "league", "festival", "border", "reform",
    "drought", "museum",
];
const AUTHORS: &[&str] = &[
    "A. Moreau",
    "K. Tanaka",
    "J. Okafor",
    "M. Rossi",
    "S. Lindqvist",
    "P. Novak",
];

/// Record `n` of the stream.
pub fn article(config: &GeneratorConfig, start_micros: i64, n: u64) -> Article {
    let mut at = n;
    // Follow duplicates back to the record they copy.
    while let Kind::Duplicate(original) = kind(config, at) {
        at = original;
    }
    let late = kind(config, at) == Kind::Late;
    let mut d = Draw::new(config.seed, at, 2);
    let base = start_micros + (at as i64) * (config.event_spacing_ms as i64) * 1000;
    let published_at_micros = if late {
        base - (config.late_by_ms as i64) * 1000
    } else {
        let span = 2 * config.out_of_order_ms + 1;
        base + (d.below(span) as i64 - config.out_of_order_ms as i64) * 1000
    };
    let source = SOURCES[d.below(SOURCES.len() as u64) as usize];
    let words: Vec<&str> = (0..4)
        .map(|_| WORDS[d.below(WORDS.len() as u64) as usize])
        .collect();
    let title = format!(
        "{} {} {} {}",
        capitalise(words[0]),
        words[1],
        words[2],
        words[3]
    );
    let sentences = 2 + d.below(4);
    let body = (0..sentences)
        .map(|i| {
            let w: Vec<&str> = (0..6)
                .map(|_| WORDS[d.below(WORDS.len() as u64) as usize])
                .collect();
            format!(
                "{} {} {} the {} near the {} {}.",
                capitalise(w[0]),
                w[1],
                i,
                w[2],
                w[3],
                w[4]
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let author =
        (d.below(5) != 0).then(|| AUTHORS[d.below(AUTHORS.len() as u64) as usize].to_string());
    let id = if late {
        format!("late-{at:09}")
    } else {
        format!("a-{at:09}")
    };
    Article {
        url: format!("https://news.example/{source}/{id}"),
        id,
        source: source.to_string(),
        title,
        author,
        body,
        published_at_micros,
    }
}

fn capitalise(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The exact outcome of `watermark + dedup(keep first)` over a bounded stream,
/// for tests: the ids that must reach the sink, and how many records are late
/// or duplicates.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    pub ids: BTreeSet<String>,
    pub late: u64,
    pub duplicates: u64,
}

/// Computes [`Expected`] from a generator config (JSON, as in a pipeline).
pub fn describe_expected(config: &serde_json::Value) -> Result<Expected> {
    let mut fields = config.clone();
    if let Some(o) = fields.as_object_mut() {
        o.remove("type");
    }
    let config: GeneratorConfig = parse_config("generator", &fields)?;
    config.check()?;
    if config.records == 0 {
        return Err(Error::config(
            "generator: an unbounded stream has no expected set",
        ));
    }
    let mut out = Expected::default();
    for n in 0..config.records {
        let mut at = n;
        let mut copies = false;
        while let Kind::Duplicate(original) = kind(&config, at) {
            at = original;
            copies = true;
        }
        match (kind(&config, at), copies) {
            (Kind::Late, _) => out.late += 1,
            (_, true) => out.duplicates += 1,
            _ => {
                out.ids.insert(format!("a-{at:09}"));
            }
        }
    }
    Ok(out)
}

/// The Arrow schema of generated articles.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("title", DataType::Utf8, false),
        Field::new("url", DataType::Utf8, false),
        Field::new("author", DataType::Utf8, true),
        Field::new("body", DataType::Utf8, false),
        Field::new(
            "published_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            false,
        ),
    ]))
}

/// The source.
#[derive(Debug)]
pub struct GeneratorSource {
    config: GeneratorConfig,
    start_micros: i64,
    position: u64,
    schema: SchemaRef,
    /// For the rate limit: when this run started and where it was then.
    opened: Option<(Instant, u64)>,
}

impl FromConfig for GeneratorSource {
    type Config = GeneratorConfig;
    const NAME: &'static str = "generator source";
    fn from_config(config: GeneratorConfig, _ctx: &ConnectorContext) -> Result<Self> {
        GeneratorSource::new(config)
    }
}

impl GeneratorSource {
    pub fn new(config: GeneratorConfig) -> Result<Self> {
        let start_micros = config.check()?;
        Ok(Self {
            config,
            start_micros,
            position: 0,
            schema: schema(),
            opened: None,
        })
    }

    fn batch(&self, from: u64, count: u64) -> RecordBatch {
        let n = count as usize;
        let mut id = StringBuilder::with_capacity(n, n * 12);
        let mut source = StringBuilder::with_capacity(n, n * 8);
        let mut title = StringBuilder::with_capacity(n, n * 40);
        let mut url = StringBuilder::with_capacity(n, n * 48);
        let mut author = StringBuilder::with_capacity(n, n * 12);
        let mut body = StringBuilder::with_capacity(n, n * 200);
        let mut published = TimestampMicrosecondBuilder::with_capacity(n).with_timezone(UTC);
        for i in from..from + count {
            let a = article(&self.config, self.start_micros, i);
            id.append_value(&a.id);
            source.append_value(&a.source);
            title.append_value(&a.title);
            url.append_value(&a.url);
            author.append_option(a.author.as_deref());
            body.append_value(&a.body);
            published.append_value(a.published_at_micros);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(id.finish()),
            Arc::new(source.finish()),
            Arc::new(title.finish()),
            Arc::new(url.finish()),
            Arc::new(author.finish()),
            Arc::new(body.finish()),
            Arc::new(published.finish()),
        ];
        RecordBatch::try_new(self.schema.clone(), columns).expect("columns match the schema")
    }
}

impl Source for GeneratorSource {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn open(&mut self, resume: Option<&Offsets>) -> Result<()> {
        self.position = match resume {
            None => 0,
            Some(o) => o
                .as_json()
                .get("position")
                .and_then(|p| p.as_u64())
                .ok_or_else(|| {
                    Error::data(format!(
                        "generator: offsets {} have no `position`",
                        o.as_json()
                    ))
                })?,
        };
        self.opened = Some((Instant::now(), self.position));
        Ok(())
    }

    fn poll(&mut self, max_records: usize) -> Result<Poll> {
        let mut count = max_records as u64;
        if self.config.records > 0 {
            if self.position >= self.config.records {
                return Ok(Poll::Exhausted);
            }
            count = count.min(self.config.records - self.position);
        }
        if self.config.rate_per_sec > 0 {
            let (since, at_open) = *self.opened.get_or_insert((Instant::now(), self.position));
            // Wait (briefly) until the rate allows at least one record; never
            // report Idle, which would end an --available-now run early.
            loop {
                let allowed =
                    (since.elapsed().as_secs_f64() * self.config.rate_per_sec as f64) as u64;
                let done = self.position - at_open;
                if allowed > done {
                    count = count.min(allowed - done);
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let batch = self.batch(self.position, count);
        self.position += count;
        Ok(Poll::Batch(SourceBatch {
            records: batch,
            bad: Vec::new(),
            offsets: Offsets::new(serde_json::json!({"position": self.position})),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> GeneratorConfig {
        GeneratorConfig {
            records: 20_000,
            ..GeneratorConfig::default()
        }
    }

    fn drain(source: &mut GeneratorSource, batch: usize) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        while let Poll::Batch(b) = source.poll(batch).unwrap() {
            assert!(b.records.num_rows() <= batch);
            out.push(b.records);
        }
        out
    }

    #[test]
    fn same_seed_same_stream_and_resume_continues_exactly() {
        let mut a = GeneratorSource::new(config()).unwrap();
        a.open(None).unwrap();
        let all = arrow_select::concat::concat_batches(&schema(), &drain(&mut a, 997)).unwrap();
        assert_eq!(all.num_rows(), 20_000);

        let mut b = GeneratorSource::new(config()).unwrap();
        b.open(Some(&Offsets::new(serde_json::json!({"position": 12_345}))))
            .unwrap();
        let tail = arrow_select::concat::concat_batches(&schema(), &drain(&mut b, 500)).unwrap();
        assert_eq!(tail, all.slice(12_345, 20_000 - 12_345));
    }

    #[test]
    fn kinds_have_the_promised_properties() {
        let c = config();
        let start = c.check().unwrap();
        let (mut late, mut dup) = (0, 0);
        for n in 0..c.records {
            let a = article(&c, start, n);
            let stream = start + n as i64 * 1_000_000;
            match kind(&c, n) {
                Kind::Normal => {
                    assert_eq!(a.id, format!("a-{n:09}"));
                    assert!((a.published_at_micros - stream).abs() <= 60_000_000);
                }
                Kind::Duplicate(m) => {
                    dup += 1;
                    assert!(n - m <= c.duplicate_distance && m < n);
                    assert_eq!(a, article(&c, start, m), "a duplicate is an exact copy");
                }
                Kind::Late => {
                    late += 1;
                    assert_eq!(a.published_at_micros, stream - 3 * 3_600_000_000);
                    assert!(a.id.starts_with("late-"));
                }
            }
        }
        assert!(late > 50 && dup > 1500, "late {late}, duplicates {dup}");
        let expected =
            describe_expected(&serde_json::json!({"type": "generator", "records": 20_000}))
                .unwrap();
        assert_eq!(
            expected.ids.len() as u64 + expected.late + expected.duplicates,
            20_000
        );
        assert!(expected.ids.iter().all(|id| id.starts_with("a-")));
    }

    #[test]
    fn bad_config_is_named() {
        let err = tributary_connector::build_source::<GeneratorSource>(
            &serde_json::json!({"seed": 1, "recrods": 5}),
            &ConnectorContext::default(),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("unknown field `recrods`"), "{err}");
        let err = tributary_connector::build_source::<GeneratorSource>(
            &serde_json::json!({"late_ratio": 2.0}),
            &ConnectorContext::default(),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("late_ratio"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn resuming_anywhere_equals_one_pass(split in 0u64..3_000, batch in 1usize..400) {
            let c = GeneratorConfig { records: 3_000, ..GeneratorConfig::default() };
            let mut whole = GeneratorSource::new(c.clone()).unwrap();
            whole.open(None).unwrap();
            let whole = arrow_select::concat::concat_batches(&schema(), &drain(&mut whole, 1000)).unwrap();
            let mut first = GeneratorSource::new(c.clone()).unwrap();
            first.open(None).unwrap();
            let mut parts = Vec::new();
            let mut read = 0;
            while read < split {
                let Poll::Batch(b) = first.poll(batch.min((split - read) as usize)).unwrap() else { break };
                read += b.records.num_rows() as u64;
                parts.push(b.records);
            }
            let mut second = GeneratorSource::new(c).unwrap();
            second.open(Some(&Offsets::new(serde_json::json!({"position": split})))).unwrap();
            parts.extend(drain(&mut second, batch));
            let joined = arrow_select::concat::concat_batches(&schema(), &parts).unwrap();
            proptest::prop_assert_eq!(joined, whole);
        }
    }
}
