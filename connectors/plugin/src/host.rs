//! The host side of the plugin ABI: loading connector plugins, shared
//! libraries in the plugin folder (`--plugin-path`, default `plugins/`
//! beside the binary), and calling them. Behind the `host` feature, so the
//! plugins themselves (which link this crate for [`crate::abi`] and the SDK)
//! do not pull in `libloading`; the engine never touches `unsafe` or this
//! module: the CLI loads the folder and registers each plugin's
//! [`Plugin::sink`] in the engine's registry, which checks names (a plugin
//! may not take a built-in's or another plugin's name).
//!
//! Loading checks, in order: the library opens; it exports
//! `tributary_plugin_abi_version` and that says [`ABI_VERSION`] (only then
//! is the table read); its description parses. A library failing any of
//! these is listed as refused, with the reason, and a pipeline naming it
//! gets that reason.
//!
//! Calls: a plugin error comes back as a connector error of the same kind; a
//! panic inside the plugin (caught by the SDK) fails the call with "panicked"
//! and the sink is not called again, so the pipeline stops before its next
//! commit and resumes from the last one when run again — nothing is lost.
//!
//! ```no_run
//! for (path, loaded) in tributary_plugin::host::load_dir("plugins".as_ref()) {
//!     match loaded {
//!         Ok(plugin) => println!("{}: {}", plugin.name, plugin.description),
//!         Err(reason) => println!("refused {}: {reason}", path.display()),
//!     }
//! }
//! ```

use std::ffi::c_void;
use std::path::{Path, PathBuf};

use crate::abi::{self, ABI_VERSION, Buf, PluginV1};
use arrow_array::{Array, RecordBatch, StructArray};
use tributary_connector::{
    CommitOutcome, CommittedEpoch, ConnectorContext, Delivery, EpochCommit, Error, ErrorKind,
    Result, Sink,
};

/// A loaded plugin.
#[derive(Debug)]
pub struct Plugin {
    pub name: String,
    /// `sink` (the only kind ABI v1 carries).
    pub kind: String,
    pub description: String,
    pub config_schema: serde_json::Value,
    /// The library it came from.
    pub path: PathBuf,
    table: &'static PluginV1,
}

/// The default plugin folder: `plugins/` beside the running binary.
pub fn default_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("plugins")))
}

fn is_library(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("so" | "dylib" | "dll")
    )
}

/// Why a shared library in the plugin folder is not loaded: the message
/// says what it is instead and how to build a plugin this version loads.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(String);

impl From<String> for LoadError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for LoadError {
    fn from(message: &str) -> Self {
        Self(message.to_string())
    }
}

fn refused<T>(message: String) -> std::result::Result<T, LoadError> {
    Err(LoadError(message))
}

/// Every shared library of `dir`, sorted by path, loaded, or the reason it
/// was not. A missing folder has none.
pub fn load_dir(dir: &Path) -> Vec<(PathBuf, std::result::Result<Plugin, LoadError>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_library(p))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let loaded = load(&path);
            (path, loaded)
        })
        .collect()
}

/// Opens one library and reads its table (see the module docs for the checks).
#[allow(unsafe_code)]
fn load(path: &Path) -> std::result::Result<Plugin, LoadError> {
    // SAFETY: opening a library runs its initialisers; a library in the
    // plugin folder is trusted code, as a Kafka Connect plugin.path jar is.
    let library = unsafe { libloading::Library::new(path) }
        .map_err(|e| format!("cannot open it as a shared library: {e}"))?;
    // SAFETY: the symbol's type is fixed by every ABI version.
    let version = unsafe {
        library
            .get::<unsafe extern "C" fn() -> u32>(abi::VERSION_SYMBOL)
            .map_err(|_| {
                "it is not a Tributary plugin (no tributary_plugin_abi_version symbol); build it with \
                 the tributary-plugin crate's export_sink! macro"
                    .to_string()
            })?()
    };
    if version != ABI_VERSION {
        return refused(format!(
            "it was built for plugin ABI version {version}, and this tributary loads version \
             {ABI_VERSION}: rebuild it against the tributary-plugin crate of this tributary"
        ));
    }
    // SAFETY: a v1 library exports this symbol with this type; the table it
    // points to is a `static` of the library, which is never unloaded (below).
    let table: &'static PluginV1 = unsafe {
        let entry = library
            .get::<unsafe extern "C" fn() -> *const PluginV1>(abi::ENTRY_SYMBOL_V1)
            .map_err(|_| {
                "it says ABI version 1 but has no tributary_plugin_v1 symbol".to_string()
            })?;
        entry()
            .as_ref()
            .ok_or("its tributary_plugin_v1 returned no table")?
    };
    if table.abi_version != ABI_VERSION {
        return refused(format!(
            "its table says ABI version {}, not {ABI_VERSION}",
            table.abi_version
        ));
    }
    // Plugins stay loaded for the life of the process: their tables and code
    // are referenced by every sink made from them.
    std::mem::forget(library);
    Plugin::from_table(table, path)
}

