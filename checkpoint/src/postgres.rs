//! The shared store: checkpoints of many pipelines in one PostgreSQL table,
//! `tributary_checkpoints(pipeline_id, epoch, payload)`, payload in the same
//! checksummed format as the files of the local store; the run that owns
//! each pipeline in `<table>_owners(pipeline_id, generation, owner)`. A claim
//! increments the generation in one statement; a fenced write reads it
//! `FOR SHARE` in the transaction that writes the checkpoint, so a claim
//! waits for a write in flight and a write after a claim sees it.

use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::{
    Checkpoint, CheckpointError, CheckpointStore, Claim, Owner, Result, decode_owned, encode,
    fenced,
};

pub struct PostgresStore {
    pub(super) pool: PgPool,
    pub(super) rt: tokio::runtime::Runtime,
    /// The URI without its password, for messages.
    shown: String,
    table: String,
    /// The claim this store made, whose writes it fences.
    claimed: Option<(String, Owner)>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("uri", &self.shown)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects and creates the table when missing. The optional URI query
    /// parameter `table` picks another table name (letters, digits, `_`).
    pub fn connect(uri: &str) -> Result<Self> {
        let shown = tributary_connector::redact_uri(uri);
        let (base, table) = match uri.split_once('?') {
            Some((base, query)) => {
                let mut table = None;
                let mut rest = Vec::new();
                for pair in query.split('&') {
                    match pair.strip_prefix("table=") {
                        Some(t) => table = Some(t.to_string()),
                        None => rest.push(pair),
                    }
                }
                let base = if rest.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", rest.join("&"))
                };
                (
                    base,
                    table.unwrap_or_else(|| "tributary_checkpoints".into()),
                )
            }
            None => (uri.to_string(), "tributary_checkpoints".into()),
        };
        if table.is_empty() || !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(CheckpointError::Config(format!(
                "{shown}: table name `{table}` must be letters, digits and `_`"
            )));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CheckpointError::Io {
                location: shown.clone(),
                message: e.to_string(),
                retryable: false,
            })?;
        let pool = rt
            .block_on(
                PgPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(std::time::Duration::from_secs(10))
                    .connect(&base),
            )
            .map_err(|e| CheckpointError::Io {
                location: shown.clone(),
                message: format!("cannot connect: {e}"),
                // A refused or dropped connection may be a server starting
                // up; a bad URI, a failed login or a missing database is not.
                retryable: match &e {
                    sqlx::Error::Configuration(_) => false,
                    sqlx::Error::Database(_) => transient(&e),
                    _ => true,
                },
            })?;
        let store = Self {
            pool,
            rt,
            shown,
            table,
            claimed: None,
        };
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS {} (pipeline_id TEXT NOT NULL, epoch BIGINT NOT NULL, payload BYTEA NOT NULL, \
             created_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (pipeline_id, epoch))",
            store.table
        );
        store.exec(|pool| async move { sqlx::query(&ddl).execute(&pool).await.map(|_| ()) })?;
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS {}_owners (pipeline_id TEXT PRIMARY KEY, generation BIGINT NOT NULL, \
             owner TEXT NOT NULL, claimed_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            store.table
        );
        store.exec(|pool| async move { sqlx::query(&ddl).execute(&pool).await.map(|_| ()) })?;
        Ok(store)
    }

    fn exec<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(PgPool) -> Fut,
        Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        self.rt
            .block_on(f(self.pool.clone()))
            .map_err(|e| CheckpointError::Io {
                location: self.shown.clone(),
                message: e.to_string(),
                retryable: transient(&e),
            })
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

/// Errors of a server that is restarting or out of reach, not of the
/// request: I/O, pool time-outs, and the SQLSTATEs of connection trouble
/// (class 08), an administrator or crash shutdown and "cannot connect now"
/// (57P01-57P03), and too many connections (53300).
fn transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// An owner as stored: the JSON of the run, the generation from its column.
fn stored_owner(generation: i64, owner: &str) -> Owner {
    let mut o: Owner = serde_json::from_str(owner).unwrap_or_else(|_| Owner {
        generation: 0,
        run_id: owner.to_string(),
        host: "?".into(),
        pid: 0,
        started_at: "?".into(),
    });
    o.generation = generation as u64;
    o
}

