//! A merging append: the sink's commit, with the table's small manifests
//! merged as they accumulate, so the number of manifests a snapshot carries
//! stays bounded however many commits the table has seen.
//!
//! A fast append adds one manifest per commit and writes a manifest list
//! that carries every earlier one: after a day at a 5 s trigger a snapshot
//! has ~17,000 manifests, each commit writes a longer manifest list than the
//! last, and every reader (PyIceberg, DuckDB, Spark) opens every manifest.
//! Java Iceberg's default append (`MergeAppend`) avoids that, and so does
//! this one, with the same table properties and defaults:
//!
//! - `commit.manifest-merge.enabled` (default `true`);
//! - `commit.manifest.min-count-to-merge` (default 100): how many manifests
//!   are merged into one;
//! - `commit.manifest.target-size-bytes` (default 8 MiB): the most a merged
//!   manifest grows to; a manifest that size is kept as it is.
//!
//! Which manifests merge differs from Java, on purpose: Java packs the
//! data manifests, newest first, into bins of up to the target size and
//! merges the newest bin once it holds `min-count` manifests — the merged
//! manifest included, so every merge rewrites every file of the table until
//! that manifest reaches the target size (at 10,000 commits, ten thousand
//! entries rewritten every 100 commits). Here manifests merge by size tier
//! ([`bins_due`]): `min-count` manifests of one commit merge into one, and
//! `min-count` of those into one of the next tier, so a file is rewritten
//! once per tier and a merge reads about `min-count` manifests of one tier;
//! a snapshot carries fewer than `min-count` manifests per tier. Merging
//! writes one manifest with the live entries of the merged manifests as
//! EXISTING, with their original snapshot ids and sequence numbers; entries
//! deleted by earlier snapshots are dropped. Delete manifests, manifests of
//! other partition specs and manifests of the target size or more are
//! carried as they are. The snapshot summary records what happened under
//! Java's keys (`manifests-created`, `manifests-kept`, `manifests-replaced`,
//! `entries-processed`).
//!
//! **Off the commit path.** Unlike Java, the merge is not made inside the
//! commit: a merge reads and rewrites up to the target size of manifests
//! (thousands of entries), which would make the commit that does it tens of
//! times slower than the others. When a commit leaves a bin due,
//! [`prepare_merge`] writes the merged manifest in the background for the
//! *next* snapshot (whose id it picks), and the next [`append`] lists it in
//! place of the manifests it replaces — if they are all still in the table;
//! else it is dropped. A commit thus writes one manifest and one manifest
//! list whatever the table's age, and the manifest count stays bounded
//! (under `min-count` per tier, plus the commits made while a merge is
//! prepared).
//!
//! As with the sink's fast append, there is no duplicate-file check (it
//! would read every manifest): the epoch protocol keeps a file from landing
//! twice (data file names are new per epoch and run, and a commit is pinned
//! to the metadata it was built on).
//!
//! **Why this is hand-written.** iceberg-rust 0.10.1 has a fast append and
//! no merging one, and its `TransactionAction` trait and `TableCommit`
//! builder are crate-private, so no action of ours can join its
//! `Transaction`. Everything needed is public below that level: this module
//! writes the manifests and the manifest list with `ManifestWriterBuilder`
//! and `ManifestListWriter`, builds the snapshot with `Snapshot::builder`,
//! and returns `TableUpdate::AddSnapshot`/`SetSnapshotRef` with the
//! requirements a fast append states (`UuidMatch`, `RefSnapshotIdMatch`);
//! the sink commits them on the pinned table ([`crate::pinned`]).
//! Format-version 3 tables (row lineage) are appended by iceberg-rust's fast
//! append instead ([`can_merge`]).

use std::collections::HashMap;
use std::sync::Arc;

use iceberg::spec::{
    DataContentType, DataFile, DataFileFormat, FormatVersion, MAIN_BRANCH, ManifestContentType,
    ManifestFile, ManifestListWriter, ManifestStatus, ManifestWriter, ManifestWriterBuilder,
    Operation, Snapshot, SnapshotReference, SnapshotRetention, SnapshotSummaryCollector, Summary,
    TableMetadata,
};
use iceberg::table::Table;
use iceberg::{Error, ErrorKind, Result, TableRequirement, TableUpdate};
use uuid::Uuid;

