//! The one gateway through which imgbuild runs external tools (mke2fs, sfdisk, ...).
//!
//! Commands are argument vectors, never shell strings; a failure carries the
//! copy-pasteable command line, the exit status and the tail of stderr, and a
//! missing program turns into a hint naming the Debian package that provides it.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

pub mod programs;

/// How many trailing lines of a failed command's stderr an error keeps.
const STDERR_TAIL_LINES: usize = 20;

/// A command to run: program, arguments, environment and working directory.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    /// Names of environment variables whose values are never displayed.
    secret: Vec<OsString>,
    cwd: Option<PathBuf>,
}

/// The captured result of a command that exited successfully.
#[derive(Debug)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("`{program}` was not found on PATH")]
    NotFound { program: String },
    #[error("could not start `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}){}", stderr_suffix(.stderr_tail))]
    Failed {
        command: String,
        status: String,
        code: Option<i32>,
        stderr_tail: String,
        /// A file system the command wrote to that is now full (asked of the file
        /// system, not read from the program's words).
        full_disk: Option<PathBuf>,
    },
}

impl crate::fault::Fault for ProcessError {
    fn kind(&self) -> crate::fault::Kind {
        crate::fault::Kind::Environment
    }
    fn hints(&self) -> Vec<String> {
        match self {
            ProcessError::NotFound { program } => programs::find(program)
                .map(|p| format!("install it with `{}`", programs::install_command(p)))
                .into_iter()
                .collect(),
            ProcessError::Failed {
                full_disk: Some(dir), ..
            } => vec![format!("{} ({} is on it)", crate::fault::DISK_FULL_HINT, dir.display())],
            _ => Vec::new(),
        }
    }
}

fn stderr_suffix(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!(":\n{}", tail.trim_end())
    }
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Cmd {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            secret: Vec::new(),
            cwd: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable shown as `***` wherever the command is displayed.
    pub fn secret_env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.secret.push(key.as_ref().to_owned());
        self.env(key, value)
    }

    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    pub fn program(&self) -> &OsStr {
        &self.program
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            c.current_dir(dir);
        }
        c
    }

    /// Runs the command, capturing stdout and stderr; a non-zero exit is an error.
    pub fn run(&self) -> Result<Output, ProcessError> {
        let mut child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        // Drain stderr on its own thread so a chatty tool never blocks on a full pipe.
        let mut stderr_pipe = child.stderr.take();
        let stderr_thread = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(pipe) = stderr_pipe.as_mut() {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        });
        let mut stdout = Vec::new();
        if let Some(mut pipe) = child.stdout.take() {
            let _ = pipe.read_to_end(&mut stdout);
        }
        let status = child.wait().map_err(|e| self.spawn_error(e))?;
        let stderr = stderr_thread.join().unwrap_or_default();
        if status.success() {
            Ok(Output { stdout, stderr })
        } else {
            Err(self.failed(status, &stderr))
        }
    }

    /// Runs the command with stdout and stderr appended to `log`; a failure carries the
    /// log's last lines.
    pub fn run_logged(&self, log: &Path) -> Result<(), ProcessError> {
        if let Some(dir) = log.parent() {
            let _ = fs_err::create_dir_all(dir);
        }
        let open = || std::fs::OpenOptions::new().create(true).append(true).open(log);
        let (out, err) = match (open(), open()) {
            (Ok(o), Ok(e)) => (o, e),
            (Err(source), _) | (_, Err(source)) => {
                return Err(ProcessError::Spawn {
                    command: self.to_string(),
                    source,
                });
            }
        };
        // A process group of its own: mmdebstrap tears down a failed tarball by sending
        // SIGHUP to its whole group, which must not reach imgbuild or whatever started
        // it. Ctrl-C reaches the child through the interrupt handler instead.
        let mut child = self
            .command()
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        crate::interrupt::watch_child(child.id());
        let status = child.wait();
        crate::interrupt::unwatch_child(child.id());
        let status = status.map_err(|e| self.spawn_error(e))?;
        if status.success() {
            Ok(())
        } else {
            Err(self.failed(status, &log_tail(log)))
        }
    }

    /// Runs the command and returns its stdout as text.
    pub fn run_stdout(&self) -> Result<String, ProcessError> {
        let out = self.run()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn spawn_error(&self, source: std::io::Error) -> ProcessError {
        if source.kind() == std::io::ErrorKind::NotFound {
            ProcessError::NotFound {
                program: self.program.to_string_lossy().into_owned(),
            }
        } else {
            ProcessError::Spawn {
                command: self.to_string(),
                source,
            }
        }
    }

    /// The working directory or a path argument on a file system that is now full.
    fn full_disk(&self) -> Option<PathBuf> {
        let paths = self
            .cwd
            .iter()
            .cloned()
            .chain(self.args.iter().filter_map(|a| {
                // `--opt=/path` names a path too.
                let a = a.to_string_lossy();
                let p = a.split_once('=').map_or(&*a, |(_, v)| v);
                p.contains('/').then(|| PathBuf::from(p))
            }))
            .collect::<Vec<_>>();
        crate::fault::full_among(paths.iter().map(PathBuf::as_path))
    }

    fn failed(&self, status: ExitStatus, stderr: &[u8]) -> ProcessError {
        let text = String::from_utf8_lossy(stderr);
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n");
        ProcessError::Failed {
            command: self.to_string(),
            status: describe_status(status),
            code: status.code(),
            stderr_tail: tail,
            full_disk: self.full_disk(),
        }
    }
}

