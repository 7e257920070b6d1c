//! Runs one pipeline: source → WASM transforms → sink, in epochs.
//!
//! Two threads. The **source thread** polls the source and sends batches, each
//! with the offsets *after* it, over a bounded channel (backpressure: a slow
//! sink blocks the source). The **pipeline thread** (the caller's) runs every
//! batch through the transform chain, stages the output in the sink, and ends
//! an epoch when the trigger says so:
//!
//! 1. the checkpoint (offsets, watermark, transform state) is written durably;
//! 2. the epoch's dead letters are written;
//! 3. the sink commits the epoch atomically with the same offsets and watermark;
//! 4. the source is told (for lag monitoring only) and older checkpoints go.
//!
//! On start the sink's last commit is the truth: the checkpoint of that epoch is
//! restored and the source resumes at its offsets. A crash anywhere in 1–4
//! leaves either the previous epoch committed (and the epoch is done again) or
//! this one (and it is not done again): every record lands exactly once.
//!
//! Over 800 lines, on purpose: the epoch protocol (recover, process, commit
//! with retries, stop) is one state machine over one `Pipeline`; split across
//! files its ordering guarantees would have to be read across them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tributary_connector::{
    CommitOutcome, Delivery, EpochCommit, Offsets, Owner, Poll, Sink, Source, SourceBatch,
};

use tributary_checkpoint::{
    self as checkpoint, Checkpoint, CheckpointError, CheckpointStore, TransformSnapshot,
};
use tributary_wasm_host::{ChainState, TransformChain, TransformEngine};

use crate::config::{ConfigError, ErrorPolicy, LoadedPipeline, OnDamaged};
use crate::dead_letter::{DeadLetter, DeadLetterOutput};
pub use crate::error::PipelineError;
use crate::metrics::Metrics;
use crate::registry::Registry;

/// How a run ends.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Process what is available at start, commit, and return (Spark's
    /// `Trigger.AvailableNow`).
    pub available_now: bool,
    /// How often to print the progress line (`None`: never).
    pub progress_every: Option<Duration>,
    /// Offsets set by an operator (the REST worker's offset reset/alter).
    pub offsets_override: Option<OffsetsOverride>,
}

/// Where to resume instead of the last commit's offsets, with fresh
/// transform state: applies while the sink's last committed epoch is still
/// `after_epoch` (the one committed when the override was set), so a crash
/// before the first new commit applies it again, and a later run, after
/// that commit, ignores it.
#[derive(Clone, Debug)]
pub struct OffsetsOverride {
    pub after_epoch: u64,
    /// `None`: from the start of the source.
    pub offsets: Option<Offsets>,
}

/// What a finished run did.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    pub epochs_committed: u64,
    pub last_epoch: u64,
    pub records_in: u64,
    pub records_out: u64,
    /// Median and 99th percentile of this run's commit latencies.
    pub commit_latency: Option<(Duration, Duration)>,
    /// The delivery guarantee that was in force (the sink's).
    pub delivery: Option<Delivery>,
}

enum FromSource {
    Batch(SourceBatch),
    /// Nothing new right now (sent once per idle spell).
    Idle,
    /// A bounded source has been read to the end.
    Exhausted,
    Failed(tributary_connector::Error),
}

enum ToSource {
    Committed(Offsets),
}

/// A pipeline, built and ready to run.
pub struct Pipeline {
    loaded: LoadedPipeline,
    source: Option<Box<dyn Source>>,
    sink: Box<dyn Sink>,
    chain: TransformChain,
    /// `None` while the store could not be reached at build: `run` opens it,
    /// retrying.
    store: Option<Box<dyn CheckpointStore>>,
    dead_letter: Option<DeadLetterOutput>,
    /// An exactly-once sink that had no commit of this pipeline when the
    /// run started: after the first commit, whether it recorded one is
    /// checked (see `commit_if_dirty`).
    sink_unrecorded: bool,
    /// The checkpoints the state of the last one builds on: `None` until a
    /// full snapshot is written (at start, after state was reset).
    lineage: Option<Lineage>,
    pub metrics: Arc<Metrics>,
}

/// Where the checkpointed transform state stands: the last full snapshot
/// and the changelogs written over it since.
#[derive(Clone, Copy, Debug)]
struct Lineage {
    /// The epoch of the full snapshot.
    full_epoch: u64,
    full_bytes: u64,
    /// Bytes of the changelogs written since.
    changelog_bytes: u64,
    /// The newest checkpoint of the chain: the next changelog's base.
    last_epoch: u64,
}

impl Lineage {
    /// Where the state stands once epoch `epoch`'s checkpoint of `bytes`
    /// bytes is written (or read back) over `before`: a changelog extends
    /// the chain, a full snapshot starts a new one.
    fn then(before: Option<Lineage>, epoch: u64, bytes: u64, changelog: bool) -> Lineage {
        match before {
            Some(l) if changelog => Lineage {
                changelog_bytes: l.changelog_bytes + bytes,
                last_epoch: epoch,
                ..l
            },
            _ => Lineage {
                full_epoch: epoch,
                full_bytes: bytes,
                changelog_bytes: 0,
                last_epoch: epoch,
            },
        }
    }
}

