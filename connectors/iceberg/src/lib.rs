//! Apache Iceberg sink: Parquet (zstd) data files committed once per epoch.
//!
//! Batches are staged as Parquet data files in the table's location as they
//! arrive; nothing is visible until [`Sink::commit`] appends them in one
//! snapshot whose summary carries the pipeline id, the epoch, the source offsets
//! and the watermark. That summary is what a restart resumes from
//! ([`Sink::last_commit`]), and what makes a commit idempotent: an epoch already
//! in the table for this pipeline is never appended again.
//!
//! The catalog is Iceberg's SQL catalog (the JDBC catalog's table layout) on a
//! SQLite file (`sqlite:<path>`; by default `<warehouse>/catalog.db`) or on
//! PostgreSQL (`postgres://…`), so PyIceberg, DuckDB, Spark and Trino read
//! what is written. The table is created from the first batch's schema when
//! missing, and a batch with new fields adds them as optional columns.
//! Values are converted to the table's column types; a row with a value that
//! does not fit, or a null in a required field, is refused on its own
//! ([`Sink::write_or_refuse`]) for the dead-letter output.
//!
//! **Where progress is found.** Every commit also sets the table property
//! `tributary.commit.<pipeline>` (epoch, offsets, watermark, owner) in the
//! same atomic update, so the last commit is found even after the snapshots
//! that carry it were expired, or other writers and compactions committed
//! after it; tables written before that property existed are still read by
//! walking the snapshots back from the current one.
//!
//! **Owners.** The run that owns the pipeline fences the table at start
//! ([`Sink::fence`]): it sets the property `tributary.owner.<pipeline>`.
//! Each commit checks that property and the pipeline's last commit on the
//! table as read, and is committed on exactly that table ([`pinned`]): the
//! catalog row is swapped only if it still points at that metadata, so
//! anything committed since fails it, and the check runs again. An older
//! owner's commit fails, naming the newer owner.
//!
//! **Commit cost.** Each commit appends through [`merge_append`]: small
//! manifests are merged by size tier as they accumulate (with Java
//! Iceberg's `commit.manifest.*` table properties), the merge written in
//! the background for a later commit, so a snapshot's manifest count stays
//! bounded. A snapshot retention set on the table (`history.expire.*`) is
//! applied every 100 commits, and `write.metadata.delete-after-commit.enabled`
//! is honoured ([`pinned`]), so the metadata file stays bounded too.
//!
//! **Delivery: exactly-once.**
//!
//! ```json
//! {"type": "iceberg", "catalog_uri": "sqlite:warehouse/catalog.db",
//!  "warehouse": "warehouse", "table": "demo.news.articles_raw"}
//! ```
//!
//! About a thousand lines, on purpose: staging, the commit with its record,
//! recovery, the owner fence and schema conformance all act on one table
//! handle under one set of invariants (what is staged is committed once,
//! under this run's ownership); `pinned.rs` holds the compare-and-set commit.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, new_null_array};
use arrow_schema::{DataType, Schema as ArrowSchema, SchemaRef};
use iceberg::arrow::{
    arrow_schema_to_schema_auto_assign_ids, arrow_type_to_type, schema_to_arrow_schema,
};
use iceberg::io::LocalFsStorageFactory;
use iceberg::spec::{DataFile, DataFileFormat};
use iceberg::table::Table;
use iceberg::transaction::{AddColumn, ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::{DataFileWriter, DataFileWriterBuilder};
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{CurrentFileStatus, IcebergWriter, IcebergWriterBuilder};
use iceberg::{Catalog, CatalogBuilder, NamespaceIdent, TableCreation, TableIdent};
use iceberg_catalog_sql::{SqlBindStyle, SqlCatalog, SqlCatalogBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Deserialize;
use tributary_connector::{
    CommitOutcome, CommittedEpoch, ConnectorContext, EpochCommit, Error, FromConfig, Offsets,
    Owner, RefusedRow, Result, Sink, fenced,
};

pub mod merge_append;
pub mod pinned;

/// Snapshot summary keys Tributary writes with every commit.
pub const PIPELINE_ID: &str = "tributary.pipeline-id";
pub const EPOCH: &str = "tributary.epoch";
pub const OFFSETS: &str = "tributary.offsets";
pub const WATERMARK: &str = "tributary.watermark";
/// The run that made the commit (JSON), when the sink was fenced.
pub const OWNER: &str = "tributary.owner";

/// The table property holding a pipeline's last commit.
pub fn commit_property(pipeline_id: &str) -> String {
    format!("tributary.commit.{pipeline_id}")
}

/// The table property naming the run that owns a pipeline.
pub fn owner_property(pipeline_id: &str) -> String {
    format!("tributary.owner.{pipeline_id}")
}

/// A pipeline's last commit as the table property keeps it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, Deserialize)]
struct RecordedCommit {
    epoch: u64,
    offsets: serde_json::Value,
    #[serde(default)]
    watermark_micros: Option<i64>,
    #[serde(default)]
    owner: Option<Owner>,
}

/// Config of the `iceberg` sink.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcebergSinkConfig {
    /// The SQL catalog's database: `sqlite:<path>` (created when missing;
    /// relative to the pipeline file) or `postgres://user@host:port/db`.
    /// Absent or empty: `sqlite:<warehouse>/catalog.db`, so the catalog
    /// lives with the data it describes.
    #[serde(default)]
    pub catalog_uri: Option<String>,
    /// The catalog's name, as readers must give it (PyIceberg's `SqlCatalog(name, …)`).
    #[serde(default = "default_catalog_name")]
    pub catalog_name: String,
    /// Where data and metadata files go: a local folder (relative to the
    /// pipeline file) or a `file://` URI.
    pub warehouse: String,
    /// `namespace.table`, with as many namespace levels as you like
    /// (`demo.news.articles_raw`).
    pub table: String,
    /// Roll to a new data file past this size, in MiB.
    #[serde(default = "default_target_file_size_mb")]
    pub target_file_size_mb: u64,
    /// Iceberg table properties set when the sink creates the table (an
    /// existing table keeps its own), e.g. `commit.manifest.min-count-to-merge`,
    /// `history.expire.max-snapshot-age-ms`,
    /// `write.metadata.delete-after-commit.enabled`.
    #[serde(default)]
    pub table_properties: HashMap<String, String>,
}

fn default_catalog_name() -> String {
    "tributary".into()
}

fn default_target_file_size_mb() -> u64 {
    128
}

type Writer =
    DataFileWriter<ParquetWriterBuilder, DefaultLocationGenerator, DefaultFileNameGenerator>;

/// The sink. Connects lazily, so building it (as `tributary validate` does)
/// touches nothing.
pub struct IcebergSink {
    config: IcebergSinkConfig,
    catalog_uri: String,
    warehouse: String,
    ident: TableIdent,
    rt: tokio::runtime::Runtime,
    catalog: Option<Arc<SqlCatalog>>,
    table: Option<Table>,
    /// The table schema as Arrow, with Iceberg field ids, that batches are
    /// reshaped to before writing.
    arrow_schema: Option<SchemaRef>,
    writer: Option<Writer>,
    staged: Vec<DataFile>,
    /// The open data file's size so far (the Parquet writer's estimate of
    /// it encoded), and the files the rolling writer closed since the
    /// writer opened: with `staged`, the epoch's bytes.
    open_file_bytes: u64,
    rolled_bytes: u64,
    /// This run, once it has fenced the table.
    owner: Option<Owner>,
    /// The catalog database, for the compare-and-set of commits.
    db: Option<Arc<pinned::CatalogDb>>,
    /// Data commits since this run last looked for snapshots to expire.
    commits_since_expiry: Option<u32>,
    /// A manifest merge being written off the commit path
    /// ([`merge_append::prepare_merge`]).
    merging: Option<tokio::task::JoinHandle<iceberg::Result<Option<merge_append::PreparedMerge>>>>,
    /// A merged manifest ready for the next commit.
    merged: Option<merge_append::PreparedMerge>,
}

impl std::fmt::Debug for IcebergSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IcebergSink")
            .field("table", &self.config.table)
            .finish_non_exhaustive()
    }
}

