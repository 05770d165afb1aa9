//! The bad-input and fault corpus, tests/bad_inputs/cases.yaml: recipes, archives,
//! overlays, images, downloads, signals, full disks and concurrent builds that must end
//! clearly. Every case is run and checked the same way (see the file's header), and all
//! failures are reported together.

mod make;

use crate::common::*;
use make::{BODY, Bytes, Serve, TarEntry, serve, write_tar};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
    /// Case path → a host file copied there (a shell and its libraries for steps).
    #[serde(default)]
    copy: BTreeMap<String, String>,
    #[serde(default)]
    bytes: BTreeMap<String, Bytes>,
    #[serde(default)]
    tars: BTreeMap<String, Vec<TarEntry>>,
    /// File name → the length to cut it to (after the tars are written).
    #[serde(default)]
    truncate: BTreeMap<String, u64>,
    serve: Option<Serve>,
    /// A signal sent while the command runs; `error` is then looked for in all of
    /// stderr (the handler's line is not an `error:`).
    signal: Option<Signal>,
    /// `out/` is a tmpfs of this size (`mount -o size=`): a full disk.
    tmpfs_out: Option<String>,
    /// Another build, started first and still running when the case's command runs.
    concurrent: Option<Concurrent>,
    /// closed or full: the command's stdout.
    stdout: Option<String>,
    /// The command publishes `r.img` and `r.sha256` in place of the earlier ones (a
    /// checksum that matches the new image is then checked instead).
    #[serde(default)]
    publishes: bool,
    exit: i32,
    /// Text the error must contain; empty: no `error:` line at all.
    error: String,
    /// More text the error must contain (e.g. the URL beside the deadline's name).
    also: Option<String>,
    /// The command must end within this many seconds (a deadline that holds).
    within_s: Option<u64>,
    /// What the case needs beyond the fast tier: `root` (a tmpfs, a step's chroot),
    /// `debian` (the Debian archive). Such cases run in their tier's test.
    #[serde(default)]
    needs: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Signal {
    /// INT (default), TERM or HUP.
    #[serde(default = "int")]
    name: String,
    /// Sent once a line of stderr contains this text (a stage's log line) …
    at: Option<String>,
    /// … and this long after it (or after the start, without `at`).
    #[serde(default)]
    after_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Concurrent {
    /// The first build's recipe, in the case's directory, with the same `--out`.
    recipe: String,
    /// The case's command starts once the first build's stderr has this text.
    at: String,
}

fn build() -> String {
    "build".into()
}

fn int() -> String {
    "INT".into()
}

/// Writes the case's files into `dir`, an earlier build's image into `out/`; returns the
/// fault server (kept alive for the case) and its URL.
fn prepare(case: &Case, dir: &Path) -> (Option<crate::http_fixture::Server>, String) {
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(BODY));
    let (server, url) = match &case.serve {
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
    for (name, from) in &case.copy {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::copy(from, p).unwrap();
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
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    if let Some(size) = &case.tmpfs_out {
        ok(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&out));
    }
    std::fs::write(out.join("r.img"), b"EARLIER IMAGE").unwrap();
    std::fs::write(out.join("r.sha256"), b"EARLIER SUM  r.img\n").unwrap();
    (server, url)
}

/// `imgbuild COMMAND` for `recipe` in `dir`, with the corpus's cache, out and short
/// network deadlines.
fn command(dir: &Path, command: &str, recipe: &str, cache: &str) -> Command {
    let mut cmd = imgbuild();
    cmd.current_dir(dir).env("IMGBUILD_RETRY_BACKOFF_MS", "50");
    match command {
        "build" => cmd
            .arg("--out")
            .arg(dir.join("out"))
            .arg("--cache-dir")
            .arg(dir.join(cache)),
        "fetch" => cmd
            .arg("fetch")
            .arg("--out")
            .arg(dir.join("content"))
            .arg("--cache-dir")
            .arg(dir.join(cache))
            .arg("--net-timeout")
            .arg("2")
            .arg("--net-deadline")
            .arg("5"),
        other => cmd.arg(other),
    };
    cmd.arg(recipe);
    cmd
}

/// Spawns `cmd` with stderr read line by line: returns the child and a receiver of the
/// lines (which ends when stderr closes).
fn spawn(cmd: &mut Command) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).split(b'\n') {
            let Ok(line) = line else { break };
            if tx.send(String::from_utf8_lossy(&line).into_owned()).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Reads lines until one contains `text` (or stderr ends, or 10 minutes pass); returns
/// what was read and whether the text came.
fn read_until(rx: &std::sync::mpsc::Receiver<String>, text: &str) -> (String, bool) {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut said = String::new();
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        said.push_str(&line);
        said.push('\n');
        if line.contains(text) {
            return (said, true);
        }
    }
    (said, false)
}

