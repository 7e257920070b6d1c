//! The web console under `/ui/`: a page listing the connectors and a page
//! per connector with live charts, its commits, dead letters and the
//! actions, served by `tributary serve` and `tributary run
//! --metrics-listen` (docs/console.md).
//!
//! - **Assets** (`/ui/`, `/ui/app.js`, …): our own HTML, CSS and JavaScript
//!   (`worker/console/`) and uPlot, the one third-party library, all
//!   compiled into the binary (see `worker/build.rs`), so the console needs
//!   no network but the worker's own address. They carry no data, so they
//!   are served without the token; everything they fetch is not: the page
//!   asks for the token once and sends it as the REST API's bearer token.
//! - **Data** (`/ui/api/…`): JSON built from the live [`Metrics`], the
//!   [`History`] the worker keeps, and the dead-letter files. The actions
//!   (pause, resume, restart, delete, create, edit) are the REST API's own
//!   calls; `/ui/api/check` validates a config and says which field each
//!   error is about, for the form.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tributary_runtime::metrics::Metrics;

use crate::error::{ApiError, ApiResult};
use crate::history::History;
use crate::http::Shared;
use crate::worker::Worker;

const INDEX_HTML: &str = include_str!("../console/index.html");
const APP_JS: &str = include_str!("../console/app.js");
const STYLE_CSS: &str = include_str!("../console/style.css");
const UPLOT_JS: &str = include_str!(env!("TRIBUTARY_UPLOT_JS"));
const UPLOT_CSS: &str = include_str!(env!("TRIBUTARY_UPLOT_CSS"));

/// The page may load and fetch from its own origin only: a browser that
/// enforces this refuses anything else, should a bug ever ask for it.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
                   form-action 'none'";

/// Dead letters a connector's page shows.
const DEAD_LETTERS_SHOWN: usize = 20;

/// Points in a list row's sparkline (seconds of input rate).
const SPARKLINE_SAMPLES: usize = 120;

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // A new binary may bring new assets: the browser asks each time (they
    // are small and come from memory).
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The console's assets, for any router (no state, no token).
pub fn asset_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route(
            "/ui/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/ui/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route(
            "/ui/vendor/uPlot.iife.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", UPLOT_JS) }),
        )
        .route(
            "/ui/vendor/uPlot.min.css",
            get(|| async { asset("text/css; charset=utf-8", UPLOT_CSS) }),
        )
}

/// Whether a path is one of the assets (served without the token).
pub(crate) fn is_asset(path: &str) -> bool {
    matches!(
        path,
        "/ui"
            | "/ui/"
            | "/ui/app.js"
            | "/ui/style.css"
            | "/ui/vendor/uPlot.iife.min.js"
            | "/ui/vendor/uPlot.min.css"
    )
}

/// What the console knows of a connector besides its metrics.
#[derive(Debug)]
pub struct Status<'a> {
    pub state: &'a str,
    /// Why it failed, when it did.
    pub trace: Option<String>,
    pub restarts: u64,
    /// The config as given (`${…}` unresolved).
    pub config: &'a Value,
}

/// A connector's row in the list.
pub fn summary(name: &str, status: &Status<'_>, m: &Metrics, h: &History) -> Value {
    let s = m.snapshot();
    let last_commit = (s.last_commit_unix_ms > 0).then(|| {
        json!({"epoch": s.last_epoch, "at_ms": s.last_commit_unix_ms,
               "latency_ms": s.last_commit_latency_us as f64 / 1000.0})
    });
    json!({
        "name": name,
        "state": status.state,
        "trace": status.trace,
        "restarts": status.restarts,
        "source": status.config["source"]["type"],
        "sink": status.config["sink"]["type"],
        "input_rate": (m.input_rate() * 100.0).round() / 100.0,
        "lag": s.lag,
        "watermark_ms": s.watermark.map(|w| w.div_euclid(1000)),
        "last_commit": last_commit,
        "table_rows": s.table_rows,
        "records_in": s.records_in,
        "records_out": s.records_out,
        "late": s.dropped_late,
        "duplicate": s.dropped_duplicate,
        "filtered": s.filtered,
        "dead_lettered": s.dead_lettered,
        "isolated": s.isolated,
        "epochs_committed": s.epochs_committed,
        "sparkline": h.recent_rates(SPARKLINE_SAMPLES),
    })
}

