//! The JSON that crosses the plugin ABI, from both sides.
//!
//! - The plugin side (the SDK's `export_sink!` table, as a plugin library
//!   has it): `open` with any config and context bytes, then `commit` and
//!   `last_commit` with any bytes, as a host of another version might send.
//! - The host side (`Plugin::from_table`, `PluginSink`): a plugin that
//!   answers `describe`, `last_commit` and `describe_sink` with any bytes and
//!   any status codes, and error messages that are not UTF-8.
//!
//! Input: a mode byte, then up to four parts separated by `0xFF` (a byte
//! that never occurs in UTF-8, so JSON parts can be written as text).
#![no_main]

use std::cell::RefCell;
use std::ffi::c_void;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tributary_connector::{
    CommitOutcome, CommittedEpoch, ConnectorContext, Delivery, EpochCommit, RecordBatch, Result,
    Sink,
};
use tributary_plugin::SinkPlugin;
use tributary_plugin::abi::{self, Buf, FFI_ArrowArray, FFI_ArrowSchema, PluginV1};
use tributary_plugin::host::Plugin;

/// A plugin sink that keeps its last commit in memory.
struct Memory {
    last: Option<EpochCommit>,
}

impl Sink for Memory {
    fn last_commit(&mut self, pipeline_id: &str) -> Result<Option<CommittedEpoch>> {
        Ok(self.last.clone().filter(|c| c.pipeline_id == pipeline_id))
    }
    fn write(&mut self, _batch: &RecordBatch) -> Result<()> {
        Ok(())
    }
    fn commit(&mut self, commit: &EpochCommit) -> Result<CommitOutcome> {
        if self.last.as_ref().is_some_and(|l| l.epoch >= commit.epoch) {
            return Ok(CommitOutcome::AlreadyCommitted);
        }
        self.last = Some(commit.clone());
        Ok(CommitOutcome::Committed)
    }
    fn delivery(&self) -> Delivery {
        Delivery::ExactlyOnce
    }
    fn describe(&self) -> String {
        "memory".into()
    }
}

impl SinkPlugin for Memory {
    const NAME: &'static str = "memory";
    const DESCRIPTION: &'static str = "keeps the last commit in memory";
    fn open(config: &serde_json::Value, _ctx: &ConnectorContext) -> Result<Self> {
        if !config.is_object() {
            return Err(tributary_connector::Error::config(
                "the config is not an object",
            ));
        }
        Ok(Self { last: None })
    }
}

static SDK_TABLE: PluginV1 = tributary_plugin::ffi::sink_table::<Memory>();

fn sdk_side(parts: &[&[u8]]) {
    let part = |i: usize| parts.get(i).copied().unwrap_or(b"");
    let t = &SDK_TABLE;
    let mut handle: *mut c_void = std::ptr::null_mut();
    let mut err = Buf::EMPTY;
    let (config, context) = (part(0), part(1));
    // SAFETY: valid pointers and lengths; every Buf filled is freed once.
    unsafe {
        let code = (t.open)(
            config.as_ptr(),
            config.len(),
            context.as_ptr(),
            context.len(),
            &mut handle,
            &mut err,
        );
        (t.free_buf)(std::mem::replace(&mut err, Buf::EMPTY));
        if code != abi::OK {
            assert!(handle.is_null(), "a failed open gave a handle");
            return;
        }
        assert!(!handle.is_null());
        let commit = part(2);
        let mut outcome = u32::MAX;
        let code = (t.commit)(
            handle,
            commit.as_ptr(),
            commit.len(),
            &mut outcome,
            &mut err,
        );
        (t.free_buf)(std::mem::replace(&mut err, Buf::EMPTY));
        if code == abi::OK {
            assert!(outcome <= abi::OUTCOME_ALREADY_COMMITTED);
        }
        let pipeline = part(3);
        let mut out = Buf::EMPTY;
        let code = (t.last_commit)(
            handle,
            pipeline.as_ptr(),
            pipeline.len(),
            &mut out,
            &mut err,
        );
        (t.free_buf)(std::mem::replace(&mut err, Buf::EMPTY));
        if code == abi::OK {
            let text = std::slice::from_raw_parts(out.ptr, out.len).to_vec();
            let answer: Option<CommittedEpoch> =
                serde_json::from_slice(&text).expect("the SDK answers a commit or null");
            if let Some(c) = answer {
                assert_eq!(c.pipeline_id.as_bytes(), pipeline);
            }
        }
        (t.free_buf)(out);
        (t.close)(handle);
    }
}

// The hostile plugin: its answers are the fuzz input of the current run.
thread_local! {
    static ANSWERS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    static CODES: RefCell<u8> = const { RefCell::new(0) };
}

fn answer(i: usize) -> Vec<u8> {
    ANSWERS.with(|a| a.borrow().get(i).cloned().unwrap_or_default())
}