/// Changelogs may add up to this much before a full snapshot is due, however
/// small the state (see `checkpoint.full_snapshot_every`).
const CHANGELOG_ALLOWANCE: u64 = 1 << 20;

fn state_bytes(state: &ChainState) -> u64 {
    state.transforms.iter().map(|(_, s)| s.len() as u64).sum()
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("name", &self.loaded.config.name)
            .finish_non_exhaustive()
    }
}

/// A pipeline's connectors and transforms, built but not running.
pub type Parts = (Box<dyn Source>, Box<dyn Sink>, TransformChain);

/// Builds the source, sink and transform chain of a pipeline without running
/// anything: what `tributary validate` checks.
pub fn build_parts(
    loaded: &LoadedPipeline,
    engine: &TransformEngine,
    registry: &Registry,
) -> Result<Parts, PipelineError> {
    let config = &loaded.config;
    let ctx = loaded.connector_context();
    let source = registry
        .source(&config.source.kind, &config.source.fields, &ctx)
        .map_err(PipelineError::Source)?;
    let sink = registry
        .sink(&config.sink.kind, &config.sink.fields, &ctx)
        .map_err(PipelineError::Sink)?;
    check_delivery(config.delivery, &config.sink.kind, &*sink)?;
    let chain = crate::transforms::build_chain(loaded, engine)?;
    Ok((source, sink, chain))
}

/// Refuses a sink that gives less than the pipeline's `delivery` asks for.
pub fn check_delivery(
    wanted: Option<Delivery>,
    kind: &str,
    sink: &dyn Sink,
) -> Result<(), PipelineError> {
    let gives = sink.delivery();
    match wanted {
        Some(wanted) if wanted > gives => {
            Err(PipelineError::Config(ConfigError::invalid(format!(
                "\"delivery\": \"{wanted}\" asks for more than the `{kind}` sink ({}) gives: it is {gives}. \
             Choose a sink that gives {wanted} (iceberg, parquet, jsonl to a folder, or kafka with \"transactions\": true), \
             or set \"delivery\": \"{gives}\" to accept duplicates after a crash",
                sink.describe()
            ))))
        }
        _ => Ok(()),
    }
}

impl Pipeline {
    pub fn build(
        loaded: LoadedPipeline,
        engine: &TransformEngine,
        registry: &Registry,
    ) -> Result<Self, PipelineError> {
        let (source, sink, chain) = build_parts(&loaded, engine, registry)?;
        // A store that is only unreachable now (a restarting server) is
        // opened by `run`, with retries; anything else is wrong for good.
        let store =
            match checkpoint::open_store(&loaded.config.checkpoint.location, &loaded.base_dir) {
                Ok(store) => Some(store),
                Err(e) if e.is_retryable() => None,
                Err(e) => return Err(e.into()),
            };
        let dead_letter = match loaded.dead_letter_dir() {
            Some(dir) => Some(
                DeadLetterOutput::new(dir.clone(), &loaded.config.name).map_err(|e| {
                    PipelineError::Config(ConfigError::invalid(format!(
                        "cannot create the dead-letter folder {}: {e}",
                        dir.display()
                    )))
                })?,
            ),
            None => None,
        };
        Ok(Self {
            loaded,
            source: Some(source),
            sink,
            chain,
            store,
            dead_letter,
            sink_unrecorded: false,
            lineage: None,
            metrics: Arc::new(Metrics::default()),
        })
    }

    pub fn name(&self) -> &str {
        &self.loaded.config.name
    }

    /// The checkpoint store (opened before anything runs).
    fn store(&mut self) -> &mut dyn CheckpointStore {
        self.store
            .as_deref_mut()
            .expect("the checkpoint store is opened before the pipeline runs")
    }

    /// The delivery guarantee in force: the sink's.
    pub fn delivery(&self) -> Delivery {
        self.sink.delivery()
    }

