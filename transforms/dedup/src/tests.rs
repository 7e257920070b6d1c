//! The dedup logic against a model of the host: a keyed store with event-time
//! expiry, `take-expired`, eviction after the watermark moves, and a
//! checkpoint written out as bytes and read back.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;

use super::*;

/// The host's side of one transform instance.
#[derive(Clone, Debug, Default, PartialEq)]
struct HostModel {
    entries: BTreeMap<String, (Vec<u8>, Option<i64>)>,
    watermark: Option<i64>,
}

impl Store for HostModel {
    fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.entries.get(key).map(|(v, _)| v.clone())
    }
    fn put(&mut self, key: &str, value: &[u8], expires_at: i64) {
        self.entries
            .insert(key.into(), (value.to_vec(), Some(expires_at)));
    }
    fn put_if_absent(&mut self, key: &str, value: &[u8], expires_at: i64) -> bool {
        if self.entries.contains_key(key) {
            return false;
        }
        self.put(key, value, expires_at);
        true
    }
    fn take_expired(&mut self) -> Vec<(String, Vec<u8>)> {
        let Some(w) = self.watermark else {
            return Vec::new();
        };
        let mut gone: Vec<(i64, String)> = self
            .entries
            .iter()
            .filter_map(|(k, (_, e))| e.filter(|e| *e <= w).map(|e| (e, k.clone())))
            .collect();
        gone.sort();
        gone.into_iter()
            .map(|(_, k)| {
                let (v, _) = self.entries.remove(&k).expect("listed above");
                (k, v)
            })
            .collect()
    }
}

impl HostModel {
    /// What the host does after every `on-watermark` call.
    fn evict(&mut self) {
        self.take_expired();
    }

    /// The checkpoint, as bytes: nothing survives but what is written here.
    fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let opt = |out: &mut Vec<u8>, v: Option<i64>| {
            out.push(u8::from(v.is_some()));
            out.extend_from_slice(&v.unwrap_or(0).to_le_bytes());
        };
        let bytes = |out: &mut Vec<u8>, b: &[u8]| {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        };
        opt(&mut out, self.watermark);
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for (k, (v, e)) in &self.entries {
            bytes(&mut out, k.as_bytes());
            bytes(&mut out, v);
            opt(&mut out, *e);
        }
        out
    }

    fn restore(mut b: &[u8]) -> Self {
        let mut take = |n: usize| {
            let (head, tail) = b.split_at(n);
            b = tail;
            head.to_vec()
        };
        let opt = |take: &mut dyn FnMut(usize) -> Vec<u8>| {
            let flag = take(1)[0];
            let v = i64::from_le_bytes(take(8).try_into().unwrap());
            (flag == 1).then_some(v)
        };
        let watermark = opt(&mut take);
        let count = u32::from_le_bytes(take(4).try_into().unwrap());
        let mut entries = BTreeMap::new();
        for _ in 0..count {
            let n = u32::from_le_bytes(take(4).try_into().unwrap()) as usize;
            let k = String::from_utf8(take(n)).unwrap();
            let n = u32::from_le_bytes(take(4).try_into().unwrap()) as usize;
            let v = take(n);
            let e = opt(&mut take);
            entries.insert(k, (v, e));
        }
        Self { entries, watermark }
    }
}

fn config(keep: Keep, within_micros: i64) -> Config {
    Config {
        key: "id".into(),
        event_time: "published_at".into(),
        within_micros,
        keep,
    }
}

