//! The order CPU jobs ([`Compute`]) run in when they wait for a worker:
//! every job before those of IKE_SA_INIT requests nothing proved the
//! source of ([`Compute::unproven`]: no valid COOKIE), first in first out
//! within each class.
//!
//! Under a spoofed IKE_SA_INIT flood the requests that came before
//! cookies were required (`cookie_threshold` half-open SAs) each queue a
//! key exchange that no one will use; a legitimate initiator's request,
//! which returned a COOKIE, must not wait behind them, nor must the work
//! of established IKE SAs and of our own initiations. The unproven jobs
//! are bounded by the half-open limits (`sa::dos`), so they still run
//! whenever nothing else waits.

use std::collections::VecDeque;

use super::Compute;

/// Jobs waiting for a worker, in the order they are to run.
#[derive(Debug, Default)]
pub struct JobQueue {
    first: VecDeque<Compute>,
    unproven: VecDeque<Compute>,
}

impl JobQueue {
    /// Adds `job` behind the jobs of its class.
    pub fn push(&mut self, job: Compute) {
        if job.unproven() {
            self.unproven.push_back(job);
        } else {
            self.first.push_back(job);
        }
    }

    /// The job to run next.
    pub fn pop(&mut self) -> Option<Compute> {
        self.first.pop_front().or_else(|| self.unproven.pop_front())
    }

    /// Jobs waiting.
    pub fn len(&self) -> usize {
        self.first.len().saturating_add(self.unproven.len())
    }

    /// Whether no job waits.
    pub fn is_empty(&self) -> bool {
        self.first.is_empty() && self.unproven.is_empty()
    }
}