    /// Finds where to resume: the sink's last commit, and the checkpoint of
    /// that epoch. Returns the offsets to resume from and the next epoch.
    fn recover(
        &mut self,
        offsets_override: Option<&OffsetsOverride>,
    ) -> Result<(Option<Offsets>, u64), PipelineError> {
        let name = self.name().to_string();
        // This run owns the pipeline: only it tidies up after a crash.
        retry("recover the sink", || self.sink.recover(&name)).map_err(PipelineError::Sink)?;
        let last = retry("read the last commit", || self.sink.last_commit(&name))
            .map_err(PipelineError::Sink)?;
        let last_epoch = last.as_ref().map_or(0, |l| l.epoch);
        if self.sink.delivery() == Delivery::ExactlyOnce {
            self.check_agreement(last_epoch, last.is_some())?;
            self.sink_unrecorded = last.is_none();
        }
        if let Some(out) = self.dead_letter.as_mut() {
            out.recover(last_epoch).map_err(PipelineError::DeadLetter)?;
        }
        if let Some(o) = offsets_override.filter(|o| o.after_epoch == last_epoch) {
            tracing::info!(
                pipeline = %name,
                "offsets set by the operator: resuming from {} with fresh transform state (epoch {} next)",
                o.offsets.as_ref().map_or("the start of the source".to_string(), |x| x.as_json().to_string()),
                last_epoch + 1
            );
            self.chain.restore(ChainState {
                watermark: None,
                transforms: Vec::new(),
            })?;
            self.metrics.set_watermark(None);
            return Ok((o.offsets.clone(), last_epoch + 1));
        }
        let Some(last) = last else {
            // A run that crashed before its first commit may have stored
            // where it started (epoch 0, see `run`): resolving `latest` again
            // would skip what arrived since.
            let start = retry_store("read the stored start position", || {
                self.store().get(&name, 0)
            })?;
            if let Some(start) = start {
                tracing::info!(pipeline = %name, "no earlier commit in {}: starting from the start position stored by the first run, {}", self.sink.describe(), start.offsets);
                return Ok((Some(Offsets::new(start.offsets)), 1));
            }
            tracing::info!(pipeline = %name, "no earlier commit in {}: starting from the beginning", self.sink.describe());
            return Ok((None, 1));
        };
        let epoch = last.epoch;
        let found = retry_store("read the checkpoint", || {
            self.store().load_chain(&name, epoch)
        });
        match found {
            Ok(Some(mut chain)) => {
                let ckpt = chain.pop().expect("a chain holds the epoch asked for");
                if ckpt.offsets != *last.offsets.as_json() {
                    tracing::warn!(
                        pipeline = %name,
                        epoch = last.epoch,
                        "checkpoint offsets differ from the offsets committed in the sink; using the sink's"
                    );
                }
                let watermark = last.watermark_micros.or(ckpt.watermark_micros);
                let states = |c: Checkpoint| ChainState {
                    watermark: c.watermark_micros,
                    transforms: c
                        .transforms
                        .into_iter()
                        .map(|t| (t.name, t.state))
                        .collect(),
                };
                // The full snapshot, then each changelog over it, in order.
                let mut lineage: Option<Lineage> = None;
                for c in chain.into_iter().chain(std::iter::once(ckpt)) {
                    let at = c.epoch;
                    let state = states(c);
                    let bytes = state_bytes(&state);
                    let changelog = lineage.is_some();
                    if changelog {
                        self.chain.apply_changelog(state)?;
                    } else {
                        self.chain.restore(state)?;
                    }
                    lineage = Some(Lineage::then(lineage, at, bytes, changelog));
                }
                self.chain.restore_watermark(watermark);
                self.lineage = lineage;
                let changelogs = lineage.map_or(0, |l| l.last_epoch - l.full_epoch);
                if changelogs > 0 {
                    tracing::info!(pipeline = %name, epoch = last.epoch, "resuming after epoch {} from {} (the full snapshot of epoch {} and {changelogs} changelog(s) after it)", last.epoch, self.store().describe(), lineage.map_or(0, |l| l.full_epoch));
                } else {
                    tracing::info!(pipeline = %name, epoch = last.epoch, "resuming after epoch {} from {}", last.epoch, self.store().describe());
                }
            }
            // Unreachable or unusable is not damaged: never resume with
            // empty state because a server was restarting.
            Err(e) if !e.is_damage() => {
                return Err(PipelineError::checkpoint(
                    e,
                    format!(
                        "The checkpoint of epoch {} could not be read; this is not damage, so the pipeline \
                         stops rather than resume without its transform state. Make the store reachable and start again",
                        last.epoch
                    ),
                ));
            }
            other => {
                let problem = match other {
                    Ok(_) => CheckpointError::Missing {
                        location: self.store().describe(),
                        epoch: last.epoch,
                    },
                    Err(e) => e,
                };
                if !self.chain.is_stateful()
                    || self.loaded.config.checkpoint.on_damaged == OnDamaged::Table
                {
                    if self.chain.is_stateful() {
                        tracing::warn!(
                            pipeline = %name,
                            "{problem}; resuming from the offsets and watermark committed in {} with EMPTY transform state (checkpoint.on_damaged = \"table\")",
                            self.sink.describe()
                        );
                    }
                    self.chain.restore(ChainState {
                        watermark: last.watermark_micros,
                        transforms: Vec::new(),
                    })?;
                } else {
                    let context = format!(
                        "The sink committed epoch {} of pipeline `{name}`, but its transform state cannot be restored. \
                         Fix or restore the checkpoint location, or set \"checkpoint\": {{\"on_damaged\": \"table\"}} to resume \
                         from the offsets and watermark committed in {} with empty transform state \
                         (dedup forgets the keys it has seen)",
                        last.epoch,
                        self.sink.describe()
                    );
                    return Err(PipelineError::checkpoint(problem, context));
                }
            }
        }
        self.metrics.set_watermark(self.chain.watermark());
        Ok((Some(last.offsets), last.epoch + 1))
    }