/// Table property: whether appends merge manifests.
pub const MERGE_ENABLED: &str = "commit.manifest-merge.enabled";
/// Table property: how many manifests (of one size tier) are merged into one.
pub const MIN_COUNT_TO_MERGE: &str = "commit.manifest.min-count-to-merge";
/// Table property: the size, in bytes, merged manifests grow to.
pub const TARGET_SIZE_BYTES: &str = "commit.manifest.target-size-bytes";

/// How an append merges manifests, read from the table's properties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MergePolicy {
    pub enabled: bool,
    pub min_count: usize,
    pub target_size_bytes: u64,
}

impl Default for MergePolicy {
    /// Java Iceberg's defaults.
    fn default() -> Self {
        Self {
            enabled: true,
            min_count: 100,
            target_size_bytes: 8 * 1024 * 1024,
        }
    }
}

impl MergePolicy {
    /// The policy the table's properties set (defaults for those unset).
    pub fn from_properties(properties: &HashMap<String, String>) -> Result<Self> {
        fn parse<T: std::str::FromStr>(
            properties: &HashMap<String, String>,
            key: &str,
            default: T,
            expected: &str,
        ) -> Result<T> {
            match properties.get(key) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| {
                    Error::new(
                        ErrorKind::DataInvalid,
                        format!(
                            "table property `{key}` is `{v}`, not {expected}; set it to one \
                             (or remove it for the default)"
                        ),
                    )
                }),
            }
        }
        let d = Self::default();
        Ok(Self {
            enabled: parse(properties, MERGE_ENABLED, d.enabled, "`true` or `false`")?,
            // Java treats a count below 1 as 1 (merge at every commit).
            min_count: parse(
                properties,
                MIN_COUNT_TO_MERGE,
                d.min_count,
                "a whole number",
            )?
            .max(1),
            target_size_bytes: parse(
                properties,
                TARGET_SIZE_BYTES,
                d.target_size_bytes,
                "a size in bytes",
            )?,
        })
    }
}

/// Whether [`append`] can commit to a table of this format: versions 1 and
/// 2. Version 3 assigns row ids to manifests, which a merge would have to
/// carry over; those tables are appended by iceberg-rust's fast append.
pub fn can_merge(metadata: &TableMetadata) -> bool {
    matches!(
        metadata.format_version(),
        FormatVersion::V1 | FormatVersion::V2
    )
}

/// A merged manifest written ahead of the commit that will carry it (by
/// [`prepare_merge`], off the commit path), and the manifests it replaces.
#[derive(Debug)]
pub struct PreparedMerge {
    /// The id of the snapshot that will add it (its manifest-list entry
    /// names the snapshot that added it).
    snapshot_id: i64,
    manifest: ManifestFile,
    replaces: Vec<String>,
    entries_processed: usize,
}

/// What [`append`] made: the commit's requirements and updates, and whether
/// the new snapshot has manifests due for a merge ([`prepare_merge`]).
#[derive(Debug)]
pub struct Appended {
    pub requirements: Vec<TableRequirement>,
    pub updates: Vec<TableUpdate>,
    pub merge_due: bool,
}

