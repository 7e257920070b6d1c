//! The compile cache: a guest is compiled once per machine, not once per
//! start. Python and JavaScript guests carry an interpreter (12–18 MB) that
//! Cranelift takes seconds to compile; loading the compiled form takes
//! milliseconds.
//!
//! An entry is `<sha256 of the component>-<engine hash>.cwasm` in the cache
//! folder: a new component or another wasmtime build or configuration (the
//! engine's `precompile_compatibility_hash`) never meets an old entry.
//!
//! Loading compiled code runs it as native code, so the cache loads only
//! bytes it wrote itself: every entry carries an HMAC-SHA256 over its name
//! and content, keyed by a random secret kept in the folder (`key`, mode
//! 0600, made on first use). A file copied in from elsewhere, renamed from
//! another component's entry, truncated or bit-flipped fails the check and is
//! recompiled and rewritten, with a warning. (Anyone who can read the key can
//! forge entries; it guards against everything but the cache folder's owner.)
//!
//! Not wasmtime's own cache: that one deserializes whatever is in its folder.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 16] = b"tributary-cwasm1";
const TAG_LEN: usize = 32;

/// A folder of compiled components, written and checked by this process.
pub struct CompileCache {
    dir: PathBuf,
    key: [u8; 32],
    engine_hash: String,
    hits: AtomicUsize,
    misses: AtomicUsize,
}

impl std::fmt::Debug for CompileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompileCache")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// What the cache did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Components loaded from the cache.
    pub hits: usize,
    /// Components compiled (and then written to the cache).
    pub misses: usize,
}

/// The cache folder cannot be used (the engine then runs without it).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a compile-cache key (32 bytes); remove it", .0.display())]
    BadKey(std::path::PathBuf),
}

impl CacheError {
    fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl CompileCache {
    /// Opens (creating when missing) the cache folder `dir` for `engine`.
    pub fn open(dir: &Path, engine: &Engine) -> Result<Self, CacheError> {
        std::fs::create_dir_all(dir).map_err(|e| CacheError::io("create", dir, e))?;
        let key = read_or_make_key(&dir.join("key"))?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_path_buf(),
            key,
            engine_hash: format!("{:016x}", hasher.finish()),
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
        })
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// The compiled `bytes`, and whether they came from the cache: from the
    /// cache when an entry written by this cache is there, else compiled now
    /// and stored (a failure to store is a warning: the component is still
    /// returned).
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<(Component, bool)> {
        let name = format!(
            "{}-{}.cwasm",
            hex::encode(Sha256::digest(bytes)),
            self.engine_hash
        );
        let path = self.dir.join(&name);
        if let Ok(file) = std::fs::read(&path) {
            match self.verified(&name, &file) {
                Some(compiled) => match deserialize(engine, compiled) {
                    Ok(component) => {
                        self.hits.fetch_add(1, Ordering::Relaxed);
                        return Ok((component, true));
                    }
                    Err(e) => tracing::warn!(
                        "compile cache: {} does not load ({e:#}); compiling again",
                        path.display()
                    ),
                },
                None => tracing::warn!(
                    "compile cache: {} was not written by this cache or is damaged; compiling again",
                    path.display()
                ),
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let component = Component::new(engine, bytes)?;
        match component.serialize() {
            Ok(compiled) => {
                if let Err(e) = self.store(&name, &compiled) {
                    tracing::warn!("compile cache: cannot store {}: {e}", path.display());
                }
            }
            Err(e) => tracing::warn!("compile cache: cannot serialize {}: {e:#}", path.display()),
        }
        Ok((component, false))
    }

    fn tag(&self, name: &str, compiled: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(compiled);
        mac
    }

    /// The compiled bytes of an entry file, when its tag is this cache's.
    fn verified<'a>(&self, name: &str, file: &'a [u8]) -> Option<&'a [u8]> {
        let rest = file.strip_prefix(MAGIC.as_slice())?;
        if rest.len() < TAG_LEN {
            return None;
        }
        let (tag, compiled) = rest.split_at(TAG_LEN);
        self.tag(name, compiled).verify_slice(tag).ok()?;
        Some(compiled)
    }

    /// Writes an entry atomically (a unique temporary file, then rename), so
    /// concurrent starts never see half an entry.
    fn store(&self, name: &str, compiled: &[u8]) -> Result<(), CacheError> {
        let mut file = Vec::with_capacity(MAGIC.len() + TAG_LEN + compiled.len());
        file.extend_from_slice(MAGIC);
        file.extend_from_slice(&self.tag(name, compiled).finalize().into_bytes());
        file.extend_from_slice(compiled);
        let tmp = self.dir.join(format!(".{name}.{}", uuid::Uuid::new_v4()));
        std::fs::write(&tmp, &file).map_err(|e| CacheError::io("write", &tmp, e))?;
        let path = self.dir.join(name);
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            CacheError::io("write", &path, e)
        })
    }
}