/// A connector's page: its row, and its history, commits, current backlog,
/// latest dead letters and config.
pub fn detail(
    name: &str,
    status: &Status<'_>,
    m: &Metrics,
    h: &History,
    dead_letter_dir: Option<&Path>,
) -> Value {
    let mut out = summary(name, status, m, h);
    let commits: Vec<Value> = h
        .commits()
        .map(|c| {
            json!({"epoch": c.epoch, "at_ms": c.at_unix_ms, "latency_ms": c.latency_us as f64 / 1000.0,
                   "rows": c.rows, "table_rows": c.table_rows})
        })
        .collect();
    let backlog: Vec<Value> = m
        .backlog()
        .iter()
        .map(|b| json!({"partition": b.partition, "records": b.records}))
        .collect();
    out["history"] = h.to_json();
    out["commits"] = json!(commits);
    out["backlog"] = json!(backlog);
    out["config"] = status.config.clone();
    out["dead_letter_dir"] = json!(dead_letter_dir);
    out["dead_letters"] = json!(
        dead_letter_dir
            .map(|d| latest_dead_letters(d, name, DEAD_LETTERS_SHOWN))
            .unwrap_or_default()
    );
    out
}

/// The latest `n` dead letters of `pipeline` in `dir`, newest first: the
/// published files (`<pipeline>-epoch-<n>.jsonl`, see
/// `tributary_runtime::dead_letter`), read from their end, at most 256 KiB
/// of each, so a huge file costs no more than a small one.
pub fn latest_dead_letters(dir: &Path, pipeline: &str, n: usize) -> Vec<Value> {
    const TAIL: u64 = 256 * 1024;
    let prefix = format!("{pipeline}-epoch-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(u64, std::path::PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let digits = name.strip_prefix(&prefix)?.strip_suffix(".jsonl")?;
            (digits.len() == 20)
                .then(|| digits.parse().ok())
                .flatten()
                .map(|epoch| (epoch, e.path()))
        })
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    let mut out = Vec::new();
    for (epoch, path) in files {
        if out.len() >= n {
            break;
        }
        let Ok(mut file) = std::fs::File::open(&path) else {
            continue;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let start = len.saturating_sub(TAIL);
        let mut text = String::new();
        if file.seek(SeekFrom::Start(start)).is_err()
            || file.take(TAIL).read_to_string(&mut text).is_err()
        {
            continue;
        }
        let mut lines: Vec<&str> = text.lines().collect();
        if start > 0 && !lines.is_empty() {
            lines.remove(0); // cut in the middle
        }
        for line in lines.iter().rev() {
            if out.len() >= n {
                break;
            }
            let Ok(letter) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let record = match (&letter["record"], &letter["raw"], &letter["raw_base64"]) {
                (r, _, _) if !r.is_null() => shorten(&r.to_string()),
                (_, Value::String(raw), _) => shorten(raw),
                (_, _, Value::String(b64)) => format!("(binary, {} base64 characters)", b64.len()),
                _ => String::new(),
            };
            out.push(json!({
                "epoch": letter["epoch"].as_u64().unwrap_or(epoch),
                "stage": letter["stage"],
                "reason": letter["reason"],
                "position": letter["position"],
                "record": record,
            }));
        }
    }
    out
}