impl Plugin {
    /// The plugin behind a v1 function table (its ABI version already
    /// checked), from its `describe` answer; `path` names it in messages.
    /// [`load_dir`] calls it for each library; public for the fuzz targets
    /// (`fuzz/`), which give it a table of their own.
    #[doc(hidden)]
    #[allow(unsafe_code)]
    pub fn from_table(
        table: &'static PluginV1,
        path: &Path,
    ) -> std::result::Result<Plugin, LoadError> {
        let mut out = Buf::EMPTY;
        // SAFETY: valid out-pointers.
        call(table, "describe", |err| unsafe {
            (table.describe)(&mut out, err)
        })
        .map_err(|e| e.to_string())?;
        let text = take(table, out);
        let description: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| format!("its description is not JSON: {e}"))?;
        let field = |k: &str| description[k].as_str().map(str::to_string);
        let name = field("name").ok_or("its description has no name")?;
        let kind = field("kind").unwrap_or_default();
        if kind != "sink" {
            return refused(format!(
                "it is a `{kind}` plugin; this version loads sink plugins only"
            ));
        }
        Ok(Plugin {
            name,
            kind,
            description: field("description").unwrap_or_default(),
            config_schema: description["config_schema"].clone(),
            path: path.to_path_buf(),
            table,
        })
    }
}

/// The bytes of a plugin's `Buf`, copied; the plugin frees the original.
#[allow(unsafe_code)]
fn take(table: &PluginV1, buf: Buf) -> Vec<u8> {
    if buf.ptr.is_null() {
        return Vec::new();
    }
    // SAFETY: the plugin filled `buf` with `len` readable bytes, and gets it
    // back through its own `free_buf`, once.
    unsafe {
        let bytes = std::slice::from_raw_parts(buf.ptr, buf.len).to_vec();
        (table.free_buf)(buf);
        bytes
    }
}

/// Turns a status code and its message into a result. `what` names the call.
fn call(
    table: &PluginV1,
    what: &str,
    f: impl FnOnce(*mut Buf) -> i32,
) -> std::result::Result<(), CallError> {
    let mut err = Buf::EMPTY;
    let code = f(&mut err);
    if code == abi::OK {
        return Ok(());
    }
    let message = String::from_utf8_lossy(&take(table, err)).into_owned();
    Err(CallError {
        what: what.to_string(),
        code,
        message,
    })
}

#[derive(Debug)]
struct CallError {
    what: String,
    code: i32,
    message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.code == abi::PANIC {
            write!(f, "panicked in {}: {}", self.what, self.message)
        } else {
            write!(f, "{} failed: {}", self.what, self.message)
        }
    }
}

/// A sink made by a plugin.
pub struct PluginSink {
    name: String,
    table: &'static PluginV1,
    handle: *mut c_void,
    /// Set after a panic: the plugin's state is unknown, so it is not called again.
    poisoned: Option<String>,
}

// SAFETY: the handle is a `Box<T>` of the plugin where `T: Sink: Send`, and
// the host calls it from one thread at a time (`&mut self`).
#[allow(unsafe_code)]
unsafe impl Send for PluginSink {}

impl std::fmt::Debug for PluginSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSink")
            .field("name", &self.name)
            .finish()
    }
}

impl Plugin {
    /// Builds a sink of this plugin from its config fields.
    pub fn sink(
        &self,
        config: &serde_json::Value,
        ctx: &ConnectorContext,
    ) -> Result<Box<dyn Sink>> {
        open(self, config, ctx).map(|s| Box::new(s) as Box<dyn Sink>)
    }
}

#[allow(unsafe_code)]
fn open(plugin: &Plugin, config: &serde_json::Value, ctx: &ConnectorContext) -> Result<PluginSink> {
    let table = plugin.table;
    let config = config.to_string();
    let context = serde_json::json!({
        "pipeline_id": ctx.pipeline_id,
        "base_dir": ctx.base_dir,
        "state_dir": ctx.state_dir,
    })
    .to_string();
    let mut handle: *mut c_void = std::ptr::null_mut();
    call(table, "open", |err| {
        // SAFETY: pointers and lengths of live strings; `handle` is writable.
        unsafe {
            (table.open)(
                config.as_ptr(),
                config.len(),
                context.as_ptr(),
                context.len(),
                &mut handle,
                err,
            )
        }
    })
    .map_err(|e| to_error(&plugin.name, e))?;
    Ok(PluginSink {
        name: plugin.name.clone(),
        table,
        handle,
        poisoned: None,
    })
}