/// The last part of a log file (bounded, for error messages).
pub fn log_tail(log: &Path) -> Vec<u8> {
    use std::io::{Seek, SeekFrom};
    let Ok(mut f) = fs_err::File::open(log) else {
        return Vec::new();
    };
    let len = f.seek(SeekFrom::End(0)).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(8192)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    buf
}

/// Runs `cmd` with its output appended to `log` (see [`Cmd::run_logged`]).
pub fn run_logged(cmd: &Cmd, log: &Path) -> Result<(), ProcessError> {
    cmd.run_logged(log)
}

fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "unknown status".to_string(),
    }
}

/// Quotes one word for display so the printed command can be pasted into a shell.
fn quote(word: &OsStr) -> String {
    let s = word.to_string_lossy();
    let safe = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if safe {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in &self.env {
            if self.secret.contains(k) {
                write!(f, "{}=*** ", quote(k))?;
            } else {
                write!(f, "{}={} ", quote(k), quote(v))?;
            }
        }
        write!(f, "{}", quote(&self.program))?;
        for a in &self.args {
            write!(f, " {}", quote(a))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_words_with_spaces() {
        let c = Cmd::new("mke2fs").arg("-L").arg("my root").env("A", "b c");
        assert_eq!(c.to_string(), "A='b c' mke2fs -L 'my root'");
    }

    /// mmdebstrap sends SIGHUP to its whole process group when writing its tarball
    /// fails; a long-running child in imgbuild's group would take imgbuild (and the test
    /// runner, and CI) down with it.
    #[test]
    fn logged_children_get_a_process_group_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        Cmd::new("sh")
            .args(["-c", "echo $$; cut -d' ' -f5 /proc/$$/stat"])
            .run_logged(&log)
            .unwrap();
        let text = fs_err::read_to_string(&log).unwrap();
        let ids: Vec<i32> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
        assert_eq!(ids[0], ids[1], "the child leads its own group: {text}");
        assert_ne!(ids[1], unsafe { libc::getpgrp() }, "not ours: {text}");
    }

    #[test]
    fn secrets_are_never_displayed() {
        let c = Cmd::new("x").secret_env("PASSWORD", "hunter2");
        assert_eq!(c.to_string(), "PASSWORD=*** x");
    }

    #[test]
    fn missing_program_names_the_package() {
        let err = Cmd::new("fsck.fat-definitely-missing").run().unwrap_err();
        assert!(matches!(err, ProcessError::NotFound { .. }));
        let err = Cmd::new("/nonexistent/mke2fs").run().unwrap_err();
        use crate::fault::{Fault, Kind};
        assert_eq!(err.kind(), Kind::Environment);
        let hints = err.hints();
        assert!(
            hints.len() == 1
                && hints[0].starts_with("install it with `apt-get install")
                && hints[0].ends_with(" e2fsprogs libarchive13`"),
            "{hints:?}"
        );
    }

    #[test]
    fn failure_keeps_status_and_stderr_tail() {
        let err = Cmd::new("sh")
            .args(["-c", "echo first >&2; echo boom >&2; exit 3"])
            .run()
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("exit status 3"), "{text}");
        assert!(text.contains("boom"), "{text}");
    }
}