impl FromConfig for IcebergSink {
    type Config = IcebergSinkConfig;
    const NAME: &'static str = "iceberg sink";
    fn from_config(config: IcebergSinkConfig, ctx: &ConnectorContext) -> Result<Self> {
        IcebergSink::new(config, ctx)
    }
}

fn ice(what: &str, e: iceberg::Error) -> Error {
    let retryable = e.retryable();
    let kind = e.kind();
    let err = match kind {
        iceberg::ErrorKind::DataInvalid | iceberg::ErrorKind::FeatureUnsupported => {
            Error::data(format!("{what}: {e}"))
        }
        _ => Error::external(format!("{what}: {e}")),
    };
    let transient = kind == iceberg::ErrorKind::Unexpected && is_transient(&e);
    err.retryable(retryable || transient || kind == iceberg::ErrorKind::CatalogCommitConflicts)
}

/// Whether a catalog or storage failure may pass by itself: a connection
/// refused, reset or timed out, a database busy or restarting, a server
/// answering 429/502/503/504. iceberg-rust marks few errors retryable and
/// reports the SQL and REST catalogs' connection failures as `Unexpected`,
/// so the cause is read from the error chain (typed I/O errors first, then
/// the texts sqlx, PostgreSQL, SQLite and HTTP servers use for these cases).
fn is_transient(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind as Io;
    const TEXTS: &[&str] = &[
        "connection refused",
        "connection reset",
        "connection closed",
        "broken pipe",
        "timed out",
        "pool timed out",
        "database is locked",
        "the database system is starting up",
        "the database system is shutting down",
        "terminating connection due to administrator command",
        "too many connections",
        "service unavailable",
        "bad gateway",
        "gateway timeout",
        "too many requests",
        "status code 429",
        "status code 502",
        "status code 503",
        "status code 504",
    ];
    error_chain_says(e, TEXTS, |kind| {
        matches!(
            kind,
            Io::ConnectionRefused
                | Io::ConnectionReset
                | Io::ConnectionAborted
                | Io::NotConnected
                | Io::BrokenPipe
                | Io::TimedOut
                | Io::Interrupted
        )
    })
}

/// Whether a failure says the disk (or the user's quota on it) is full:
/// `ENOSPC` / `EDQUOT` as typed I/O errors, or in the texts the Parquet
/// writer, the local file I/O and SQLite ("database or disk is full") wrap
/// them in.
fn is_disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind as Io;
    const TEXTS: &[&str] = &[
        "no space left on device",
        "disk quota exceeded",
        "database or disk is full",
    ];
    error_chain_says(e, TEXTS, |kind| {
        matches!(kind, Io::StorageFull | Io::QuotaExceeded)
    })
}

/// Whether any error in `e`'s chain is an I/O error of a kind `io_kind`
/// accepts, or says one of `texts` (lowercase) in its message: libraries
/// that wrap an I/O error often keep only its text.
fn error_chain_says(
    e: &(dyn std::error::Error + 'static),
    texts: &[&str],
    io_kind: impl Fn(std::io::ErrorKind) -> bool,
) -> bool {
    let mut at: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = at {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io_kind(io.kind()))
        {
            return true;
        }
        let text = err.to_string().to_ascii_lowercase();
        if texts.iter().any(|t| text.contains(t)) {
            return true;
        }
        at = err.source();
    }
    false
}

/// [`ice`] for a failure writing files under `location`: a full disk is
/// named with the folder and the fix. Not retryable: a data file that could
/// not be finished is lost to this run (the commit cannot be retried
/// without it), so the pipeline stops and its next run reads the epoch
/// again from the source.
fn ice_at(what: &str, e: iceberg::Error, location: &str) -> Error {
    if !is_disk_full(&e) {
        return ice(what, e);
    }
    Error::external(format!(
        "{what}: no space left on the disk holding {location} ({e}); free space there (or move \
         the warehouse to a larger disk) and run the pipeline again: it reads this epoch's records \
         again from the source, none is lost"
    ))
    .retryable(false)
}

/// `path` made absolute against the current folder (messages and the
/// catalog then name the same place wherever they are read).
fn absolute(path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        path
    } else {
        std::env::current_dir()
            .map(|d| tributary_connector::resolve(&d, &path.to_string_lossy()))
            .unwrap_or(path)
    }
}