fn shorten(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Which field of `config` an error message is about, as a path such as
/// `trigger.interval_ms` or `transforms[1].config.delay` (the form shows
/// the message next to it); `None` when it names none.
///
/// The messages name fields in three ways, tried in this order: a path
/// spelled out (`trigger.interval_ms must be at least 1`); a name in
/// backticks that is a key or a value of the config (serde's `unknown field
/// `trigerr``, `unknown variant `dead-leter``), looked for inside the path
/// when there was one, else inside the source or sink the message names
/// (`generator config: …`); or only that source or sink.
pub fn field_of(config: &Value, message: &str) -> Option<String> {
    let spelled = message
        .split(|c: char| !(c.is_ascii_alphanumeric() || "_.[]".contains(c)))
        .map(|t| t.trim_end_matches('.'))
        // A path has a `.` or an index: a lone word such as `source` is prose.
        .filter(|t| t.contains(['.', '[']) && config.is_object() && resolve(config, t).is_some())
        .max_by_key(|t| t.len())
        .map(str::to_string);
    let connector = ["source", "sink"].into_iter().find(|part| {
        config[part]["type"].as_str().is_some_and(|kind| {
            !kind.is_empty()
                && message
                    .split(|c: char| c.is_whitespace() || c == ':')
                    .any(|w| w == kind)
        })
    });
    let scope = spelled.clone().or(connector.map(str::to_string));
    // serde quotes a name or a number in backticks, a string value in
    // double quotes (`invalid type: string "five", expected u64`).
    let quoted = message
        .split('`')
        .nth(1)
        .or_else(|| message.split('"').nth(1));
    if let Some(name) = quoted {
        let (root, at) = match &scope {
            Some(s) => (resolve(config, s)?, s.clone()),
            None => (config, String::new()),
        };
        if let Some(found) = find_key(root, name, &at).or_else(|| find_value(root, name, &at)) {
            return Some(found);
        }
    }
    scope
}

/// A message without serde's ` at line N column M`: the position is in the
/// JSON the worker wrote from the form, not in anything the person typed.
fn without_position(message: &str) -> String {
    let Some(at) = message.find(" at line ") else {
        return message.to_string();
    };
    let rest = &message[at + " at line ".len()..];
    let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let n = digits(rest);
    let Some(after) = rest[n..].strip_prefix(" column ") else {
        return message.to_string();
    };
    let m = digits(after);
    if n == 0 || m == 0 {
        return message.to_string();
    }
    format!("{}{}", &message[..at], &after[m..])
}

/// The value at a path such as `a.b[0].c`.
fn resolve<'a>(config: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = config;
    for part in path.split('.') {
        let (key, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            at = at.as_object()?.get(key)?;
        } else if indexes.is_empty() {
            return None;
        }
        for index in indexes.split_terminator(']') {
            let i: usize = index.strip_prefix('[')?.parse().ok()?;
            at = at.as_array()?.get(i)?;
        }
    }
    Some(at)
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

/// The first place (depth first) where `key` is a key.
fn find_key(v: &Value, key: &str, at: &str) -> Option<String> {
    match v {
        Value::Object(map) => {
            if map.contains_key(key) {
                return Some(join(at, key));
            }
            map.iter().find_map(|(k, v)| find_key(v, key, &join(at, k)))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_key(v, key, &format!("{at}[{i}]"))),
        _ => None,
    }
}

/// The first place (depth first) where `value` is a value (a string, or a
/// number or boolean as written).
fn find_value(v: &Value, value: &str, at: &str) -> Option<String> {
    match v {
        Value::String(s) if s == value && !at.is_empty() => Some(at.to_string()),
        // As written: `5`, `true` (comparing the Value to a str would never match).
        Value::Number(_) | Value::Bool(_)
            if serde_json::to_string(v).is_ok_and(|t| t == value) && !at.is_empty() =>
        {
            Some(at.to_string())
        }
        Value::Object(map) => map
            .iter()
            .find_map(|(k, v)| find_value(v, value, &join(at, k))),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_value(v, value, &format!("{at}[{i}]"))),
        _ => None,
    }
}

// ---- `tributary serve`'s data routes (behind the token, as the REST API).

async fn blocking<T: Send + 'static>(
    w: &Shared,
    f: impl FnOnce(&Worker) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let w = w.clone();
    tokio::task::spawn_blocking(move || f(&w))
        .await
        .map_err(|e| ApiError::Task(e.to_string()))?
}

async fn overview(State(w): State<Shared>) -> ApiResult<Response> {
    blocking(&w, |w| {
        let rows = w.console_rows(None)?;
        Ok(axum::Json(json!({
            "mode": "serve",
            "actions": true,
            "version": env!("CARGO_PKG_VERSION"),
            "connectors": rows,
        }))
        .into_response())
    })
    .await
}

async fn connector(State(w): State<Shared>, UrlPath(name): UrlPath<String>) -> ApiResult<Response> {
    blocking(&w, move |w| {
        let mut rows = w.console_rows(Some(&name))?;
        Ok(axum::Json(rows.pop().unwrap_or(Value::Null)).into_response())
    })
    .await
}

/// `POST /ui/api/check` with `{"name", "config", "new"}`: every problem
/// creating (`new`) or updating the connector would meet, each with the
/// field it is about: `{"errors": [{"field", "message"}]}`. Nothing is
/// changed.
async fn check(State(w): State<Shared>, bytes: Bytes) -> ApiResult<Response> {
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let name = body["name"].as_str().unwrap_or_default().to_string();
    let config = body["config"].clone();
    let new = body["new"].as_bool().unwrap_or(false);
    let errors = blocking(&w, move |w| {
        let mut errors = Vec::new();
        if let Err(e) = Worker::check_name(&name) {
            errors.push(json!({"field": "name", "message": e.to_string()}));
            return Ok(errors);
        }
        if new && w.lock().contains_key(&name) {
            errors.push(json!({"field": "name",
                "message": format!("a connector named `{name}` exists: pick another name, or edit it")}));
        }
        match Worker::normalize(&name, config) {
            Err(e) => errors.push(json!({"field": null, "message": e.to_string()})),
            Ok(config) => {
                if let Err(e) = w.validate(&name, &config) {
                    let text = e.to_string();
                    let prefix = format!("connector {name}: ");
                    let message = without_position(text.strip_prefix(&prefix).unwrap_or(&text));
                    errors.push(json!({"field": field_of(&config, &message), "message": message}));
                }
            }
        }
        Ok(errors)
    })
    .await?;
    Ok(axum::Json(json!({"errors": errors})).into_response())
}