fn signal_number(name: &str) -> i32 {
    match name {
        "INT" => libc::SIGINT,
        "TERM" => libc::SIGTERM,
        "HUP" => libc::SIGHUP,
        other => panic!("signal {other}"),
    }
}

fn kill(child: &Child, signal: i32) {
    // SAFETY: signalling a child this test started and has not reaped.
    unsafe { libc::kill(child.id() as i32, signal) };
}

/// Runs the case's command (signalled, if the case says so); returns its exit code and
/// stderr, and what went wrong on the way.
fn run_command(case: &Case, dir: &Path, wrong: &mut Vec<String>) -> (Option<i32>, String) {
    let mut cmd = command(dir, &case.command, "r.yaml", "cache");
    cmd.args(&case.args);
    match case.stdout.as_deref() {
        None => cmd.stdout(Stdio::null()),
        Some("full") => cmd.stdout(std::fs::File::create("/dev/full").unwrap()),
        Some("closed") => cmd.stdout(Stdio::piped()),
        Some(other) => panic!("stdout {other}"),
    };
    let started = Instant::now();
    let (mut child, rx) = spawn(&mut cmd);
    // A closed pipe: the reading end goes away before anything is written.
    drop(child.stdout.take());
    let mut said = String::new();
    if let Some(signal) = &case.signal {
        if let Some(at) = &signal.at {
            let (before, came) = read_until(&rx, at);
            said = before;
            if !came {
                wrong.push(format!("stderr never said `{at}`"));
            }
        }
        std::thread::sleep(Duration::from_millis(signal.after_ms));
        kill(&child, signal_number(&signal.name));
    }
    let status = child.wait().unwrap();
    if let Some(limit) = case.within_s {
        let took = started.elapsed().as_secs();
        if took > limit {
            wrong.push(format!("took {took} s, more than {limit} s"));
        }
    }
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        said.push_str(&line);
        said.push('\n');
    }
    (status.code(), said)
}

/// The checks every case shares: exit code, the error's text, short printable lines,
/// the earlier image (or a new one with its matching checksum), nothing new under a
/// final name, no mount and no process left.
fn check(case: &Case, dir: &Path, url: &str, code: Option<i32>, stderr: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    if code != Some(case.exit) {
        wrong.push(format!("exit {code:?}, not {}", case.exit));
    }
    let error_at = if case.signal.is_some() {
        Some(0)
    } else {
        stderr.find("error: ")
    };
    let want = case.error.replace("@URL@", url);
    if let (Some(also), Some(i)) = (&case.also, error_at) {
        let also = also.replace("@URL@", url);
        if !stderr[i..].contains(&also) {
            wrong.push(format!("the error does not say `{also}`"));
        }
    }
    match error_at {
        None if !want.is_empty() => wrong.push("no `error:` line".into()),
        Some(i) if want.is_empty() => wrong.push(format!("an error: {}", &stderr[i..])),
        Some(i) if !stderr[i..].contains(&want) => wrong.push(format!("the error does not say `{want}`")),
        _ => {}
    }
    for line in stderr.lines() {
        if line.chars().count() > 520 {
            wrong.push(format!("a line of {} characters", line.chars().count()));
        }
        if line.chars().any(|c| c.is_control() && c != '\t') {
            wrong.push(format!("control characters in {:?}", line.escape_debug().to_string()));
        }
    }
    let out = dir.join("out");
    let image = std::fs::read(out.join("r.img")).unwrap_or_default();
    let sums = std::fs::read_to_string(out.join("r.sha256")).unwrap_or_default();
    if case.publishes {
        let sum = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&image));
        if !sums.lines().any(|l| l == format!("{sum}  r.img")) {
            wrong.push("the new image's checksum is not in r.sha256".into());
        }
    } else if image != b"EARLIER IMAGE" || sums != "EARLIER SUM  r.img\n" {
        wrong.push("the earlier image or its checksum changed".into());
    }
    let published = ["r.img", "r.sha256", "logs", "manifest.json"];
    let left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !published[..if case.publishes { 4 } else { 3 }].contains(&n.as_str()))
        .collect();
    if !left.is_empty() {
        wrong.push(format!("left in out/: {left:?}"));
    }
    if dir.join("content/f").exists() {
        wrong.push("published a download".into());
    }
    let mounts: Vec<String> = mounts_under(dir)
        .into_iter()
        .filter(|m| case.tmpfs_out.is_none() || !m.contains(" - tmpfs "))
        .collect();
    if !mounts.is_empty() {
        wrong.push(format!("mounts left: {mounts:?}"));
    }
    let running = processes_under(dir);
    if !running.is_empty() {
        wrong.push(format!("processes left running: {running:?}"));
    }
    wrong
}

