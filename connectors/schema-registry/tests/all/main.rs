//! End-to-end tests of the registry over real HTTP, driven by clients we did
//! not write (`schema_registry_converter`, confluent-kafka's Python client) and
//! by raw HTTP where the exact status code and headers are the point.
//!
//! One test binary with modules, so linking happens once.

mod converter;
mod python;
mod rest;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};

use tributary_schema_registry::RunningRegistry;

/// The article schema the seed pipeline reads, version 1.
pub const ARTICLE_V1: &str = r#"{
  "type": "record", "name": "Article", "namespace": "tributary.news",
  "fields": [
    {"name": "id", "type": "string"},
    {"name": "title", "type": "string"},
    {"name": "published_at", "type": {"type": "long", "logicalType": "timestamp-millis"}}
  ]
}"#;

/// Version 2 adds an optional field with a null default: BACKWARD compatible.
pub const ARTICLE_V2: &str = r#"{
  "type": "record", "name": "Article", "namespace": "tributary.news",
  "fields": [
    {"name": "id", "type": "string"},
    {"name": "title", "type": "string"},
    {"name": "published_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "lang", "type": ["null", "string"], "default": null}
  ]
}"#;

/// Changes `title` from string to int: not an Avro promotion, so refused.
pub const ARTICLE_BAD_TYPE: &str = r#"{
  "type": "record", "name": "Article", "namespace": "tributary.news",
  "fields": [
    {"name": "id", "type": "string"},
    {"name": "title", "type": "int"},
    {"name": "published_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "lang", "type": ["null", "string"], "default": null}
  ]
}"#;

pub fn start(dir: &std::path::Path) -> RunningRegistry {
    RunningRegistry::start("127.0.0.1:0".parse().unwrap(), dir).expect("registry starts")
}

/// A response as seen on the wire.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: serde_json::Value,
}

/// One HTTP/1.1 request over a fresh connection, read to the end. Tiny on
/// purpose: these tests check status lines and headers exactly, which a
/// client library would hide or normalise.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: Option<serde_json::Value>) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect to registry");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, rest) = raw
        .split_once("\r\n\r\n")
        .expect("a complete HTTP response");
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    // Chunked bodies come back from hyper when the length is not known up front.
    let text = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    Reply {
        status,
        content_type,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
    out
}

/// `{"schema": text}` as a register/lookup body.
pub fn schema_body(text: &str) -> serde_json::Value {
    serde_json::json!({ "schema": text })
}