/// The updates and requirements that append `files` to `table`'s main
/// branch in one new snapshot (operation `append`, summary `properties`
/// plus the computed counts), with `prepared` in place of the manifests it
/// replaces when they are all still there. The manifests and the manifest
/// list are written; nothing is committed.
pub async fn append(
    table: &Table,
    files: Vec<DataFile>,
    properties: HashMap<String, String>,
    prepared: Option<&PreparedMerge>,
) -> Result<Appended> {
    let metadata = table.metadata();
    if !can_merge(metadata) {
        return Err(Error::new(
            ErrorKind::FeatureUnsupported,
            "the merging append writes format-version 1 and 2 tables only",
        ));
    }
    // The files were written for the table's default partition spec (the
    // sink's writer takes it from the table); their spec id is not public.
    for file in &files {
        if file.content_type() != DataContentType::Data {
            return Err(Error::new(
                ErrorKind::DataInvalid,
                format!(
                    "an append takes data files; {} is not one",
                    file.file_path()
                ),
            ));
        }
    }
    let policy = MergePolicy::from_properties(metadata.properties())?;
    let existing: Vec<ManifestFile> = match metadata.current_snapshot() {
        None => Vec::new(),
        Some(snapshot) => table
            .manifest_list_reader(snapshot)
            .load()
            .await?
            .consume_entries()
            .into_iter()
            // As the fast append: manifests with nothing in them are dropped.
            .filter(|m| m.has_added_files() || m.has_existing_files() || m.has_deleted_files())
            .collect(),
    };
    // A prepared merge lands if every manifest it replaces is still in the
    // table (another writer may have rewritten them) and its snapshot id is
    // still free; else it is dropped.
    let prepared = prepared.filter(|p| {
        policy.enabled
            && metadata.snapshot_by_id(p.snapshot_id).is_none()
            && p.replaces
                .iter()
                .all(|r| existing.iter().any(|m| &m.manifest_path == r))
    });
    let mut writer = Writer::new(table, prepared.map(|p| p.snapshot_id));

    let mut counts = ManifestCounts::default();
    let mut manifests = Vec::with_capacity(existing.len() + 2);
    if !files.is_empty() {
        let mut w = writer.manifest()?;
        for file in &files {
            // A negative sequence number: inherited from the snapshot.
            w.add_file(file.clone(), -1)?;
        }
        manifests.push(w.write_manifest_file().await?);
        counts.created += 1;
    }
    let mut merged_in = false;
    for m in existing {
        match prepared {
            Some(p) if p.replaces.contains(&m.manifest_path) => {
                counts.replaced += 1;
                if !merged_in {
                    manifests.push(p.manifest.clone());
                    counts.created += 1;
                    counts.entries_processed = p.entries_processed;
                    merged_in = true;
                }
            }
            _ => {
                counts.kept += 1;
                manifests.push(m);
            }
        }
    }
    let merge_due = policy.enabled
        && !bins_due(metadata.default_partition_spec_id(), &policy, &manifests).is_empty();

    let summary = summary(table, &files, properties, &counts)?;
    let sequence_number = metadata.next_sequence_number();
    let parent = metadata.current_snapshot_id();
    let list_path = format!(
        "{}/metadata/snap-{}-0-{}.{}",
        metadata.location(),
        writer.snapshot_id,
        writer.commit_uuid,
        DataFileFormat::Avro
    );
    let out = table.file_io().new_output(&list_path)?.writer().await?;
    let mut list = match metadata.format_version() {
        FormatVersion::V1 => ManifestListWriter::v1(out, writer.snapshot_id, parent),
        _ => ManifestListWriter::v2(out, writer.snapshot_id, parent, sequence_number),
    };
    list.add_manifests(manifests.into_iter())?;
    list.close().await?;

    let timestamp_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let snapshot = Snapshot::builder()
        .with_manifest_list(list_path)
        .with_snapshot_id(writer.snapshot_id)
        .with_parent_snapshot_id(parent)
        .with_sequence_number(sequence_number)
        .with_summary(summary)
        .with_schema_id(metadata.current_schema_id())
        .with_timestamp_ms(timestamp_ms)
        .build();
    let updates = vec![
        TableUpdate::AddSnapshot { snapshot },
        TableUpdate::SetSnapshotRef {
            ref_name: MAIN_BRANCH.to_string(),
            reference: SnapshotReference::new(
                writer.snapshot_id,
                SnapshotRetention::branch(None, None, None),
            ),
        },
    ];
    let requirements = vec![
        TableRequirement::UuidMatch {
            uuid: metadata.uuid(),
        },
        TableRequirement::RefSnapshotIdMatch {
            r#ref: MAIN_BRANCH.to_string(),
            snapshot_id: parent,
        },
    ];
    Ok(Appended {
        requirements,
        updates,
        merge_due,
    })
}

