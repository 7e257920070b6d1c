//! The registry's state, its rules, and how it is kept on disk.
//!
//! Everything the REST layer can do is a method on [`Registry`]; each returns
//! either a JSON-ready value or an [`ApiError`] already in Confluent's shape, so
//! the HTTP module stays a thin mapping and these rules are testable without a
//! socket.
//!
//! **On disk** the whole state is one JSON file, `registry.json`, rewritten on
//! every change (temp file, fsync, rename, fsync of the folder). A registry for
//! tests and local use holds tens of schemas, changes a few times a minute at
//! most, and the file stays a few kilobytes: one file is simpler to make
//! atomic, to inspect and to back up than a log or a database, and a rewrite
//! costs about a millisecond.
//!
//! Over 800 lines with its tests, on purpose: every rule of the registry is a
//! method here next to the state it guards, and the tests below exercise them
//! without a socket.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use apache_avro::Schema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Error;
use crate::compat::{self, CompatibilityLevel};

/// Bumped when the file layout changes incompatibly; a newer file is refused
/// rather than misread.
const FORMAT: u32 = 1;
pub(crate) const STATE_FILE: &str = "registry.json";

/// An error answered to a REST client: HTTP status, Confluent `error_code`, message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: u32,
    pub message: String,
}

impl ApiError {
    fn new(status: u16, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub(crate) fn subject_not_found(subject: &str) -> Self {
        Self::new(404, 40401, format!("Subject '{subject}' not found."))
    }
    fn version_not_found(subject: &str, version: &VersionRef) -> Self {
        Self::new(
            404,
            40402,
            format!("Version {version} not found for subject '{subject}'."),
        )
    }
    fn schema_not_in_subject(subject: &str) -> Self {
        Self::new(
            404,
            40403,
            format!(
                "Schema not found under subject '{subject}': no live version of it has this schema text."
            ),
        )
    }
    pub(crate) fn schema_id_not_found(id: &str) -> Self {
        Self::new(404, 40403, format!("Schema {id} not found."))
    }
    fn subject_config_not_found(subject: &str) -> Self {
        Self::new(
            404,
            40408,
            format!(
                "Subject '{subject}' does not have subject-level compatibility configured; ask with ?defaultToGlobal=true for the global level."
            ),
        )
    }
    fn not_soft_deleted(subject: &str) -> Self {
        Self::new(
            404,
            40405,
            format!(
                "Subject '{subject}' was not deleted first before being permanently deleted: DELETE it without ?permanent=true first."
            ),
        )
    }
    pub(crate) fn invalid_schema(message: impl Into<String>) -> Self {
        Self::new(422, 42201, message)
    }
    pub(crate) fn invalid_version(raw: &str) -> Self {
        Self::new(
            422,
            42202,
            format!(
                "The specified version '{raw}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"."
            ),
        )
    }
    pub(crate) fn invalid_compatibility(raw: &str) -> Self {
        let names: Vec<&str> = CompatibilityLevel::ALL.iter().map(|l| l.as_str()).collect();
        Self::new(
            422,
            42203,
            format!(
                "Invalid compatibility level '{raw}'; use one of {}.",
                names.join(", ")
            ),
        )
    }
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, 400, message)
    }
    fn incompatible(message: String) -> Self {
        Self::new(409, 409, message)
    }
    fn storage(err: &Error) -> Self {
        Self::new(
            500,
            50001,
            format!("Error in the backend data store: {err}"),
        )
    }
}

/// A version as named in a URL: a number or `latest` (also spelled `-1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionRef {
    Number(u32),
    Latest,
}

impl VersionRef {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        if raw == "latest" || raw == "-1" {
            return Ok(Self::Latest);
        }
        match raw.parse::<i64>() {
            Ok(n) if (1..=i64::from(i32::MAX)).contains(&n) => Ok(Self::Number(n as u32)),
            _ => Err(ApiError::invalid_version(raw)),
        }
    }
}

impl std::fmt::Display for VersionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Latest => f.write_str("latest"),
        }
    }
}

