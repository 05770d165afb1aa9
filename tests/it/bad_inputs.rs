//! The bad-input and fault corpus, tests/bad_inputs/cases.yaml: recipes, archives,
//! overlays, images and downloads that must fail clearly. Every case is run and checked
//! the same way (see the file's header), and all failures are reported together.

use crate::common::*;
use crate::http_fixture::{Server, Slow};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default = "build")]
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    files: BTreeMap<String, String>,
    #[serde(default)]
    dirs: Vec<String>,
    #[serde(default)]
    symlinks: BTreeMap<String, String>,
    #[serde(default)]
    bytes: BTreeMap<String, Bytes>,
    #[serde(default)]
    tars: BTreeMap<String, Vec<TarEntry>>,
    /// File name → the length to cut it to (after the tars are written).
    #[serde(default)]
    truncate: BTreeMap<String, u64>,
    serve: Option<Serve>,
    /// Ctrl-C (SIGINT) this long after the start; `error` is then looked for in all of
    /// stderr (the handler's line is not an `error:`).
    signal_after_ms: Option<u64>,
    exit: i32,
    error: String,
}

fn build() -> String {
    "build".into()
}

/// Generated file contents: `prefix`, then `repeat` (text) or `byte` `count` times (or
/// `random` bytes), then `suffix`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Bytes {
    #[serde(default)]
    prefix: String,
    repeat: Option<String>,
    byte: Option<u8>,
    #[serde(default)]
    count: usize,
    random: Option<usize>,
    #[serde(default)]
    suffix: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TarEntry {
    path: String,
    /// dir, file (default), symlink, hardlink.
    #[serde(default)]
    kind: String,
    #[serde(default)]
    body_len: usize,
    #[serde(default)]
    target: String,
    /// PAX extended header records written before the entry.
    #[serde(default)]
    pax: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Serve {
    /// none, no-answer, stall, drip, fail, truncate, redirect-loop, redirect-file, not-found.
    fault: String,
}

const BODY: [u8; 4096] = [7u8; 4096];

impl Bytes {
    fn make(&self) -> Vec<u8> {
        let mut out = self.prefix.as_bytes().to_vec();
        if let Some(r) = &self.repeat {
            out.extend(r.as_bytes().repeat(self.count));
        }
        if let Some(b) = self.byte {
            out.extend(std::iter::repeat_n(b, self.count));
        }
        if let Some(n) = self.random {
            let mut f = std::fs::File::open("/dev/urandom").unwrap();
            let mut buf = vec![0u8; n];
            std::io::Read::read_exact(&mut f, &mut buf).unwrap();
            out.extend(buf);
        }
        out.extend(self.suffix.as_bytes());
        out
    }
}

/// A raw ustar header: names are written as they are (`..`, control characters), which
/// the tar crate's path setters refuse.
fn raw_header(kind: tar::EntryType, path: &str, size: u64, link: &str) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_size(size);
    let name = &mut h.as_old_mut().name;
    name[..path.len()].copy_from_slice(path.as_bytes());
    if !link.is_empty() {
        h.set_link_name_literal(link).unwrap();
    }
    h.set_cksum();
    h
}

fn write_tar(path: &Path, entries: &[TarEntry]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for e in entries {
        if !e.pax.is_empty() {
            let mut records = Vec::new();
            for (k, v) in &e.pax {
                let body = format!(" {k}={v}\n");
                // The length counts its own digits.
                let mut len = body.len() + 1;
                while format!("{len}{body}").len() != len {
                    len += 1;
                }
                records.extend(format!("{len}{body}").into_bytes());
            }
            let h = raw_header(tar::EntryType::XHeader, "pax", records.len() as u64, "");
            b.append(&h, records.as_slice()).unwrap();
        }
        let (kind, size) = match e.kind.as_str() {
            "dir" => (tar::EntryType::Directory, 0),
            "symlink" => (tar::EntryType::Symlink, 0),
            "hardlink" => (tar::EntryType::Link, 0),
            "" | "file" => (tar::EntryType::Regular, e.body_len),
            other => panic!("tar entry kind {other}"),
        };
        let h = raw_header(kind, &e.path, size as u64, &e.target);
        b.append(&h, vec![b'x'; size].as_slice()).unwrap();
    }
    b.finish().unwrap();
}