    /// The sink's last commit against the checkpoint store's newest epoch.
    /// Epoch `e` is checkpointed before it is committed, so the store may be
    /// one epoch ahead of the sink (a crash between the two), never more:
    /// more means the sink lost commits (a table dropped and made again,
    /// restored from a backup, a commit record removed), and resuming from
    /// the sink would read the source again from an older position, writing
    /// its records twice. That cannot be resolved here: stop, saying so.
    fn check_agreement(&mut self, last_epoch: u64, found: bool) -> Result<(), PipelineError> {
        let name = self.name().to_string();
        let stored = retry_store("list the stored checkpoints", || self.store().epochs(&name))
            .map_err(PipelineError::from)?;
        let Some(&newest) = stored.last().filter(|&&e| e > last_epoch + 1) else {
            return Ok(());
        };
        let sink_has = if found {
            format!("epoch {last_epoch} as its last commit of pipeline `{name}`")
        } else {
            format!("no commit of pipeline `{name}`")
        };
        Err(PipelineError::StoreAheadOfSink(format!(
            "the {} holds epoch {newest} of pipeline `{name}`, but {} has {sink_has}: the sink lost commits that \
             were made (a table dropped and created again, or restored from a backup; a commit record removed). \
             Resuming from the sink would read the source again from {} and write those records a second time, \
             so the pipeline stops. To start over on purpose, remove the checkpoint location `{}` (its files, or \
             its rows of this pipeline); otherwise restore the sink to where its commits are",
            self.store().describe(),
            self.sink.describe(),
            if found {
                "that commit's offsets"
            } else {
                "the beginning"
            },
            tributary_connector::redact_uri(&self.loaded.config.checkpoint.location),
        )))
    }

    /// Runs until the source is exhausted, `stop` is set, or (with
    /// `available_now`) everything available at start is committed.
    pub fn run(
        mut self,
        options: RunOptions,
        stop: Arc<AtomicBool>,
    ) -> Result<RunSummary, PipelineError> {
        tracing::info!(
            pipeline = %self.name(),
            "delivery: {} into {}",
            self.delivery(),
            self.sink.describe()
        );
        if self.store.is_none() {
            let (location, base) = (
                self.loaded.config.checkpoint.location.clone(),
                self.loaded.base_dir.clone(),
            );
            let store = retry_store("open the checkpoint store", || {
                checkpoint::open_store(&location, &base)
            })?;
            self.store = Some(store);
        }
        // Take the pipeline over: a newer generation in the store, then in
        // the sink, so that an older instance still running is fenced at
        // its next checkpoint or commit (and this one, if a newer one
        // started meanwhile).
        let name = self.name().to_string();
        let me = this_run();
        let claim = retry_store("claim the pipeline", || self.store().claim(&name, &me))
            .map_err(PipelineError::from)?;
        match &claim.previous {
            Some(previous) => {
                tracing::info!(pipeline = %name, "owner: {}; taking over from {previous}", claim.owner)
            }
            None => tracing::info!(pipeline = %name, "owner: {}", claim.owner),
        }
        retry("fence the sink", || self.sink.fence(&name, &claim.owner))
            .map_err(PipelineError::Sink)?;
        let (resume, mut epoch) = self.recover(options.offsets_override.as_ref())?;
        let mut source = self.source.take().expect("a pipeline runs once");
        // An unreachable broker at start is retried with backoff, as later.
        retry("open the source", || source.open(resume.as_ref())).map_err(PipelineError::Source)?;
        if resume.is_none()
            && let Some(start) = source.start_position()
        {
            // Durable before the first poll: a crash before the first commit
            // resumes here (see `recover`).
            let start = Checkpoint {
                pipeline_id: self.name().to_string(),
                epoch: 0,
                offsets: start.into_json(),
                watermark_micros: None,
                transforms: Vec::new(),
                created_at_ms: chrono::Utc::now().timestamp_millis(),
                base: None,
            };
            retry_store("write the start position", || self.store().put(&start))?;
        }
        if options.available_now {
            retry("fix the end of the source", || {
                source.bound_to_available_now()
            })
            .map_err(PipelineError::Source)?;
        }

        let trigger = self.loaded.config.trigger.clone();
        let (data_tx, data_rx) = mpsc::sync_channel::<FromSource>(4);
        let (ctl_tx, ctl_rx) = mpsc::channel::<ToSource>();
        let source_stop = Arc::new(AtomicBool::new(false));
        let source_thread = spawn_source(
            source,
            trigger.batch_size,
            data_tx,
            ctl_rx,
            source_stop.clone(),
            self.metrics.clone(),
        );
        let reporter = options.progress_every.map(|every| {
            spawn_reporter(
                self.name().to_string(),
                self.metrics.clone(),
                every,
                stop.clone(),
            )
        });

        let result = self.drive(&mut epoch, &data_rx, &ctl_tx, options, &stop);

        source_stop.store(true, Relaxed);
        drop(data_rx);
        drop(ctl_tx);
        let _ = source_thread.join();
        if let Some((handle, done)) = reporter {
            done.store(true, Relaxed);
            let _ = handle.join();
        }
        let snap = self.metrics.snapshot();
        eprintln!("{}", snap.progress_line(self.name(), None));
        result.map(|()| RunSummary {
            epochs_committed: snap.epochs_committed,
            last_epoch: snap.last_epoch,
            records_in: snap.records_in,
            records_out: snap.records_out,
            commit_latency: self.metrics.commit_percentiles(),
            delivery: Some(self.sink.delivery()),
        })
    }

