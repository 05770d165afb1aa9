//! Downloads into the content store: parallel-safe, resumable (HTTP Range with If-Range),
//! retried with exponential backoff on network errors and 5xx answers, and hashed while
//! the bytes arrive (a resumed download reads back only what an earlier attempt left). A
//! file reaches the store only after its SHA-256 (and size, and any digest the upstream
//! index publishes) matched. A failure of this machine's own disk is told apart from the
//! network's: it is not retried.

use super::store::Store;
use anyhow::Result;
use fs_err as fs;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long the network may take. `stall`: a connection, a response, or a download
/// that makes no progress for this long fails (and is tried again); `deadline`: the most
/// one URL may take, all its attempts and pauses included. A server that never answers
/// or drips a byte a minute therefore costs at most `deadline`, with the URL named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub stall: Duration,
    pub deadline: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            stall: Duration::from_secs(30),
            deadline: Duration::from_secs(30 * 60),
        }
    }
}

/// Why a download failed; callers branch on `NotFound` (e.g. to try an archive URL).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: not found (HTTP {status})")]
    NotFound { url: String, status: u16 },
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    /// A redirect ureq did not follow: to another scheme (`file://`), or the 11th.
    #[error(
        "{url}: HTTP {status} redirects to `{location}`, which imgbuild does not follow (only http and https, at most 10 redirects); use the final URL"
    )]
    Redirect { url: String, status: u16, location: String },
    #[error(
        "{url}: {what} mismatch: expected {expected}, got {got}; the upstream file changed or the download was corrupted"
    )]
    Mismatch {
        url: String,
        what: &'static str,
        expected: String,
        got: String,
    },
    #[error("{url}: {message} (after {attempts} attempts)")]
    Network {
        url: String,
        message: String,
        attempts: u32,
    },
    /// This machine's disk, not the network: never retried.
    #[error("{url}: {action} {}", .path.display())]
    Local {
        url: String,
        action: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The content store refused the finished file.
    #[error("{url}: storing the download")]
    Store {
        url: String,
        #[source]
        source: anyhow::Error,
    },
}

impl crate::fault::Fault for FetchError {
    fn kind(&self) -> crate::fault::Kind {
        use crate::fault::Kind;
        match self {
            // The URL is the recipe's (or a package name that leads to it): a missing
            // input the user names. A redirect is the server's doing.
            FetchError::NotFound { .. } => Kind::User,
            _ => Kind::Environment,
        }
    }
    fn hints(&self) -> Vec<String> {
        match self {
            FetchError::Local { source, .. } if crate::fault::is_disk_full(source) => {
                vec![crate::fault::DISK_FULL_HINT.into()]
            }
            FetchError::Network { url, .. } => {
                let host = url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or(url);
                vec![format!(
                    "this host cannot reach {host}: check its network, fetch from a copy with `content.fetch_from`, or build without that content (the recipes' `--set mirrors=false`)"
                )]
            }
            _ => Vec::new(),
        }
    }
}

/// What a download must turn out to be.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub sha256: Option<String>,
    pub size: Option<u64>,
    /// The MD5 a CRAN `PACKAGES` index publishes.
    pub md5: Option<String>,
}

/// A file now in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The URL asked for (with [`super::pool::Job::fallback`], the one that answered).
    pub url: String,
    pub sha256: String,
    pub size: u64,
    /// The URL after redirects.
    pub final_url: String,
}

/// The HTTP client of the fetch stage; shareable between download threads.
pub struct Client {
    agent: ureq::Agent,
    retries: u32,
    backoff: Duration,
    timeouts: Timeouts,
    downloaded: AtomicU64,
    /// `content.fetch_from`: (upstream prefix, replacement), longest upstream first.
    rewrites: Vec<(String, String)>,
}

enum Attempt {
    /// The whole file is in the partial file, with its digests.
    Done(Digests),
    /// Worth another try (network error, 5xx, 429), after a pause.
    Retry(String),
}