/// Starts a server for `fault` and returns it with the URL the case's recipe uses.
fn serve(dir: &Path, fault: &str) -> (Server, String) {
    let site = dir.join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("f.bin"), BODY).unwrap();
    let server = Server::start(&site);
    let path = "/f.bin";
    match fault {
        "none" => {}
        "no-answer" => server.slow(path, Slow::NoAnswer),
        "stall" => server.slow(path, Slow::StallMidBody),
        "drip" => server.slow(path, Slow::Drip(300)),
        "fail" => server.fail(path, 1000),
        "truncate" => server.truncate(path, 1000),
        "redirect-loop" => server.redirect(path, path),
        "redirect-file" => server.redirect(path, "file:///etc/passwd"),
        "not-found" => {
            let url = server.url("/missing.bin");
            return (server, url);
        }
        other => panic!("fault {other}"),
    }
    let url = server.url(path);
    (server, url)
}

/// Runs one case; returns what went wrong, if anything.
fn run(case: &Case) -> Result<(), String> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(BODY));
    let (_server, url) = match &case.serve {
        Some(s) => {
            let (server, url) = serve(dir, &s.fault);
            (Some(server), url)
        }
        None => (None, String::new()),
    };
    for d in &case.dirs {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::create_dir_all(dir.join("root")).unwrap();
    for (name, body) in &case.files {
        write(dir, name, &body.replace("@URL@", &url).replace("@SHA@", &sha));
    }
    for (name, spec) in &case.bytes {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, spec.make()).unwrap();
    }
    for (name, target) in &case.symlinks {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
    }
    for (name, entries) in &case.tars {
        write_tar(&dir.join(name), entries);
    }
    for (name, len) in &case.truncate {
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join(name))
            .unwrap()
            .set_len(*len)
            .unwrap();
    }
    // An earlier build's image, which a failed build must leave as it is.
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("r.img"), b"EARLIER IMAGE").unwrap();
    std::fs::write(out.join("r.sha256"), b"EARLIER SUM  r.img\n").unwrap();
    let mut cmd = imgbuild();
    cmd.current_dir(dir).env("IMGBUILD_RETRY_BACKOFF_MS", "50");
    match case.command.as_str() {
        "build" => cmd.arg("--out").arg(&out).arg("--cache-dir").arg(dir.join("cache")),
        "fetch" => cmd
            .arg("fetch")
            .arg("--out")
            .arg(dir.join("content"))
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .arg("--net-timeout")
            .arg("2")
            .arg("--net-deadline")
            .arg("5"),
        other => cmd.arg(other),
    };
    cmd.arg("r.yaml").args(&case.args);
    let o = match case.signal_after_ms {
        None => cmd.output().unwrap(),
        Some(ms) => {
            let child = cmd
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(ms));
            // SAFETY: signalling the child we started.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            child.wait_with_output().unwrap()
        }
    };
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let mut wrong = Vec::new();
    if o.status.code() != Some(case.exit) {
        wrong.push(format!("exit {:?}, not {}", o.status.code(), case.exit));
    }
    let error_at = if case.signal_after_ms.is_some() {
        Some(0)
    } else {
        stderr.find("error: ")
    };
    let error_text = error_at.map(|i| &stderr[i..]).unwrap_or("");
    let want = case.error.replace("@URL@", &url);
    if error_at.is_none() {
        wrong.push("no `error:` line".into());
    } else if !error_text.contains(&want) {
        wrong.push(format!("the error does not say `{want}`"));
    }
    for line in stderr.lines() {
        if line.chars().count() > 520 {
            wrong.push(format!("a line of {} characters", line.chars().count()));
        }
        if line.chars().any(|c| c.is_control() && c != '\t') {
            wrong.push(format!("control characters in {:?}", line.escape_debug().to_string()));
        }
    }
    let earlier = std::fs::read(out.join("r.img")).unwrap_or_default() == b"EARLIER IMAGE"
        && std::fs::read(out.join("r.sha256")).unwrap_or_default() == b"EARLIER SUM  r.img\n";
    if !earlier {
        wrong.push("the earlier image or its checksum changed".into());
    }
    let left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !["r.img", "r.sha256", "logs"].contains(&n.as_str()))
        .collect();
    if !left.is_empty() {
        wrong.push(format!("left in out/: {left:?}"));
    }
    if dir.join("content/f").exists() {
        wrong.push("published a download".into());
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}\n--- stderr:\n{}",
            case.name,
            wrong.join("; "),
            tail(&stderr)
        ))
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

#[test]
fn every_bad_input_fails_clearly_and_keeps_the_earlier_image() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_inputs/cases.yaml");
    let cases: Vec<Case> = serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(cases.len() >= 60, "the corpus has {} cases", cases.len());
    let failures: Vec<String> = cases.iter().filter_map(|c| run(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