    fn drive(
        &mut self,
        epoch: &mut u64,
        data_rx: &Receiver<FromSource>,
        ctl_tx: &Sender<ToSource>,
        options: RunOptions,
        stop: &AtomicBool,
    ) -> Result<(), PipelineError> {
        let interval = Duration::from_millis(self.loaded.config.trigger.interval_ms);
        let max_records = self.loaded.config.trigger.max_records_per_epoch;
        let max_bytes = self.loaded.config.trigger.max_bytes_per_epoch;
        let mut epoch_start = Instant::now();
        let mut epoch_records = 0u64;
        // In-memory bytes handed to the sink, for a sink that cannot say
        // what it staged (`Sink::staged_bytes`).
        let mut epoch_bytes = 0u64;
        let mut offsets: Option<Offsets> = None;
        loop {
            if stop.load(Relaxed) {
                tracing::info!(pipeline = %self.name(), "stopping: final commit");
                return self.commit_if_dirty(epoch, &mut offsets, ctl_tx);
            }
            let wait = interval
                .saturating_sub(epoch_start.elapsed())
                .min(Duration::from_millis(100));
            match data_rx.recv_timeout(wait) {
                // "Nothing yet, more to come" (Kafka while a fetch is in flight).
                Ok(FromSource::Batch(batch)) if batch.is_empty() => {}
                Ok(FromSource::Batch(batch)) => {
                    epoch_records += batch.len() as u64;
                    let after = batch.offsets.clone();
                    let started = Instant::now();
                    epoch_bytes += self.process(batch)?;
                    self.metrics.batch_seconds.observe(started.elapsed());
                    offsets = Some(after);
                    let bytes_reached = max_bytes
                        .is_some_and(|max| self.sink.staged_bytes().unwrap_or(epoch_bytes) >= max);
                    if epoch_records >= max_records || bytes_reached {
                        self.commit_if_dirty(epoch, &mut offsets, ctl_tx)?;
                        epoch_start = Instant::now();
                        epoch_records = 0;
                        epoch_bytes = 0;
                    }
                }
                Ok(FromSource::Idle) => {
                    if options.available_now {
                        return self.commit_if_dirty(epoch, &mut offsets, ctl_tx);
                    }
                }
                Ok(FromSource::Exhausted) => {
                    tracing::info!(pipeline = %self.name(), "the source is exhausted: final commit");
                    return self.commit_if_dirty(epoch, &mut offsets, ctl_tx);
                }
                Ok(FromSource::Failed(e)) => return Err(PipelineError::Source(e)),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(PipelineError::Source(tributary_connector::Error::internal(
                        "the source thread ended unexpectedly (see the log above)",
                    )));
                }
            }
            if epoch_start.elapsed() >= interval {
                self.commit_if_dirty(epoch, &mut offsets, ctl_tx)?;
                epoch_start = Instant::now();
                epoch_records = 0;
                epoch_bytes = 0;
            }
        }
    }

    /// One batch through the chain into the sink; returns the in-memory
    /// bytes of the rows handed to the sink.
    fn process(&mut self, batch: SourceBatch) -> Result<u64, PipelineError> {
        let policy = self.loaded.config.errors.policy;
        self.metrics
            .records_in
            .fetch_add(batch.len() as u64, Relaxed);
        for bad in batch.bad {
            let reason = format!("{} at {}", bad.reason, bad.position);
            if policy == ErrorPolicy::Fail {
                return Err(PipelineError::BadInput(format!(
                    "bad record from the source: {reason}. Nothing after it was committed. Fix the input, or set \
                     \"errors\": {{\"policy\": \"dead-letter\"}} to send such records to the dead-letter output and go on"
                )));
            }
            self.dead_letter_push(DeadLetter {
                stage: "source".into(),
                reason: bad.reason,
                position: Some(bad.position),
                record: None,
                raw: Some(bad.raw),
            });
        }
        if batch.records.num_rows() == 0 {
            return Ok(0);
        }
        // Under `dead-letter` the chain isolates the rows a transform fails
        // on and rejects them (they come back in `out.rejected`); what still
        // fails here has no record to blame (`on-watermark` failed) or the
        // policy is `fail`: the pipeline stops and replays from its last
        // checkpoint, so no transform's state runs ahead of the rows.
        let out = self.chain.run(&batch.records)?;
        if out.isolated > 0 {
            tracing::warn!(
                pipeline = %self.name(),
                "{} records that a transform fails on were isolated from a batch of {} and sent to the dead-letter output",
                out.isolated,
                batch.records.num_rows()
            );
        }
        self.metrics.isolated.fetch_add(out.isolated, Relaxed);
        self.metrics
            .dropped_late
            .fetch_add(out.late.len() as u64, Relaxed);
        self.metrics
            .dropped_duplicate
            .fetch_add(out.duplicates, Relaxed);
        self.metrics.filtered.fetch_add(out.filtered, Relaxed);
        for rejected in out.rejected {
            if policy == ErrorPolicy::Fail {
                return Err(PipelineError::BadInput(format!(
                    "transform `{}` rejected a record: {}. Record: {}. Nothing after it was committed. Fix the input, or set \
                     \"errors\": {{\"policy\": \"dead-letter\"}} to send such records to the dead-letter output and go on",
                    rejected.transform, rejected.reason, rejected.record
                )));
            }
            self.dead_letter_push(DeadLetter {
                stage: format!("transform:{}", rejected.transform),
                reason: rejected.reason,
                position: None,
                record: Some(rejected.record),
                raw: None,
            });
        }
        if self.loaded.config.errors.late_to_dead_letter {
            for late in out.late {
                self.dead_letter_push(DeadLetter {
                    stage: format!("transform:{}", late.transform),
                    reason: "late: event time at or before the watermark".into(),
                    position: None,
                    record: Some(late.record),
                    raw: None,
                });
            }
        }
        let mut bytes = 0u64;
        for batch in &out.batches {
            // Rows the sink cannot write (a value that does not fit its
            // column, a null in a required field) are left out by it and
            // handled as rows a transform rejects.
            let refused = self
                .sink
                .write_or_refuse(batch)
                .map_err(PipelineError::Sink)?;
            bytes += batch
                .columns()
                .iter()
                .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0) as u64)
                .sum::<u64>();
            self.metrics
                .records_out
                .fetch_add((batch.num_rows() - refused.len()) as u64, Relaxed);
            if let Some(first) = refused.first()
                && policy == ErrorPolicy::Fail
            {
                let record = tributary_wasm_host::rows_as_json(&batch.slice(first.row, 1));
                return Err(PipelineError::BadInput(format!(
                    "{} cannot write a record: {}. Record: {}. Nothing after it was committed. Fix the input \
                     or the table, or set \"errors\": {{\"policy\": \"dead-letter\"}} to send such records to the \
                     dead-letter output and go on",
                    self.sink.describe(),
                    first.reason,
                    record.first().cloned().unwrap_or_default()
                )));
            }
            for letter in DeadLetter::refused_by_sink(batch, refused) {
                self.dead_letter_push(letter);
            }
        }
        self.metrics.set_watermark(self.chain.watermark());
        Ok(bytes)
    }

    fn dead_letter_push(&mut self, letter: DeadLetter) {
        if let Some(out) = self.dead_letter.as_mut() {
            out.push(letter);
            self.metrics.dead_lettered.fetch_add(1, Relaxed);
        }
    }

    /// Ends the epoch when anything was read since the last commit.
    fn commit_if_dirty(
        &mut self,
        epoch: &mut u64,
        offsets: &mut Option<Offsets>,
        ctl_tx: &Sender<ToSource>,
    ) -> Result<(), PipelineError> {
        let Some(offsets) = offsets.take() else {
            return Ok(());
        };
        let started = Instant::now();
        let name = self.name().to_string();
        let changelog = self.changelog_to_checkpoint(*epoch);
        let base = changelog.as_ref().map(|(_, base)| *base);
        // A full snapshot is streamed into the store (its states written
        // straight from the state stores); a changelog is small.
        let (transforms, lens): (Vec<TransformSnapshot>, Vec<u64>) = match changelog {
            Some((changes, _)) => changes
                .transforms
                .into_iter()
                .map(|(name, state)| {
                    let len = state.len() as u64;
                    (TransformSnapshot { name, state }, len)
                })
                .unzip(),
            None => self
                .chain
                .snapshot_lens()
                .into_iter()
                .map(|(name, len)| {
                    let empty = TransformSnapshot {
                        name,
                        state: Vec::new(),
                    };
                    (empty, len)
                })
                .unzip(),
        };
        let bytes: u64 = lens.iter().sum();
        let checkpoint = Checkpoint {
            pipeline_id: name.clone(),
            epoch: *epoch,
            offsets: offsets.as_json().clone(),
            watermark_micros: self.chain.watermark(),
            transforms,
            created_at_ms: chrono::Utc::now().timestamp_millis(),
            base,
        };
        let store = self
            .store
            .as_deref_mut()
            .expect("the checkpoint store is opened before the pipeline runs");
        let chain = &self.chain;
        retry_store("write the checkpoint", || match base {
            Some(_) => store.put(&checkpoint),
            None => store.put_streamed(&checkpoint, &lens, &mut |i, w| chain.write_snapshot(i, w)),
        })?;
        self.chain.clear_changes();
        self.metrics.checkpoint_bytes.store(bytes, Relaxed);
        self.metrics
            .state_keys
            .store(self.chain.state_entries() as u64, Relaxed);
        if base.is_none() {
            self.metrics.full_snapshots.fetch_add(1, Relaxed);
        }
        self.lineage = Some(Lineage::then(self.lineage, *epoch, bytes, base.is_some()));
        crash_point("checkpoint-written");
        if let Some(out) = self.dead_letter.as_mut() {
            out.stage(*epoch).map_err(PipelineError::DeadLetter)?;
        }
        let commit = EpochCommit {
            pipeline_id: name.clone(),
            epoch: *epoch,
            offsets: offsets.clone(),
            watermark_micros: checkpoint.watermark_micros,
        };
        let outcome = retry("commit", || self.sink.commit(&commit)).map_err(PipelineError::Sink)?;
        if outcome == CommitOutcome::AlreadyCommitted {
            tracing::warn!(pipeline = %name, epoch = *epoch, "epoch {} was already committed; not written again", *epoch);
        }
        crash_point("committed");
        if self.sink_unrecorded {
            self.forget_unrecorded(*epoch)?;
        }
        if let Some(out) = self.dead_letter.as_mut() {
            out.publish(*epoch).map_err(PipelineError::DeadLetter)?;
        }
        let _ = ctl_tx.send(ToSource::Committed(offsets));
        // Older checkpoints than the full snapshot this epoch builds on are
        // no longer needed.
        let keep_from = self.lineage.map_or(*epoch, |l| l.full_epoch);
        if let Err(e) = self.store().prune(&name, keep_from) {
            tracing::warn!(pipeline = %name, "could not remove old checkpoints: {e}");
        }
        let rows = self.sink.row_count();
        self.metrics.committed(*epoch, started.elapsed(), rows);
        tracing::debug!(
            pipeline = %name,
            epoch = *epoch,
            "committed in {:?}; checkpoint: {} of {bytes} bytes",
            started.elapsed(),
            if base.is_some() { "changelog" } else { "full snapshot" }
        );
        *epoch += 1;
        Ok(())
    }
}

