//! Downloads that start while the resolves go on: one queue that targets add their wheels
//! to as each is resolved, and the pool's number of workers taking from it until it is
//! closed. Unlike one `pool::fetch_many` per target, a worker never waits for another
//! target's last file: a slow request (on the benchmark machine about one DNS lookup in
//! fifty takes 5 s) holds up that file, not the next target's.

use crate::fetch::Cx;
use crate::fetch::pool::{Job, WORKERS};
use crate::report::Task;
use anyhow::{Result, bail};
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

/// Closes the queue when dropped.
pub struct CloseOnDrop<'q, 'a>(pub &'q Downloads<'a>);

impl Drop for CloseOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

pub struct Downloads<'a> {
    cx: &'a Cx<'a>,
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Default)]
struct State {
    /// (batch, job), in the order added.
    queue: VecDeque<(usize, Job)>,
    closed: bool,
    batches: Vec<Batch>,
    added: usize,
    errors: Vec<String>,
}

/// The files one target added, with their progress line.
struct Batch {
    task: Option<Box<dyn Task>>,
    left: usize,
}

impl<'a> Downloads<'a> {
    pub fn new(cx: &'a Cx<'a>) -> Self {
        Downloads {
            cx,
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
        }
    }

    /// How many threads should run [`Downloads::work`].
    pub fn workers() -> usize {
        WORKERS
    }

    /// Queues `jobs` (files not queued before) under a progress line called `name`.
    pub fn add(&self, name: &str, jobs: Vec<Job>) {
        if jobs.is_empty() || self.lock().closed {
            return;
        }
        let total = jobs.iter().filter_map(|j| j.expect.size).sum();
        let task = self.cx.reporter.task(name, total);
        let mut st = self.lock();
        if st.closed {
            return;
        }
        let b = st.batches.len();
        st.batches.push(Batch {
            task: Some(task),
            left: jobs.len(),
        });
        st.added += jobs.len();
        st.queue.extend(jobs.into_iter().map(|j| (b, j)));
        drop(st);
        self.ready.notify_all();
    }

    /// No more jobs will come; the workers return once the queue is empty.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Drops the jobs not yet started (the fetch failed anyway) and closes the queue.
    pub fn cancel(&self) {
        let mut st = self.lock();
        st.queue.clear();
        st.closed = true;
        for t in st.batches.iter_mut().filter_map(|b| b.task.take()) {
            t.finish();
        }
        drop(st);
        self.ready.notify_all();
    }

    /// A worker: downloads queued jobs into the store until the queue is closed and empty.
    pub fn work(&self) {
        loop {
            let (b, job) = {
                let mut st = self.lock();
                loop {
                    if let Some(next) = st.queue.pop_front() {
                        break next;
                    }
                    if st.closed {
                        return;
                    }
                    st = match self.ready.wait(st) {
                        Ok(g) => g,
                        Err(p) => p.into_inner(),
                    };
                }
            };
            let got = self.cx.client.download(self.cx.store, &job.url, &job.expect);
            let mut st = self.lock();
            let size = match got {
                Ok(f) => f.size,
                Err(e) => {
                    st.errors.push(format!("{}: {e}", job.label));
                    0
                }
            };
            let batch = &mut st.batches[b];
            batch.left -= 1;
            if let Some(t) = batch.task.as_mut() {
                t.advance(size);
            }
            if batch.left == 0
                && let Some(t) = batch.task.take()
            {
                t.finish();
            }
        }
    }

    /// Every failure, named by its job's label, once the workers are done.
    pub fn finish(self) -> Result<()> {
        let st = self.state.into_inner().unwrap_or_else(|p| p.into_inner());
        if !st.errors.is_empty() {
            bail!(
                "{} of {} downloads failed:\n  {}",
                st.errors.len(),
                st.added,
                st.errors.join("\n  ")
            );
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