impl IcebergSink {
    pub fn new(config: IcebergSinkConfig, ctx: &ConnectorContext) -> Result<Self> {
        let parts: Vec<&str> = config.table.split('.').collect();
        if parts.len() < 2 || parts.iter().any(|p| p.trim().is_empty()) {
            return Err(Error::config(format!(
                "iceberg sink: table `{}` must be `namespace.table` (for example `demo.news.articles_raw`)",
                config.table
            )));
        }
        let (name, namespace) = parts.split_last().expect("two parts at least");
        let namespace = NamespaceIdent::from_strs(namespace.iter().copied())
            .map_err(|e| Error::config(format!("iceberg sink: table `{}`: {e}", config.table)))?;
        let ident = TableIdent::new(namespace, name.to_string());

        // The warehouse as a local folder (absolute), when it is one.
        let warehouse_dir = match config.warehouse.strip_prefix("file://") {
            Some(path) => PathBuf::from(path),
            None if config.warehouse.contains("://") => {
                return Err(Error::config(format!(
                    "iceberg sink: warehouse `{}`: only local folders and file:// URIs are supported yet",
                    config.warehouse
                )));
            }
            None => absolute(ctx.resolve(&config.warehouse)),
        };
        let warehouse = format!("file://{}", warehouse_dir.display());
        let catalog_uri = match config.catalog_uri.as_deref().map(str::trim) {
            // The default follows the warehouse.
            None | Some("") => format!("sqlite:{}", warehouse_dir.join("catalog.db").display()),
            Some(uri) => {
                if let Some(path) = uri.strip_prefix("sqlite:") {
                    let path = path.trim_start_matches("//");
                    if path.is_empty() {
                        return Err(Error::config(
                            "iceberg sink: catalog_uri `sqlite:` needs a file path, e.g. `sqlite:warehouse/catalog.db` \
                             (or leave catalog_uri out: the catalog is then `<warehouse>/catalog.db`)",
                        ));
                    }
                    format!("sqlite:{}", absolute(ctx.resolve(path)).display())
                } else if uri.starts_with("postgres://") || uri.starts_with("postgresql://") {
                    uri.to_string()
                } else {
                    return Err(Error::config(format!(
                        "iceberg sink: catalog_uri `{}` is not supported: use `sqlite:<path>` or \
                         `postgres://user@host:port/db`, or leave it out for `<warehouse>/catalog.db` \
                         (REST catalogs are not supported yet)",
                        tributary_connector::redact_uri(uri)
                    )));
                }
            }
        };
        merge_append::MergePolicy::from_properties(&config.table_properties).map_err(|e| {
            Error::config(format!("iceberg sink: table_properties: {}", e.message()))
        })?;
        if config.target_file_size_mb == 0 {
            return Err(Error::config(
                "iceberg sink: target_file_size_mb must be at least 1",
            ));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tributary-iceberg")
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("iceberg sink: cannot start its runtime: {e}")))?;
        Ok(Self {
            config,
            catalog_uri,
            warehouse,
            ident,
            rt,
            catalog: None,
            table: None,
            arrow_schema: None,
            writer: None,
            staged: Vec::new(),
            open_file_bytes: 0,
            rolled_bytes: 0,
            owner: None,
            db: None,
            commits_since_expiry: None,
            merging: None,
            merged: None,
        })
    }

    fn catalog(&mut self) -> Result<Arc<SqlCatalog>> {
        if let Some(c) = &self.catalog {
            return Ok(c.clone());
        }
        let uri = self.catalog_uri.clone();
        let warehouse = self.warehouse.clone();
        let name = self.config.catalog_name.clone();
        let catalog = self.rt.block_on(async move {
            if let Some(path) = uri.strip_prefix("sqlite:") {
                if let Some(dir) = Path::new(path).parent() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Error::config(format!(
                            "iceberg sink: cannot create the catalog folder {}: {e}",
                            dir.display()
                        ))
                    })?;
                }
                if let Some(dir) = warehouse.strip_prefix("file://") {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Error::config(format!(
                            "iceberg sink: cannot create the warehouse folder {dir}: {e}"
                        ))
                    })?;
                }
                use sqlx::migrate::MigrateDatabase;
                if !sqlx::Sqlite::database_exists(&uri).await.unwrap_or(false) {
                    sqlx::Sqlite::create_database(&uri).await.map_err(|e| {
                        Error::external(format!(
                            "iceberg sink: cannot create the SQLite catalog {path}: {e}"
                        ))
                    })?;
                }
            }
            let props = HashMap::from([
                ("uri".to_string(), uri.clone()),
                ("warehouse".to_string(), warehouse),
                (
                    "sql_bind_style".to_string(),
                    SqlBindStyle::DollarNumeric.to_string(),
                ),
            ]);
            SqlCatalogBuilder::default()
                .with_storage_factory(Arc::new(LocalFsStorageFactory))
                .load(name, props)
                .await
                .map_err(|e| {
                    ice(
                        &format!(
                            "iceberg sink: cannot open the catalog {}",
                            tributary_connector::redact_uri(&uri)
                        ),
                        e,
                    )
                })
        })?;
        let catalog = Arc::new(catalog);
        self.catalog = Some(catalog.clone());
        Ok(catalog)
    }

    /// Loads the table when it exists.
    fn load(&mut self) -> Result<Option<Table>> {
        let catalog = self.catalog()?;
        let ident = self.ident.clone();
        self.rt.block_on(async move {
            let exists = catalog
                .table_exists(&ident)
                .await
                .map_err(|e| ice("iceberg sink: table lookup", e))?;
            if !exists {
                return Ok(None);
            }
            catalog
                .load_table(&ident)
                .await
                .map(Some)
                .map_err(|e| ice(&format!("iceberg sink: load {ident}"), e))
        })
    }

    /// Creates the table (and its namespaces) from an Arrow schema.
    fn create(&mut self, schema: &ArrowSchema) -> Result<Table> {
        let iceberg_schema = arrow_schema_to_schema_auto_assign_ids(schema).map_err(|e| {
            ice(
                "iceberg sink: cannot map the record schema to an Iceberg schema",
                e,
            )
        })?;
        let catalog = self.catalog()?;
        let ident = self.ident.clone();
        let table_properties = self.config.table_properties.clone();
        self.rt.block_on(async move {
            let levels = ident.namespace().as_ref().clone();
            for depth in 1..=levels.len() {
                let ns = NamespaceIdent::from_vec(levels[..depth].to_vec())
                    .map_err(|e| ice("iceberg sink: namespace", e))?;
                if !catalog
                    .namespace_exists(&ns)
                    .await
                    .map_err(|e| ice("iceberg sink: namespace lookup", e))?
                {
                    catalog
                        .create_namespace(&ns, HashMap::new())
                        .await
                        .map_err(|e| ice(&format!("iceberg sink: create namespace {ns:?}"), e))?;
                }
            }
            let creation = TableCreation::builder()
                .name(ident.name().to_string())
                .schema(iceberg_schema)
                .properties(
                    [(
                        "write.parquet.compression-codec".to_string(),
                        "zstd".to_string(),
                    )]
                    .into_iter()
                    .chain(table_properties),
                )
                .build();
            tracing::info!("creating Iceberg table {ident}");
            catalog
                .create_table(ident.namespace(), creation)
                .await
                .map_err(|e| ice(&format!("iceberg sink: create {ident}"), e))
        })
    }

    fn set_table(&mut self, table: Table) -> Result<()> {
        let schema = schema_to_arrow_schema(table.metadata().current_schema())
            .map_err(|e| ice("iceberg sink: table schema", e))?;
        self.arrow_schema = Some(Arc::new(schema));
        self.table = Some(table);
        Ok(())
    }

    /// Adds the batch's fields the table lacks as optional columns.
    fn evolve(&mut self, batch_schema: &ArrowSchema) -> Result<()> {
        let table = self.table.clone().expect("table loaded before evolve");
        let current = table.metadata().current_schema();
        let mut missing = Vec::new();
        for field in batch_schema.fields() {
            if current.field_by_name(field.name()).is_none() {
                let ty = arrow_type_to_type(field.data_type()).map_err(|e| {
                    ice(
                        &format!(
                            "iceberg sink: field `{}` has a type Iceberg cannot store",
                            field.name()
                        ),
                        e,
                    )
                })?;
                missing.push((field.name().clone(), ty));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        // Data written so far used the old schema: close it into its own files.
        self.close_writer()?;
        let catalog = self.catalog()?;
        let names: Vec<String> = missing.iter().map(|(n, _)| n.clone()).collect();
        let table = self.rt.block_on(async move {
            let tx = Transaction::new(&table);
            let mut action = tx.update_schema();
            for (name, ty) in missing {
                action = action.add_column(AddColumn::optional(name, ty));
            }
            let tx = action
                .apply(tx)
                .map_err(|e| ice("iceberg sink: add columns", e))?;
            tx.commit(catalog.as_ref())
                .await
                .map_err(|e| ice("iceberg sink: add columns", e))
        })?;
        tracing::info!("added column(s) {} to {}", names.join(", "), self.ident);
        self.set_table(table)
    }

    fn writer(&mut self) -> Result<&mut Writer> {
        if self.writer.is_none() {
            let table = self.table.as_ref().expect("table loaded before writing");
            let location = DefaultLocationGenerator::new(table.metadata())
                .map_err(|e| ice("iceberg sink: data location", e))?;
            // A fresh prefix per writer: file names never repeat across runs,
            // so a restarted run cannot overwrite a committed file.
            let names = DefaultFileNameGenerator::new(
                format!("tributary-{}", uuid::Uuid::new_v4()),
                None,
                DataFileFormat::Parquet,
            );
            let props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                .build();
            let parquet =
                ParquetWriterBuilder::new(props, table.metadata().current_schema().clone());
            let rolling = RollingFileWriterBuilder::new(
                parquet,
                (self.config.target_file_size_mb * 1024 * 1024) as usize,
                table.file_io().clone(),
                location,
                names,
            );
            let writer = self
                .rt
                .block_on(DataFileWriterBuilder::new(rolling).build(None))
                .map_err(|e| ice_at("iceberg sink: open a data file", e, &self.location()))?;
            self.writer = Some(writer);
        }
        Ok(self.writer.as_mut().expect("just set"))
    }

    /// Where this sink writes files: the table's location, else the
    /// warehouse (for messages).
    fn location(&self) -> String {
        self.table.as_ref().map_or_else(
            || self.warehouse.clone(),
            |t| t.metadata().location().to_string(),
        )
    }

    fn close_writer(&mut self) -> Result<()> {
        if let Some(mut writer) = self.writer.take() {
            let location = self.location();
            // `close` consumes what the writer held: after a failure the
            // epoch's rows are gone from this run, so retrying the commit
            // would commit the epoch without them. Never retryable; the
            // next run reads the epoch again.
            let files = self.rt.block_on(writer.close()).map_err(|e| {
                ice_at("iceberg sink: close data files", e, &location).retryable(false)
            })?;
            // Counted in `staged` from now on, at their real size.
            self.open_file_bytes = 0;
            self.rolled_bytes = 0;
            self.staged.extend(files);
        }
        Ok(())
    }

    /// Reshapes a batch to the table's Arrow schema (field ids, column order,
    /// nulls for columns the batch lacks, casts between compatible types).
    /// Rows that cannot be written (a value that does not fit its column's
    /// type, a null in a required field) are left out and returned with
    /// their reasons, by their index in `batch`; a schema that cannot be
    /// written at all is an error for the whole batch.
    fn conform(&self, batch: &RecordBatch) -> Result<(RecordBatch, Vec<RefusedRow>)> {
        use std::collections::BTreeMap;
        let target = self.arrow_schema.as_ref().expect("schema known");
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
        // The first reason found for each refused row.
        let mut refused: BTreeMap<usize, String> = BTreeMap::new();
        for field in target.fields() {
            let column = match batch.column_by_name(field.name()) {
                None => new_null_array(field.data_type(), batch.num_rows()),
                Some(col) => {
                    let conformed = conform_array(col, field.data_type(), field.name()).map_err(|m| {
                        Error::data(format!(
                            "iceberg sink: {m} in table {}; write it under another name or change the table",
                            self.ident
                        ))
                    })?;
                    for (row, reason) in conformed.bad {
                        refused.entry(row).or_insert(reason);
                    }
                    conformed.array
                }
            };
            if !field.is_nullable() && column.null_count() > 0 {
                for row in (0..column.len()).filter(|&r| column.is_null(r)) {
                    refused.entry(row).or_insert_with(|| {
                        format!(
                            "field `{}` is required but the record has no value",
                            field.name()
                        )
                    });
                }
            }
            columns.push(column);
        }
        let refused: Vec<RefusedRow> = refused
            .into_iter()
            .map(|(row, reason)| RefusedRow {
                row,
                reason: format!("{reason} (table {})", self.ident),
            })
            .collect();
        if !refused.is_empty() {
            let mut keep = vec![true; batch.num_rows()];
            for r in &refused {
                keep[r.row] = false;
            }
            let keep = arrow_array::BooleanArray::from(keep);
            columns = columns
                .iter()
                .map(|c| arrow_select::filter::filter(c.as_ref(), &keep))
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    Error::internal(format!("iceberg sink: cannot leave refused rows out: {e}"))
                })?;
        }
        let batch = RecordBatch::try_new(target.clone(), columns).map_err(|e| {
            Error::internal(format!(
                "iceberg sink: cannot build the batch to write: {e}"
            ))
        })?;
        Ok((batch, refused))
    }

    /// Creates or loads the table, adds new columns, and stages the rows of
    /// `batch` that can be written; returns the others with their reasons.
    /// With `all_or_nothing`, a batch with any such row stages nothing and
    /// fails, naming the first.
    fn stage(&mut self, batch: &RecordBatch, all_or_nothing: bool) -> Result<Vec<RefusedRow>> {
        if batch.num_rows() == 0 {
            return Ok(Vec::new());
        }
        if self.table.is_none() {
            let table = match self.load()? {
                Some(t) => t,
                None => self.create(&batch.schema())?,
            };
            self.set_table(table)?;
        }
        self.evolve(&batch.schema())?;
        let (batch, refused) = self.conform(batch)?;
        if all_or_nothing && let Some(first) = refused.first() {
            return Err(Error::data(format!(
                "iceberg sink: record {} of the batch cannot be written: {}",
                first.row, first.reason
            )));
        }
        if batch.num_rows() == 0 {
            return Ok(refused);
        }
        let rt = self.rt.handle().clone();
        let location = self.location();
        let writer = self.writer()?;
        rt.block_on(writer.write(batch))
            .map_err(|e| ice_at("iceberg sink: write a data file", e, &location))?;
        // The rolling writer starts a new file once the current one is past
        // the target size: count the one it closed.
        let now = writer.current_written_size() as u64;
        if now < self.open_file_bytes {
            self.rolled_bytes += self.open_file_bytes;
        }
        self.open_file_bytes = now;
        Ok(refused)
    }

    /// The pipeline's last commit on `table`, and the run that made it: from
    /// the table property (which survives snapshot expiry and commits of other
    /// writers) or, for tables written before it existed, the newest snapshot
    /// of the pipeline reached from the current one; the later of the two.
    fn latest_commit(
        table: &Table,
        pipeline_id: &str,
    ) -> Result<Option<(CommittedEpoch, Option<Owner>)>> {
        let metadata = table.metadata();
        let from_property = match metadata.properties().get(&commit_property(pipeline_id)) {
            None => None,
            Some(json) => {
                let r: RecordedCommit = serde_json::from_str(json).map_err(|e| {
                    Error::data(format!(
                        "iceberg sink: the table property `{}` of {} is malformed ({e}); it was edited, or \
                         written by another version of Tributary. Remove it to resume from the snapshots' \
                         summaries, or restore it",
                        commit_property(pipeline_id),
                        table.identifier()
                    ))
                })?;
                Some((
                    EpochCommit {
                        pipeline_id: pipeline_id.to_string(),
                        epoch: r.epoch,
                        offsets: Offsets::new(r.offsets),
                        watermark_micros: r.watermark_micros,
                    },
                    r.owner,
                ))
            }
        };
        let mut from_snapshots = None;
        let mut next = metadata.current_snapshot();
        while let Some(snapshot) = next {
            let props = &snapshot.summary().additional_properties;
            if props.get(PIPELINE_ID).map(String::as_str) == Some(pipeline_id) {
                let bad = |what: &str| {
                    Error::data(format!(
                        "iceberg sink: snapshot {} of {} has a malformed `{what}` in its summary; \
                         it was not written by this version of Tributary, or was edited",
                        snapshot.snapshot_id(),
                        table.identifier()
                    ))
                };
                let epoch = props
                    .get(EPOCH)
                    .and_then(|e| e.parse().ok())
                    .ok_or_else(|| bad(EPOCH))?;
                let offsets = props
                    .get(OFFSETS)
                    .and_then(|o| serde_json::from_str(o).ok())
                    .ok_or_else(|| bad(OFFSETS))?;
                let watermark_micros = match props.get(WATERMARK) {
                    Some(w) => Some(w.parse().map_err(|_| bad(WATERMARK))?),
                    None => None,
                };
                let owner = props.get(OWNER).and_then(|o| serde_json::from_str(o).ok());
                from_snapshots = Some((
                    EpochCommit {
                        pipeline_id: pipeline_id.to_string(),
                        epoch,
                        offsets: Offsets::new(offsets),
                        watermark_micros,
                    },
                    owner,
                ));
                break;
            }
            next = snapshot
                .parent_snapshot_id()
                .and_then(|id| metadata.snapshot_by_id(id));
        }
        Ok(match (from_property, from_snapshots) {
            (Some(p), Some(s)) if s.0.epoch > p.0.epoch => Some(s),
            (Some(p), _) => Some(p),
            (None, s) => s,
        })
    }

    /// The run that claimed the pipeline on `table`, if any.
    fn claimed_owner(table: &Table, pipeline_id: &str) -> Result<Option<Owner>> {
        match table.metadata().properties().get(&owner_property(pipeline_id)) {
            None => Ok(None),
            Some(json) => serde_json::from_str(json).map(Some).map_err(|e| {
                Error::data(format!(
                    "iceberg sink: the table property `{}` of {} is malformed ({e}); remove it (the next \
                     run to start claims the pipeline again)",
                    owner_property(pipeline_id),
                    table.identifier()
                ))
            }),
        }
    }

    /// Fails when a newer run than `me` has claimed the pipeline on `table`.
    fn check_claim(&self, table: &Table, pipeline_id: &str, me: &Owner) -> Result<()> {
        match Self::claimed_owner(table, pipeline_id)? {
            Some(claim) if claim.generation > me.generation => Err(fenced(
                pipeline_id,
                me,
                &claim,
                &format!(
                    "its claim in the property `{}` of table {}",
                    owner_property(pipeline_id),
                    self.ident
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Commits `tx`, built on `base`, only if nothing was committed to the
    /// table since `base` (see [`pinned`]). A conflict is retryable: the
    /// caller reloads, checks again and builds the commit anew.
    fn commit_on(&mut self, base: Table, tx: Transaction, what: &str) -> Result<Table> {
        let pinned = self.pinned(base)?;
        let location = self.location();
        self.rt
            .block_on(async move { tx.commit(&pinned).await })
            .map_err(|e| commit_error(what, e, &location))
    }

    /// The catalog with the table pinned at `base` ([`pinned`]).
    fn pinned(&mut self, base: Table) -> Result<pinned::Pinned> {
        let catalog = self.catalog()?;
        let db = match &self.db {
            Some(db) => db.clone(),
            None => {
                let uri = self.catalog_uri.clone();
                let db = self
                    .rt
                    .block_on(pinned::CatalogDb::connect(&uri))
                    .map_err(|e| {
                        Error::external(format!(
                            "iceberg sink: cannot connect to the catalog database {}: {e}",
                            tributary_connector::redact_uri(&uri)
                        ))
                    })?;
                let db = Arc::new(db);
                self.db = Some(db.clone());
                db
            }
        };
        Ok(pinned::Pinned {
            catalog,
            db,
            catalog_name: self.config.catalog_name.clone(),
            base,
        })
    }
}

impl IcebergSink {
    /// Appends `files` in one snapshot with summary `summary` and sets
    /// `properties` in the same commit, merging manifests as the table's
    /// `commit.manifest.*` properties say ([`merge_append`]), on exactly
    /// the table `base` ([`pinned`]).
    fn merge_append(
        &mut self,
        base: Table,
        files: Vec<DataFile>,
        summary: HashMap<String, String>,
        properties: HashMap<String, String>,
    ) -> Result<Table> {
        // A merge prepared since the last commit goes into this one; one
        // still being prepared is left to finish (never waited for).
        if self.merged.is_none() && self.merging.as_ref().is_some_and(|t| t.is_finished()) {
            let task = self.merging.take().expect("checked");
            match self.rt.block_on(task) {
                Ok(Ok(prepared)) => self.merged = prepared,
                Ok(Err(e)) => tracing::warn!(
                    "iceberg sink: merging the manifests of {} failed ({e}); tried again after the next commit",
                    self.ident
                ),
                Err(e) => tracing::warn!("iceberg sink: the manifest merge stopped: {e}"),
            }
        }
        let pinned = self.pinned(base)?;
        let location = self.location();
        let prepared = self.merged.take();
        let (committed, prepared) = self.rt.block_on(async move {
            let result = async {
                let appended =
                    merge_append::append(&pinned.base, files, summary, prepared.as_ref()).await?;
                let mut updates = appended.updates;
                updates.push(iceberg::TableUpdate::SetProperties {
                    updates: properties,
                });
                let table = pinned
                    .commit_updates(appended.requirements, updates)
                    .await?;
                Ok::<_, iceberg::Error>((table, appended.merge_due))
            }
            .await;
            (result, prepared)
        });
        let (table, merge_due) = match committed {
            Ok(done) => done,
            Err(e) => {
                // Kept for the retry (it checks the merge still fits).
                self.merged = prepared;
                return Err(commit_error("commit", e, &location));
            }
        };
        // Carried by this commit, or no longer fitting the table: done with
        // either way (a file no commit carries is removed).
        if let Some(prepared) = prepared {
            self.rt.block_on(merge_append::discard(&table, prepared));
        }
        if merge_due && self.merging.is_none() {
            self.merging = Some(self.rt.spawn(merge_append::prepare_merge(table.clone())));
        }
        Ok(table)
    }

    /// [`Self::merge_append`] with iceberg-rust's fast append (one more
    /// manifest per commit), for format-version 3 tables.
    fn fast_append(
        &mut self,
        base: Table,
        files: Vec<DataFile>,
        summary: HashMap<String, String>,
        properties: HashMap<String, String>,
    ) -> Result<Table> {
        let tx = Transaction::new(&base);
        // No duplicate-file check: iceberg-rust's reads every manifest of
        // the current snapshot, so each commit cost more than the one before.
        // The epoch protocol already keeps a file from landing twice: data
        // file names are new per epoch and run, and the commit is pinned to
        // the metadata it was built on, so an epoch that did land makes its
        // retry conflict instead of append again.
        let tx = tx
            .fast_append()
            .with_check_duplicate(false)
            .add_data_files(files)
            .set_snapshot_properties(summary)
            .apply(tx)
            .and_then(|tx| {
                properties
                    .into_iter()
                    .fold(tx.update_table_properties(), |u, (k, v)| u.set(k, v))
                    .apply(tx)
            })
            .map_err(|e| ice("iceberg sink: commit", e))?;
        self.commit_on(base, tx, "commit")
    }
}

/// How many data commits apart the sink looks for snapshots to expire: the
/// expiry is a commit of its own (iceberg-rust's `expire_snapshots`), so it
/// is batched rather than paid at every commit.
const EXPIRE_EVERY_COMMITS: u32 = 100;

impl IcebergSink {
    /// When the table sets a snapshot retention (Iceberg's
    /// `history.expire.max-snapshot-age-ms` and
    /// `history.expire.min-snapshots-to-keep`), expires the snapshots it no
    /// longer keeps, on the run's first commit and every
    /// [`EXPIRE_EVERY_COMMITS`] after; without one, every snapshot is kept,
    /// as Iceberg does. Each commit adds a snapshot, and the table's
    /// metadata file, read and rewritten at every commit, lists them all: a
    /// retention keeps that file, and the commit's cost, from growing with
    /// the table's age. Only the metadata changes (the files of expired
    /// snapshots stay; Iceberg's maintenance removes orphan files). The
    /// epoch record is in a table property, so recovery does not need the
    /// expired snapshots. A failed expiry is logged and left for the next
    /// turn: the data commit has happened.
    fn expire_snapshots(&mut self, table: Table) -> Table {
        use iceberg::spec::TableProperties;
        let due = self
            .commits_since_expiry
            .is_none_or(|n| n + 1 >= EXPIRE_EVERY_COMMITS);
        self.commits_since_expiry = Some(if due {
            0
        } else {
            self.commits_since_expiry.unwrap_or(0) + 1
        });
        let metadata = table.metadata();
        let props = metadata.properties();
        if !due
            || !(props.contains_key(TableProperties::PROPERTY_MAX_SNAPSHOT_AGE_MS)
                || props.contains_key(TableProperties::PROPERTY_MIN_SNAPSHOTS_TO_KEEP))
        {
            return table;
        }
        let Ok(retention) = metadata.table_properties() else {
            return table;
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        let cutoff = now_ms.saturating_sub(retention.max_snapshot_age_ms);
        let expirable = metadata.snapshots().len() > retention.min_snapshots_to_keep.max(1)
            && metadata.snapshots().any(|s| s.timestamp_ms() < cutoff);
        if !expirable {
            return table;
        }
        let before = metadata.snapshots().len();
        let tx = Transaction::new(&table);
        let expired = tx
            .expire_snapshots()
            .apply(tx)
            .map_err(|e| ice("iceberg sink: expire snapshots", e))
            .and_then(|tx| self.commit_on(table.clone(), tx, "expire snapshots"));
        match expired {
            Ok(after) => {
                tracing::info!(
                    "expired {} snapshot(s) of {} (table property {})",
                    before.saturating_sub(after.metadata().snapshots().len()),
                    self.ident,
                    TableProperties::PROPERTY_MAX_SNAPSHOT_AGE_MS
                );
                after
            }
            Err(e) => {
                tracing::warn!("{e}; tried again in {EXPIRE_EVERY_COMMITS} commits");
                table
            }
        }
    }
}

/// An error of a commit on the pinned table, as the sink reports it.
fn commit_error(what: &str, e: iceberg::Error, location: &str) -> Error {
    let conflict = e.kind() == iceberg::ErrorKind::CatalogCommitConflicts;
    let err = ice_at(&format!("iceberg sink: {what}"), e, location);
    if conflict {
        Error::external(format!(
            "{err} (another commit landed first; the table is read again and the commit checked again)"
        ))
    } else {
        err
    }
}

/// Why a column of the records cannot be written to the table's column.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SchemaClash(String);

impl From<String> for SchemaClash {
    fn from(reason: String) -> Self {
        Self(reason)
    }
}

/// A column as the table's type, and the rows (by index in the column)
/// that cannot be written, with why.
struct Conformed {
    array: ArrayRef,
    bad: Vec<(usize, String)>,
}

/// `col` as the table's type `target`: the same data, with the table's
/// nested field names and field ids (a struct, list or map from the source
/// has neither), leaves cast where [`compatible`] or [`checked`]. Struct
/// fields match by name (a field the batch lacks is null); map entries by
/// position. A value a [`checked`] cast cannot convert, or a null in a
/// required struct field, makes its row bad (the row is left out by the
/// caller, so what the array holds there does not matter); a type that
/// cannot be converted at all is a [`SchemaClash`]. `path` names the field
/// in messages.
fn conform_array(col: &ArrayRef, target: &DataType, path: &str) -> Result<Conformed, SchemaClash> {
    use arrow_array::cast::AsArray;
    use arrow_array::{Array, ListArray, MapArray, StructArray};
    let from = col.data_type();
    if from == target {
        return Ok(Conformed {
            array: col.clone(),
            bad: Vec::new(),
        });
    }
    let clash = || format!("field `{path}` is {from} in the records but {target}");
    let mut bad = Vec::new();
    let out: ArrayRef = match (from, target) {
        (DataType::Struct(have), DataType::Struct(want)) => {
            let s = col.as_struct();
            for f in have {
                if want.find(f.name()).is_none() {
                    return Err(format!(
                        "field `{path}.{}` is not in the table: Tributary adds new top-level columns only, \
                         not fields inside a struct",
                        f.name()
                    ).into());
                }
            }
            let mut children = Vec::with_capacity(want.len());
            // Rows whose struct is valid but a required field of it is null:
            // bad, and masked as null here so the struct can be built.
            let mut masked = vec![false; s.len()];
            for f in want.iter() {
                let child_path = format!("{path}.{}", f.name());
                let child = match s.column_by_name(f.name()) {
                    Some(c) => {
                        let c = conform_array(c, f.data_type(), &child_path)?;
                        bad.extend(c.bad);
                        c.array
                    }
                    None => new_null_array(f.data_type(), s.len()),
                };
                if !f.is_nullable() && child.null_count() > 0 {
                    for row in 0..s.len() {
                        if s.is_valid(row) && child.is_null(row) && !masked[row] {
                            masked[row] = true;
                            bad.push((
                                row,
                                format!(
                                    "field `{child_path}` is required but the record has no value"
                                ),
                            ));
                        }
                    }
                }
                children.push(child);
            }
            let nulls = if masked.contains(&true) {
                let valid = (0..s.len()).map(|r| s.is_valid(r) && !masked[r]);
                Some(arrow_buffer::NullBuffer::from_iter(valid))
            } else {
                s.nulls().cloned()
            };
            std::sync::Arc::new(
                StructArray::try_new(want.clone(), children, nulls)
                    .map_err(|e| format!("field `{path}`: {e}"))?,
            )
        }
        (DataType::List(_), DataType::List(want)) => {
            let l = col.as_list::<i32>();
            let values = conform_array(l.values(), want.data_type(), &format!("{path}[]"))?;
            bad.extend(rows_of(values.bad, l.offsets()));
            std::sync::Arc::new(
                ListArray::try_new(
                    want.clone(),
                    l.offsets().clone(),
                    values.array,
                    l.nulls().cloned(),
                )
                .map_err(|e| format!("field `{path}`: {e}"))?,
            )
        }
        (DataType::Map(_, _), DataType::Map(want, sorted)) => {
            let m = col.as_map();
            let DataType::Struct(kv) = want.data_type() else {
                return Err(clash().into());
            };
            let entries = m.entries();
            if entries.num_columns() != 2 || kv.len() != 2 {
                return Err(clash().into());
            }
            let keys = conform_array(entries.column(0), kv[0].data_type(), &format!("{path}.key"))?;
            let values = conform_array(
                entries.column(1),
                kv[1].data_type(),
                &format!("{path}.value"),
            )?;
            bad.extend(rows_of(keys.bad, m.offsets()));
            bad.extend(rows_of(values.bad, m.offsets()));
            let entries = StructArray::try_new(kv.clone(), vec![keys.array, values.array], None)
                .map_err(|e| format!("field `{path}`: {e}"))?;
            std::sync::Arc::new(
                MapArray::try_new(
                    want.clone(),
                    m.offsets().clone(),
                    entries,
                    m.nulls().cloned(),
                    *sorted,
                )
                .map_err(|e| format!("field `{path}`: {e}"))?,
            )
        }
        _ if compatible(from, target) => arrow_cast::cast(col, target)
            .map_err(|e| format!("field `{path}`: cannot convert {from} to {target}: {e}"))?,
        _ if checked(from, target) => {
            let options = arrow_cast::CastOptions {
                safe: true,
                ..Default::default()
            };
            let out = arrow_cast::cast_with_options(col, target, &options)
                .map_err(|e| format!("field `{path}`: cannot convert {from} to {target}: {e}"))?;
            let overflowed = |row: usize| {
                matches!((from, target), (DataType::Float64, DataType::Float32))
                    && col
                        .as_primitive::<arrow_array::types::Float64Type>()
                        .value(row)
                        .is_finite()
                    && out
                        .as_primitive::<arrow_array::types::Float32Type>()
                        .value(row)
                        .is_infinite()
            };
            let format = arrow_cast::display::FormatOptions::default();
            let shown = arrow_cast::display::ArrayFormatter::try_new(col.as_ref(), &format).ok();
            for row in (0..col.len()).filter(|&r| col.is_valid(r)) {
                if out.is_null(row) || overflowed(row) {
                    let value = shown
                        .as_ref()
                        .map_or_else(String::new, |f| format!(" {}", f.value(row)));
                    bad.push((
                        row,
                        format!(
                            "field `{path}`: the value{value} does not fit the column's type {}",
                            iceberg_type_name(target)
                        ),
                    ));
                }
            }
            out
        }
        _ => return Err(clash().into()),
    };
    Ok(Conformed { array: out, bad })
}

/// Bad entries of a list's (or map's) values, as bad rows of the list.
fn rows_of(
    bad: Vec<(usize, String)>,
    offsets: &arrow_buffer::OffsetBuffer<i32>,
) -> impl Iterator<Item = (usize, String)> + '_ {
    bad.into_iter().filter_map(move |(value, reason)| {
        // The row whose range [offsets[row], offsets[row + 1]) holds
        // `value`; none when the value is outside every row (a sliced list).
        let row = offsets
            .partition_point(|&o| o as usize <= value)
            .checked_sub(1)?;
        let end = *offsets.get(row + 1)? as usize;
        (value < end).then_some((row, reason))
    })
}

/// Iceberg's name of an Arrow type of a table column (`int`, `long`,
/// `timestamptz`), for messages; Arrow's when it has none.
fn iceberg_type_name(t: &DataType) -> String {
    arrow_type_to_type(t).map_or_else(|_| t.to_string(), |t| t.to_string())
}

/// Types a batch may carry for a column of another (but convertible) type.
fn compatible(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    matches!(
        (from, to),
        (Timestamp(a, _), Timestamp(b, _)) if a == b
    ) || matches!(
        (from, to),
        (Int8 | Int16 | Int32, Int32 | Int64)
            | (Int64, Int64)
            | (Float32, Float64)
            | (LargeUtf8 | Utf8View, Utf8)
            | (Utf8, LargeUtf8)
            | (Binary | BinaryView, LargeBinary)
            | (Time64(_), Time64(_))
    )
}

/// Types a batch may carry for a column of another type when each value
/// is converted on its own, and some may not fit: a `long` into an `int`
/// column, a `double` into a `float`, text into a number, date or
/// timestamp, a number into a decimal, a timestamp of another unit. A
/// value that does not fit makes its row refused ([`RefusedRow`]), not the
/// batch.
fn checked(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    matches!(
        (from, to),
        (Int64, Int32)
            | (Float64, Float32)
            | (
                Utf8 | LargeUtf8 | Utf8View,
                Int32
                    | Int64
                    | Float32
                    | Float64
                    | Boolean
                    | Date32
                    | Decimal128(_, _)
                    | Timestamp(_, _)
                    | Time64(_)
            )
            | (
                Int8 | Int16 | Int32 | Int64 | Float32 | Float64,
                Decimal128(_, _)
            )
            | (Decimal128(_, _), Decimal128(_, _))
            | (Timestamp(_, _), Timestamp(_, _))
    )
}

impl IcebergSink {
    /// Every row of the table's current snapshot (for tests and tools; a
    /// full scan).
    pub fn scan_all(&mut self) -> Result<Vec<RecordBatch>> {
        use futures::TryStreamExt;
        let Some(table) = self.load()? else {
            return Ok(Vec::new());
        };
        self.rt.block_on(async move {
            let stream = table
                .scan()
                .build()
                .map_err(|e| ice("iceberg sink: scan", e))?
                .to_arrow()
                .await
                .map_err(|e| ice("iceberg sink: scan", e))?;
            stream
                .try_collect()
                .await
                .map_err(|e| ice("iceberg sink: scan", e))
        })
    }
}

impl Sink for IcebergSink {
    fn fence(&mut self, pipeline_id: &str, owner: &Owner) -> Result<()> {
        self.owner = Some(owner.clone());
        // No table yet: the first commit creates it and records the claim.
        let Some(table) = self.load()? else {
            return Ok(());
        };
        self.check_claim(&table, pipeline_id, owner)?;
        let json = serde_json::to_string(owner)
            .map_err(|e| Error::internal(format!("iceberg sink: encode the owner: {e}")))?;
        let tx = Transaction::new(&table);
        let tx = tx
            .update_table_properties()
            .set(owner_property(pipeline_id), json)
            .apply(tx)
            .map_err(|e| ice("iceberg sink: take the pipeline over", e))?;
        let table = self.commit_on(table, tx, "take the pipeline over")?;
        tracing::info!(
            "{owner} took pipeline `{pipeline_id}` over in table {}",
            self.ident
        );
        self.set_table(table)
    }

    fn last_commit(&mut self, pipeline_id: &str) -> Result<Option<CommittedEpoch>> {
        match self.load()? {
            None => Ok(None),
            Some(table) => {
                let last = Self::latest_commit(&table, pipeline_id)?;
                self.set_table(table)?;
                Ok(last.map(|(commit, _)| commit))
            }
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.stage(batch, true).map(|_| ())
    }

    fn write_or_refuse(&mut self, batch: &RecordBatch) -> Result<Vec<RefusedRow>> {
        self.stage(batch, false)
    }

    fn staged_bytes(&mut self) -> Option<u64> {
        let closed: u64 = self.staged.iter().map(|f| f.file_size_in_bytes()).sum();
        Some(closed + self.rolled_bytes + self.open_file_bytes)
    }

    fn locations(&self) -> Vec<(String, String)> {
        let path = |uri: &str| uri.strip_prefix("file://").unwrap_or(uri).to_string();
        let table = format!(
            "{}/{}/{}",
            path(&self.warehouse),
            self.ident.namespace().as_ref().join("/"),
            self.ident.name()
        );
        vec![
            (
                "catalog".into(),
                tributary_connector::redact_uri(&self.catalog_uri),
            ),
            (
                "data".into(),
                format!(
                    "{table} (table {} in warehouse {}, when the sink creates it; an existing table keeps its location)",
                    self.ident,
                    path(&self.warehouse)
                ),
            ),
        ]
    }

    fn commit(&mut self, commit: &EpochCommit) -> Result<CommitOutcome> {
        self.close_writer()?;
        // Re-read the table: never commit on a stale table object.
        let Some(table) = self.load()? else {
            if self.staged.is_empty() {
                // Nothing ever written and no table: create one from nothing is
                // impossible (no schema yet). Record nothing; the source will
                // resume from its start, which had nothing either.
                return Ok(CommitOutcome::Committed);
            }
            return Err(Error::external(format!(
                "iceberg sink: table {} disappeared before the commit",
                self.ident
            )));
        };
        let pipeline = commit.pipeline_id.as_str();
        let me = self.owner.clone();
        if let Some(me) = &me {
            self.check_claim(&table, pipeline, me)?;
        }
        let last = Self::latest_commit(&table, pipeline)?;
        if let Some((last, by)) = last
            && (last.epoch >= commit.epoch
                || by
                    .as_ref()
                    .zip(me.as_ref())
                    .is_some_and(|(by, me)| by.generation > me.generation))
        {
            let mine = match (&by, &me) {
                (_, None) => true,
                (Some(by), Some(me)) => by.generation == me.generation,
                (None, Some(_)) => false,
            };
            if !mine {
                let me = me.expect("not mine only when fenced");
                let other = by.map_or_else(|| "another run".to_string(), |o| o.to_string());
                return Err(fenced(
                    pipeline,
                    &me,
                    &other,
                    &format!(
                        "it committed epoch {} to table {} while this run was about to commit epoch {}",
                        last.epoch, self.ident, commit.epoch
                    ),
                ));
            }
            self.staged.clear();
            self.set_table(table)?;
            return Ok(CommitOutcome::AlreadyCommitted);
        }
        let mut props = HashMap::from([
            (PIPELINE_ID.to_string(), commit.pipeline_id.clone()),
            (EPOCH.to_string(), commit.epoch.to_string()),
            (OFFSETS.to_string(), commit.offsets.as_json().to_string()),
        ]);
        if let Some(w) = commit.watermark_micros {
            props.insert(WATERMARK.to_string(), w.to_string());
        }
        if let Some(me) = &me {
            props.insert(
                OWNER.to_string(),
                serde_json::to_string(me).expect("an owner always serialises"),
            );
        }
        let recorded = serde_json::to_string(&RecordedCommit {
            epoch: commit.epoch,
            offsets: commit.offsets.as_json().clone(),
            watermark_micros: commit.watermark_micros,
            owner: me.clone(),
        })
        .expect("a commit always serialises");
        let mut table_props = HashMap::from([(commit_property(pipeline), recorded)]);
        // The first commit into a table made after the fence.
        if let Some(me) = &me
            && Self::claimed_owner(&table, pipeline)
                .ok()
                .flatten()
                .is_none()
        {
            table_props.insert(
                owner_property(pipeline),
                serde_json::to_string(me).expect("an owner always serialises"),
            );
        }
        let files = std::mem::take(&mut self.staged);
        let committed = if merge_append::can_merge(table.metadata()) {
            self.merge_append(table, files.clone(), props, table_props)
        } else {
            self.fast_append(table, files.clone(), props, table_props)
        };
        match committed {
            Ok(table) => {
                let table = self.expire_snapshots(table);
                self.set_table(table)?;
                Ok(CommitOutcome::Committed)
            }
            Err(e) => {
                // Keep the files staged: a retry commits them.
                self.staged = files;
                Err(e)
            }
        }
    }

    fn describe(&self) -> String {
        format!("iceberg table {}", self.config.table)
    }

    /// Exactly-once: an epoch's data files and its offsets land in one
    /// snapshot, and an epoch already in the table is never appended again.
    fn delivery(&self) -> tributary_connector::Delivery {
        tributary_connector::Delivery::ExactlyOnce
    }

    fn row_count(&mut self) -> Option<u64> {
        let table = self.table.as_ref()?;
        let snapshot = table.metadata().current_snapshot()?;
        snapshot
            .summary()
            .additional_properties
            .get("total-records")?
            .parse()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_failures_that_may_pass_are_retryable() {
        let unexpected = |m: &str| iceberg::Error::new(iceberg::ErrorKind::Unexpected, m);
        let refused = unexpected("catalog call failed").with_source(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "tcp connect",
        ));
        assert!(ice("commit", refused).is_retryable());
        assert!(
            ice(
                "commit",
                unexpected("error returned from database: database is locked")
            )
            .is_retryable()
        );
        assert!(
            ice(
                "commit",
                unexpected("HTTP status code 503 Service Unavailable")
            )
            .is_retryable()
        );
        assert!(!ice("commit", unexpected("table demo.t does not exist")).is_retryable());
        let invalid = iceberg::Error::new(iceberg::ErrorKind::DataInvalid, "connection refused");
        assert!(
            !ice("commit", invalid).is_retryable(),
            "bad data is never transient, whatever it says"
        );
    }

    #[test]
    fn values_that_do_not_fit_refuse_their_rows_only() {
        use arrow_array::{Array, Int32Array, Int64Array, ListArray, StringArray, StructArray};
        use arrow_schema::{Field, Fields};
        // A long past an int's range, at row 1; a null stays a null.
        let col: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), Some(5_000_000_000), None]));
        let c = conform_array(&col, &DataType::Int32, "n").unwrap();
        assert_eq!(c.array.data_type(), &DataType::Int32);
        assert_eq!(c.bad.len(), 1, "{:?}", c.bad);
        assert_eq!(c.bad[0].0, 1);
        assert_eq!(
            c.bad[0].1,
            "field `n`: the value 5000000000 does not fit the column's type int"
        );
        // Text into a number.
        let col: ArrayRef = Arc::new(StringArray::from(vec!["7", "seven"]));
        let c = conform_array(&col, &DataType::Int64, "n").unwrap();
        assert_eq!(c.bad.iter().map(|b| b.0).collect::<Vec<_>>(), vec![1]);
        assert!(
            c.bad[0].1.contains("seven") && c.bad[0].1.contains("long"),
            "{:?}",
            c.bad
        );
        // A required field inside a struct, null in row 0 only.
        let have = Fields::from(vec![Field::new("x", DataType::Int32, true)]);
        let want = Fields::from(vec![Field::new("x", DataType::Int32, false)]);
        let col: ArrayRef = Arc::new(StructArray::new(
            have,
            vec![Arc::new(Int32Array::from(vec![None, Some(2)]))],
            None,
        ));
        let c = conform_array(&col, &DataType::Struct(want), "s").unwrap();
        assert_eq!(c.bad.len(), 1);
        assert_eq!(c.bad[0].0, 0);
        assert!(c.bad[0].1.contains("`s.x` is required"), "{:?}", c.bad);
        assert!(c.array.is_null(0) && c.array.is_valid(1));
        // A list element that does not fit: its row, found by the offsets
        // (row 0 is empty, row 1 holds [1, 2], row 2 holds [9e9]).
        let col: ArrayRef = Arc::new(ListArray::from_iter_primitive::<
            arrow_array::types::Int64Type,
            _,
            _,
        >(vec![
            Some(vec![]),
            Some(vec![Some(1), Some(2)]),
            Some(vec![Some(9_000_000_000)]),
        ]));
        let want = DataType::List(Arc::new(Field::new("item", DataType::Int32, true)));
        let c = conform_array(&col, &want, "l").unwrap();
        assert_eq!(c.bad.iter().map(|b| b.0).collect::<Vec<_>>(), vec![2]);
        assert!(c.bad[0].1.starts_with("field `l[]`"), "{:?}", c.bad);
        // A type no value of which converts is the batch's error, not a row's.
        let col: ArrayRef = Arc::new(Int64Array::from(vec![1]));
        assert!(conform_array(&col, &DataType::Struct(Fields::empty()), "n").is_err());
    }

    #[test]
    fn the_catalog_follows_the_warehouse_unless_given() {
        let ctx = ConnectorContext {
            base_dir: "/srv/pipelines".into(),
            ..Default::default()
        };
        let config = |catalog: Option<&str>| IcebergSinkConfig {
            catalog_uri: catalog.map(str::to_string),
            catalog_name: default_catalog_name(),
            warehouse: "lake".into(),
            table: "demo.news.articles".into(),
            target_file_size_mb: 128,
            table_properties: HashMap::new(),
        };
        for unset in [None, Some(""), Some("  ")] {
            let sink = IcebergSink::new(config(unset), &ctx).unwrap();
            assert_eq!(sink.catalog_uri, "sqlite:/srv/pipelines/lake/catalog.db");
            let places = sink.locations();
            assert_eq!(places[0].1, "sqlite:/srv/pipelines/lake/catalog.db");
            assert!(
                places[1]
                    .1
                    .starts_with("/srv/pipelines/lake/demo/news/articles "),
                "{places:?}"
            );
        }
        let sink = IcebergSink::new(config(Some("sqlite:cat/c.db")), &ctx).unwrap();
        assert_eq!(sink.catalog_uri, "sqlite:/srv/pipelines/cat/c.db");
        let sink = IcebergSink::new(config(Some("postgres://u:pw@h/db")), &ctx).unwrap();
        assert_eq!(sink.locations()[0].1, "postgres://u:***@h/db");
        let err = IcebergSink::new(config(Some("thrift://h")), &ctx).unwrap_err();
        assert!(err.to_string().contains("leave it out"), "{err}");
    }

    #[test]
    fn a_full_disk_is_named_with_its_folder_and_not_retried() {
        let full = iceberg::Error::new(iceberg::ErrorKind::Unexpected, "Failed to write to file")
            .with_source(std::io::Error::from_raw_os_error(28));
        let err = ice_at(
            "iceberg sink: close data files",
            full,
            "/data/warehouse/demo/t",
        );
        assert!(!err.is_retryable(), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("no space left on the disk holding /data/warehouse/demo/t"),
            "{text}"
        );
        assert!(text.contains("run the pipeline again"), "{text}");
        let sqlite = iceberg::Error::new(
            iceberg::ErrorKind::Unexpected,
            "error returned from database: (code: 13) database or disk is full",
        );
        assert!(!ice_at("iceberg sink: commit", sqlite, "/w").is_retryable());
        let other = iceberg::Error::new(iceberg::ErrorKind::Unexpected, "connection refused");
        let err = ice_at("iceberg sink: commit", other, "/w");
        assert!(
            err.is_retryable() && !err.to_string().contains("no space"),
            "{err}"
        );
    }
}