impl CheckpointStore for PostgresStore {
    fn claim(&mut self, pipeline: &str, owner: &Owner) -> Result<Claim> {
        let owners = format!("{}_owners", self.table);
        let json = serde_json::to_string(owner).expect("an owner always serialises");
        let id = pipeline.to_string();
        let (generation, previous) = self.exec(|pool| async move {
            let mut tx = pool.begin().await?;
            let previous = sqlx::query(&format!(
                "SELECT generation, owner FROM {owners} WHERE pipeline_id = $1 FOR UPDATE"
            ))
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| stored_owner(r.get(0), &r.get::<String, _>(1)));
            let generation: i64 = sqlx::query(&format!(
                "INSERT INTO {owners} AS o (pipeline_id, generation, owner) VALUES ($1, 1, $2) \
                 ON CONFLICT (pipeline_id) DO UPDATE SET generation = o.generation + 1, \
                 owner = EXCLUDED.owner, claimed_at = now() RETURNING generation"
            ))
            .bind(&id)
            .bind(&json)
            .fetch_one(&mut *tx)
            .await?
            .get(0);
            tx.commit().await?;
            Ok((generation, previous))
        })?;
        let owner = Owner {
            generation: generation as u64,
            ..owner.clone()
        };
        self.claimed = Some((pipeline.to_string(), owner.clone()));
        Ok(Claim { owner, previous })
    }

    fn put(&mut self, c: &Checkpoint) -> Result<()> {
        let sql = format!(
            "INSERT INTO {} (pipeline_id, epoch, payload) VALUES ($1, $2, $3) \
             ON CONFLICT (pipeline_id, epoch) DO UPDATE SET payload = EXCLUDED.payload, created_at = now()",
            self.table
        );
        let payload = encode(c);
        let (id, epoch) = (c.pipeline_id.clone(), c.epoch as i64);
        let me = self
            .claimed
            .as_ref()
            .filter(|(p, _)| *p == c.pipeline_id)
            .map(|(_, o)| o.clone());
        let owners = format!("{}_owners", self.table);
        let check = me.as_ref().map(|m| m.generation as i64);
        let newer = self.exec(|pool| async move {
            let mut tx = pool.begin().await?;
            if let Some(mine) = check {
                let row = sqlx::query(&format!(
                    "SELECT generation, owner FROM {owners} WHERE pipeline_id = $1 FOR SHARE"
                ))
                .bind(&id)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(row) = row
                    && row.get::<i64, _>(0) != mine
                {
                    return Ok(Some(stored_owner(row.get(0), &row.get::<String, _>(1))));
                }
            }
            sqlx::query(&sql)
                .bind(&id)
                .bind(epoch)
                .bind(payload)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(None)
        })?;
        match (newer, me) {
            (Some(newer), Some(me)) => Err(fenced(
                &c.pipeline_id,
                &me,
                &newer,
                &format!("{} table {}_owners", self.shown, self.table),
            )),
            _ => Ok(()),
        }
    }

    fn get(&mut self, pipeline: &str, epoch: u64) -> Result<Option<Checkpoint>> {
        let sql = format!(
            "SELECT payload FROM {} WHERE pipeline_id = $1 AND epoch = $2",
            self.table
        );
        let id = pipeline.to_string();
        let row = self.exec(|pool| async move {
            sqlx::query(&sql)
                .bind(id)
                .bind(epoch as i64)
                .fetch_optional(&pool)
                .await
        })?;
        let Some(row) = row else { return Ok(None) };
        let payload: Vec<u8> = row.get(0);
        let location = format!(
            "{} table {} (pipeline `{pipeline}`, epoch {epoch})",
            self.shown, self.table
        );
        let c = decode_owned(payload, &location)?;
        if c.pipeline_id != pipeline || c.epoch != epoch {
            return Err(CheckpointError::Damaged {
                location,
                what: format!(
                    "the row holds pipeline `{}` epoch {}",
                    c.pipeline_id, c.epoch
                ),
                fix: "Delete the row and run again".into(),
            });
        }
        Ok(Some(c))
    }

    fn epochs(&mut self, pipeline: &str) -> Result<Vec<u64>> {
        let sql = format!(
            "SELECT epoch FROM {} WHERE pipeline_id = $1 ORDER BY epoch",
            self.table
        );
        let id = pipeline.to_string();
        let rows =
            self.exec(|pool| async move { sqlx::query(&sql).bind(id).fetch_all(&pool).await })?;
        Ok(rows.iter().map(|r| r.get::<i64, _>(0) as u64).collect())
    }

    fn prune(&mut self, pipeline: &str, keep_from: u64) -> Result<()> {
        let sql = format!(
            "DELETE FROM {} WHERE pipeline_id = $1 AND epoch < $2",
            self.table
        );
        let id = pipeline.to_string();
        self.exec(|pool| async move {
            sqlx::query(&sql)
                .bind(id)
                .bind(keep_from as i64)
                .execute(&pool)
                .await
                .map(|_| ())
        })
    }

    fn describe(&self) -> String {
        format!("checkpoint table {} in {}", self.table, self.shown)
    }
}