fn names(fields: &[&str]) -> Vec<String> {
    fields.iter().map(|f| f.to_string()).collect()
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

// ---------------------------------------------------------------------------
// Examples

#[test]
fn first_keeps_the_first_row_of_a_key_and_rejects_rows_it_cannot_place() {
    let d = Dedup::new(config(Keep::First, 100));
    let mut host = HostModel::default();
    let fields = names(&["id", "published_at"]);
    let rows = vec![
        vec![text("a"), Value::Timestamp(10)],
        vec![text("a"), Value::Timestamp(5)],
        vec![Value::Int(7), Value::Int(7)],
        vec![Value::Null, Value::Timestamp(1)],
        vec![text("b"), Value::Null],
        vec![text("c"), text("yesterday")],
    ];
    let verdicts = d.process(&mut host, &fields, &rows).unwrap();
    assert_eq!(
        verdicts,
        [
            Verdict::Keep,
            Verdict::Duplicate,
            Verdict::Keep,
            Verdict::Reject("missing key field `id`".into()),
            Verdict::Reject("missing event-time field `published_at`".into()),
            Verdict::Reject("event-time field `published_at` holds text, not a timestamp".into()),
        ]
    );
    assert_eq!(host.entries["a"].1, Some(110), "first event time + within");
    assert_eq!(host.entries["7"].1, Some(107), "an int time is µs");
    assert_eq!(host.entries.len(), 2);
    // The next batch: `a` is still in its window.
    let again = d
        .process(
            &mut host,
            &fields,
            &[vec![text("a"), Value::Timestamp(109)]],
        )
        .unwrap();
    assert_eq!(again, [Verdict::Duplicate]);
    assert!(
        d.on_watermark(&mut host).unwrap().is_empty(),
        "first emits nothing later"
    );
}

#[test]
fn a_field_missing_from_the_batch_rejects_every_row() {
    let d = Dedup::new(config(Keep::First, 100));
    let verdicts = d
        .process(
            &mut HostModel::default(),
            &names(&["id"]),
            &[vec![text("a")]],
        )
        .unwrap();
    assert_eq!(
        verdicts,
        [Verdict::Reject(
            "missing event-time field `published_at`".into()
        )]
    );
}

#[test]
fn latest_emits_the_latest_version_with_all_fields_when_the_window_closes() {
    let d = Dedup::new(config(Keep::Latest, 100));
    let mut host = HostModel::default();
    let fields = names(&["id", "published_at", "title", "score"]);
    let row = |id: &str, t: i64, title: &str| {
        vec![
            text(id),
            Value::Timestamp(t),
            text(title),
            Value::Float(0.5),
        ]
    };
    let first = vec![
        row("a", 10, "v1"),
        row("a", 30, "v3"),
        row("a", 20, "v2"),
        row("b", 40, "b1"),
    ];
    assert_eq!(
        d.process(&mut host, &fields, &first).unwrap(),
        [
            Verdict::Held,
            Verdict::Duplicate,
            Verdict::Duplicate,
            Verdict::Held
        ]
    );
    assert_eq!(
        host.entries["a"].1,
        Some(110),
        "the window of `a` opened at 10"
    );
    // A later batch: an older version loses, an equal time wins (later arrival).
    let second = vec![row("a", 25, "old"), row("a", 30, "v3 again")];
    assert_eq!(
        d.process(&mut host, &fields, &second).unwrap(),
        [Verdict::Duplicate, Verdict::Duplicate]
    );
    assert_eq!(
        host.entries["a"].1,
        Some(110),
        "a new version keeps the window's expiry"
    );

    host.watermark = Some(109);
    assert!(
        d.on_watermark(&mut host).unwrap().is_empty(),
        "window still open at 109"
    );
    host.watermark = Some(140);
    let emitted = d.on_watermark(&mut host).unwrap();
    assert_eq!(
        emitted,
        [
            vec![
                ("id".to_string(), text("a")),
                ("published_at".to_string(), Value::Timestamp(30)),
                ("title".to_string(), text("v3 again")),
                ("score".to_string(), Value::Float(0.5)),
            ],
            vec![
                ("id".to_string(), text("b")),
                ("published_at".to_string(), Value::Timestamp(40)),
                ("title".to_string(), text("b1")),
                ("score".to_string(), Value::Float(0.5)),
            ],
        ]
    );
    assert!(host.entries.is_empty());
}

#[test]
fn latest_refuses_state_it_did_not_write() {
    let fields = names(&["id", "published_at"]);
    let rows = [vec![text("a"), Value::Timestamp(1)]];
    let mut host = HostModel::default();
    Dedup::new(config(Keep::First, 100))
        .process(&mut host, &fields, &rows)
        .unwrap();
    let latest = Dedup::new(config(Keep::Latest, 100));
    let err = latest.process(&mut host, &fields, &rows).unwrap_err();
    assert!(
        err.contains("key `a`") && err.contains("another `keep`"),
        "{err}"
    );
    host.watermark = Some(1_000);
    assert!(
        latest
            .on_watermark(&mut host)
            .unwrap_err()
            .contains("key `a`")
    );
}

#[test]
fn projection_follows_keep() {
    let first = Dedup::new(config(Keep::First, 1));
    assert_eq!(first.projection(), Some(names(&["id", "published_at"])));
    assert_eq!(Dedup::new(config(Keep::Latest, 1)).projection(), None);
}

#[test]
fn config_is_read_and_mistakes_name_the_key() {
    let parse = |pairs: &[(&str, &str)]| parse_config(&pairs.iter().copied().collect());
    let base = [
        ("key", "id"),
        ("event_time", "published_at"),
        ("within", "2 hours"),
    ];
    let c = parse(&base).unwrap();
    assert_eq!(c, config(Keep::First, 7_200_000_000));
    let with = |extra: (&'static str, &'static str)| {
        let mut v = base.to_vec();
        v.push(extra);
        parse(&v)
    };
    assert_eq!(with(("keep", "latest")).unwrap().keep, Keep::Latest);
    assert_eq!(with(("keep", "first")).unwrap().keep, Keep::First);
    assert!(
        with(("keep", "last"))
            .unwrap_err()
            .contains("\"first\" or \"latest\"")
    );
    assert!(
        with(("window", "1h"))
            .unwrap_err()
            .contains("unknown config key `window`")
    );
    assert!(parse(&base[1..]).unwrap_err().contains("`key`"));
    assert!(
        parse(&[base[0], base[2]])
            .unwrap_err()
            .contains("`event_time`")
    );
    assert!(parse(&base[..2]).unwrap_err().contains("`within`"));
    let bad = parse(&[base[0], base[1], ("within", "2 weeks")]).unwrap_err();
    assert!(bad.contains("dedup: within `2 weeks`"), "{bad}");
}

// ---------------------------------------------------------------------------
// The pipeline model: a watermark filter with `delay` upstream, then dedup.

/// One input row: its key (none: missing), event time and arrival number.
#[derive(Clone, Debug)]
struct In {
    key: Option<u8>,
    t: i64,
    seq: i64,
}

/// Everything observable, in order.
#[derive(Clone, Debug, PartialEq)]
enum Event {
    /// Dropped upstream by the watermark transform.
    Late {
        seq: i64,
    },
    Row {
        seq: i64,
        key: Option<String>,
        t: i64,
        verdict: Verdict,
    },
    Watermark(i64),
    Emit {
        key: String,
        t: i64,
        seq: i64,
    },
}

const FIELDS: [&str; 3] = ["id", "published_at", "seq"];

struct Sim {
    dedup: Dedup,
    host: HostModel,
    delay: i64,
}

impl Sim {
    fn new(config: Config, delay: i64) -> Self {
        Sim {
            dedup: Dedup::new(config),
            host: HostModel::default(),
            delay,
        }
    }

    fn batch(&mut self, rows: &[In], events: &mut Vec<Event>) {
        let key = |r: &In| r.key.map(|k| format!("k{k}"));
        let before = self.host.watermark;
        let (late, fed): (Vec<&In>, Vec<&In>) =
            rows.iter().partition(|r| before.is_some_and(|w| r.t <= w));
        events.extend(late.iter().map(|r| Event::Late { seq: r.seq }));
        let values: Vec<Vec<Value>> = fed
            .iter()
            .map(|r| {
                let id = key(r).map_or(Value::Null, Value::Text);
                vec![id, Value::Timestamp(r.t), Value::Int(r.seq)]
            })
            .collect();
        let verdicts = self
            .dedup
            .process(&mut self.host, &names(&FIELDS), &values)
            .unwrap();
        assert_eq!(verdicts.len(), fed.len(), "one verdict per row");
        events.extend(fed.iter().zip(verdicts).map(|(r, verdict)| Event::Row {
            seq: r.seq,
            key: key(r),
            t: r.t,
            verdict,
        }));
        if let Some(max) = rows.iter().map(|r| r.t).max() {
            self.move_watermark(max - self.delay, events);
        }
    }

    /// What the host does when a batch proposes `to`.
    fn move_watermark(&mut self, to: i64, events: &mut Vec<Event>) {
        if self.host.watermark.is_some_and(|w| to <= w) {
            return;
        }
        self.host.watermark = Some(to);
        events.push(Event::Watermark(to));
        for row in self.dedup.on_watermark(&mut self.host).unwrap() {
            let get = |name: &str| &row.iter().find(|(n, _)| n == name).unwrap().1;
            let (Value::Text(key), Value::Timestamp(t), Value::Int(seq)) =
                (get("id"), get("published_at"), get("seq"))
            else {
                panic!("emitted row lost its fields: {row:?}");
            };
            assert_eq!(row.len(), FIELDS.len());
            events.push(Event::Emit {
                key: key.clone(),
                t: *t,
                seq: *seq,
            });
        }
        self.host.evict();
    }

    fn run(&mut self, batches: &[Vec<In>]) -> Vec<Event> {
        let mut events = Vec::new();
        for b in batches {
            self.batch(b, &mut events);
        }
        events
    }

    /// The end of time: every window closes.
    fn flush(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        self.move_watermark(i64::MAX, &mut events);
        events
    }
}

/// Batches of (key, jitter); batch `b`'s times are `b * 60 + jitter`, so time
/// moves on while rows arrive out of order.
fn arb_batches() -> impl Strategy<Value = Vec<Vec<(Option<u8>, i64)>>> {
    prop::collection::vec(
        prop::collection::vec((prop::option::weighted(0.95, 0u8..8), 0i64..200), 0..12),
        0..14,
    )
}

/// Numbers rows in arrival order from `seq`, and places batches in time from
/// batch number `from`.
fn number(batches: &[Vec<(Option<u8>, i64)>], from: usize, seq: i64) -> Vec<Vec<In>> {
    let mut seq = seq;
    batches
        .iter()
        .enumerate()
        .map(|(b, rows)| {
            rows.iter()
                .map(|(key, jitter)| {
                    seq += 1;
                    In {
                        key: *key,
                        t: (from + b) as i64 * 60 + jitter,
                        seq,
                    }
                })
                .collect()
        })
        .collect()
}

fn window_sizes() -> impl Strategy<Value = (i64, i64)> {
    (0i64..300, 0i64..300)
}

proptest! {
    /// `first` against its definition: a row is kept exactly when no kept
    /// row of its key has a live window, and a key is never kept twice
    /// within one window (the next kept time is past the last one + within).
    #[test]
    fn first_keeps_a_key_once_per_window(input in arb_batches(), (within, delay) in window_sizes()) {
        let mut sim = Sim::new(config(Keep::First, within), delay);
        let mut events = sim.run(&number(&input, 0, 0));
        events.extend(sim.flush());
        let mut live: HashMap<String, i64> = HashMap::new();
        let mut last_kept: HashMap<String, i64> = HashMap::new();
        for e in &events {
            match e {
                Event::Watermark(w) => live.retain(|_, expiry| *expiry > *w),
                Event::Row { key: Some(k), t, verdict, .. } => match verdict {
                    Verdict::Keep => {
                        prop_assert!(!live.contains_key(k), "{k}@{t} kept while its window is open");
                        if let Some(prev) = last_kept.get(k) {
                            prop_assert!(*t > prev + within, "{k} kept at {prev} and again at {t}");
                        }
                        live.insert(k.clone(), t + within);
                        last_kept.insert(k.clone(), *t);
                    }
                    Verdict::Duplicate => prop_assert!(live.contains_key(k), "{k}@{t} dropped, no open window"),
                    other => prop_assert!(false, "unexpected verdict {other:?}"),
                },
                Event::Row { key: None, verdict, .. } => {
                    prop_assert_eq!(verdict, &Verdict::Reject("missing key field `id`".into()));
                }
                Event::Late { .. } => {}
                Event::Emit { .. } => prop_assert!(false, "first emitted on a watermark"),
            }
        }
        prop_assert!(sim.host.entries.is_empty(), "every window closed, all state evicted");
    }

    /// `latest` against its definition: when the watermark reaches a key's
    /// first event time + within, exactly the keys whose window closed are
    /// emitted, oldest window first, each once, as the version with the
    /// largest event time (on a tie the later arrival).
    #[test]
    fn latest_emits_the_latest_version_once_per_window(input in arb_batches(), (within, delay) in window_sizes()) {
        let mut sim = Sim::new(config(Keep::Latest, within), delay);
        let mut events = sim.run(&number(&input, 0, 0));
        events.extend(sim.flush());
        // Per open window: its expiry and the versions seen (time, arrival).
        let mut open: BTreeMap<String, (i64, Vec<(i64, i64)>)> = BTreeMap::new();
        let mut expected: Vec<Event> = Vec::new();
        let mut emitted: Vec<Event> = Vec::new();
        let mut held = 0;
        for e in &events {
            match e {
                Event::Watermark(w) => {
                    prop_assert_eq!(&emitted, &expected, "emissions of the previous move");
                    emitted.clear();
                    let mut closing: Vec<(i64, String)> = open
                        .iter()
                        .filter(|(_, (expiry, _))| expiry <= w)
                        .map(|(k, (expiry, _))| (*expiry, k.clone()))
                        .collect();
                    closing.sort();
                    expected = closing
                        .into_iter()
                        .map(|(_, k)| {
                            let (_, versions) = open.remove(&k).unwrap();
                            let (t, seq) = versions.into_iter().max().unwrap();
                            Event::Emit { key: k, t, seq }
                        })
                        .collect();
                }
                Event::Emit { .. } => emitted.push(e.clone()),
                Event::Row { key: Some(k), t, seq, verdict } => match verdict {
                    Verdict::Held => {
                        prop_assert!(!open.contains_key(k), "{k} held twice in one window");
                        open.insert(k.clone(), (t + within, vec![(*t, *seq)]));
                        held += 1;
                    }
                    Verdict::Duplicate => match open.get_mut(k) {
                        Some((_, versions)) => versions.push((*t, *seq)),
                        None => prop_assert!(false, "{k}@{t} a duplicate with no open window"),
                    },
                    other => prop_assert!(false, "unexpected verdict {other:?}"),
                },
                Event::Row { key: None, .. } | Event::Late { .. } => {}
            }
        }
        prop_assert_eq!(&emitted, &expected);
        prop_assert!(open.is_empty(), "windows never closed: {open:?}");
        let emits = events.iter().filter(|e| matches!(e, Event::Emit { .. })).count();
        prop_assert_eq!(emits, held, "one emitted row per held row");
        prop_assert!(sim.host.entries.is_empty());
    }

    /// The two modes count the same rows as duplicates: `latest` holds exactly
    /// the rows `first` keeps.
    #[test]
    fn latest_drops_what_first_drops(input in arb_batches(), (within, delay) in window_sizes()) {
        let rows = number(&input, 0, 0);
        let first = Sim::new(config(Keep::First, within), delay).run(&rows);
        let latest: Vec<Event> = Sim::new(config(Keep::Latest, within), delay)
            .run(&rows)
            .into_iter()
            .filter(|e| !matches!(e, Event::Emit { .. }))
            .map(|e| match e {
                Event::Row { seq, key, t, verdict: Verdict::Held } => {
                    Event::Row { seq, key, t, verdict: Verdict::Keep }
                }
                other => other,
            })
            .collect();
        prop_assert_eq!(latest, first);
    }

    /// Restoring the checkpoint taken after `a` into a fresh transform and
    /// running `b` gives the same output as running `a ++ b` in one go.
    #[test]
    fn restore_snapshot_then_b_equals_a_then_b(
        a in arb_batches(),
        b in arb_batches(),
        latest in any::<bool>(),
        (within, delay) in window_sizes(),
    ) {
        let keep = if latest { Keep::Latest } else { Keep::First };
        let a_rows = number(&a, 0, 0);
        let last_seq = a_rows.iter().flatten().map(|r| r.seq).max().unwrap_or(0);
        let b_rows = number(&b, a.len(), last_seq);

        let mut whole = Sim::new(config(keep, within), delay);
        let mut expected = whole.run(&a_rows);
        expected.extend(whole.run(&b_rows));
        expected.extend(whole.flush());

        let mut before = Sim::new(config(keep, within), delay);
        let mut got = before.run(&a_rows);
        let checkpoint = before.host.snapshot();
        drop(before);
        let mut after = Sim::new(config(keep, within), delay);
        after.host = HostModel::restore(&checkpoint);
        got.extend(after.run(&b_rows));
        got.extend(after.flush());
        prop_assert_eq!(got, expected);
    }
}

// ---------------------------------------------------------------------------
// The row encoding of `latest`.

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Boolean),
        any::<i64>().prop_map(Value::Int),
        any::<f64>().prop_map(Value::Float),
        ".{0,12}".prop_map(Value::Text),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(Value::Bytes),
        any::<i64>().prop_map(Value::Timestamp),
        "[{}\\[\\]a-z:,\"0-9]{0,12}".prop_map(Value::Json),
    ]
}

