//! Plain log lines on stderr, for CI logs and pipes: one line per step and per
//! quarter of a long task, so a log shows progress without control characters.

use super::{Reporter, Task, Verbosity, human_bytes};
use std::time::{Duration, Instant};

pub struct PlainReporter {
    verbosity: Verbosity,
}

impl PlainReporter {
    pub fn new(verbosity: Verbosity) -> Self {
        PlainReporter { verbosity }
    }
    fn say(&self, line: &str) {
        if self.verbosity > Verbosity::Quiet {
            eprintln!("{line}");
        }
    }
}

struct PlainTask {
    name: String,
    total: u64,
    done: u64,
    next_quarter: u64,
    started: Instant,
    loud: bool,
}

impl Task for PlainTask {
    fn advance(&mut self, units: u64) {
        self.done += units;
        if self.loud && self.total > 0 && self.done * 4 >= self.next_quarter * self.total {
            if self.next_quarter < 4 {
                eprintln!(
                    "imgbuild:   {} {}% ({} of {})",
                    self.name,
                    self.next_quarter * 25,
                    human_bytes(self.done),
                    human_bytes(self.total)
                );
            }
            self.next_quarter = self.done * 4 / self.total + 1;
        }
    }
    fn finish(self: Box<Self>) {
        if self.loud {
            eprintln!(
                "imgbuild:   {} done ({}) in {:.1}s",
                self.name,
                human_bytes(self.done),
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}

impl Reporter for PlainReporter {
    fn step(&self, name: &str) {
        self.say(&format!("imgbuild: {name}"));
    }
    fn step_done(&self, name: &str, elapsed: Duration) {
        if self.verbosity >= Verbosity::Verbose {
            eprintln!("imgbuild: {name}: {:.2}s", elapsed.as_secs_f64());
        }
    }
    fn task(&self, name: &str, total: u64) -> Box<dyn Task> {
        Box::new(PlainTask {
            name: name.to_string(),
            total,
            done: 0,
            next_quarter: 1,
            started: Instant::now(),
            loud: self.verbosity > Verbosity::Quiet,
        })
    }
    fn detail(&self, message: &str) {
        if self.verbosity >= Verbosity::Verbose {
            eprintln!("imgbuild:   {message}");
        }
    }
    fn warn(&self, message: &str) {
        eprintln!("warning: {message}");
    }
}
