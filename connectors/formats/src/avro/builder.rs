//! [`AvroBatchBuilder`]: Confluent-framed Avro values in, Arrow batches out;
//! writer schemas fetched from the Schema Registry (with their references),
//! checked before any body is decoded with them, and a failed lookup sorted
//! into "bad record" or "registry unavailable".
//!
//! The fetch is `schema_registry_converter`'s, the decode apache-avro's. Its
//! `AvroDecoder`, which does both, is not used: it decodes a body with a
//! writer schema before the caller can see that schema, and a registered
//! schema whose record must contain itself (`A {a: A}`) or that nests
//! thousands of levels deep made its recursive decode overflow the stack and
//! kill the process (found by the `avro_schema` fuzz target).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use apache_avro::Schema as AvroSchema;
use apache_avro::types::Value;
use arrow_array::{RecordBatch, RecordBatchOptions};
use arrow_schema::{Field, Schema, SchemaRef};
use schema_registry_converter::blocking::schema_registry::{
    SrSettings, get_referenced_schema, get_schema_by_id_and_type,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{RegisteredReference, SchemaType};
use tributary_connector::{Error, Result, redact_uri};

use super::cell::{Cell, cell};
use super::column::Col;
use super::merge::merge_top_level;
use super::schema::Writer;
use crate::confluent;
use crate::error::{BadRecord, DecodeError};
use crate::registry::{RegistryAccess, untrusted_certificate};

/// How long one registry request may take. The source thread waits for it,
/// so this bounds how long a poll can hang on a registry that accepts
/// connections but does not answer.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many schemas one writer schema may reference, directly or through
/// other references. apache-avro resolves references by recursion, and a
/// registry answers each with a request; real schemas reference a few.
const MAX_REFERENCES: usize = 100;

/// Decodes Confluent-framed Avro values into rows of a growing Arrow schema.
pub struct AvroBatchBuilder {
    /// The registry URL without credentials, for messages.
    registry: String,
    /// The registry client's settings; `None` only in a builder given its
    /// writer schemas by the caller ([`AvroBatchBuilder::for_decoded_values`]).
    client: Option<SrSettings>,
    /// What each writer schema id maps to, or why it cannot be read. A
    /// lookup that failed for a reason that may pass (the registry down) is
    /// not kept.
    writers: HashMap<u32, Result<Arc<Writer>, BadRecord>>,
    /// For writer schemas already merged into `fields`: the column of each of
    /// their fields. Columns are only ever appended, so these stay valid.
    columns_of: HashMap<u32, Vec<usize>>,
    /// The batch schema: the union of every writer schema merged so far.
    fields: Vec<Field>,
    /// Rows since the last finish, as (column, cell) pairs.
    rows: Vec<Vec<(usize, Cell)>>,
}

impl std::fmt::Debug for AvroBatchBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroBatchBuilder")
            .field("registry", &self.registry)
            .field("writer_schemas", &self.writers.len())
            .field("columns", &self.fields.len())
            .field("rows", &self.rows.len())
            .finish()
    }
}

impl AvroBatchBuilder {
    /// A builder that fetches writer schemas from the Schema Registry at
    /// `registry_url` (e.g. `http://127.0.0.1:8081`; several URLs separated by
    /// commas are tried in order, as Confluent's `schema.registry.url`).
    /// Nothing is fetched until the first value arrives.
    pub fn new(registry_url: &str) -> Result<Self> {
        Self::with_access(&RegistryAccess::new(registry_url))
    }

    /// A builder that fetches writer schemas from the registry `access`
    /// names, with its credentials and CA.
    pub fn with_access(access: &RegistryAccess) -> Result<Self> {
        Ok(Self {
            registry: redact_uri(&access.url),
            client: Some(access.settings("kafka source", REGISTRY_TIMEOUT)?),
            writers: HashMap::new(),
            columns_of: HashMap::new(),
            fields: Vec::new(),
            rows: Vec::new(),
        })
    }

