//! Helper threads that start on another core than the busy thread that needs them.
//!
//! Linux places a new thread — and wakes a sleeping one — on the core of the thread that
//! starts it whenever it can. A helper started by a thread that goes on working then shares
//! that core with it until the load balancer moves one of them: on this project's 2-core VM
//! that took 1–4 ms in about half of the fresh processes measured, longer than the whole job
//! of the JSON reader's helper or of the thread compiling a part. So a helper leaves its
//! starter's core as its first act, and the starter yields once, so that a helper queued
//! behind it gets to run and leave.

use std::io;
use std::thread::{Builder, Scope, ScopedJoinHandle};

/// Spawns `work` on a scoped thread named `name` that runs on the other cores than the
/// calling thread's, when there are others (otherwise as an ordinary thread). The helper
/// stays off that core for its life: it is meant for work that ends with the caller's.
pub fn spawn_beside<'scope, T: Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    name: &str,
    work: impl FnOnce() -> T + Send + 'scope,
) -> io::Result<ScopedJoinHandle<'scope, T>> {
    let caller = current_core();
    let handle = Builder::new().name(name.to_string()).spawn_scoped(scope, move || {
        if let Some(core) = caller {
            leave_core(core);
        }
        work()
    })?;
    if caller.is_some() {
        std::thread::yield_now();
    }
    Ok(handle)
}

/// The core the calling thread is running on.
#[cfg(target_os = "linux")]
fn current_core() -> Option<usize> {
    // SAFETY: sched_getcpu has no arguments and no preconditions.
    let core = unsafe { libc::sched_getcpu() };
    usize::try_from(core).ok()
}

#[cfg(not(target_os = "linux"))]
fn current_core() -> Option<usize> {
    None
}

/// Removes `core` from the calling thread's allowed cores, unless it is the only one allowed
/// (the kernel then moves the thread at once if it was running there).
#[cfg(target_os = "linux")]
fn leave_core(core: usize) {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    if core >= 8 * size {
        return;
    }
    // SAFETY: cpu_set_t is a plain bit array, for which all zeroes is the empty set.
    let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `allowed` is a cpu_set_t of `size` bytes that the call may write; pid 0 is the
    // calling thread.
    if unsafe { libc::sched_getaffinity(0, size, &mut allowed) } != 0 {
        return;
    }
    // SAFETY: `core` is below the set's 8·size bits (checked above), so the bit operations
    // stay inside `allowed`, and sched_setaffinity only reads `size` bytes of it. Failure
    // leaves the thread where it is, which is only slower.
    unsafe {
        if !libc::CPU_ISSET(core, &allowed) || libc::CPU_COUNT(&allowed) < 2 {
            return;
        }
        libc::CPU_CLR(core, &mut allowed);
        libc::sched_setaffinity(0, size, &allowed);
    }
}

#[cfg(not(target_os = "linux"))]
fn leave_core(_core: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_helper_runs_its_work_and_returns_its_result() {
        let data = [1.0, 2.0, 3.0];
        let sum = std::thread::scope(|scope| spawn_beside(scope, "test-helper", || data.iter().sum::<f64>()).unwrap().join().unwrap());
        assert_eq!(sum, 6.0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_helper_runs_off_its_starters_core_when_another_is_allowed() {
        let allowed = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (starter, helper) = std::thread::scope(|scope| {
            let starter = current_core();
            let helper = spawn_beside(scope, "test-helper", current_core).unwrap().join().unwrap();
            (starter, helper)
        });
        assert!(starter.is_some() && helper.is_some());
        if allowed > 1 {
            assert_ne!(starter, helper, "the helper ran on its starter's core");
        }
    }
}
