//! The stage cache, shared by every recipe: each entry lives in a versioned bucket
//! (`rootfs-v1`, `steps-v1`, `debs-v1`) under a key that is the SHA-256 of exactly the
//! inputs that determine it, stored beside it as `key.json`. Entries are built in a
//! temporary directory and renamed into place when complete, under a lock, so an
//! interrupted or concurrent build never sees half an entry.

pub mod lock;

use anyhow::{Context, Result};
use fs_err as fs;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The cache and whether stages may be read from it (`--no-cache` turns that off).
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    read: bool,
    /// Entries this process built: reused within the run even when `read` is off (`--no-cache`
    /// builds every stage afresh once, and several images of one recipe share it).
    built: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Entries built this run only to be resumed from if the run fails, or shared if
    /// another image of the run needs them ([`Cache::mark_transient`]).
    transient: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<PathBuf>>>,
    /// Entries this run looked up and used: never transient.
    used: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<PathBuf>>>,
}

/// A cache key: the digest of a stage's inputs, and the inputs themselves.
#[derive(Debug, Clone)]
pub struct Key {
    pub hex: String,
    pub inputs: serde_json::Value,
}

impl Key {
    /// Hashes `inputs` (serialised as JSON with sorted keys) under a bucket version.
    pub fn new(bucket: &str, inputs: &impl Serialize) -> Key {
        let inputs = serde_json::to_value(inputs).unwrap_or_default();
        let canonical = canonical_json(&inputs);
        let mut h = Sha256::new();
        h.update(bucket.as_bytes());
        h.update([0]);
        h.update(canonical.as_bytes());
        Key {
            hex: hex::encode(h.finalize()),
            inputs,
        }
    }

    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

fn canonical_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", serde_json::Value::String((*k).clone()), canonical_json(&m[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        serde_json::Value::Array(a) => format!("[{}]", a.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// One cache entry, for `imgbuild cache list`.
#[derive(Debug, Clone, Serialize)]
pub struct EntryInfo {
    pub bucket: String,
    pub key: String,
    pub bytes: u64,
    pub last_used: SystemTime,
    pub describe: String,
    pub path: PathBuf,
}

impl Cache {
    /// The cache directory: `$IMGBUILD_CACHE_DIR`, else `$XDG_CACHE_HOME/imgbuild`, else
    /// `~/.cache/imgbuild`.
    pub fn default_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("IMGBUILD_CACHE_DIR") {
            return PathBuf::from(d);
        }
        if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
            return PathBuf::from(d).join("imgbuild");
        }
        match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".cache/imgbuild"),
            None => PathBuf::from(".imgbuild-cache"),
        }
    }

    pub fn open(root: PathBuf, read: bool) -> Result<Cache> {
        fs::create_dir_all(&root).with_context(|| format!("creating the cache directory {}", root.display()))?;
        Ok(Cache {
            root,
            read,
            built: Default::default(),
            transient: Default::default(),
            used: Default::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A plain directory in the cache (e.g. downloaded .deb files), created on demand.
    pub fn dir(&self, bucket: &str, name: &str) -> Result<PathBuf> {
        let d = self.root.join(bucket).join(name);
        fs::create_dir_all(&d)?;
        Ok(d)
    }

    fn entry_dir(&self, bucket: &str, key: &Key) -> PathBuf {
        self.root.join(bucket).join(&key.hex)
    }

    /// The entry for `key`, if complete and reading is allowed; marks it as used.
    pub fn lookup(&self, bucket: &str, key: &Key) -> Option<PathBuf> {
        if !self.read && !self.built_now(bucket, key) {
            return None;
        }
        let dir = self.entry_dir(bucket, key);
        let meta = dir.join("key.json");
        if meta.is_file() {
            touch(&meta);
            // Used (another image of the run shares it, or a build resumes from it): kept.
            if let Ok(mut t) = self.transient.lock() {
                t.remove(&dir);
            }
            if let Ok(mut u) = self.used.lock() {
                u.insert(dir.clone());
            }
            Some(dir)
        } else {
            None
        }
    }

    /// Whether this process built the entry (see `built`).
    fn built_now(&self, bucket: &str, key: &Key) -> bool {
        self.built
            .lock()
            .map(|b| b.contains(&format!("{bucket}/{}", key.hex)))
            .unwrap_or(false)
    }

    /// Returns the entry for `key`, building it with `build(tmp_dir)` if it is missing.
    /// Concurrent builds of the same key wait for each other; a failed build leaves
    /// nothing behind.
    pub fn get_or_build(
        &self,
        bucket: &str,
        key: &Key,
        describe: &str,
        build: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<(PathBuf, bool)> {
        if let Some(dir) = self.lookup(bucket, key) {
            return Ok((dir, true));
        }
        let bucket_dir = self.root.join(bucket);
        fs::create_dir_all(&bucket_dir)?;
        let _lock = lock::Lock::exclusive(&bucket_dir.join(format!("{}.lock", key.hex)))?;
        // Someone else may have built it while we waited for the lock.
        if let Some(dir) = self.lookup(bucket, key) {
            return Ok((dir, true));
        }
        let tmp = bucket_dir.join(format!(".tmp-{}-{}", key.short(), std::process::id()));
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir_all(&tmp)?;
        crate::interrupt::remove_on_interrupt(tmp.clone());
        let result = build(&tmp);
        crate::interrupt::forget(&tmp);
        if let Err(e) = result {
            let _ = fs_err::remove_dir_all(&tmp);
            return Err(e);
        }
        let meta = serde_json::json!({"bucket": bucket, "key": key.hex, "describe": describe, "inputs": key.inputs});
        fs::write(tmp.join("key.json"), serde_json::to_vec_pretty(&meta)?)?;
        let dir = self.entry_dir(bucket, key);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::rename(&tmp, &dir)?;
        let _ = fs::remove_file(bucket_dir.join(format!("{}.lock", key.hex)));
        if let Ok(mut built) = self.built.lock() {
            built.insert(format!("{bucket}/{}", key.hex));
        }
        Ok((dir, false))
    }

    /// Marks an entry as worth keeping only until the run succeeds, unless this run
    /// uses it (looks it up) before then: [`Cache::drop_transient`].
    pub fn mark_transient(&self, bucket: &str, key: &Key) {
        let dir = self.entry_dir(bucket, key);
        if self.used.lock().is_ok_and(|u| u.contains(&dir)) {
            return;
        }
        if let Ok(mut t) = self.transient.lock() {
            t.insert(dir);
        }
    }

    /// The entry's directory if it exists, without marking it used (nothing reads it).
    pub fn peek(&self, bucket: &str, key: &Key) -> Option<PathBuf> {
        let dir = self.entry_dir(bucket, key);
        dir.join("key.json").is_file().then_some(dir)
    }

    /// Removes the transient entries no one looked up again; returns how many. Called
    /// when the run has succeeded: a failed run keeps them, so the next one resumes.
    pub fn drop_transient(&self) -> usize {
        let dirs: Vec<PathBuf> = match self.transient.lock() {
            Ok(mut t) => t.drain().collect(),
            Err(_) => return 0,
        };
        dirs.iter().filter(|d| fs::remove_dir_all(d).is_ok()).count()
    }

    /// Every complete entry.
    pub fn list(&self) -> Result<Vec<EntryInfo>> {
        let mut out = Vec::new();
        let Ok(buckets) = fs_err::read_dir(&self.root) else {
            return Ok(out);
        };
        for b in buckets.flatten() {
            let bucket = b.file_name().to_string_lossy().into_owned();
            let Ok(entries) = fs_err::read_dir(b.path()) else {
                continue;
            };
            for e in entries.flatten() {
                let meta_path = e.path().join("key.json");
                let Ok(meta) = fs_err::read(&meta_path) else { continue };
                let v: serde_json::Value = serde_json::from_slice(&meta).unwrap_or_default();
                out.push(EntryInfo {
                    bucket: bucket.clone(),
                    key: e.file_name().to_string_lossy().into_owned(),
                    bytes: dir_size(&e.path()),
                    last_used: fs_err::metadata(&meta_path)
                        .and_then(|m| m.modified())
                        .unwrap_or(SystemTime::UNIX_EPOCH),
                    describe: v["describe"].as_str().unwrap_or_default().to_string(),
                    path: e.path(),
                });
            }
        }
        out.sort_by(|a, b| (&a.bucket, a.last_used).cmp(&(&b.bucket, b.last_used)));
        Ok(out)
    }

    /// Removes entries not used for `unused_for` (all entries when `None`), plus leftovers
    /// of interrupted builds. Returns how many entries and bytes were freed.
    pub fn prune(&self, unused_for: Option<Duration>) -> Result<(usize, u64)> {
        let now = SystemTime::now();
        let mut count = 0;
        let mut bytes = 0;
        for e in self.list()? {
            let age = now.duration_since(e.last_used).unwrap_or_default();
            if unused_for.is_none_or(|d| age >= d) {
                fs::remove_dir_all(&e.path)?;
                count += 1;
                bytes += e.bytes;
            }
        }
        if let Ok(buckets) = fs_err::read_dir(&self.root) {
            for b in buckets.flatten() {
                for e in fs_err::read_dir(b.path()).into_iter().flatten().flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with(".tmp-") && lock::is_stale(&name) {
                        bytes += dir_size(&e.path());
                        let _ = fs::remove_dir_all(e.path());
                    }
                }
                if unused_for.is_none() && b.file_name().to_string_lossy().starts_with("debs-") {
                    bytes += dir_size(&b.path());
                    fs::remove_dir_all(b.path())?;
                    count += 1;
                }
            }
        }
        Ok((count, bytes))
    }
}

fn touch(path: &Path) {
    if let Ok(f) = std::fs::File::options().append(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

fn dir_size(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(m) = fs_err::symlink_metadata(&p) else { continue };
        if m.is_dir() {
            stack.extend(fs_err::read_dir(&p).into_iter().flatten().flatten().map(|e| e.path()));
        } else {
            total += m.blocks() * 512;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_map_order_but_not_values() {
        let a = Key::new("b-v1", &serde_json::json!({"x": 1, "y": [1, 2]}));
        let b = Key::new("b-v1", &serde_json::json!({"y": [1, 2], "x": 1}));
        let c = Key::new("b-v1", &serde_json::json!({"x": 1, "y": [2, 1]}));
        let d = Key::new("b-v2", &serde_json::json!({"x": 1, "y": [1, 2]}));
        assert_eq!(a.hex, b.hex);
        assert_ne!(a.hex, c.hex);
        assert_ne!(a.hex, d.hex);
    }

    #[test]
    fn build_once_then_hit_and_failed_builds_leave_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(tmp.path().to_path_buf(), true).unwrap();
        let key = Key::new("t-v1", &"inputs");
        let err = cache.get_or_build("t-v1", &key, "test", |_| anyhow::bail!("boom"));
        assert!(err.is_err());
        assert!(cache.list().unwrap().is_empty());
        let (dir, hit) = cache
            .get_or_build("t-v1", &key, "test", |d| Ok(fs_err::write(d.join("x"), "1")?))
            .unwrap();
        assert!(!hit);
        assert_eq!(fs_err::read(dir.join("x")).unwrap(), b"1");
        let (_, hit) = cache
            .get_or_build("t-v1", &key, "test", |_| anyhow::bail!("must not run"))
            .unwrap();
        assert!(hit);
        assert_eq!(cache.list().unwrap().len(), 1);
        let no_read = Cache::open(tmp.path().to_path_buf(), false).unwrap();
        assert!(no_read.lookup("t-v1", &key).is_none());
        assert_eq!(cache.prune(None).unwrap().0, 1);
        assert!(cache.list().unwrap().is_empty());
    }
}
