//! The worker threads of the engine's CPU work: the key exchanges of
//! IKE_SA_INIT (both roles, key pairs too) and of CREATE_CHILD_SA
//! (responder) and the signatures of
//! IKE_AUTH (`ike::sa::Compute`) run here, beside the event loop's one
//! thread, so handshakes use every core while the engine stays sans-IO.
//!
//! A fixed number of threads (`--workers`, by default one per core) take
//! jobs from one queue, in `ike::sa::JobQueue`'s order (the key exchanges
//! of IKE_SA_INIT requests that returned no COOKIE last), and send each
//! result back to the loop through a tokio channel; the loop hands it to
//! `Endpoint::handle_computed`. The queue holds only what the engine
//! asked for, which its half-open limits bound. When the pool is dropped
//! the queue closes and each thread ends after its job.

use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;

use ike::sa::{Compute, Computed, JobQueue};
use tokio::sync::mpsc::UnboundedSender;
use tracing::warn;

/// What the threads share: the jobs, whether the pool is closed, how
/// many threads still run.
#[derive(Debug, Default)]
struct State {
    jobs: JobQueue,
    closed: bool,
    running: usize,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    ready: Condvar,
}

impl Shared {
    /// The state; a thread that panicked holding the lock left it
    /// consistent (every change is one call), so it is used anyway.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The pool: its queue, closed when dropped.
#[derive(Debug)]
pub struct Workers {
    shared: Arc<Shared>,
    threads: usize,
}

/// One thread per core the process may use (at least one).
pub fn default_count() -> usize {
    thread::available_parallelism().map_or(1, usize::from)
}

impl Workers {
    /// Starts `n` threads (at least one) that answer through `done`.
    pub fn start(n: usize, done: UnboundedSender<Computed>) -> io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let threads = n.max(1);
        let pool = Self {
            shared: shared.clone(),
            threads,
        };
        for i in 0..threads {
            let (mine, done) = (shared.clone(), done.clone());
            {
                let mut st = shared.lock();
                st.running = st.running.saturating_add(1);
            }
            // On an error, dropping `pool` ends the threads already started.
            thread::Builder::new()
                .name(format!("iked-worker-{i}"))
                .spawn(move || work(&mine, &done))?;
        }
        Ok(pool)
    }

    /// How many threads run jobs.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Queues `job`; a job the pool can no longer take (every thread
    /// ended) is run here instead, so that its IKE SA still continues.
    pub fn submit(&self, job: Compute) -> Option<Computed> {
        let mut st = self.shared.lock();
        if st.running == 0 {
            drop(st);
            warn!("worker threads gone; computing on the event loop");
            return Some(job.run());
        }
        st.jobs.push(job);
        drop(st);
        self.shared.ready.notify_one();
        None
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
    }
}

/// A worker's life: the next job, until the pool closes or the loop is
/// gone.
fn work(shared: &Shared, done: &UnboundedSender<Computed>) {
    loop {
        let mut st = shared.lock();
        let job = loop {
            if st.closed {
                break None;
            }
            if let Some(job) = st.jobs.pop() {
                break Some(job);
            }
            st = shared.ready.wait(st).unwrap_or_else(|e| e.into_inner());
        };
        let Some(job) = job else {
            st.running = st.running.saturating_sub(1);
            return;
        };
        // The lock is held only to take one job.
        drop(st);
        if done.send(job.run()).is_err() {
            let mut st = shared.lock();
            st.running = st.running.saturating_sub(1);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn the_default_is_one_per_core() {
        assert!(default_count() >= 1);
    }

    #[tokio::test]
    async fn a_closed_pool_ends_its_threads() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let w = Workers::start(3, tx).unwrap();
        assert_eq!(w.threads(), 3);
        drop(w);
        // Every thread held a sender: all ended when the queue closed.
        assert!(rx.recv().await.is_none());
    }
}
