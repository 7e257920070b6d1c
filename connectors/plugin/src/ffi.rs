//! The plugin side of the ABI: the table [`export_sink!`](crate::export_sink)
//! puts behind `tributary_plugin_v1`, one function per call, each turning
//! C arguments into the [`Sink`] call and its result (or panic) into a status
//! code. Generic over the plugin's type, so each plugin gets its own copy.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use arrow_array::{Array, RecordBatch, StructArray};
use tributary_connector::{
    CommitOutcome, ConnectorContext, Delivery, EpochCommit, Error, ErrorKind, Result,
};

use crate::SinkPlugin;
use crate::abi::{self, Buf, FFI_ArrowArray, FFI_ArrowSchema, PluginV1};

/// The table of `T`.
pub const fn sink_table<T: SinkPlugin>() -> PluginV1 {
    PluginV1 {
        abi_version: abi::ABI_VERSION,
        describe: describe::<T>,
        open: open::<T>,
        last_commit: last_commit::<T>,
        write: write::<T>,
        commit: commit::<T>,
        delivery: delivery::<T>,
        describe_sink: describe_sink::<T>,
        close: close::<T>,
        free_buf,
    }
}

/// Moves `bytes` into `*out` (freed later by [`free_buf`]).
///
/// # Safety
/// `out` is null or valid for a write.
unsafe fn fill(out: *mut Buf, bytes: Vec<u8>) {
    if out.is_null() {
        return;
    }
    let mut bytes = std::mem::ManuallyDrop::new(bytes);
    // SAFETY: the caller's contract.
    unsafe {
        out.write(Buf {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            cap: bytes.capacity(),
        });
    }
}

/// Runs one call: its error becomes a code and a message in `err`, and so
/// does a panic (the host then stops using the handle).
///
/// # Safety
/// `err` is null or valid for a write.
unsafe fn guard(err: *mut Buf, call: impl FnOnce() -> Result<()>) -> i32 {
    let (code, message) = match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(())) => return abi::OK,
        Ok(Err(e)) => {
            let kind = match e.kind() {
                ErrorKind::Config => abi::ERR_CONFIG,
                ErrorKind::External => abi::ERR_EXTERNAL,
                ErrorKind::Data => abi::ERR_DATA,
                // Internal, and kinds added after this ABI was fixed.
                _ => abi::ERR_INTERNAL,
            };
            let retry = if e.is_retryable() { abi::RETRYABLE } else { 0 };
            (kind | retry, e.to_string())
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            (abi::PANIC, what)
        }
    };
    // SAFETY: the caller's contract.
    unsafe { fill(err, message.into_bytes()) };
    code
}

/// # Safety
/// `ptr` is valid for `len` bytes (or `len` is 0).
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

fn json<T: serde::de::DeserializeOwned>(what: &str, raw: &[u8]) -> Result<T> {
    serde_json::from_slice(raw)
        .map_err(|e| Error::internal(format!("the host sent a {what} that does not parse: {e}")))
}

/// # Safety
/// `handle` came from `open::<T>` and was not closed.
unsafe fn sink<'a, T>(handle: *mut c_void) -> &'a mut T {
    // SAFETY: the caller's contract; the host makes one call at a time.
    unsafe { &mut *handle.cast::<T>() }
}

unsafe extern "C" fn describe<T: SinkPlugin>(out: *mut Buf, err: *mut Buf) -> i32 {
    // SAFETY: the host passes valid out-pointers.
    unsafe {
        guard(err, || {
            let description = serde_json::json!({
                "name": T::NAME,
                "kind": "sink",
                "description": T::DESCRIPTION,
                "config_schema": T::config_schema(),
            });
            fill(out, description.to_string().into_bytes());
            Ok(())
        })
    }
}

#[derive(serde::Deserialize)]
struct Context {
    pipeline_id: String,
    base_dir: std::path::PathBuf,
    #[serde(default)]
    state_dir: Option<std::path::PathBuf>,
}

unsafe extern "C" fn open<T: SinkPlugin>(
    config: *const u8,
    config_len: usize,
    context: *const u8,
    context_len: usize,
    handle: *mut *mut c_void,
    err: *mut Buf,
) -> i32 {
    // SAFETY: the host passes valid pointers and lengths.
    unsafe {
        let (config, context) = (bytes(config, config_len), bytes(context, context_len));
        guard(err, || {
            let config: serde_json::Value = json("config", config)?;
            let context: Context = json("context", context)?;
            let ctx = ConnectorContext {
                pipeline_id: context.pipeline_id,
                base_dir: context.base_dir,
                state_dir: context.state_dir,
            };
            let sink = T::open(&config, &ctx)?;
            handle.write(Box::into_raw(Box::new(sink)).cast());
            Ok(())
        })
    }
}

