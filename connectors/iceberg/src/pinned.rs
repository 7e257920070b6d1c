//! A catalog that commits on the table as the sink last checked it, or not
//! at all.
//!
//! iceberg-rust's `Transaction::commit` reloads the table before it commits
//! and, when anything changed since the transaction was built, rebuilds its
//! actions on the newer table; and the SQL catalog's update checks only the
//! actions' own requirements (for an append: the main branch has not moved)
//! before it swaps the metadata pointer. A commit is thus never refused for
//! being stale, only rebased, and a change of table properties alone (a
//! newer owner taking the pipeline over) goes unnoticed. The sink cannot
//! allow that: before each commit it checks what the table says (no newer
//! owner, no other run committed this epoch), and a rebase would skip those
//! checks.
//!
//! [`Pinned`] answers `load_table` of its one table with the table the sink
//! checked, so the transaction is built on exactly that, and makes the
//! update itself: the new metadata is written, then the catalog row is
//! swapped to it only if it still points at the checked table's metadata
//! file (`UPDATE … WHERE metadata_location = <checked>`, the compare-and-set
//! of Iceberg's JDBC catalog). Any commit since — data, properties, schema —
//! fails it as a conflict; the sink reloads, checks again and retries.
//! Everything else goes to the real catalog.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use iceberg::table::Table;
use iceberg::{
    Catalog, Error, ErrorKind, MetadataLocation, Namespace, NamespaceIdent, Result, TableCommit,
    TableCreation, TableIdent, TableRequirement, TableUpdate,
};
use iceberg_catalog_sql::SqlCatalog;

/// The SQL catalog's database, for the compare-and-set of a commit.
#[derive(Debug)]
pub enum CatalogDb {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl CatalogDb {
    /// Connects to the catalog database at `uri` (`sqlite:<path>` or
    /// `postgres://…`), as the SQL catalog does.
    pub async fn connect(uri: &str) -> std::result::Result<Self, sqlx::Error> {
        if uri.starts_with("sqlite:") {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(uri)?
                .busy_timeout(std::time::Duration::from_secs(10));
            let pool = sqlx::pool::PoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await?;
            Ok(Self::Sqlite(pool))
        } else {
            let pool = sqlx::pool::PoolOptions::new()
                .max_connections(1)
                .connect(uri)
                .await?;
            Ok(Self::Postgres(pool))
        }
    }