impl Default for Client {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl Client {
    /// A client that downloads upstream URLs from the `rewrites` replacements instead
    /// (`content.fetch_from`); callers and their results only ever see upstream URLs.
    pub fn new(rewrites: Vec<(String, String)>) -> Client {
        Self::with_timeouts(rewrites, Timeouts::default())
    }

    /// [`Client::new`] with other time limits (`--net-timeout`, `--net-deadline`).
    pub fn with_timeouts(rewrites: Vec<(String, String)>, timeouts: Timeouts) -> Client {
        let config = ureq::Agent::config_builder()
            .tls_config(crate::net::tls())
            .timeout_connect(Some(timeouts.stall))
            .timeout_recv_response(Some(timeouts.stall))
            .timeout_per_read(Some(timeouts.stall))
            .http_status_as_error(false)
            // Redirects are followed by hand (see `get_following`): ureq would send a
            // `file://` target to the same server, and name neither in its error.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(concat!("imgbuild/", env!("CARGO_PKG_VERSION")))
            .build();
        let agent = ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::default(),
            super::dns::CachingResolver::default(),
        );
        // Tests shorten the pause between retries; nothing else needs to.
        let ms = std::env::var("IMGBUILD_RETRY_BACKOFF_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(500);
        Client {
            agent,
            retries: 4,
            backoff: Duration::from_millis(ms),
            timeouts,
            downloaded: AtomicU64::new(0),
            rewrites,
        }
    }

    /// The time limits, for the tools that download on their own (uv, npm, git).
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// The `content.fetch_from` pairs: (upstream prefix, replacement).
    pub fn rewrites(&self) -> &[(String, String)] {
        &self.rewrites
    }

    /// Where `url` is really downloaded from (`content.fetch_from`).
    pub fn via(&self, url: &str) -> String {
        rewrite(url, self.rewrites.iter().map(|(f, t)| (f.as_str(), t.as_str())))
    }

    /// The upstream URL of an address [`Client::via`] produced (e.g. after a redirect).
    pub fn upstream(&self, url: &str) -> String {
        rewrite(url, self.rewrites.iter().map(|(f, t)| (t.as_str(), f.as_str())))
    }

    /// How errors name a URL: upstream, and where it really came from when rewritten.
    fn label(&self, url: &str) -> String {
        match self.via(url) {
            real if real != url => format!("{url} (from {real})"),
            _ => url.to_string(),
        }
    }

    /// Bytes received from the network so far (resumed parts are not counted twice).
    pub fn downloaded(&self) -> u64 {
        self.downloaded.load(Ordering::Relaxed)
    }

    /// A small document (index page, PACKAGES file) into memory, with retries.
    pub fn get(&self, url: &str) -> Result<(Vec<u8>, String), FetchError> {
        self.get_accept(url, None)
    }

    /// Like [`Client::get`], asking for a media type (e.g. PEP 691 JSON).
    pub fn get_accept(&self, url: &str, accept: Option<&str>) -> Result<(Vec<u8>, String), FetchError> {
        let real = self.via(url);
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let headers: Vec<(&str, String)> = accept.map(|a| ("Accept", a.to_string())).into_iter().collect();
            let err = match self.get_following(url, &real, &headers, started)? {
                Ok((mut resp, at)) => {
                    let status = resp.status().as_u16();
                    let final_url = self.upstream(&at);
                    match status {
                        200..=299 => match resp.body_mut().with_config().limit(256 << 20).read_to_vec() {
                            Ok(body) => {
                                self.downloaded.fetch_add(body.len() as u64, Ordering::Relaxed);
                                return Ok((body, final_url));
                            }
                            Err(e) => e.to_string(),
                        },
                        404 | 410 => {
                            return Err(FetchError::NotFound {
                                url: self.label(url),
                                status,
                            });
                        }
                        429 | 500..=599 => format!("HTTP {status}"),
                        300..=399 => return Err(self.redirect_error(url, &resp)),
                        _ => {
                            return Err(FetchError::Status {
                                url: self.label(url),
                                status,
                            });
                        }
                    }
                }
                Err(e) if !transient(&e) => {
                    return Err(FetchError::Network {
                        url: self.label(url),
                        message: e.to_string(),
                        attempts: attempt,
                    });
                }
                Err(e) => self.explain(&e),
            };
            self.pause_or_give_up(url, err, attempt, started)?;
        }
    }