    /// A builder without a registry client, given each writer schema by the
    /// caller ([`AvroBatchBuilder::push_body`]); its `push` refuses every
    /// value. For the fuzz targets (`fuzz/`): a registry client costs
    /// milliseconds to make, a fuzz input microseconds.
    #[doc(hidden)]
    pub fn for_decoded_values() -> Self {
        Self {
            registry: "(none)".into(),
            client: None,
            writers: HashMap::new(),
            columns_of: HashMap::new(),
            fields: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// Decodes one framed value and appends it as a row. All or nothing: on
    /// error no partial row stays appended and the batch schema is unchanged.
    pub fn push(&mut self, payload: &[u8]) -> Result<(), DecodeError> {
        let id = confluent::schema_id(payload)?;
        let writer = match self.writers.get(&id) {
            Some(known) => known.clone(),
            None => {
                let looked_up = self.look_up(id)?;
                self.writers.insert(id, looked_up.clone());
                looked_up
            }
        }
        .map_err(|reason| DecodeError::Bad(reason.to_string()))?;
        self.append(id, &writer, &payload[confluent::header(id).len()..])
    }

    /// Appends one Avro body written with writer schema `id`, whose parsed
    /// schema is `schema`: [`AvroBatchBuilder::push`] without the registry.
    /// Public for the fuzz targets (`fuzz/`), which give fixed or fuzzed
    /// writer schemas; `id` must always name the same schema.
    #[doc(hidden)]
    pub fn push_body(
        &mut self,
        id: u32,
        schema: &AvroSchema,
        body: &[u8],
    ) -> Result<(), DecodeError> {
        let writer = self
            .writers
            .entry(id)
            .or_insert_with(|| mapped(id, Writer::new(schema.clone())))
            .clone()
            .map_err(|reason| DecodeError::Bad(reason.to_string()))?;
        self.append(id, &writer, body)
    }

    /// Writer schema `id` from the registry, mapped: `Err` outside for what
    /// may pass (not kept), `Ok(Err)` for a schema that cannot be read.
    fn look_up(&self, id: u32) -> Result<Result<Arc<Writer>, BadRecord>, DecodeError> {
        let Some(client) = &self.client else {
            return Err(DecodeError::Unavailable(Error::internal(
                "kafka source: this Avro decoder has no schema registry client",
            )));
        };
        let (main, referenced) = match fetch(client, id) {
            Ok(fetched) => fetched,
            Err(e) => {
                return match self.registry_error(id, e) {
                    DecodeError::Bad(reason) => Ok(Err(reason.into())),
                    unavailable => Err(unavailable),
                };
            }
        };
        let parsed = if referenced.is_empty() {
            AvroSchema::parse_str(&main).map(|s| (s, Vec::new()))
        } else {
            AvroSchema::parse_str_with_list(&main, &referenced)
        };
        Ok(match parsed {
            Ok((schema, referenced)) => mapped(id, Writer::with_references(schema, referenced)),
            Err(e) => Err(format!(
                "writer schema id {id} from the schema registry {} is not valid Avro: {e}",
                self.registry
            )
            .into()),
        })
    }

    /// Decodes `body` with `writer` (a schema already checked by
    /// [`Writer::new`], so the decode's depth is bounded) and appends it.
    fn append(&mut self, id: u32, writer: &Writer, body: &[u8]) -> Result<(), DecodeError> {
        let value = writer.decode(body).map_err(|e| {
            DecodeError::Bad(format!(
                "the Avro body does not decode with writer schema id {id} (truncated or \
                 corrupt?): {e}"
            ))
        })?;
        // Work out the grown schema first, the row second, and keep either
        // only when both succeed.
        let grown = match self.columns_of.get(&id) {
            Some(_) => None,
            None => Some(
                merge_top_level(&self.fields, &writer.fields).map_err(|reason| {
                    DecodeError::Bad(format!("writer schema id {id}: {reason}"))
                })?,
            ),
        };
        let Value::Record(values) = value else {
            return Err(DecodeError::Bad(format!(
                "writer schema id {id}: the decoded value is not a record"
            )));
        };
        let AvroSchema::Record(record) = writer.schema() else {
            unreachable!("Writer::new accepts records only")
        };
        let mut cells = Vec::with_capacity(values.len());
        for (field, (name, value)) in record.fields.iter().zip(values) {
            let c = cell(&field.schema, &writer.names, value)
                .map_err(|e| DecodeError::Bad(e.within(&name).to_string()))?;
            cells.push(c);
        }
        if let Some((fields, columns)) = grown {
            self.fields = fields;
            self.columns_of.insert(id, columns);
        }
        let columns = &self.columns_of[&id];
        self.rows
            .push(columns.iter().copied().zip(cells).collect::<Vec<_>>());
        Ok(())
    }

    /// Rows pushed since the last [`AvroBatchBuilder::finish`].
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The batch schema as it stands: every writer schema seen so far.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.fields.clone()))
    }

    /// The rows pushed since the last finish, as one batch. Its schema is the
    /// union of every writer schema seen so far in this process (fields in
    /// first-seen order), so rows of older writer schemas read as null in the
    /// fields newer ones added.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let schema = self.schema();
        let rows = std::mem::take(&mut self.rows);
        let n = rows.len();
        let mut cols: Vec<Col> = self
            .fields
            .iter()
            .map(|f| Col::new(f.data_type()))
            .collect();
        let mut row_cells: Vec<Cell> = Vec::new();
        for row in rows {
            row_cells.clear();
            row_cells.resize_with(cols.len(), || Cell::Null);
            for (i, c) in row {
                row_cells[i] = c;
            }
            for (col, c) in cols.iter_mut().zip(row_cells.drain(..)) {
                col.append(c);
            }
        }
        let columns = self
            .fields
            .iter()
            .zip(cols)
            .map(|(f, c)| c.finish(f.data_type()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                Error::internal(format!(
                    "kafka source: Avro rows do not fit their schema: {e}"
                ))
            })?;
        RecordBatch::try_new_with_options(
            schema,
            columns,
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )
        .map_err(|e| {
            Error::internal(format!(
                "kafka source: Avro rows do not fit their schema: {e}"
            ))
        })
    }

    /// Sorts a failed registry lookup or decode into "this record is bad" and
    /// "the registry is unavailable".
    fn registry_error(&self, id: u32, e: SRCError) -> DecodeError {
        let registry = &self.registry;
        let status = http_status(&e.error);
        if untrusted_certificate(&e) {
            // A send error, which the client calls retriable; no retry makes
            // the certificate trusted.
            return DecodeError::Unavailable(
                Error::config(format!(
                    "kafka source: the TLS certificate of the schema registry {registry} is not trusted \
                     (looking up writer schema id {id}): set schema_registry_ca to a PEM file with the CA \
                     certificate that signed it ({})",
                    describe_chain(&e)
                ))
                .with_source(e),
            );
        }
        if e.retriable || status.is_some_and(|s| s >= 500) {
            // The decoder caches errors it thinks permanent, a 500 among
            // them; a registry that was down for a moment must not make this
            // id unreadable for the life of the process.
            return DecodeError::Unavailable(
                Error::external(format!(
                    "kafka source: schema registry {registry} is unavailable (looking up writer \
                     schema id {id}): {}; retry the same message when it answers",
                    describe_src(&e)
                ))
                .with_source(e),
            );
        }
        if matches!(status, Some(401 | 403)) {
            return DecodeError::Unavailable(
                Error::config(format!(
                    "kafka source: schema registry {registry} refused to give writer schema id \
                     {id}: {}; check the credentials, schema_registry_username and schema_registry_password (what a secret \
                     reference there resolves to)",
                    describe_src(&e)
                ))
                .with_source(e),
            );
        }
        let cause = e.cause.as_deref().unwrap_or("");
        if status == Some(404) && !cause.contains("40403") {
            // A 404 without the registry's "schema not found" code: the URL
            // is not a Schema Registry (or has a wrong path). Dead-lettering
            // every record would hide that.
            return DecodeError::Unavailable(Error::config(format!(
                "kafka source: {registry} answered 404 without Confluent's error code 40403 \
                 looking up writer schema id {id} ({}): is it the Schema Registry's base URL?",
                describe_src(&e)
            )));
        }
        if status == Some(404) {
            return DecodeError::Bad(format!(
                "writer schema id {id} is not in the schema registry {registry} ({}): was the \
                 message written against another registry?",
                e.cause.as_deref().unwrap_or("not found")
            ));
        }
        DecodeError::Bad(format!(
            "writer schema id {id} from the schema registry {registry} cannot be used: {}",
            describe_src(&e)
        ))
    }
}