/// Loads compiled code this cache verified as its own (see the module docs):
/// the one place the runtime needs `unsafe`, because wasmtime runs such
/// bytes as native code without being able to check them.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, compiled: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `compiled` is what `Component::serialize` produced in a process
    // holding this cache's key (its HMAC checked out), for an engine with the
    // same compatibility hash (part of the entry's name, also under the HMAC).
    unsafe { Component::deserialize(engine, compiled) }
}

/// The cache's secret: read, or made (32 random bytes, owner-only) when the
/// folder is new. Two processes racing to make it both end up reading the
/// winner's.
fn read_or_make_key(path: &Path) -> Result<[u8; 32], CacheError> {
    let read = |path: &Path| -> Result<Option<[u8; 32]>, CacheError> {
        match std::fs::read(path) {
            Ok(bytes) => bytes
                .try_into()
                .map(Some)
                .map_err(|_| CacheError::BadKey(path.to_path_buf())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CacheError::io("read", path, e)),
        }
    };
    if let Some(key) = read(path)? {
        return Ok(key);
    }
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let tmp = path.with_extension(format!("{}", uuid::Uuid::new_v4()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write;
    options
        .open(&tmp)
        .and_then(|mut f| f.write_all(&key))
        .map_err(|e| CacheError::io("write", &tmp, e))?;
    // hard_link fails when another process made the key first: use theirs.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) => read(path)?.ok_or_else(|| CacheError::io("create", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small component: the built-in watermark transform.
    fn component() -> &'static [u8] {
        crate::builtin::builtin("watermark").unwrap()
    }

    fn entries(dir: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .collect();
        found.sort();
        found
    }

    #[test]
    fn second_load_is_a_hit_and_a_foreign_or_damaged_entry_is_recompiled() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = CompileCache::open(dir.path(), &engine).unwrap();
        cache.load(&engine, component()).unwrap();
        assert_eq!(cache.stats(), CacheStats { hits: 0, misses: 1 });
        cache.load(&engine, component()).unwrap();
        assert_eq!(cache.stats(), CacheStats { hits: 1, misses: 1 });
        let entry = entries(dir.path()).pop().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "the key is the owner's only");
        }

        // One flipped byte in the compiled code: refused, recompiled, rewritten.
        let mut bytes = std::fs::read(&entry).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&entry, &bytes).unwrap();
        cache.load(&engine, component()).unwrap();
        assert_eq!(cache.stats(), CacheStats { hits: 1, misses: 2 });
        cache.load(&engine, component()).unwrap();
        assert_eq!(cache.stats(), CacheStats { hits: 2, misses: 2 });

        // An entry another cache (another key) wrote is not trusted either,
        // even though it is a valid compiled component.
        let other_dir = tempfile::tempdir().unwrap();
        let other = CompileCache::open(other_dir.path(), &engine).unwrap();
        other.load(&engine, component()).unwrap();
        std::fs::copy(entries(other_dir.path()).pop().unwrap(), &entry).unwrap();
        cache.load(&engine, component()).unwrap();
        assert_eq!(cache.stats(), CacheStats { hits: 2, misses: 3 });

        // A reopened cache keeps its key: its entries are hits.
        let reopened = CompileCache::open(dir.path(), &engine).unwrap();
        reopened.load(&engine, component()).unwrap();
        assert_eq!(reopened.stats(), CacheStats { hits: 1, misses: 0 });
    }

    #[test]
    fn another_component_or_engine_never_meets_an_entry() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = CompileCache::open(dir.path(), &engine).unwrap();
        cache.load(&engine, component()).unwrap();
        cache
            .load(&engine, crate::builtin::builtin("dedup").unwrap())
            .unwrap();
        assert_eq!(cache.stats().misses, 2);
        assert_eq!(entries(dir.path()).len(), 2);
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let other_engine = Engine::new(&config).unwrap();
        let for_other = CompileCache::open(dir.path(), &other_engine).unwrap();
        for_other.load(&other_engine, component()).unwrap();
        assert_eq!(for_other.stats(), CacheStats { hits: 0, misses: 1 });
        assert_eq!(entries(dir.path()).len(), 3);
        assert!(CompileCache::open(&dir.path().join("key"), &engine).is_err());
    }
}