    /// Points the catalog row of `table` at `new` if it points at `old`;
    /// whether it did.
    async fn swap(
        &self,
        catalog: &str,
        table: &TableIdent,
        old: &str,
        new: &str,
    ) -> std::result::Result<bool, sqlx::Error> {
        // Iceberg's JDBC catalog layout (iceberg-catalog-sql uses it too).
        const SQL: &str = "UPDATE iceberg_tables SET metadata_location = $1, previous_metadata_location = $2 \
             WHERE catalog_name = $3 AND table_namespace = $4 AND table_name = $5 AND metadata_location = $2 \
             AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)";
        let namespace = table.namespace().join(".");
        let rows = match self {
            Self::Sqlite(pool) => sqlx::query(SQL)
                .bind(new)
                .bind(old)
                .bind(catalog)
                .bind(&namespace)
                .bind(table.name())
                .execute(pool)
                .await?
                .rows_affected(),
            Self::Postgres(pool) => sqlx::query(SQL)
                .bind(new)
                .bind(old)
                .bind(catalog)
                .bind(&namespace)
                .bind(table.name())
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(rows == 1)
    }
}

/// The catalog, with its table pinned at `base`.
#[derive(Debug)]
pub struct Pinned {
    pub catalog: Arc<SqlCatalog>,
    pub db: Arc<CatalogDb>,
    /// The catalog's name (rows of other catalogs in the database are not ours).
    pub catalog_name: String,
    pub base: Table,
}

impl Pinned {
    /// Commits `updates` on the pinned table: checks `requirements` against
    /// it, writes the new metadata file, and swaps the catalog row to it if
    /// the row still points at the pinned table's metadata. What
    /// [`Catalog::update_table`] does with a [`TableCommit`], for updates
    /// the sink builds itself (iceberg-rust lets only its own actions make
    /// a `TableCommit`; see `merge_append`).
    pub async fn commit_updates(
        &self,
        requirements: Vec<TableRequirement>,
        updates: Vec<TableUpdate>,
    ) -> Result<Table> {
        for requirement in &requirements {
            requirement.check(Some(self.base.metadata()))?;
        }
        let old = self.base.metadata_location_result()?.to_string();
        let mut builder = self.base.metadata().clone().into_builder(Some(old.clone()));
        for update in updates {
            builder = update.apply(builder)?;
        }
        let metadata = builder.build()?.metadata;
        let new = MetadataLocation::from_str(&old)?
            .with_next_version()
            .with_new_metadata(&metadata);
        metadata.write_to(self.base.file_io(), &new).await?;
        let swapped = self
            .db
            .swap(
                &self.catalog_name,
                self.base.identifier(),
                &old,
                &new.to_string(),
            )
            .await
            .map_err(|e| {
                // Retried with backoff: by iceberg-rust's `Transaction::commit`
                // when it called us, else by the pipeline's commit loop. Say
                // so, or a catalog outage met here would leave no trace but a
                // slow commit.
                tracing::warn!(
                    "iceberg sink: cannot update the catalog row of {} ({e}); the commit is retried with backoff",
                    self.base.identifier()
                );
                Error::new(
                    ErrorKind::Unexpected,
                    format!("update the catalog row of {}: {e}", self.base.identifier()),
                )
                .with_retryable(true)
            })?;
        if !swapped {
            return Err(Error::new(
                ErrorKind::CatalogCommitConflicts,
                format!(
                    "table {} changed since it was read (its metadata is no longer {old})",
                    self.base.identifier()
                ),
            ));
        }
        remove_old_metadata(&self.base, &metadata).await;
        Table::builder()
            .file_io(self.base.file_io().clone())
            .metadata(metadata)
            .metadata_location(new.to_string())
            .identifier(self.base.identifier().clone())
            .runtime(iceberg::Runtime::try_current()?)
            .build()
    }
}

/// Table property (Iceberg's): delete the metadata files that drop out of
/// the metadata log (`write.metadata.previous-versions-max`, default 100) at
/// each commit. Java's catalogs honour it when they commit; so does the sink.
pub const DELETE_AFTER_COMMIT: &str = "write.metadata.delete-after-commit.enabled";

/// When `new` (just committed over `base`) asks for it, deletes the
/// metadata files `base` logged that `new` no longer does. Best effort: a
/// file left behind is only disk space, and the commit has happened.
async fn remove_old_metadata(base: &Table, new: &iceberg::spec::TableMetadata) {
    let enabled = new
        .properties()
        .get(DELETE_AFTER_COMMIT)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if !enabled {
        return;
    }
    let kept: std::collections::HashSet<&str> = new
        .metadata_log()
        .iter()
        .map(|l| l.metadata_file.as_str())
        .collect();
    for old in base.metadata().metadata_log() {
        if kept.contains(old.metadata_file.as_str()) {
            continue;
        }
        if let Err(e) = base.file_io().delete(&old.metadata_file).await {
            tracing::debug!(
                "iceberg sink: could not delete the old metadata file {}: {e}",
                old.metadata_file
            );
        }
    }
}

#[async_trait]
impl Catalog for Pinned {
    async fn load_table(&self, table: &TableIdent) -> Result<Table> {
        if table == self.base.identifier() {
            return Ok(self.base.clone());
        }
        self.catalog.load_table(table).await
    }

    async fn update_table(&self, mut commit: TableCommit) -> Result<Table> {
        if commit.identifier() != self.base.identifier() {
            return self.catalog.update_table(commit).await;
        }
        let requirements = commit.take_requirements();
        let updates = commit.take_updates();
        self.commit_updates(requirements, updates).await
    }

    async fn list_namespaces(
        &self,
        parent: Option<&NamespaceIdent>,
    ) -> Result<Vec<NamespaceIdent>> {
        self.catalog.list_namespaces(parent).await
    }

    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<Namespace> {
        self.catalog.create_namespace(namespace, properties).await
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> Result<Namespace> {
        self.catalog.get_namespace(namespace).await
    }

    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> Result<bool> {
        self.catalog.namespace_exists(namespace).await
    }

    async fn update_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<()> {
        self.catalog.update_namespace(namespace, properties).await
    }

    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> Result<()> {
        self.catalog.drop_namespace(namespace).await
    }

    async fn list_tables(&self, namespace: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        self.catalog.list_tables(namespace).await
    }

    async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        creation: TableCreation,
    ) -> Result<Table> {
        self.catalog.create_table(namespace, creation).await
    }

    async fn drop_table(&self, table: &TableIdent) -> Result<()> {
        self.catalog.drop_table(table).await
    }

    async fn purge_table(&self, table: &TableIdent) -> Result<()> {
        self.catalog.purge_table(table).await
    }

    async fn table_exists(&self, table: &TableIdent) -> Result<bool> {
        self.catalog.table_exists(table).await
    }

    async fn rename_table(&self, src: &TableIdent, dest: &TableIdent) -> Result<()> {
        self.catalog.rename_table(src, dest).await
    }

    async fn register_table(&self, table: &TableIdent, metadata_location: String) -> Result<Table> {
        self.catalog.register_table(table, metadata_location).await
    }
}