/// What a client sends to register, look up or test a schema. Unknown fields
/// are ignored on purpose (unlike our config files): Confluent's clients add
/// fields with each release (`metadata`, `ruleSet`, ...) and a registry that
/// refused them would break those clients for nothing.
#[derive(Debug, Deserialize)]
pub struct SchemaRequest {
    pub schema: Option<String>,
    #[serde(rename = "schemaType")]
    pub schema_type: Option<String>,
    #[serde(default)]
    pub references: Option<Vec<Value>>,
}

/// The persisted state. See the module docs for why it is one file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// File layout version, [`FORMAT`].
    format: u32,
    /// The global compatibility level.
    compatibility: CompatibilityLevel,
    /// Every schema ever registered, by global id. Never removed, so an id seen
    /// in a Kafka record always resolves (as in Confluent, where even a hard
    /// delete of a subject keeps the id readable).
    schemas: BTreeMap<u32, StoredSchema>,
    subjects: BTreeMap<String, Subject>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredSchema {
    /// The schema text as first registered (docs and formatting kept).
    schema: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Subject {
    /// Subject-level compatibility; `None` follows the global level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    compatibility: Option<CompatibilityLevel>,
    /// In registration order; soft-deleted versions stay so numbers are never reused.
    #[serde(default)]
    versions: Vec<VersionEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionEntry {
    version: u32,
    id: u32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
}

impl Subject {
    fn live(&self) -> impl DoubleEndedIterator<Item = &VersionEntry> {
        self.versions.iter().filter(|v| !v.deleted)
    }
    fn find(&self, version: VersionRef) -> Option<&VersionEntry> {
        match version {
            VersionRef::Latest => self.live().next_back(),
            VersionRef::Number(n) => self.live().find(|v| v.version == n),
        }
    }
}

impl Default for State {
    fn default() -> Self {
        Self {
            format: FORMAT,
            compatibility: CompatibilityLevel::default(),
            schemas: BTreeMap::new(),
            subjects: BTreeMap::new(),
        }
    }
}

/// A parsed, validated schema from a request, with its identity key.
struct Candidate {
    text: String,
    key: String,
    parsed: Schema,
}

/// The registry: state in memory, mirrored to `dir/registry.json` on every change.
pub struct Registry {
    path: PathBuf,
    state: State,
    /// Identity key (see [`identity_key`]) → global id, rebuilt on load.
    by_key: HashMap<String, u32>,
}

impl Registry {
    /// Opens the registry kept in `dir`, creating the folder when missing and
    /// starting empty when it holds no state file yet.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        fs::create_dir_all(dir).map_err(|source| Error::Io {
            action: "create the data folder",
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(STATE_FILE);
        let state = match fs::read(&path) {
            Ok(bytes) => {
                let state: State = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                if state.format != FORMAT {
                    return Err(Error::Corrupt {
                        path,
                        message: format!(
                            "format {} is not the {FORMAT} this version reads (written by a newer Tributary?)",
                            state.format
                        ),
                    });
                }
                state
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(source) => {
                return Err(Error::Io {
                    action: "read the state file",
                    path,
                    source,
                });
            }
        };
        let mut by_key = HashMap::new();
        for (id, stored) in &state.schemas {
            let key = identity_key(&stored.schema).map_err(|e| Error::Corrupt {
                path: path.clone(),
                message: format!("schema {id} is not JSON: {e}"),
            })?;
            by_key.insert(key, *id);
        }
        Ok(Self {
            path,
            state,
            by_key,
        })
    }

    /// Applies `change` to a copy of the state, writes it, and only then makes
    /// it current: a failed write leaves memory and disk agreeing.
    fn commit(&mut self, change: impl FnOnce(&mut State)) -> Result<(), ApiError> {
        let mut next = self.state.clone();
        change(&mut next);
        write_atomically(&self.path, &next).map_err(|e| ApiError::storage(&e))?;
        self.state = next;
        Ok(())
    }

    fn subject(&self, name: &str) -> Result<&Subject, ApiError> {
        self.state
            .subjects
            .get(name)
            .filter(|s| s.live().next().is_some())
            .ok_or_else(|| ApiError::subject_not_found(name))
    }

    fn schema_text(&self, id: u32) -> &str {
        // Every id a version points at is in `schemas` (written in the same commit).
        self.state
            .schemas
            .get(&id)
            .map(|s| s.schema.as_str())
            .unwrap_or_default()
    }

    fn parse_candidate(request: &SchemaRequest) -> Result<Candidate, ApiError> {
        if let Some(kind) = &request.schema_type
            && !kind.eq_ignore_ascii_case("AVRO")
        {
            return Err(ApiError::invalid_schema(format!(
                "schemaType '{kind}' is not supported: this registry stores AVRO schemas only (omit schemaType or send \"AVRO\")."
            )));
        }
        if request.references.as_ref().is_some_and(|r| !r.is_empty()) {
            return Err(ApiError::invalid_schema(
                "Schema references are not supported by this registry: inline the referenced types into the schema.",
            ));
        }
        let text = request
            .schema
            .as_deref()
            .ok_or_else(|| {
                ApiError::invalid_schema("Empty schema: the body needs a \"schema\" string.")
            })?
            .trim()
            .to_owned();
        let parsed = Schema::parse_str(&text)
            .map_err(|e| ApiError::invalid_schema(format!("Invalid Avro schema: {e}")))?;
        let key = identity_key(&text)
            .map_err(|e| ApiError::invalid_schema(format!("Invalid Avro schema: {e}")))?;
        Ok(Candidate { text, key, parsed })
    }

    /// The level that applies to `subject`: its own, else the global one.
    fn level_of(&self, subject: &str) -> CompatibilityLevel {
        self.state
            .subjects
            .get(subject)
            .and_then(|s| s.compatibility)
            .unwrap_or(self.state.compatibility)
    }

    /// Checks `candidate` against the versions `level` names (the latest, or all
    /// live ones when transitive). `Err` holds every reason found.
    fn check_against(
        &self,
        subject: &str,
        level: CompatibilityLevel,
        candidate: &Schema,
        only: Option<&VersionEntry>,
    ) -> Result<(), Vec<String>> {
        let Some(entry) = self.state.subjects.get(subject) else {
            return Ok(());
        };
        let against: Vec<&VersionEntry> = match only {
            Some(v) => vec![v],
            None if level.is_transitive() => entry.live().collect(),
            None => entry.live().next_back().into_iter().collect(),
        };
        let mut reasons = Vec::new();
        for version in against {
            // Stored schemas were parsed when registered; one that no longer
            // parses (an apache-avro upgrade got stricter) cannot be checked,
            // and saying so beats a silent pass.
            match Schema::parse_str(self.schema_text(version.id)) {
                Ok(old) => {
                    if let Err(mut why) = compat::check(level, candidate, &old, version.version) {
                        reasons.append(&mut why);
                    }
                }
                Err(e) => reasons.push(format!(
                    "version {} (id {}) no longer parses, so it cannot be checked: {e}",
                    version.version, version.id
                )),
            }
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }

    /// `POST /subjects/{s}/versions`: the schema's global id, registering it
    /// as the subject's next version when the subject does not have it yet.
    pub fn register(&mut self, subject: &str, request: &SchemaRequest) -> Result<Value, ApiError> {
        let candidate = Self::parse_candidate(request)?;
        let known_id = self.by_key.get(&candidate.key).copied();
        if let (Some(id), Some(entry)) = (known_id, self.state.subjects.get(subject))
            && entry.live().any(|v| v.id == id)
        {
            return Ok(json!({ "id": id }));
        }
        let level = self.level_of(subject);
        if let Err(reasons) = self.check_against(subject, level, &candidate.parsed, None) {
            return Err(ApiError::incompatible(format!(
                "Schema being registered is incompatible with an earlier schema for subject \"{subject}\" (compatibility {level}): {}. To register it anyway, evolve the schema as described, or change the level with PUT /config/{subject}.",
                reasons.join("; ")
            )));
        }
        let id = known_id.unwrap_or_else(|| {
            self.state
                .schemas
                .keys()
                .next_back()
                .map_or(1, |max| max + 1)
        });
        let version = self
            .state
            .subjects
            .get(subject)
            .and_then(|s| s.versions.iter().map(|v| v.version).max())
            .map_or(1, |max| max + 1);
        let text = candidate.text;
        self.commit(|state| {
            state
                .schemas
                .entry(id)
                .or_insert(StoredSchema { schema: text });
            state
                .subjects
                .entry(subject.to_owned())
                .or_default()
                .versions
                .push(VersionEntry {
                    version,
                    id,
                    deleted: false,
                });
        })?;
        self.by_key.insert(candidate.key, id);
        tracing::info!(
            subject,
            id,
            version,
            new_id = known_id.is_none(),
            "schema registered"
        );
        Ok(json!({ "id": id }))
    }

    /// `POST /subjects/{s}`: which live version of the subject has this schema.
    pub fn lookup(&self, subject: &str, request: &SchemaRequest) -> Result<Value, ApiError> {
        let candidate = Self::parse_candidate(request)?;
        let entry = self.subject(subject)?;
        let id = self.by_key.get(&candidate.key).copied();
        let found = entry
            .live()
            .find(|v| Some(v.id) == id)
            .ok_or_else(|| ApiError::schema_not_in_subject(subject))?;
        Ok(self.version_json(subject, found))
    }

    fn version_json(&self, subject: &str, v: &VersionEntry) -> Value {
        json!({
            "subject": subject,
            "id": v.id,
            "version": v.version,
            "schema": self.schema_text(v.id),
        })
    }

    /// `GET /subjects`.
    pub fn subjects(&self, include_deleted: bool) -> Value {
        let names: Vec<&String> = self
            .state
            .subjects
            .iter()
            .filter(|(_, s)| {
                if include_deleted {
                    !s.versions.is_empty()
                } else {
                    s.live().next().is_some()
                }
            })
            .map(|(name, _)| name)
            .collect();
        json!(names)
    }

    /// `GET /subjects/{s}/versions`.
    pub fn versions(&self, subject: &str) -> Result<Value, ApiError> {
        let numbers: Vec<u32> = self.subject(subject)?.live().map(|v| v.version).collect();
        Ok(json!(numbers))
    }

    /// `GET /subjects/{s}/versions/{v}`.
    pub fn version(&self, subject: &str, version: VersionRef) -> Result<Value, ApiError> {
        let entry = self.subject(subject)?;
        let found = entry
            .find(version)
            .ok_or_else(|| ApiError::version_not_found(subject, &version))?;
        Ok(self.version_json(subject, found))
    }

    /// `GET /subjects/{s}/versions/{v}/schema`: the schema text itself.
    pub fn version_schema(&self, subject: &str, version: VersionRef) -> Result<String, ApiError> {
        let entry = self.subject(subject)?;
        let found = entry
            .find(version)
            .ok_or_else(|| ApiError::version_not_found(subject, &version))?;
        Ok(self.schema_text(found.id).to_owned())
    }

    /// `GET /schemas/ids/{id}`.
    pub fn schema_by_id(&self, id: u32) -> Result<Value, ApiError> {
        let stored = self
            .state
            .schemas
            .get(&id)
            .ok_or_else(|| ApiError::schema_id_not_found(&id.to_string()))?;
        Ok(json!({ "schema": stored.schema }))
    }

    /// `GET /schemas/ids/{id}/versions`: every live (subject, version) using the id.
    pub fn id_versions(&self, id: u32) -> Result<Value, ApiError> {
        if !self.state.schemas.contains_key(&id) {
            return Err(ApiError::schema_id_not_found(&id.to_string()));
        }
        let uses: Vec<Value> = self
            .state
            .subjects
            .iter()
            .flat_map(|(name, s)| {
                s.live()
                    .filter(|v| v.id == id)
                    .map(move |v| json!({ "subject": name, "version": v.version }))
            })
            .collect();
        Ok(json!(uses))
    }

    /// `DELETE /subjects/{s}`: soft delete (versions hidden, numbers kept), or
    /// with `permanent` forget a subject that was soft-deleted before. Either
    /// way the schema ids stay readable.
    pub fn delete_subject(&mut self, subject: &str, permanent: bool) -> Result<Value, ApiError> {
        let Some(entry) = self.state.subjects.get(subject) else {
            return Err(ApiError::subject_not_found(subject));
        };
        if permanent {
            if entry.live().next().is_some() {
                return Err(ApiError::not_soft_deleted(subject));
            }
            let numbers: Vec<u32> = entry.versions.iter().map(|v| v.version).collect();
            if numbers.is_empty() {
                return Err(ApiError::subject_not_found(subject));
            }
            self.commit(|state| {
                state.subjects.remove(subject);
            })?;
            tracing::info!(subject, "subject permanently deleted");
            return Ok(json!(numbers));
        }
        let numbers: Vec<u32> = self.subject(subject)?.live().map(|v| v.version).collect();
        self.commit(|state| {
            if let Some(s) = state.subjects.get_mut(subject) {
                s.versions.iter_mut().for_each(|v| v.deleted = true);
            }
        })?;
        tracing::info!(subject, versions = ?numbers, "subject soft-deleted");
        Ok(json!(numbers))
    }

    /// `DELETE /subjects/{s}/versions/{v}` (soft).
    pub fn delete_version(
        &mut self,
        subject: &str,
        version: VersionRef,
    ) -> Result<Value, ApiError> {
        let number = self
            .subject(subject)?
            .find(version)
            .ok_or_else(|| ApiError::version_not_found(subject, &version))?
            .version;
        self.commit(|state| {
            if let Some(v) = state
                .subjects
                .get_mut(subject)
                .and_then(|s| s.versions.iter_mut().find(|v| v.version == number))
            {
                v.deleted = true;
            }
        })?;
        tracing::info!(subject, version = number, "version soft-deleted");
        Ok(json!(number))
    }

    /// `GET /config`.
    pub fn global_config(&self) -> Value {
        json!({ "compatibilityLevel": self.state.compatibility })
    }

    /// `GET /config/{s}`.
    pub fn subject_config(
        &self,
        subject: &str,
        default_to_global: bool,
    ) -> Result<Value, ApiError> {
        match self
            .state
            .subjects
            .get(subject)
            .and_then(|s| s.compatibility)
        {
            Some(level) => Ok(json!({ "compatibilityLevel": level })),
            None if default_to_global => Ok(self.global_config()),
            None => Err(ApiError::subject_config_not_found(subject)),
        }
    }

    /// `PUT /config` and `PUT /config/{s}`.
    pub fn set_config(
        &mut self,
        subject: Option<&str>,
        level: CompatibilityLevel,
    ) -> Result<Value, ApiError> {
        self.commit(|state| match subject {
            Some(name) => {
                state
                    .subjects
                    .entry(name.to_owned())
                    .or_default()
                    .compatibility = Some(level);
            }
            None => state.compatibility = level,
        })?;
        tracing::info!(subject = subject.unwrap_or("(global)"), %level, "compatibility set");
        Ok(json!({ "compatibility": level }))
    }

    /// `DELETE /config/{s}`: back to the global level; answers the old one.
    pub fn delete_subject_config(&mut self, subject: &str) -> Result<Value, ApiError> {
        let old = self
            .state
            .subjects
            .get(subject)
            .and_then(|s| s.compatibility)
            .ok_or_else(|| ApiError::subject_config_not_found(subject))?;
        self.commit(|state| {
            if let Some(s) = state.subjects.get_mut(subject) {
                s.compatibility = None;
            }
            // A subject that only existed for its config leaves no trace.
            state
                .subjects
                .retain(|_, s| s.compatibility.is_some() || !s.versions.is_empty());
        })?;
        Ok(json!({ "compatibility": old }))
    }

    /// `POST /compatibility/subjects/{s}/versions[/{v}]`: would this schema be
    /// accepted? With a version, against that version only; without (or
    /// `latest`), against what registering would check.
    pub fn test_compatibility(
        &self,
        subject: &str,
        version: Option<VersionRef>,
        request: &SchemaRequest,
        verbose: bool,
    ) -> Result<Value, ApiError> {
        let candidate = Self::parse_candidate(request)?;
        let level = self.level_of(subject);
        let only = match version {
            Some(number @ VersionRef::Number(_)) => Some(
                self.subject(subject)?
                    .find(number)
                    .ok_or_else(|| ApiError::version_not_found(subject, &number))?,
            ),
            // A subject with nothing registered accepts any schema, as in Confluent.
            Some(VersionRef::Latest) | None => None,
        };
        let result = self.check_against(subject, level, &candidate.parsed, only);
        let mut answer = json!({ "is_compatible": result.is_ok() });
        if verbose {
            answer["messages"] = json!(result.err().unwrap_or_default());
        }
        Ok(answer)
    }
}

/// The key two schema texts must share to be "the same schema" (same id).
///
/// JSON-level normalisation: whitespace and object key order do not matter;
/// everything else does. Avro's Parsing Canonical Form would be too coarse
/// here: it drops `default`, `doc`, `aliases` and logical types, so a v2 that
/// only adds a default to a field would silently get v1's id and clients
/// would serialise with the wrong schema.
fn identity_key(text: &str) -> Result<String, serde_json::Error> {
    let value: Value = serde_json::from_str(text)?;
    let mut out = String::with_capacity(text.len());
    write_sorted(&value, &mut out);
    Ok(out)
}

/// Compact JSON with object keys sorted, whether or not serde_json was built
/// with `preserve_order` (feature unification could turn it on under us).
fn write_sorted(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_sorted(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Writes `state` to `path` so that a crash leaves either the old or the new
/// file, never a torn one: temp file in the same folder, fsync, rename, fsync
/// the folder (so the rename itself survives a power cut).
fn write_atomically(path: &Path, state: &State) -> Result<(), Error> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    };
    let bytes = serde_json::to_vec_pretty(state).map_err(|e| Error::Corrupt {
        path: path.to_path_buf(),
        message: format!("state does not serialise: {e}"),
    })?;
    let tmp = path.with_extension("json.tmp");
    let mut file = fs::File::create(&tmp).map_err(io("create the temporary state file", &tmp))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(io("write the temporary state file", &tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io("rename the temporary state file over", path))?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("fsync the data folder", dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(schema: &str) -> SchemaRequest {
        SchemaRequest {
            schema: Some(schema.to_owned()),
            schema_type: None,
            references: None,
        }
    }

    const V1: &str = r#"{"type":"record","name":"A","fields":[{"name":"id","type":"string"}]}"#;
    const V1_REFORMATTED: &str = r#"{ "name": "A", "type": "record",
        "fields": [ { "type": "string", "name": "id" } ] }"#;
    const V2: &str = r#"{"type":"record","name":"A","fields":[{"name":"id","type":"string"},{"name":"lang","type":["null","string"],"default":null}]}"#;

    #[test]
    fn same_schema_text_modulo_formatting_gets_same_id_across_subjects() {
        let dir = tempfile::tempdir().unwrap();
        let mut reg = Registry::open(dir.path()).unwrap();
        assert_eq!(reg.register("a", &request(V1)).unwrap()["id"], 1);
        assert_eq!(
            reg.register("a", &request(V1_REFORMATTED)).unwrap()["id"],
            1
        );
        assert_eq!(reg.versions("a").unwrap(), json!([1]));
        assert_eq!(
            reg.register("b", &request(V1_REFORMATTED)).unwrap()["id"],
            1
        );
        assert_eq!(reg.register("a", &request(V2)).unwrap()["id"], 2);
        assert_eq!(reg.versions("a").unwrap(), json!([1, 2]));
        assert_eq!(
            reg.id_versions(1).unwrap(),
            json!([{"subject":"a","version":1},{"subject":"b","version":1}])
        );
    }

    #[test]
    fn adding_only_a_default_is_a_different_schema() {
        let with_default = V1.replace(r#""type":"string"}"#, r#""type":"string","default":"x"}"#);
        assert_ne!(
            identity_key(V1).unwrap(),
            identity_key(&with_default).unwrap()
        );
        assert_eq!(
            identity_key(V1).unwrap(),
            identity_key(V1_REFORMATTED).unwrap()
        );
    }

    #[test]
    fn state_survives_reopen_and_ids_continue() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut reg = Registry::open(dir.path()).unwrap();
            reg.register("a", &request(V1)).unwrap();
            reg.set_config(Some("a"), CompatibilityLevel::Full).unwrap();
        }
        let mut reg = Registry::open(dir.path()).unwrap();
        assert_eq!(reg.version("a", VersionRef::Latest).unwrap()["id"], 1);
        assert_eq!(
            reg.subject_config("a", false).unwrap(),
            json!({"compatibilityLevel":"FULL"})
        );
        assert_eq!(reg.register("b", &request(V2)).unwrap()["id"], 2);
        assert!(!dir.path().join("registry.json.tmp").exists());
    }

    #[test]
    fn soft_delete_hides_keeps_ids_and_never_reuses_version_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let mut reg = Registry::open(dir.path()).unwrap();
        reg.register("a", &request(V1)).unwrap();
        assert_eq!(reg.delete_subject("a", true).unwrap_err().code, 40405);
        assert_eq!(reg.delete_subject("a", false).unwrap(), json!([1]));
        assert_eq!(reg.versions("a").unwrap_err().code, 40401);
        assert_eq!(reg.subjects(false), json!([]));
        assert_eq!(reg.schema_by_id(1).unwrap()["schema"], V1);
        reg.register("a", &request(V1)).unwrap();
        assert_eq!(reg.versions("a").unwrap(), json!([2]));
    }

    #[test]
    fn refuses_non_avro_references_and_garbage_with_42201() {
        let dir = tempfile::tempdir().unwrap();
        let mut reg = Registry::open(dir.path()).unwrap();
        let mut proto = request("syntax = \"proto3\";");
        proto.schema_type = Some("PROTOBUF".into());
        let err = reg.register("a", &proto).unwrap_err();
        assert_eq!((err.status, err.code), (422, 42201));
        assert!(err.message.contains("PROTOBUF"), "{}", err.message);
        let err = reg
            .register("a", &request(r#"{"type":"recrod"}"#))
            .unwrap_err();
        assert_eq!(err.code, 42201);
        let mut with_refs = request(V1);
        with_refs.references = Some(vec![json!({"name":"x","subject":"y","version":1})]);
        assert_eq!(reg.register("a", &with_refs).unwrap_err().code, 42201);
    }

    #[test]
    fn a_torn_or_foreign_state_file_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STATE_FILE), b"{\"format\": 1, \"compat").unwrap();
        let err = Registry::open(dir.path())
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("registry.json"), "{err}");
        assert!(err.contains("move it away"), "{err}");
        fs::write(
            dir.path().join(STATE_FILE),
            br#"{"format": 9, "compatibility": "NONE", "schemas": {}, "subjects": {}}"#,
        )
        .unwrap();
        let err = Registry::open(dir.path())
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("format 9"), "{err}");
    }

    #[test]
    fn version_refs_parse_like_confluent() {
        assert_eq!(VersionRef::parse("latest"), Ok(VersionRef::Latest));
        assert_eq!(VersionRef::parse("-1"), Ok(VersionRef::Latest));
        assert_eq!(VersionRef::parse("7"), Ok(VersionRef::Number(7)));
        for bad in ["0", "-2", "x", "2147483648"] {
            assert_eq!(VersionRef::parse(bad).unwrap_err().code, 42202, "{bad}");
        }
    }
}