/// Merges the first bin of `table`'s current snapshot that is due
/// ([`bins_due`]) into one manifest, written for the snapshot that will carry
/// it: the table's next append ([`append`] with it). `None` when no bin is
/// due. Reads only manifests, so it runs beside the pipeline, off the
/// commit path.
pub async fn prepare_merge(table: Table) -> Result<Option<PreparedMerge>> {
    let metadata = table.metadata();
    let policy = MergePolicy::from_properties(metadata.properties())?;
    let Some(snapshot) = metadata.current_snapshot() else {
        return Ok(None);
    };
    if !policy.enabled || !can_merge(metadata) {
        return Ok(None);
    }
    let manifests: Vec<ManifestFile> = table
        .manifest_list_reader(snapshot)
        .load()
        .await?
        .consume_entries()
        .into_iter()
        .collect();
    let Some(bin) = bins_due(metadata.default_partition_spec_id(), &policy, &manifests)
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let started = std::time::Instant::now();
    let bin: Vec<&ManifestFile> = bin.into_iter().map(|i| &manifests[i]).collect();
    let mut writer = Writer::new(&table, None);
    let mut merged = writer.manifest()?;
    let loaded =
        futures::future::try_join_all(bin.iter().map(|m| m.load_manifest(table.file_io()))).await?;
    let mut entries_processed = 0;
    for (manifest, from) in loaded.into_iter().zip(&bin) {
        let (entries, _) = manifest.into_parts();
        entries_processed += entries.len();
        for entry in entries {
            // Deleted by an earlier snapshot: nothing to carry.
            if entry.status() == ManifestStatus::Deleted {
                continue;
            }
            let entry = Arc::unwrap_or_clone(entry);
            let missing = || {
                Error::new(
                    ErrorKind::DataInvalid,
                    format!(
                        "manifest {} lists {} without a snapshot id or sequence number; \
                         it cannot be merged",
                        from.manifest_path,
                        entry.file_path()
                    ),
                )
            };
            let snapshot_id = entry.snapshot_id.ok_or_else(missing)?;
            let sequence_number = entry.sequence_number.ok_or_else(missing)?;
            merged.add_existing_file(
                entry.data_file,
                snapshot_id,
                sequence_number,
                entry.file_sequence_number,
            )?;
        }
    }
    let manifest = merged.write_manifest_file().await?;
    tracing::debug!(
        "iceberg sink: merged {} manifests ({entries_processed} entries) into {} in {:?}",
        bin.len(),
        manifest.manifest_path,
        started.elapsed()
    );
    Ok(Some(PreparedMerge {
        snapshot_id: writer.snapshot_id,
        manifest,
        replaces: bin.iter().map(|m| m.manifest_path.clone()).collect(),
        entries_processed,
    }))
}

/// Deletes the file of a prepared merge that no commit carries (`table` is
/// the table as committed since it was prepared). One that a commit may
/// carry (its snapshot is in the table) is left alone.
pub async fn discard(table: &Table, prepared: PreparedMerge) {
    if table
        .metadata()
        .snapshot_by_id(prepared.snapshot_id)
        .is_some()
    {
        return;
    }
    let path = prepared.manifest.manifest_path;
    if let Err(e) = table.file_io().delete(&path).await {
        tracing::debug!("iceberg sink: could not remove the unused manifest {path}: {e}");
    }
}

/// The bins of `manifests` (a snapshot's manifest list, newest first) that
/// are due for a merge, as indices into it, smallest manifests first.
///
/// Manifests are merged by tier (size-tiered, as LSM trees compact): a
/// manifest listing `f` files is of tier ⌊log_min-count f⌋, so the
/// manifests of one commit are tier 0, a merge of `min-count` of them tier
/// 1, and so on. A tier is due once it holds `min-count` manifests (packed
/// into bins of up to the target size, as Java packs; a manifest of the
/// target size or more is never merged again). Java merges the newest bin
/// whole instead, the growing merged manifest with it, so each merge
/// rewrites every file of the table until that manifest reaches the target
/// size (thousands of entries every `min-count` commits); by tier, a file
/// is rewritten once per tier, and a snapshot carries fewer than
/// `min-count` manifests per tier (two or three tiers in practice).
fn bins_due(spec_id: i32, policy: &MergePolicy, manifests: &[ManifestFile]) -> Vec<Vec<usize>> {
    let base = policy.min_count.max(2) as f64;
    let mut tiers: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
    for (i, m) in manifests.iter().enumerate() {
        if m.content != ManifestContentType::Data
            || m.partition_spec_id != spec_id
            || m.manifest_length.max(0) as u64 >= policy.target_size_bytes
        {
            continue;
        }
        let files = m.added_files_count.unwrap_or(0) + m.existing_files_count.unwrap_or(0);
        let tier = if policy.min_count <= 1 {
            0
        } else {
            ((files.max(1) as f64).ln() / base.ln()).floor() as u32
        };
        tiers.entry(tier).or_default().push(i);
    }
    let mut due = Vec::new();
    for (_, members) in tiers {
        if members.len() < policy.min_count.max(2) {
            continue;
        }
        let sizes: Vec<u64> = members
            .iter()
            .map(|&i| manifests[i].manifest_length.max(0) as u64)
            .collect();
        for bin in pack_end(&sizes, policy.target_size_bytes) {
            if bin.len() > 1 {
                due.push(bin.into_iter().map(|j| members[j]).collect());
            }
        }
    }
    due
}

/// What the append did with manifests (the summary's counts).
#[derive(Default, Debug)]
struct ManifestCounts {
    created: usize,
    kept: usize,
    replaced: usize,
    entries_processed: usize,
}