/// Status code of call `i`: mostly OK, sometimes an error or a panic.
fn code(i: u32) -> i32 {
    match (CODES.with(|c| *c.borrow()) >> (i * 2)) & 3 {
        0 | 1 => abi::OK,
        2 => abi::ERR_EXTERNAL | abi::RETRYABLE,
        _ => abi::PANIC,
    }
}

unsafe fn fill(out: *mut Buf, bytes: Vec<u8>) {
    let mut bytes = std::mem::ManuallyDrop::new(bytes);
    // SAFETY: the host passes a writable Buf.
    unsafe {
        out.write(Buf {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            cap: bytes.capacity(),
        })
    };
}

/// Fills `out` on success and `err` (bytes of answer 3: maybe not UTF-8) on failure.
unsafe fn reply(call: u32, out: *mut Buf, err: *mut Buf, bytes: Vec<u8>) -> i32 {
    let c = code(call);
    // SAFETY: the host's pointers.
    unsafe {
        if c == abi::OK {
            if !out.is_null() {
                fill(out, bytes);
            }
        } else {
            fill(err, answer(3));
        }
    }
    c
}

unsafe extern "C" fn h_describe(out: *mut Buf, err: *mut Buf) -> i32 {
    unsafe { reply(0, out, err, answer(0)) }
}
unsafe extern "C" fn h_open(
    _c: *const u8,
    _cl: usize,
    _x: *const u8,
    _xl: usize,
    handle: *mut *mut c_void,
    err: *mut Buf,
) -> i32 {
    let c = unsafe { reply(1, std::ptr::null_mut(), err, Vec::new()) };
    if c == abi::OK {
        // A dangling but non-null handle: this plugin never dereferences it.
        unsafe { handle.write(std::ptr::NonNull::<u8>::dangling().as_ptr().cast()) };
    }
    c
}
unsafe extern "C" fn h_last_commit(
    _h: *mut c_void,
    _p: *const u8,
    _pl: usize,
    out: *mut Buf,
    err: *mut Buf,
) -> i32 {
    unsafe { reply(2, out, err, answer(1)) }
}
unsafe extern "C" fn h_write(
    _h: *mut c_void,
    _a: *mut FFI_ArrowArray,
    _s: *const FFI_ArrowSchema,
    err: *mut Buf,
) -> i32 {
    unsafe { reply(3, std::ptr::null_mut(), err, Vec::new()) }
}
unsafe extern "C" fn h_commit(
    _h: *mut c_void,
    _c: *const u8,
    _cl: usize,
    outcome: *mut u32,
    err: *mut Buf,
) -> i32 {
    let c = unsafe { reply(3, std::ptr::null_mut(), err, Vec::new()) };
    let o = answer(2).first().copied().unwrap_or(0);
    unsafe { outcome.write(u32::from(o)) };
    c
}
unsafe extern "C" fn h_delivery(_h: *mut c_void, out: *mut u32, err: *mut Buf) -> i32 {
    let c = unsafe { reply(1, std::ptr::null_mut(), err, Vec::new()) };
    let o = answer(2).get(1).copied().unwrap_or(0);
    unsafe { out.write(u32::from(o)) };
    c
}
unsafe extern "C" fn h_describe_sink(_h: *mut c_void, out: *mut Buf, err: *mut Buf) -> i32 {
    unsafe { reply(2, out, err, answer(2)) }
}
unsafe extern "C" fn h_close(_h: *mut c_void) {}
unsafe extern "C" fn h_free_buf(buf: Buf) {
    if !buf.ptr.is_null() {
        drop(unsafe { Vec::from_raw_parts(buf.ptr, buf.len, buf.cap) });
    }
}

static HOSTILE: PluginV1 = PluginV1 {
    abi_version: abi::ABI_VERSION,
    describe: h_describe,
    open: h_open,
    last_commit: h_last_commit,
    write: h_write,
    commit: h_commit,
    delivery: h_delivery,
    describe_sink: h_describe_sink,
    close: h_close,
    free_buf: h_free_buf,
};

fn host_side(codes: u8, parts: &[&[u8]]) {
    ANSWERS.with(|a| *a.borrow_mut() = parts.iter().map(|p| p.to_vec()).collect());
    CODES.with(|c| *c.borrow_mut() = codes);
    let Ok(plugin) = Plugin::from_table(&HOSTILE, Path::new("hostile.so")) else {
        return;
    };
    assert_eq!(plugin.kind, "sink");
    let ctx = ConnectorContext {
        pipeline_id: "p".into(),
        ..Default::default()
    };
    let Ok(mut sink) = plugin.sink(&serde_json::json!({}), &ctx) else {
        return;
    };
    let _ = sink.describe();
    let _ = sink.delivery();
    if let Ok(Some(last)) = sink.last_commit("p") {
        let _ = sink.commit(&EpochCommit {
            epoch: last.epoch.saturating_add(1),
            ..last
        });
    }
    let _ = sink.describe();
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let parts: Vec<&[u8]> = rest.split(|b| *b == 0xFF).take(4).collect();
    if mode & 1 == 0 {
        sdk_side(&parts);
    } else {
        host_side(mode >> 1, &parts);
    }
});
