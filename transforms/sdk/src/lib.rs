//! Write a Tributary transform in Rust.
//!
//! A transform is a WebAssembly component implementing the WIT world
//! `tributary:transform/transform` (`wit/transform.wit`): the host calls it
//! once per batch. This crate holds the generated bindings and gives a
//! transform a smaller surface:
//!
//! - [`Transform`], the trait to implement: `init` from a [`Config`], then
//!   `process` per [`Batch`] and `on_watermark`, each filling an [`Output`];
//! - [`state`], [`watermark`] and [`log`]: the host's keyed store, event-time
//!   watermark and log;
//! - [`export_transform!`], which makes a `Transform` type the component's
//!   export.
//!
//! The instance lives inside the component between calls; everything that
//! must survive a crash belongs in [`state`] (checkpointed by the host).
//!
//! ```
//! use tributary_transform_sdk::{Batch, Column, Config, DropReason, Output, Transform, Value};
//!
//! /// Upper-cases the text field named by `field`; drops rows where it is null.
//! struct Upper {
//!     field: String,
//! }
//!
//! impl Transform for Upper {
//!     const NAME: &'static str = "upper";
//!
//!     fn init(config: Config) -> Result<Self, String> {
//!         config.only(&["field"])?;
//!         Ok(Upper { field: config.require("field")?.to_string() })
//!     }
//!
//!     fn fields(&self) -> Option<Vec<String>> {
//!         Some(vec![self.field.clone()])
//!     }
//!
//!     fn process(&mut self, batch: &Batch, out: &mut Output) -> Result<(), String> {
//!         let column: Column = batch.column(&self.field)?;
//!         for row in batch.rows() {
//!             match row.value(column) {
//!                 Value::Null => out.drop(row.index(), DropReason::Filtered),
//!                 Value::Text(s) => out.update(row.index(), [(&*self.field, Value::Text(s.to_uppercase()))]),
//!                 other => out.reject(row.index(), format!("`{}` holds {}", self.field, other.kind())),
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! tributary_transform_sdk::export_transform!(Upper);
//! ```
//!
//! The component speaks `tributary:transform@0.2.0`: batches arrive as
//! columns, and the typed reads ([`Row::text`], [`Row::int`], [`Row::get`]…)
//! read them in place; an output that only keeps and drops rows goes back
//! as row numbers, and `update`/`insert` values as columns.
//!
//! Build it as a `cdylib` for `wasm32-wasip2`
//! (`cargo build --release --target wasm32-wasip2`): the `.wasm` is a
//! component, ready for `tributary transform test`. Everything but the host
//! functions also runs natively, so the logic can be unit-tested with
//! `cargo test`.

mod batch;
mod config;
pub mod duration;
#[doc(hidden)]
pub mod export;
mod host;
mod output;
mod value;

pub use batch::{Batch, Column, Row, ValueRef};
pub use config::Config;
pub use host::{log, state, watermark};
pub use output::{Emit, Output};
pub use value::Value;

pub use bindings::tributary::transform::types::{DropReason, Dropped, Field, FieldType, Rejected};

/// The bindings wit-bindgen generates for the world. Not a stable API: use the
/// types and functions re-exported above. The canonical ABI needs unsafe
/// code; it is allowed on this module only.
#[doc(hidden)]
#[allow(unsafe_code, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "transform",
        // The export macro is used from the transforms' crates.
        pub_export_macro: true,
        default_bindings_module: "tributary_transform_sdk::bindings",
        additional_derives: [PartialEq],
    });
}

/// What [`export_transform!`] expands to calls these.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::exports::tributary::transform::processor::Guest;
    pub use crate::bindings::tributary::transform::types::{
        Batch as WitBatch, Output as WitOutput,
    };
    pub use crate::export::{init, on_watermark, process};
}

/// A transform. The host creates one instance per pipeline stage with
/// [`init`](Transform::init), then calls [`process`](Transform::process)
/// once per batch and [`on_watermark`](Transform::on_watermark) after the
/// watermark moves. An `Err` fails the call (the batch, by the pipeline's
/// error policy); a row with bad data is [`Output::reject`]ed instead.
pub trait Transform: Sized + 'static {
    /// Names the transform in this crate's own messages.
    const NAME: &'static str = "transform";

    /// A new instance from the pipeline's `config`, or what is wrong with it.
    fn init(config: Config) -> Result<Self, String>;

    /// The input fields the transform reads; `None`, the default, for all of
    /// them. Asking for fewer makes batches smaller to pass. An emitted
    /// `keep` or `update` row still carries all of its fields.
    fn fields(&self) -> Option<Vec<String>> {
        None
    }

    /// Processes one batch, saying in `out` what becomes of each row. A row
    /// said nothing about is dropped as filtered.
    fn process(&mut self, batch: &Batch, out: &mut Output) -> Result<(), String>;

    /// Called after the watermark has moved to `watermark`; may insert rows
    /// (`keep` and `update` mean nothing here: there is no input batch).
    fn on_watermark(&mut self, watermark: i64, out: &mut Output) -> Result<(), String> {
        let _ = (watermark, out);
        Ok(())
    }
}