impl Pipeline {
    /// The changelog to checkpoint at `epoch`, and the epoch it changes;
    /// None when a full snapshot is due. A changelog while the chain since
    /// the last full snapshot is short (fewer than
    /// `checkpoint.full_snapshot_every` epochs, and its changelogs add up to
    /// less than that snapshot, or 1 MiB).
    fn changelog_to_checkpoint(&mut self, epoch: u64) -> Option<(ChainState, u64)> {
        let every = self.loaded.config.checkpoint.full_snapshot_every;
        let l = self.lineage?;
        if !self.chain.is_stateful() || epoch.saturating_sub(l.full_epoch) >= every {
            return None;
        }
        let changes = self.chain.changelog();
        let allowance = l.full_bytes.max(CHANGELOG_ALLOWANCE);
        (l.changelog_bytes + state_bytes(&changes) <= allowance).then_some((changes, l.last_epoch))
    }

    /// After a commit of a sink that had no commit of this pipeline: a sink
    /// may commit an epoch without recording it (an Iceberg table that does
    /// not exist yet, when the epoch had no rows for it). Then the store
    /// must not keep that epoch's checkpoint either, or the next start
    /// would find the store ahead of the sink (see `check_agreement`); the
    /// start position (epoch 0) stays.
    fn forget_unrecorded(&mut self, epoch: u64) -> Result<(), PipelineError> {
        let name = self.name().to_string();
        if retry("read the last commit", || self.sink.last_commit(&name))
            .map_err(PipelineError::Sink)?
            .is_some()
        {
            self.sink_unrecorded = false;
            return Ok(());
        }
        let store_err = PipelineError::from;
        let start = retry_store("read the start position", || self.store().get(&name, 0))
            .map_err(store_err)?;
        retry_store("remove an unrecorded checkpoint", || {
            self.store().prune(&name, epoch + 1)
        })
        .map_err(store_err)?;
        // Nothing left to build a changelog on.
        self.lineage = None;
        if let Some(start) = start {
            retry_store("write the start position", || self.store().put(&start))
                .map_err(store_err)?;
        }
        Ok(())
    }
}