fn to_error(name: &str, e: CallError) -> Error {
    let kind = match e.code & !abi::RETRYABLE {
        abi::ERR_CONFIG => ErrorKind::Config,
        abi::ERR_EXTERNAL => ErrorKind::External,
        abi::ERR_DATA => ErrorKind::Data,
        _ => ErrorKind::Internal,
    };
    Error::new(kind, format!("plugin sink `{name}` {e}")).retryable(e.code & abi::RETRYABLE != 0)
}

impl PluginSink {
    /// One table call; a panic poisons the sink.
    fn call(&mut self, what: &str, f: impl FnOnce(*mut Buf) -> i32) -> Result<()> {
        if let Some(why) = &self.poisoned {
            return Err(Error::internal(format!(
                "plugin sink `{}` is not called again after it panicked ({why})",
                self.name
            )));
        }
        call(self.table, what, f).map_err(|e| {
            if e.code == abi::PANIC {
                self.poisoned = Some(e.message.clone());
            }
            to_error(&self.name, e)
        })
    }
}

#[allow(unsafe_code)]
impl Sink for PluginSink {
    fn last_commit(&mut self, pipeline_id: &str) -> Result<Option<CommittedEpoch>> {
        let (table, handle) = (self.table, self.handle);
        let mut out = Buf::EMPTY;
        // SAFETY: a live handle and valid pointers.
        self.call("last_commit", |err| unsafe {
            (table.last_commit)(
                handle,
                pipeline_id.as_ptr(),
                pipeline_id.len(),
                &mut out,
                err,
            )
        })?;
        let text = take(table, out);
        serde_json::from_slice(&text).map_err(|e| {
            Error::internal(format!(
                "plugin sink `{}` answered last_commit with something that is not a commit: {e}",
                self.name
            ))
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let data = StructArray::from(batch.clone()).into_data();
        let (mut array, schema) = arrow_array::ffi::to_ffi(&data)
            .map_err(|e| Error::internal(format!("cannot export the batch over the C ABI: {e}")))?;
        let (table, handle) = (self.table, self.handle);
        // SAFETY: the plugin takes `array` (leaving a released one that drops
        // as a no-op) and reads `schema`, which lives until after the call.
        self.call("write", |err| unsafe {
            (table.write)(handle, &mut array, &schema, err)
        })
    }

    fn commit(&mut self, commit: &EpochCommit) -> Result<CommitOutcome> {
        let text = serde_json::to_string(commit).map_err(|e| Error::internal(e.to_string()))?;
        let (table, handle) = (self.table, self.handle);
        let mut outcome = abi::OUTCOME_COMMITTED;
        // SAFETY: a live handle and valid pointers.
        self.call("commit", |err| unsafe {
            (table.commit)(handle, text.as_ptr(), text.len(), &mut outcome, err)
        })?;
        Ok(if outcome == abi::OUTCOME_ALREADY_COMMITTED {
            CommitOutcome::AlreadyCommitted
        } else {
            CommitOutcome::Committed
        })
    }

    fn delivery(&self) -> Delivery {
        let mut out = abi::DELIVERY_AT_LEAST_ONCE;
        let mut err = Buf::EMPTY;
        if self.poisoned.is_none() {
            // SAFETY: a live handle and valid pointers.
            let code = unsafe { (self.table.delivery)(self.handle, &mut out, &mut err) };
            let _ = take(self.table, err);
            if code != abi::OK {
                // Unknown: claim the lesser guarantee.
                out = abi::DELIVERY_AT_LEAST_ONCE;
            }
        }
        if out == abi::DELIVERY_EXACTLY_ONCE {
            Delivery::ExactlyOnce
        } else {
            Delivery::AtLeastOnce
        }
    }

    fn describe(&self) -> String {
        let mut out = Buf::EMPTY;
        let mut err = Buf::EMPTY;
        if self.poisoned.is_some() {
            return format!("plugin sink `{}`", self.name);
        }
        // SAFETY: a live handle and valid pointers.
        let code = unsafe { (self.table.describe_sink)(self.handle, &mut out, &mut err) };
        let _ = take(self.table, err);
        let text = String::from_utf8_lossy(&take(self.table, out)).into_owned();
        if code == abi::OK {
            format!("{text} (plugin `{}`)", self.name)
        } else {
            format!("plugin sink `{}`", self.name)
        }
    }
}

impl Drop for PluginSink {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: the handle came from `open` and is closed once, here.
        unsafe { (self.table.close)(self.handle) }
    }
}