unsafe extern "C" fn last_commit<T: SinkPlugin>(
    handle: *mut c_void,
    pipeline: *const u8,
    pipeline_len: usize,
    out: *mut Buf,
    err: *mut Buf,
) -> i32 {
    // SAFETY: the host passes a live handle and valid pointers.
    unsafe {
        let pipeline = bytes(pipeline, pipeline_len);
        guard(err, || {
            let pipeline = std::str::from_utf8(pipeline)
                .map_err(|_| Error::internal("the pipeline id is not UTF-8"))?;
            let last = sink::<T>(handle).last_commit(pipeline)?;
            let text = serde_json::to_vec(&last).map_err(|e| Error::internal(e.to_string()))?;
            fill(out, text);
            Ok(())
        })
    }
}

unsafe extern "C" fn write<T: SinkPlugin>(
    handle: *mut c_void,
    array: *mut FFI_ArrowArray,
    schema: *const FFI_ArrowSchema,
    err: *mut Buf,
) -> i32 {
    // SAFETY: the host passes a live handle, an array to take and a schema to
    // read; `replace` leaves it a released (empty) array to drop.
    unsafe {
        let array = std::ptr::replace(array, FFI_ArrowArray::empty());
        let schema = &*schema;
        guard(err, || {
            let data = arrow_array::ffi::from_ffi(array, schema)
                .map_err(|e| Error::internal(format!("the batch did not cross: {e}")))?;
            let columns = StructArray::from(data);
            if columns.null_count() > 0 {
                return Err(Error::internal("the batch arrived with null rows"));
            }
            sink::<T>(handle).write(&RecordBatch::from(columns))
        })
    }
}

unsafe extern "C" fn commit<T: SinkPlugin>(
    handle: *mut c_void,
    commit: *const u8,
    commit_len: usize,
    outcome: *mut u32,
    err: *mut Buf,
) -> i32 {
    // SAFETY: the host passes a live handle and valid pointers.
    unsafe {
        let commit = bytes(commit, commit_len);
        guard(err, || {
            let commit: EpochCommit = json("commit", commit)?;
            let done = sink::<T>(handle).commit(&commit)?;
            outcome.write(match done {
                CommitOutcome::Committed => abi::OUTCOME_COMMITTED,
                CommitOutcome::AlreadyCommitted => abi::OUTCOME_ALREADY_COMMITTED,
            });
            Ok(())
        })
    }
}

unsafe extern "C" fn delivery<T: SinkPlugin>(
    handle: *mut c_void,
    out: *mut u32,
    err: *mut Buf,
) -> i32 {
    // SAFETY: the host passes a live handle and valid pointers.
    unsafe {
        guard(err, || {
            out.write(match sink::<T>(handle).delivery() {
                Delivery::AtLeastOnce => abi::DELIVERY_AT_LEAST_ONCE,
                Delivery::ExactlyOnce => abi::DELIVERY_EXACTLY_ONCE,
            });
            Ok(())
        })
    }
}

unsafe extern "C" fn describe_sink<T: SinkPlugin>(
    handle: *mut c_void,
    out: *mut Buf,
    err: *mut Buf,
) -> i32 {
    // SAFETY: the host passes a live handle and valid pointers.
    unsafe {
        guard(err, || {
            fill(out, sink::<T>(handle).describe().into_bytes());
            Ok(())
        })
    }
}

unsafe extern "C" fn close<T: SinkPlugin>(handle: *mut c_void) {
    if handle.is_null() {
        return;
    }
    // SAFETY: `handle` came from `Box::into_raw` in `open::<T>`, closed once.
    let sink = unsafe { Box::from_raw(handle.cast::<T>()) };
    // A panicking destructor must not unwind into the host.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(sink)));
}

unsafe extern "C" fn free_buf(buf: Buf) {
    if buf.ptr.is_null() {
        return;
    }
    // SAFETY: `buf` was made by `fill` from a Vec of this library.
    drop(unsafe { Vec::from_raw_parts(buf.ptr, buf.len, buf.cap) });
}
