//! Helper threads that start on another core than the busy thread that needs them.
//!
//! Linux places a new thread — and wakes a sleeping one — on the core of the thread that
//! starts it whenever it can. A helper started by a thread that goes on working then shares
//! that core with it until the load balancer moves one of them: on this project's 2-core VM
//! that took 1–4 ms in about half of the fresh processes measured, longer than the whole job
//! of the JSON reader's helper or of the thread compiling a part. So a helper leaves its
//! starter's core as its first act (in case it runs first, ahead of its starter), and the
//! starter also moves it off its core at once, by its handle (in case it waits behind its
//! starter). Yielding to a helper queued behind the starter was tried: the starter then
//! sometimes lost its core for ~1.3 ms to whatever else was runnable.
//!
//! Scoped helpers are crossbeam's scoped threads, whose handles give the thread's pthread
//! (std's scoped handles do not): with std's, the JSON reader's helper first ran 1.8–2.7 ms
//! after its spawn in 5 of 12 fresh processes, waiting behind its starter.

use std::io;
use std::thread::{Builder, JoinHandle};

pub use crossbeam_utils::thread::{Scope, ScopedJoinHandle, scope};

/// Spawns `work` on a scoped thread named `name` kept off the calling thread's core, when
/// other cores are allowed (otherwise it is an ordinary thread). The helper stays off that
/// core for its life: it is meant for work that ends with the caller's.
pub fn spawn_beside<'scope, 'env, T: Send + 'env>(
    scope: &'scope Scope<'env>,
    name: &str,
    work: impl FnOnce() -> T + Send + 'env,
) -> io::Result<ScopedJoinHandle<'scope, T>> {
    let caller = current_core();
    let work = leaving(caller, work);
    let handle = scope.builder().name(name.to_string()).spawn(move |_| work())?;
    if let Some(core) = caller {
        keep_off_core(&handle, core);
    }
    Ok(handle)
}

/// [`spawn_beside`] for work that borrows nothing (an ordinary thread, which may outlive the
/// caller's scope).
pub fn spawn_beside_owned<T: Send + 'static>(name: &str, work: impl FnOnce() -> T + Send + 'static) -> io::Result<JoinHandle<T>> {
    let caller = current_core();
    let handle = Builder::new().name(name.to_string()).spawn(leaving(caller, work))?;
    if let Some(core) = caller {
        keep_off_core(&handle, core);
    }
    Ok(handle)
}

/// `work`, first moving its thread off the `caller`'s core.
fn leaving<T>(caller: Option<usize>, work: impl FnOnce() -> T) -> impl FnOnce() -> T {
    move || {
        if let Some(core) = caller {
            leave_core(core);
        }
        work()
    }
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
    let Some(allowed) = allowed_without(core) else { return };
    // SAFETY: pid 0 is the calling thread; the call only reads `size_of::<cpu_set_t>()` bytes
    // of `allowed`. Failure leaves the thread where it is, which is only slower.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &allowed) };
}

#[cfg(not(target_os = "linux"))]
fn leave_core(_core: usize) {}

/// The cores the calling thread may use without `core`, if `core` is one of at least two.
#[cfg(target_os = "linux")]
fn allowed_without(core: usize) -> Option<libc::cpu_set_t> {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    if core >= 8 * size {
        return None;
    }
    // SAFETY: cpu_set_t is a plain bit array, for which all zeroes is the empty set.
    let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `allowed` is a cpu_set_t of `size` bytes that the call may write; pid 0 is the
    // calling thread.
    if unsafe { libc::sched_getaffinity(0, size, &mut allowed) } != 0 {
        return None;
    }
    // SAFETY: `core` is below the set's 8·size bits (checked above), so the bit operations
    // stay inside `allowed`.
    unsafe {
        if !libc::CPU_ISSET(core, &allowed) || libc::CPU_COUNT(&allowed) < 2 {
            return None;
        }
        libc::CPU_CLR(core, &mut allowed);
    }
    Some(allowed)
}