    /// What is left of `deadline` for a URL first asked for at `started` (never zero:
    /// ureq reads that as "no time at all" only after trying).
    fn left(&self, started: Instant) -> Duration {
        self.timeouts
            .deadline
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1))
    }

    /// One GET of `real` (the address `url` is fetched from), following up to
    /// [`MAX_REDIRECTS`] redirects to http or https addresses; returns the response and
    /// the address that gave it. A redirect anywhere else, or one too many, is an error
    /// naming its target; a network error is returned for the caller to retry.
    #[allow(clippy::type_complexity)]
    fn get_following(
        &self,
        url: &str,
        real: &str,
        headers: &[(&str, String)],
        started: Instant,
    ) -> Result<Result<(ureq::http::Response<ureq::Body>, String), ureq::Error>, FetchError> {
        let mut at = real.to_string();
        let mut redirects = 0;
        loop {
            let mut req = self.agent.get(&at);
            for (name, value) in headers {
                req = req.header(*name, value);
            }
            let req = req.config().timeout_global(Some(self.left(started))).build();
            let resp = match req.call() {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            let status = resp.status();
            let location = resp.headers().get("location").and_then(|v| v.to_str().ok());
            let (true, Some(location)) = (status.is_redirection() && status != 304, location) else {
                return Ok(Ok((resp, at)));
            };
            let next = url::Url::parse(&at).and_then(|base| base.join(location));
            match next {
                Ok(n) if redirects < MAX_REDIRECTS && matches!(n.scheme(), "http" | "https") => at = n.to_string(),
                _ => return Err(self.redirect_error(url, &resp)),
            }
            redirects += 1;
        }
    }

    /// The error for a redirect that was not followed, naming where it led.
    fn redirect_error<B>(&self, url: &str, resp: &ureq::http::Response<B>) -> FetchError {
        let location = resp
            .headers()
            .get("location")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_else(|| "(no Location header)".into());
        FetchError::Redirect {
            url: self.label(url),
            status: resp.status().as_u16(),
            location,
        }
    }

    /// A ureq error as it reads in our messages: a timeout says which limit to raise.
    fn explain(&self, e: &ureq::Error) -> String {
        match e {
            ureq::Error::Timeout(t) => format!(
                "timed out ({t}; limits: {} s without progress, {} s in all: --net-timeout, --net-deadline)",
                self.timeouts.stall.as_secs(),
                self.timeouts.deadline.as_secs()
            ),
            other => other.to_string(),
        }
    }

    /// Sleeps before the next attempt, or fails when the attempts or the deadline are
    /// used up.
    fn pause_or_give_up(&self, url: &str, message: String, attempt: u32, started: Instant) -> Result<(), FetchError> {
        let pause = self.backoff * 2u32.pow(attempt - 1);
        let out_of_time = started.elapsed() + pause >= self.timeouts.deadline;
        if attempt > self.retries || out_of_time {
            let message = if out_of_time && attempt <= self.retries {
                format!(
                    "{message}; gave up at the {} s deadline (--net-deadline)",
                    self.timeouts.deadline.as_secs()
                )
            } else {
                message
            };
            return Err(FetchError::Network {
                url: self.label(url),
                message,
                attempts: attempt,
            });
        }
        std::thread::sleep(pause);
        Ok(())
    }

    /// Downloads `url` into the store unless the expected content is already there.
    /// A partial download from an earlier run is resumed.
    pub fn download(&self, store: &Store, url: &str, expect: &Expect) -> Result<Fetched, FetchError> {
        if let Some(sha) = &expect.sha256
            && let Some(size) = store.size(sha)
        {
            return Ok(Fetched {
                url: url.into(),
                sha256: sha.clone(),
                size,
                final_url: url.into(),
            });
        }
        let partial = store.partial_dir().join(crate::digest::sha256_hex(url.as_bytes()));
        let mut final_url = url.to_string();
        let started = Instant::now();
        let mut attempt = 0;
        let mut restarted = false;
        loop {
            attempt += 1;
            let outcome = self.attempt(url, &partial, expect, &mut final_url, started);
            match outcome {
                Ok(Attempt::Done(d)) => match self.finish(store, url, &partial, d, expect) {
                    Ok(f) => {
                        return Ok(Fetched { final_url, ..f });
                    }
                    // A resumed file may have joined two different versions: once more,
                    // from the start.
                    Err(FetchError::Mismatch { .. }) if !restarted && attempt <= self.retries => {
                        let _ = fs_err::remove_file(&partial);
                        restarted = true;
                    }
                    Err(e) => {
                        let _ = fs_err::remove_file(&partial);
                        return Err(e);
                    }
                },
                Ok(Attempt::Retry(message)) => self.pause_or_give_up(url, message, attempt, started)?,
                Err(e) => return Err(e),
            }
        }
    }

    /// One request: resumes from the partial file's length when there is one.
    fn attempt(
        &self,
        url: &str,
        partial: &std::path::Path,
        expect: &Expect,
        final_out: &mut String,
        started: Instant,
    ) -> Result<Attempt, FetchError> {
        let have = fs_err::metadata(partial).map(|m| m.len()).unwrap_or(0);
        let validator_file = partial.with_extension("validator");
        let validator = fs_err::read_to_string(&validator_file).ok();
        // Resume only when the server can tell us the file is unchanged, or when the
        // final hash will catch a change anyway.
        let resume = have > 0 && (validator.is_some() || expect.sha256.is_some());
        let real = self.via(url);
        let mut headers = Vec::new();
        if resume {
            headers.push(("Range", format!("bytes={have}-")));
            if let Some(v) = &validator {
                headers.push(("If-Range", v.trim().to_string()));
            }
        }
        let (mut resp, at) = match self.get_following(url, &real, &headers, started)? {
            Ok(r) => r,
            Err(e) if !transient(&e) => {
                return Err(FetchError::Network {
                    url: self.label(url),
                    message: self.explain(&e),
                    attempts: 1,
                });
            }
            Err(e) => return Ok(Attempt::Retry(self.explain(&e))),
        };
        let status = resp.status().as_u16();
        *final_out = self.upstream(&at);
        let append = match status {
            206 if resume => true,
            200..=299 => false,
            416 if resume => {
                let d = Digests::of_file(partial).map_err(|e| self.local(url, "reading", partial, e))?;
                return Ok(Attempt::Done(d));
            }
            404 | 410 => {
                return Err(FetchError::NotFound {
                    url: self.label(url),
                    status,
                });
            }
            429 | 500..=599 => return Ok(Attempt::Retry(format!("HTTP {status}"))),
            300..=399 => return Err(self.redirect_error(url, &resp)),
            _ => {
                return Err(FetchError::Status {
                    url: self.label(url),
                    status,
                });
            }
        };
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        match header("etag")
            .filter(|e| !e.starts_with("W/"))
            .or_else(|| header("last-modified"))
        {
            Some(v) => {
                let _ = fs_err::write(&validator_file, v);
            }
            None => {
                let _ = fs_err::remove_file(&validator_file);
            }
        }
        let io = |e: std::io::Error| self.local(url, "writing", partial, e);
        // What an earlier attempt left is read back once; the rest is hashed as it arrives.
        let mut digests = if append {
            Digests::of_file(partial).map_err(|e| self.local(url, "reading", partial, e))?
        } else {
            Digests::default()
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(partial)
            .map_err(io)?;
        let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    file.write_all(&buf[..n]).map_err(io)?;
                    digests.update(&buf[..n]);
                    self.downloaded.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    let text = e.to_string();
                    let why = match e.into_inner().and_then(|i| i.downcast::<ureq::Error>().ok()) {
                        Some(u) => self.explain(&u),
                        None => format!("the connection broke: {text}"),
                    };
                    return Ok(Attempt::Retry(format!("download stopped: {why}")));
                }
            }
        }
        file.flush().map_err(io)?;
        Ok(Attempt::Done(digests))
    }

    fn local(&self, url: &str, action: &'static str, path: &std::path::Path, source: std::io::Error) -> FetchError {
        FetchError::Local {
            url: self.label(url),
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Checks the finished partial file and moves it into the store.
    fn finish(
        &self,
        store: &Store,
        url: &str,
        partial: &std::path::Path,
        digests: Digests,
        expect: &Expect,
    ) -> Result<Fetched, FetchError> {
        let (sha256, md5, size) = digests.finish();
        let mismatch = |what, expected: String, got: String| FetchError::Mismatch {
            url: self.label(url),
            what,
            expected,
            got,
        };
        if let Some(want) = expect.size
            && want != size
        {
            return Err(mismatch("size", want.to_string(), size.to_string()));
        }
        if let Some(want) = &expect.sha256
            && !want.eq_ignore_ascii_case(&sha256)
        {
            return Err(mismatch("sha256", want.clone(), sha256));
        }
        if let Some(want) = &expect.md5
            && !want.eq_ignore_ascii_case(&md5)
        {
            return Err(mismatch("MD5", want.clone(), md5));
        }
        store.insert(partial, &sha256).map_err(|source| FetchError::Store {
            url: self.label(url),
            source,
        })?;
        let _ = fs::remove_file(partial.with_extension("validator"));
        Ok(Fetched {
            url: url.into(),
            sha256,
            size,
            final_url: url.into(),
        })
    }
}

/// The first `(from, to)` directory prefix that `url` lies in, replaced; the directory
/// itself named without its slash (`https://pypi.org/simple`) counts too.
fn rewrite<'a>(url: &str, pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    for (from, to) in pairs {
        if let Some(rest) = url.strip_prefix(from) {
            return format!("{to}{rest}");
        }
        if from.strip_suffix('/') == Some(url) {
            return to.trim_end_matches('/').to_string();
        }
    }
    url.to_string()
}