/// A mapped writer schema, or why it cannot be read, named by its id.
fn mapped(id: u32, writer: Result<Writer, BadRecord>) -> Result<Arc<Writer>, BadRecord> {
    writer
        .map(Arc::new)
        .map_err(|reason| format!("writer schema id {id}: {reason}").into())
}

/// Writer schema `id`'s text and the texts of every schema it references,
/// directly or through other references, each fetched once and each after
/// the ones it references (the order apache-avro resolves names in).
fn fetch(client: &SrSettings, id: u32) -> Result<(String, Vec<String>), SRCError> {
    let registered = get_schema_by_id_and_type(id, client, SchemaType::Avro)?;
    let mut referenced = Vec::new();
    fetch_references(
        client,
        registered.references,
        &mut HashSet::new(),
        &mut referenced,
    )?;
    Ok((registered.schema, referenced))
}

/// The schemas `references` name, depth first, into `out`. The recursion is
/// bounded by [`MAX_REFERENCES`].
fn fetch_references(
    client: &SrSettings,
    references: Vec<RegisteredReference>,
    seen: &mut HashSet<(String, u32)>,
    out: &mut Vec<String>,
) -> Result<(), SRCError> {
    for r in references {
        if !seen.insert((r.subject.clone(), r.version)) {
            continue;
        }
        if seen.len() > MAX_REFERENCES {
            return Err(SRCError::non_retryable_without_cause(&format!(
                "it references more than {MAX_REFERENCES} schemas (directly or through other \
                 references); Tributary reads at most {MAX_REFERENCES}"
            )));
        }
        let schema = get_referenced_schema(client, &r)?;
        fetch_references(client, schema.references, seen, out)?;
        out.push(schema.schema);
    }
    Ok(())
}

/// `HTTP request to schema registry failed with status 404 Not Found` → 404.
fn http_status(error: &str) -> Option<u16> {
    let rest = error.split("with status ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// The error and each of its causes, for a failure whose point is deep in
/// the chain (rustls under hyper under reqwest).
fn describe_chain(e: &SRCError) -> String {
    let mut parts = vec![e.error.clone()];
    let mut next = std::error::Error::source(e);
    while let Some(cause) = next {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = cause.source();
    }
    parts.join(": ")
}

fn describe_src(e: &SRCError) -> String {
    match &e.cause {
        Some(cause) => format!("{}: {cause}", e.error),
        None => e.error.clone(),
    }
}