/// The new snapshot's id and the names of the files it writes.
struct Writer<'a> {
    table: &'a Table,
    snapshot_id: i64,
    commit_uuid: Uuid,
    manifests: u64,
}

impl<'a> Writer<'a> {
    /// For the snapshot `snapshot_id`, or a new one: a random positive id
    /// no snapshot of the table has (as the fast append).
    fn new(table: &'a Table, snapshot_id: Option<i64>) -> Self {
        let snapshot_id = snapshot_id.unwrap_or_else(|| {
            loop {
                let (hi, lo) = Uuid::new_v4().as_u64_pair();
                let id = ((hi ^ lo) as i64).checked_abs().unwrap_or(1);
                if table.metadata().snapshot_by_id(id).is_none() {
                    break id;
                }
            }
        });
        Self {
            table,
            snapshot_id,
            commit_uuid: Uuid::now_v7(),
            manifests: 0,
        }
    }

    /// A writer for the next data manifest of this snapshot.
    fn manifest(&mut self) -> Result<ManifestWriter> {
        let metadata = self.table.metadata();
        let path = format!(
            "{}/metadata/{}-m{}.{}",
            metadata.location(),
            self.commit_uuid,
            self.manifests,
            DataFileFormat::Avro
        );
        self.manifests += 1;
        let builder = ManifestWriterBuilder::new(
            self.table.file_io().new_output(path)?,
            Some(self.snapshot_id),
            metadata.current_schema().clone(),
            metadata.default_partition_spec().as_ref().clone(),
        );
        Ok(match metadata.format_version() {
            FormatVersion::V1 => builder.build_v1(),
            _ => builder.build_v2_data(),
        })
    }
}

/// Bins of consecutive items (indices into `sizes`) of at most `target`
/// bytes each (an item larger than that alone), packed from the end so that
/// the bin left under-filled is the first: Java's `ListPacker.packEnd` with
/// a lookback of 1.
fn pack_end(sizes: &[u64], target: u64) -> Vec<Vec<usize>> {
    let mut bins: Vec<Vec<usize>> = Vec::new();
    let mut bin = Vec::new();
    let mut weight = 0u64;
    for i in (0..sizes.len()).rev() {
        if !bin.is_empty() && weight.saturating_add(sizes[i]) > target {
            bins.push(std::mem::take(&mut bin));
            weight = 0;
        }
        bin.push(i);
        weight = weight.saturating_add(sizes[i]);
    }
    if !bin.is_empty() {
        bins.push(bin);
    }
    for bin in &mut bins {
        bin.reverse();
    }
    bins.reverse();
    bins
}

