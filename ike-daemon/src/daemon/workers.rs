//! The worker threads of the engine's CPU work: the key exchanges of
//! IKE_SA_INIT and of CREATE_CHILD_SA (responder) and the signatures of
//! IKE_AUTH (`ike::sa::Compute`) run here, beside the event loop's one
//! thread, so handshakes use every core while the engine stays sans-IO.
//!
//! A fixed number of threads (`--workers`, by default one per core) take
//! jobs from one queue and send each result back to the loop through a
//! tokio channel; the loop hands it to `Endpoint::handle_computed`. The
//! queue holds only what the engine asked for, which its half-open
//! limits bound. When the pool is dropped the queue closes and each thread
//! ends after its job.

use std::io;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread;

use ike::sa::{Compute, Computed};
use tokio::sync::mpsc::UnboundedSender;
use tracing::warn;

/// The pool: the sending end of its queue.
#[derive(Debug)]
pub struct Workers {
    jobs: Sender<Compute>,
    threads: usize,
}

/// One thread per core the process may use (at least one).
pub fn default_count() -> usize {
    thread::available_parallelism().map_or(1, usize::from)
}

impl Workers {
    /// Starts `n` threads (at least one) that answer through `done`.
    pub fn start(n: usize, done: UnboundedSender<Computed>) -> io::Result<Self> {
        let (jobs, rx) = channel::<Compute>();
        let rx = Arc::new(Mutex::new(rx));
        let threads = n.max(1);
        for i in 0..threads {
            let rx = rx.clone();
            let done = done.clone();
            thread::Builder::new()
                .name(format!("iked-worker-{i}"))
                .spawn(move || work(&rx, &done))?;
        }
        Ok(Self { jobs, threads })
    }

    /// How many threads run jobs.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Queues `job`; a job the pool can no longer take (every thread
    /// ended) is run here instead, so that its IKE SA still continues.
    pub fn submit(&self, job: Compute) -> Option<Computed> {
        match self.jobs.send(job) {
            Ok(()) => None,
            Err(e) => {
                warn!("worker threads gone; computing on the event loop");
                Some(e.0.run())
            }
        }
    }
}

/// A worker's life: the next job, until the queue closes or the loop is
/// gone.
fn work(rx: &Mutex<Receiver<Compute>>, done: &UnboundedSender<Computed>) {
    loop {
        // The lock is held only to take one job.
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else {
            return;
        };
        if done.send(job.run()).is_err() {
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
