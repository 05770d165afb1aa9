//! Progress bars for an interactive terminal (indicatif): a spinner per step with its
//! timing, a byte bar with throughput for long tasks.

use super::{Reporter, Task, Verbosity};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::time::Duration;

pub struct TerminalReporter {
    bars: MultiProgress,
    verbosity: Verbosity,
}

impl TerminalReporter {
    pub fn new(verbosity: Verbosity) -> Self {
        TerminalReporter {
            bars: MultiProgress::new(),
            verbosity,
        }
    }
}

struct BarTask(ProgressBar);

impl Task for BarTask {
    fn advance(&mut self, units: u64) {
        self.0.inc(units);
    }
    fn finish(self: Box<Self>) {
        self.0.finish_and_clear();
    }
}

impl Reporter for TerminalReporter {
    fn step(&self, name: &str) {
        let _ = self.bars.println(format!("  {name}"));
    }
    fn step_done(&self, name: &str, elapsed: Duration) {
        if self.verbosity >= Verbosity::Verbose {
            let _ = self.bars.println(format!("  {name}: {:.2}s", elapsed.as_secs_f64()));
        }
    }
    fn task(&self, name: &str, total: u64) -> Box<dyn Task> {
        let bar = self.bars.add(ProgressBar::new(total));
        let style =
            ProgressStyle::with_template("    {msg:24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Box::new(BarTask(bar))
    }
    fn detail(&self, message: &str) {
        if self.verbosity >= Verbosity::Verbose {
            let _ = self.bars.println(format!("    {message}"));
        }
    }
    fn warn(&self, message: &str) {
        let _ = self.bars.println(format!("warning: {message}"));
    }
}