/// The data routes of `tributary serve`'s console.
pub fn api_routes() -> Router<Shared> {
    Router::new()
        .route("/ui/api/connectors", get(overview))
        .route("/ui/api/connectors/{name}", get(connector))
        .route("/ui/api/check", post(check))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Value {
        json!({
            "name": "p",
            "source": {"type": "generator", "rate_per_secc": 5, "seed": 1},
            "transforms": [
                {"name": "watermark", "module": "builtin:watermark", "config": {"event_time": "published_at", "delay": "2 hours"}},
                {"name": "dedup", "module": "builtin:dedup", "config": {"key": "id", "event_time": "published_at"}}
            ],
            "sink": {"type": "jsonl", "path": "out"},
            "trigger": {"intervl_ms": 300, "batch_size": 0},
            "errors": {"policy": "dead-leter"}
        })
    }

    #[test]
    fn an_error_is_placed_at_the_field_it_names() {
        let c = config();
        let at = |m: &str| field_of(&c, m);
        // serde's unknown field, in the pipeline and in a connector's config.
        assert_eq!(
            at("unknown field `intervl_ms`, expected one of `interval_ms`, `batch_size`")
                .as_deref(),
            Some("trigger.intervl_ms")
        );
        assert_eq!(
            at("generator config: unknown field `rate_per_secc`, expected one of `seed`")
                .as_deref(),
            Some("source.rate_per_secc")
        );
        // A path spelled out, with an index.
        assert_eq!(
            at("trigger.batch_size must be at least 1").as_deref(),
            Some("trigger.batch_size")
        );
        assert_eq!(
            at("transforms[1].name `dedup` is used twice").as_deref(),
            Some("transforms[1].name")
        );
        assert_eq!(
            at("transforms[0].config.delay: cannot read `2 hours`").as_deref(),
            Some("transforms[0].config.delay")
        );
        // A wrong value in backticks.
        assert_eq!(
            at("unknown variant `dead-leter`, expected `fail` or `dead-letter`").as_deref(),
            Some("errors.policy")
        );
        // A wrong type: serde quotes the value.
        assert_eq!(
            at("invalid type: string \"2 hours\", expected u64").as_deref(),
            Some("transforms[0].config.delay")
        );
        assert_eq!(
            at("source: generator source config: invalid type: integer `5`, expected a string")
                .as_deref(),
            Some("source.rate_per_secc")
        );
        // Only the connector.
        assert_eq!(
            at("generator: the source ended early").as_deref(),
            Some("source")
        );
        assert_eq!(at("something else entirely"), None);
        assert_eq!(
            without_position(
                "unknown field `x`, expected `y` at line 1 column 501 (check the spelling)"
            ),
            "unknown field `x`, expected `y` (check the spelling)"
        );
        assert_eq!(without_position("at line one"), "at line one");
    }

    #[test]
    fn dead_letters_are_read_newest_first_from_the_published_files() {
        let dir = tempfile::tempdir().unwrap();
        let line = |epoch: u64, reason: &str| {
            json!({"pipeline": "p", "epoch": epoch, "stage": "source", "reason": reason, "raw": "{bad"})
                .to_string()
        };
        std::fs::write(
            dir.path().join(format!("p-epoch-{:020}.jsonl", 1)),
            format!("{}\n{}\n", line(1, "a"), line(1, "b")),
        )
        .unwrap();
        std::fs::write(
            dir.path().join(format!("p-epoch-{:020}.jsonl", 2)),
            format!("{}\n", line(2, "c")),
        )
        .unwrap();
        // Another pipeline's file and a pending one are not shown.
        std::fs::write(
            dir.path().join(format!("q-epoch-{:020}.jsonl", 3)),
            line(3, "x"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join(format!(".p-epoch-{:020}.jsonl.pending", 3)),
            line(3, "y"),
        )
        .unwrap();
        let got = latest_dead_letters(dir.path(), "p", 2);
        let reasons: Vec<&str> = got.iter().map(|l| l["reason"].as_str().unwrap()).collect();
        assert_eq!(reasons, ["c", "b"]);
        assert_eq!(got[0]["record"], "{bad");
        assert_eq!(got[0]["epoch"], 2);
    }
}
