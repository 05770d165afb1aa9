//! A small HTTP/1.1 server for tests of sources this machine can't reach (CRAN, web
//! sites, installer hosts): serves a directory, honours Range requests, and can redirect,
//! fail with 503 a number of times, or cut a response short — so resume, retry and
//! redirect handling are tested against real sockets.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Faults {
    /// path → location
    redirects: HashMap<String, String>,
    /// path → remaining 503 answers
    fail: HashMap<String, u32>,
    /// path → remaining responses cut after half the body
    truncate: HashMap<String, u32>,
    /// path → how the server misbehaves in time (never answers, stalls, drips)
    slow: HashMap<String, Slow>,
    /// Every request line seen, with its Range header if any.
    log: Vec<String>,
}

/// Faults in time, for the network deadlines.
#[derive(Clone, Copy)]
#[allow(dead_code)]
pub enum Slow {
    /// Reads the request and never answers.
    NoAnswer,
    /// Sends the headers and half the body, then nothing, with the connection open.
    StallMidBody,
    /// Sends one byte of the body every this many milliseconds.
    Drip(u64),
}

pub struct Server {
    pub base: String,
    root: PathBuf,
    faults: Arc<Mutex<Faults>>,
}

impl Server {
    /// Serves `root` on a free localhost port until the test process ends.
    pub fn start(root: &Path) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let faults = Arc::new(Mutex::new(Faults::default()));
        let (r, f) = (root.to_path_buf(), faults.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, f) = (r.clone(), f.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &r, &f);
                });
            }
        });
        Server {
            base: format!("http://127.0.0.1:{port}"),
            root: root.to_path_buf(),
            faults,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    pub fn redirect(&self, from: &str, to: &str) {
        self.faults.lock().unwrap().redirects.insert(from.into(), to.into());
    }

    pub fn fail(&self, path: &str, times: u32) {
        self.faults.lock().unwrap().fail.insert(path.into(), times);
    }

    #[allow(dead_code)]
    pub fn slow(&self, path: &str, how: Slow) {
        self.faults.lock().unwrap().slow.insert(path.into(), how);
    }

    pub fn truncate(&self, path: &str, times: u32) {
        self.faults.lock().unwrap().truncate.insert(path.into(), times);
    }

    /// The requests seen so far: `GET /path` plus ` range=bytes=N-` when asked.
    pub fn log(&self) -> Vec<String> {
        self.faults.lock().unwrap().log.clone()
    }
}

fn serve(stream: TcpStream, root: &Path, faults: &Mutex<Faults>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("/").to_string();
        let mut range = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("range")
            {
                range = Some(v.trim().to_string());
            }
        }
        let path = target.split('?').next().unwrap_or("/").to_string();
        let mut f = faults.lock().unwrap();
        f.log.push(match &range {
            Some(r) => format!("{method} {path} range={r}"),
            None => format!("{method} {path}"),
        });
        if let Some(to) = f.redirects.get(&path).cloned() {
            drop(f);
            write!(out, "HTTP/1.1 301 Moved\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n")?;
            continue;
        }
        if let Some(n) = f.fail.get_mut(&path)
            && *n > 0
        {
            *n -= 1;
            drop(f);
            write!(out, "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n")?;
            continue;
        }
        let slow = f.slow.get(&path).copied();
        if let Some(Slow::NoAnswer) = slow {
            drop(f);
            // Keep the connection open, answer nothing, until the client gives up.
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
            return Ok(());
        }
        let cut = match f.truncate.get_mut(&path) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        };
        drop(f);
        let mut file = root.join(path.trim_start_matches('/'));
        if file.is_dir() {
            file = file.join("index.html");
        }
        let Ok(body) = std::fs::read(&file) else {
            write!(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
            continue;
        };
        let etag = format!("\"{}\"", body.len());
        let (status, slice) = match range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
        {
            Some(start) => {
                let s: usize = start.parse().unwrap_or(0);
                if s >= body.len() {
                    write!(out, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n")?;
                    continue;
                }
                (
                    format!(
                        "206 Partial Content\r\nContent-Range: bytes {s}-{}/{}",
                        body.len() - 1,
                        body.len()
                    ),
                    &body[s..],
                )
            }
            None => ("200 OK".to_string(), &body[..]),
        };
        let ctype = match file.extension().and_then(|e| e.to_str()) {
            Some("html") => "text/html",
            Some("css") => "text/css",
            _ => "application/octet-stream",
        };
        write!(
            out,
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nETag: {etag}\r\nAccept-Ranges: bytes\r\nContent-Length: {}\r\n\r\n",
            slice.len()
        )?;
        if method == "HEAD" {
            continue;
        }
        match slow {
            Some(Slow::StallMidBody) => {
                out.write_all(&slice[..slice.len() / 2])?;
                out.flush()?;
                let mut sink = Vec::new();
                let _ = reader.read_to_end(&mut sink);
                return Ok(());
            }
            Some(Slow::Drip(ms)) => {
                for b in slice {
                    out.write_all(&[*b])?;
                    out.flush()?;
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                }
                continue;
            }
            _ => {}
        }
        if cut {
            out.write_all(&slice[..slice.len() / 2])?;
            out.flush()?;
            // Close the connection mid-body, as a dropped network would.
            return Ok(());
        }
        out.write_all(slice)?;
    }
}

/// Reads a whole response body over plain HTTP (for tests that check what a server serves).
#[allow(dead_code)]
pub fn get(url: &str) -> Vec<u8> {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = TcpStream::connect(host).expect("connect");
    write!(s, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let at = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(0);
    buf.split_off(at)
}