/// Restricts the thread of `handle` to the calling thread's allowed cores without `core`.
#[cfg(target_os = "linux")]
fn keep_off_core(handle: &impl std::os::unix::thread::JoinHandleExt, core: usize) {
    let Some(allowed) = allowed_without(core) else { return };
    // SAFETY: the pthread_t is the live thread of `handle` (a join handle keeps its thread
    // joinable, so the id stays valid), and the call only reads `size_of::<cpu_set_t>()` bytes
    // of `allowed`. Failure leaves the thread where it is, which is only slower.
    unsafe { libc::pthread_setaffinity_np(handle.as_pthread_t(), std::mem::size_of::<libc::cpu_set_t>(), &allowed) };
}

#[cfg(not(target_os = "linux"))]
fn keep_off_core<H>(_handle: &H, _core: usize) {}

/// Faults in the pages of the `len` bytes at `addr` for writing without changing their
/// contents, so that the thread that will write them does not pay for the faults (~2 µs a
/// page on this project's VM): a helper can do it beside a busy thread. Any range is allowed:
/// pages that are not mapped writable are left alone.
#[cfg(target_os = "linux")]
pub fn prefault_for_writing(addr: usize, len: usize) {
    // The smallest page size: with larger pages an unaligned start makes the call fail,
    // which only leaves the faults to the writer.
    const PAGE: usize = 4096;
    let start = addr & !(PAGE - 1);
    let end = addr.saturating_add(len);
    if end <= start {
        return;
    }
    // SAFETY: MADV_POPULATE_WRITE changes no memory contents and no mapping: on any range it
    // either faults pages in as a write would, or fails (unmapped or protected pages), without
    // a signal. Failure only leaves the faults to the writer.
    unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_POPULATE_WRITE) };
}

#[cfg(not(target_os = "linux"))]
pub fn prefault_for_writing(_addr: usize, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_helper_runs_its_work_and_returns_its_result() {
        let data = [1.0, 2.0, 3.0];
        let sum = scope(|scope| spawn_beside(scope, "test-helper", || data.iter().sum::<f64>()).unwrap().join().unwrap()).unwrap();
        assert_eq!(sum, 6.0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_helper_runs_off_its_starters_core_when_another_is_allowed() {
        let allowed = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (starter, helper) = scope(|scope| {
            let starter = current_core();
            let helper = spawn_beside(scope, "test-helper", current_core).unwrap().join().unwrap();
            (starter, helper)
        })
        .unwrap();
        assert!(starter.is_some() && helper.is_some());
        if allowed > 1 {
            assert_ne!(starter, helper, "the helper ran on its starter's core");
        }
        let starter = current_core();
        let helper = spawn_beside_owned("test-helper", current_core).unwrap().join().unwrap();
        if allowed > 1 {
            assert_ne!(starter, helper, "the owned helper ran on its starter's core");
        }
    }

    #[test]
    fn prefaulting_changes_no_memory_and_takes_any_range() {
        let mut values: Vec<f64> = Vec::with_capacity(300_000);
        values.extend((0..100_000).map(f64::from));
        let (start, capacity) = (values.as_ptr() as usize, values.capacity());
        prefault_for_writing(start, 8 * capacity);
        assert!(values.iter().enumerate().all(|(i, &x)| x == i as f64));
        values.extend((100_000..300_000).map(f64::from));
        assert!(values.iter().enumerate().all(|(i, &x)| x == i as f64));
        // Unmapped, wrapping, empty and read-only ranges are left alone.
        prefault_for_writing(0, 1 << 20);
        prefault_for_writing(usize::MAX - 100, 1000);
        prefault_for_writing(start, 0);
        let text: &'static str = "a read-only literal";
        prefault_for_writing(text.as_ptr() as usize, text.len());
        assert_eq!(text, "a read-only literal");
    }
}
