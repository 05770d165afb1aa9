//! Parallel downloads: a few worker threads take files from one queue, each file checked
//! against what is expected of it on arrival. Every failure is collected, so one run
//! names every URL that could not be fetched.

use super::Cx;
use super::http::{Expect, FetchError, Fetched};
use super::lock::LockedFile;
use anyhow::{Result, bail};
use std::sync::Mutex;

/// Concurrent downloads: enough to hide latency, few enough to be polite to mirrors.
pub const WORKERS: usize = 8;

/// One download: a label for errors (source id, package, platform), URL, expectations.
#[derive(Debug, Clone)]
pub struct Job {
    pub label: String,
    pub url: String,
    pub expect: Expect,
    /// Tried when `url` answers 404 (CRAN moves superseded sources to its archive).
    pub fallback: Option<String>,
}

impl Job {
    /// A locked file, checked against its size and SHA-256 (so a fallback URL can only
    /// ever yield the same bytes).
    pub fn locked(label: &str, f: &LockedFile, fallback: Option<String>) -> Job {
        Job {
            label: label.to_string(),
            url: f.url.clone(),
            expect: Expect {
                sha256: Some(f.sha256.clone()),
                size: Some(f.size),
                md5: None,
            },
            fallback,
        }
    }
}

/// Downloads every job into the store, in parallel; results in the order of `jobs`.
/// `total` (bytes, 0 if unknown) sizes the progress bar.
pub fn fetch_many(cx: &Cx, jobs: &[Job], total: u64) -> Result<Vec<Fetched>> {
    let queue = Mutex::new(jobs.iter().enumerate());
    let results: Mutex<Vec<Option<Fetched>>> = Mutex::new(vec![None; jobs.len()]);
    let errors = Mutex::new(Vec::new());
    let task = Mutex::new(cx.reporter.task("download", total));
    std::thread::scope(|s| {
        for _ in 0..WORKERS.min(jobs.len()) {
            s.spawn(|| {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.next());
                    let Some((i, job)) = next else { break };
                    let (got, tried) = match (cx.client.download(cx.store, &job.url, &job.expect), &job.fallback) {
                        // Say where it looked first, then why the fallback failed too.
                        (Err(FetchError::NotFound { .. }), Some(other)) => (
                            cx.client.download(cx.store, other, &job.expect),
                            format!("{} → {other}: ", job.url),
                        ),
                        (result, _) => (result, String::new()),
                    };
                    match got {
                        Ok(f) => {
                            if let Ok(mut t) = task.lock() {
                                t.advance(f.size);
                            }
                            if let Ok(mut r) = results.lock() {
                                r[i] = Some(f);
                            }
                        }
                        Err(e) => {
                            if let Ok(mut errs) = errors.lock() {
                                errs.push(format!("{}: {tried}{e}", job.label));
                            }
                        }
                    }
                }
            });
        }
    });
    if let Ok(t) = task.into_inner() {
        t.finish();
    }
    let errors = errors.into_inner().unwrap_or_default();
    if !errors.is_empty() {
        let n = errors.len();
        bail!("{n} of {} downloads failed:\n  {}", jobs.len(), errors.join("\n  "));
    }
    Ok(results.into_inner().unwrap_or_default().into_iter().flatten().collect())
}
