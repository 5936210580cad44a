//! Keeping the runtime responsive while the round's final unmasking runs.
//!
//! The session is sans-IO and synchronous: the message (or deadline, or
//! disconnect) that closes the unmask phase also computes the sum, which
//! expands one mask of `d` elements per survivor and per dropped edge on
//! every core the operator allows (`[limits] unmask_threads`). At large `d`
//! that is seconds. Run on a tokio worker as it is, it would hold that worker
//! and every task queued on it: connection readers and writers, timers, and
//! the QUIC endpoint's driver when it is there.

use tokio::runtime::{Handle, RuntimeFlavor};
use veil_secagg::Phase;

/// Calls `f`, a call into the round's session made while it collects
/// `phase` (`None` between rounds). In the unmask phase, on a multi-thread runtime, the worker first
/// hands its other tasks to a new thread ([`tokio::task::block_in_place`]),
/// so they keep running while `f` computes. Elsewhere, and on a
/// current-thread runtime (where `block_in_place` is not allowed), `f` runs
/// as it is.
pub(super) fn session_call<T>(phase: Option<Phase>, f: impl FnOnce() -> T) -> T {
    let multi_thread =
        Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
    if phase == Some(Phase::Unmask) && multi_thread {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// On a runtime with one worker, `f` blocks on a task queued on that
    /// worker: `f` returns whether the task ran while `f` waited.
    fn queued_task_runs_during(phase: Phase, wait: Duration) -> bool {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        rt.block_on(async move {
            // Spawned from inside a worker task, so both share the worker.
            tokio::spawn(async move {
                let (tx, rx) = mpsc::channel();
                tokio::spawn(async move {
                    let _ = tx.send(());
                });
                session_call(Some(phase), || rx.recv_timeout(wait).is_ok())
            })
            .await
            .unwrap()
        })
    }

    #[test]
    fn the_unmask_phase_leaves_the_worker_s_other_tasks_running() {
        // Generous: the queued task needs a thread to pick the worker up.
        assert!(queued_task_runs_during(
            Phase::Unmask,
            Duration::from_secs(60)
        ));
        // The same wait outside the unmask phase holds the only worker, so
        // the queued task cannot run: what the unmask phase avoids.
        assert!(!queued_task_runs_during(
            Phase::ShareKeys,
            Duration::from_millis(200)
        ));
    }

    #[test]
    fn a_current_thread_runtime_runs_the_call_in_place() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(
            rt.block_on(async { session_call(Some(Phase::Unmask), || 7) }),
            7
        );
        // Outside any runtime too.
        assert_eq!(session_call(Some(Phase::Unmask), || 8), 8);
    }
}