/// Processes (but this test's own) whose command line, working directory or root is
/// under `dir`: what an interrupted build must not leave behind.
fn processes_under(dir: &Path) -> Vec<String> {
    let me = std::process::id();
    let d = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
            let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap_or_default();
            let here = cmdline.contains(&d) || cwd.starts_with(dir) || root.starts_with(dir);
            here.then(|| format!("{pid} {cmdline}"))
        })
        .collect()
}

/// Runs one case; returns what went wrong, if anything.
fn run(case: &Case) -> Result<(), String> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_server, url) = prepare(case, dir);
    let mut wrong = Vec::new();
    // The first of two builds into one --out: it must go on unharmed (it is then
    // interrupted, and must end as any interrupted build).
    let first = case.concurrent.as_ref().map(|c| {
        let (child, rx) = spawn(command(dir, "build", &c.recipe, "cache-first").stdout(Stdio::null()));
        let (said, came) = read_until(&rx, &c.at);
        if !came {
            wrong.push(format!("the first build never said `{}`: {said}", c.at));
        }
        (child, rx)
    });
    let (code, stderr) = run_command(case, dir, &mut wrong);
    if let Some((mut child, _rx)) = first {
        if child.try_wait().unwrap().is_some() {
            wrong.push("the first build ended while the second ran".into());
        }
        kill(&child, libc::SIGINT);
        let code = child.wait().unwrap().code();
        if code != Some(130) {
            wrong.push(format!("the first build, interrupted, exit {code:?}, not 130"));
        }
    }
    // Processes of an interrupted step end with their namespace: allow a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_under(dir).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    wrong.extend(check(case, dir, &url, code, &stderr));
    if case.tmpfs_out.is_some() {
        ok(Command::new("umount").arg(dir.join("out")));
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

/// Runs the corpus's cases whose `needs` is `tier` (`[]`: the fast tier).
fn run_tier(tier: &[&str]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_inputs/cases.yaml");
    let cases: Vec<Case> = serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(cases.len() >= 60, "the corpus has {} cases", cases.len());
    for c in &cases {
        // A case that mounts or chroots must say so, or the fast tier would run it.
        let steps = c.files.values().any(|f| f.contains("steps:") && f.contains("run:"));
        let needs_root = c.tmpfs_out.is_some() || (steps && c.signal.is_some());
        assert!(
            !needs_root || c.needs.iter().any(|n| n == "root"),
            "case `{}` mounts a tmpfs or runs a step: add `needs: [root]`",
            c.name
        );
    }
    let only = std::env::var("IMGBUILD_CASE").unwrap_or_default();
    let chosen: Vec<&Case> = cases
        .iter()
        .filter(|c| c.needs.iter().map(String::as_str).eq(tier.iter().copied()))
        .filter(|c| c.name.contains(&only))
        .collect();
    assert!(
        cases.iter().any(|c| c.name.contains(&only)),
        "IMGBUILD_CASE={only:?} names no case"
    );
    if only.is_empty() {
        assert!(!chosen.is_empty(), "no case needs {tier:?}");
    }
    let failures: Vec<String> = chosen.iter().filter_map(|c| run(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        chosen.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_bad_input_fails_clearly_and_keeps_the_earlier_image() {
    run_tier(&[]);
}

#[test]
#[ignore = "tier root: mounts tmpfs file systems and chroots into steps"]
fn bad_inputs_that_fill_a_disk_or_signal_a_step_tier_root() {
    run_tier(&["root"]);
}

#[test]
#[ignore = "tier debian: bootstraps from the Debian archive (and needs root for mmdebstrap's root mode)"]
fn bad_inputs_during_a_bootstrap_tier_debian() {
    run_tier(&["root", "debian"]);
}