/// Equality with floats compared bit for bit (NaN included).
fn same(a: &[(String, Value)], b: &[(String, Value)]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((na, va), (nb, vb))| {
            na == nb
                && match (va, vb) {
                    (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
                    _ => va == vb,
                }
        })
}

proptest! {
    /// Every row reads back as written; a cut-short or padded encoding never
    /// reads as a row.
    #[test]
    fn rows_round_trip(row in prop::collection::vec((".{0,8}", arb_value()), 0..8), junk in any::<u8>()) {
        let (fields, values): (Vec<String>, Vec<Value>) = row.iter().cloned().unzip();
        let mut bytes = Vec::new();
        value::encode_row(&mut bytes, &fields, &values);
        let back = value::decode_row(&bytes).expect("decodes");
        prop_assert!(same(&back, &row), "{back:?} != {row:?}");
        for cut in 0..bytes.len() {
            prop_assert_eq!(value::decode_row(&bytes[..cut]), None);
        }
        bytes.push(junk);
        prop_assert_eq!(value::decode_row(&bytes), None);
    }
}

#[test]
fn key_text_of_each_type() {
    assert_eq!(text("x").key_text().as_deref(), Some("x"));
    assert_eq!(Value::Int(-3).key_text().as_deref(), Some("-3"));
    assert_eq!(
        Value::Bytes(vec![0, 255]).key_text().as_deref(),
        Some("00ff")
    );
    assert_eq!(Value::Boolean(true).key_text().as_deref(), Some("true"));
    assert_eq!(Value::Null.key_text(), None);
}
