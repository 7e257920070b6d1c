//! Sinks that write files into a local folder: [`parquet`] and [`jsonl`].
//!
//! Both commit the same way ([`publish`]): an epoch's files are written into a
//! staging folder no reader looks at, then renamed into the output folder under
//! names fixed by the pipeline and the epoch, and finally the pipeline's commit
//! record (`<path>/_tributary/<pipeline>/commit.json`: epoch, offsets,
//! watermark, the files) is replaced atomically. The record is the commit
//! point and what a restart resumes from. A crash after the renames but before
//! the record leaves files of an uncommitted epoch visible; the next start
//! removes them before the epoch is written again, so a reader of
//! `<path>/*.parquet` sees every record exactly once.
//!
//! ```json
//! {"type": "parquet", "path": "out/articles", "compression": "zstd"}
//! {"type": "jsonl", "path": "-"}
//! ```

#![forbid(unsafe_code)]

pub mod jsonl;
pub mod parquet;
pub mod publish;