/// Errors a second try can cure (a dropped or refused connection, a timeout); a bad
/// certificate or URL will fail the same way again.
fn transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::HostNotFound
    )
}

/// How many redirects one request follows.
const MAX_REDIRECTS: u32 = 10;

/// SHA-256, MD5 and length of the bytes so far.
#[derive(Default)]
struct Digests {
    sha: Sha256,
    md5: md5::Md5,
    size: u64,
}

impl Digests {
    fn update(&mut self, bytes: &[u8]) {
        use md5::Digest as _;
        self.sha.update(bytes);
        self.md5.update(bytes);
        self.size += bytes.len() as u64;
    }

    fn of_file(path: &std::path::Path) -> std::io::Result<Digests> {
        let mut f = fs_err::File::open(path)?;
        let mut d = Digests::default();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(d);
            }
            d.update(&buf[..n]);
        }
    }

    /// (sha256, md5, size), hex.
    fn finish(self) -> (String, String, u64) {
        use md5::Digest as _;
        (
            hex::encode(self.sha.finalize()),
            hex::encode(self.md5.finalize()),
            self.size,
        )
    }
}

#[cfg(test)]
mod rewrite_tests {
    #[test]
    fn fetch_from_maps_directory_prefixes_both_ways() {
        let c = super::Client::new(vec![("https://pypi.org/simple/".into(), "http://lan/pypi/".into())]);
        assert_eq!(c.via("https://pypi.org/simple/six/"), "http://lan/pypi/six/");
        assert_eq!(c.via("https://pypi.org/simple"), "http://lan/pypi");
        assert_eq!(c.via("https://pypi.org/simplex/"), "https://pypi.org/simplex/");
        assert_eq!(
            c.upstream("http://lan/pypi/six/six.whl"),
            "https://pypi.org/simple/six/six.whl"
        );
        assert_eq!(c.upstream("http://other/x"), "http://other/x");
    }
}