/// The snapshot summary: `properties`, the counts of the added files, the
/// table's totals carried on from the current snapshot, and what happened
/// to the manifests.
fn summary(
    table: &Table,
    files: &[DataFile],
    properties: HashMap<String, String>,
    counts: &ManifestCounts,
) -> Result<Summary> {
    let metadata = table.metadata();
    let mut collector = SnapshotSummaryCollector::default();
    if let Some(limit) = metadata
        .properties()
        .get("write.summary.partition-limit")
        .and_then(|v| v.parse().ok())
    {
        collector.set_partition_summary_limit(limit);
    }
    for file in files {
        collector.add_file(
            file,
            metadata.current_schema().clone(),
            metadata.default_partition_spec().clone(),
        );
    }
    // Computed counts overwrite the caller's keys, as iceberg-rust and Java do.
    let mut props = properties;
    props.extend(collector.build());
    props.insert("manifests-created".into(), counts.created.to_string());
    props.insert("manifests-kept".into(), counts.kept.to_string());
    props.insert("manifests-replaced".into(), counts.replaced.to_string());
    props.insert(
        "entries-processed".into(),
        counts.entries_processed.to_string(),
    );
    let previous = metadata.current_snapshot().map(|s| s.summary());
    for (total, added, removed) in [
        ("total-data-files", "added-data-files", "deleted-data-files"),
        (
            "total-delete-files",
            "added-delete-files",
            "removed-delete-files",
        ),
        ("total-records", "added-records", "deleted-records"),
        ("total-files-size", "added-files-size", "removed-files-size"),
        (
            "total-position-deletes",
            "added-position-deletes",
            "removed-position-deletes",
        ),
        (
            "total-equality-deletes",
            "added-equality-deletes",
            "removed-equality-deletes",
        ),
    ] {
        // Without the previous total (another writer left it out) there is
        // no total to carry on, as iceberg-rust and Java do.
        let before = match previous {
            None => Some(0),
            Some(p) => p
                .additional_properties
                .get(total)
                .and_then(|v| v.parse::<u64>().ok()),
        };
        let delta = |key: &str| {
            props
                .get(key)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        if let Some(before) = before {
            let now = before
                .saturating_add(delta(added))
                .saturating_sub(delta(removed));
            props.insert(total.to_string(), now.to_string());
        }
    }
    Ok(Summary {
        operation: Operation::Append,
        additional_properties: props,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_pack_from_the_oldest_end_and_keep_order() {
        // Newest first: a new 1-byte manifest, small ones, then two old
        // merged ones near the target.
        let sizes = [1, 2, 2, 2, 9, 10];
        assert_eq!(
            pack_end(&sizes, 10),
            vec![vec![0, 1, 2, 3], vec![4], vec![5]]
        );
        // Everything fits one bin.
        assert_eq!(pack_end(&[1, 1, 1], 10), vec![vec![0, 1, 2]]);
        // A manifest larger than the target is a bin of its own.
        assert_eq!(pack_end(&[1, 50, 1], 10), vec![vec![0], vec![1], vec![2]]);
        assert!(pack_end(&[], 10).is_empty());
    }

    fn manifest(files: u32, length: i64) -> ManifestFile {
        ManifestFile {
            manifest_path: format!("m-{files}-{length}"),
            manifest_length: length,
            partition_spec_id: 0,
            content: ManifestContentType::Data,
            sequence_number: 1,
            min_sequence_number: 1,
            added_snapshot_id: 1,
            added_files_count: Some(0),
            existing_files_count: Some(files),
            deleted_files_count: Some(0),
            added_rows_count: Some(0),
            existing_rows_count: Some(0),
            deleted_rows_count: Some(0),
            partitions: None,
            key_metadata: None,
            first_row_id: None,
        }
    }

    #[test]
    fn manifests_merge_by_size_tier() {
        let policy = MergePolicy {
            enabled: true,
            min_count: 3,
            target_size_bytes: 1000,
        };
        // Newest first: two one-file manifests, a merged one of 3 files.
        let list = [manifest(1, 10), manifest(1, 10), manifest(3, 30)];
        assert!(bins_due(0, &policy, &list).is_empty());
        // A third one-file manifest makes tier 0 due; tier 1 (3 to 8
        // files) is left alone.
        let list = [
            manifest(1, 10),
            manifest(1, 10),
            manifest(1, 10),
            manifest(3, 30),
        ];
        assert_eq!(bins_due(0, &policy, &list), vec![vec![0, 1, 2]]);
        // A manifest at the target size never merges: two of tier 1 left.
        let list = [manifest(3, 30), manifest(8, 1000), manifest(5, 50)];
        assert!(bins_due(0, &policy, &list).is_empty());
        let list = [manifest(3, 30), manifest(4, 40), manifest(5, 50)];
        assert_eq!(bins_due(0, &policy, &list), vec![vec![0, 1, 2]]);
        // Other partition specs and delete manifests are carried as they are.
        let mut other = manifest(1, 10);
        other.partition_spec_id = 1;
        let mut deletes = manifest(1, 10);
        deletes.content = ManifestContentType::Deletes;
        let list = [manifest(1, 10), other, deletes, manifest(1, 10)];
        assert!(bins_due(0, &policy, &list).is_empty());
    }

    #[test]
    fn the_policy_is_read_from_table_properties_with_java_defaults() {
        let none = HashMap::new();
        assert_eq!(
            MergePolicy::from_properties(&none).unwrap(),
            MergePolicy::default()
        );
        let set = HashMap::from([
            (MERGE_ENABLED.to_string(), "false".to_string()),
            (MIN_COUNT_TO_MERGE.to_string(), "5".to_string()),
            (TARGET_SIZE_BYTES.to_string(), "1024".to_string()),
        ]);
        assert_eq!(
            MergePolicy::from_properties(&set).unwrap(),
            MergePolicy {
                enabled: false,
                min_count: 5,
                target_size_bytes: 1024
            }
        );
        let bad = HashMap::from([(MIN_COUNT_TO_MERGE.to_string(), "many".to_string())]);
        let err = MergePolicy::from_properties(&bad).unwrap_err().to_string();
        assert!(
            err.contains("commit.manifest.min-count-to-merge") && err.contains("many"),
            "{err}"
        );
    }
}