/// This run, as the owner it claims the pipeline for (the store gives it
/// its generation).
fn this_run() -> Owner {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    Owner {
        generation: 0,
        run_id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
        host,
        pid: std::process::id(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

/// The crash tests' hook (`TRIBUTARY_CRASH_AT=<point>@<n>`): `checkpoint-written`
/// (the checkpoint is durable, the sink commit has not happened) and `committed`
/// (the sink committed, nothing else knows yet). See the contract crate.
fn crash_point(point: &str) {
    tributary_connector::crash_point(point);
}

/// Retries a connector call while its error says retrying may help, with
/// exponential backoff (up to about a minute in all).
fn retry<T>(
    what: &str,
    mut call: impl FnMut() -> tributary_connector::Result<T>,
) -> tributary_connector::Result<T> {
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match call() {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && attempt < 10 => {
                tracing::warn!("{what} failed (attempt {attempt}, retrying in {delay:?}): {e}");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(10));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// How long an unreachable checkpoint store is waited for before the
/// pipeline stops.
const STORE_RETRY_DEADLINE: Duration = Duration::from_secs(120);

/// Retries a checkpoint store call while the store is unreachable (a
/// restarting server, a pool time-out), with exponential backoff, one log
/// line per attempt, and a deadline ([`STORE_RETRY_DEADLINE`]).
fn retry_store<T>(
    what: &str,
    mut call: impl FnMut() -> checkpoint::Result<T>,
) -> checkpoint::Result<T> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match call() {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && started.elapsed() + delay < STORE_RETRY_DEADLINE => {
                tracing::warn!(
                    "{what}: the checkpoint store is unreachable (attempt {attempt}, retrying in {delay:?}, \
                     giving up {:?} after the first): {e}",
                    STORE_RETRY_DEADLINE
                );
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn spawn_source(
    mut source: Box<dyn Source>,
    batch_size: usize,
    tx: SyncSender<FromSource>,
    ctl: Receiver<ToSource>,
    stop: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("tributary-source".into())
        .spawn(move || {
            let mut idle_sent = false;
            let mut backoff = Duration::from_millis(100);
            while !stop.load(Relaxed) {
                while let Ok(ToSource::Committed(offsets)) = ctl.try_recv() {
                    if let Err(e) = source.committed(&offsets) {
                        tracing::warn!("source could not acknowledge committed offsets: {e}");
                    }
                }
                let polled = source.poll(batch_size);
                // After every poll: the source may block on the channel for a
                // while next, and the lag must not be stale meanwhile.
                metrics.set_backlog(source.backlog());
                match polled {
                    Ok(Poll::Batch(batch)) => {
                        idle_sent = false;
                        backoff = Duration::from_millis(100);
                        match tx.try_send(FromSource::Batch(batch)) {
                            Ok(()) => {}
                            Err(TrySendError::Disconnected(_)) => return,
                            Err(TrySendError::Full(batch)) => {
                                if !send_when_taken(&mut *source, &tx, batch, &stop) {
                                    return;
                                }
                            }
                        }
                    }
                    Ok(Poll::Idle) => {
                        if !idle_sent {
                            if tx.send(FromSource::Idle).is_err() {
                                return;
                            }
                            idle_sent = true;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Ok(Poll::Exhausted) => {
                        let _ = tx.send(FromSource::Exhausted);
                        // Keep acknowledging commits until the pipeline stops.
                        while let Ok(ToSource::Committed(offsets)) = ctl.recv() {
                            let _ = source.committed(&offsets);
                        }
                        return;
                    }
                    Err(e) if e.is_retryable() => {
                        tracing::warn!("source: {e} (retrying in {backoff:?})");
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                    Err(e) => {
                        let _ = tx.send(FromSource::Failed(e));
                        return;
                    }
                }
            }
        })
        .expect("spawn the source thread")
}

/// Hands a batch to a pipeline that is behind. Waiting briefly is normal
/// under a backlog (the source's own prefetch is bounded); a stall longer
/// than [`PAUSE_AFTER`] (a sink retrying an outage, say) pauses the source,
/// which stops fetching until the batch is taken. False when the pipeline
/// has gone.
fn send_when_taken(
    source: &mut dyn Source,
    tx: &SyncSender<FromSource>,
    batch: FromSource,
    stop: &AtomicBool,
) -> bool {
    let started = Instant::now();
    let mut pending = batch;
    let mut paused = false;
    let sent = loop {
        match tx.try_send(pending) {
            Ok(()) => break true,
            Err(TrySendError::Disconnected(_)) => break false,
            Err(TrySendError::Full(back)) => pending = back,
        }
        if stop.load(Relaxed) {
            break false;
        }
        if !paused && started.elapsed() >= PAUSE_AFTER {
            source.pause(true);
            paused = true;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if paused {
        source.pause(false);
    }
    sent
}

/// How long the pipeline may leave a batch waiting before the source is
/// paused.
const PAUSE_AFTER: Duration = Duration::from_secs(2);

fn spawn_reporter(
    name: String,
    metrics: Arc<Metrics>,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> (JoinHandle<()>, Arc<AtomicBool>) {
    let done = Arc::new(AtomicBool::new(false));
    let done2 = done.clone();
    let handle = std::thread::Builder::new()
        .name("tributary-progress".into())
        .spawn(move || {
            let mut previous = metrics.snapshot();
            let mut next = Instant::now() + every;
            while !done2.load(Relaxed) && !stop.load(Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if Instant::now() >= next {
                    let now = metrics.snapshot();
                    eprintln!("{}", now.progress_line(&name, Some(&previous)));
                    previous = now;
                    next += every;
                }
            }
        })
        .expect("spawn the progress thread");
    (handle, done)
}
