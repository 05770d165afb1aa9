//! Progress reporting and message output. Library code never prints: it talks to a
//! [`Reporter`], which draws indicatif bars on a terminal and plain log lines elsewhere
//! (CI logs, pipes), or stays silent in tests.

pub mod bounded;
mod plain;
mod terminal;

pub use plain::PlainReporter;
pub use terminal::TerminalReporter;

use std::sync::Arc;
use std::time::Duration;

/// How much the user asked to hear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Receives progress from the pipeline.
pub trait Reporter: Send + Sync {
    /// A pipeline step begins (e.g. "write partition root").
    fn step(&self, name: &str);
    /// The step that began last ended after `elapsed`.
    fn step_done(&self, name: &str, elapsed: Duration);
    /// Starts a measurable task of `total` units (bytes unless said otherwise).
    fn task(&self, name: &str, total: u64) -> Box<dyn Task>;
    /// A detail worth showing with `-v`.
    fn detail(&self, message: &str);
    /// Something the user should know about that is not an error.
    fn warn(&self, message: &str);
}

/// A running measurable task.
pub trait Task: Send {
    fn advance(&mut self, units: u64);
    fn finish(self: Box<Self>);
}

/// Picks the terminal reporter when stderr is a terminal, else plain lines.
pub fn for_stderr(verbosity: Verbosity) -> Arc<dyn Reporter> {
    use std::io::IsTerminal;
    if verbosity > Verbosity::Quiet && std::io::stderr().is_terminal() {
        Arc::new(TerminalReporter::new(verbosity))
    } else {
        Arc::new(PlainReporter::new(verbosity))
    }
}

/// A reporter that drops everything (tests, library callers that want silence).
pub struct Silent;

struct NoTask;
impl Task for NoTask {
    fn advance(&mut self, _: u64) {}
    fn finish(self: Box<Self>) {}
}

impl Reporter for Silent {
    fn step(&self, _: &str) {}
    fn step_done(&self, _: &str, _: Duration) {}
    fn task(&self, _: &str, _: u64) -> Box<dyn Task> {
        Box::new(NoTask)
    }
    fn detail(&self, _: &str) {}
    fn warn(&self, _: &str) {}
}

/// Runs `f` as a named step, reporting its start and duration.
pub fn step<T>(reporter: &dyn Reporter, name: &str, f: impl FnOnce() -> T) -> T {
    let start = std::time::Instant::now();
    reporter.step(name);
    let out = f();
    reporter.step_done(name, start.elapsed());
    out
}

/// Formats a byte count for people: `1.5 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(super::human_bytes(512), "512 B");
        assert_eq!(super::human_bytes(1536), "1.5 KiB");
        assert_eq!(super::human_bytes(3 << 30), "3.0 GiB");
    }
}
