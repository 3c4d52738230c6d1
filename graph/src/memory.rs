//! Whether a large allocation can succeed, asked before making it: Rust aborts the process
//! when an allocation fails, so a value or workspace too big for the machine must be refused
//! as an error first.

/// Below this many bytes an allocation is assumed to succeed (asking would cost more).
const ASK_ABOVE: usize = 1 << 28;

/// Whether `bytes` can be allocated now. Large sizes are tried with a fallible reservation,
/// released at once; the pages are never touched, so asking costs one `mmap` and `munmap`.
pub fn can_allocate(bytes: usize) -> bool {
    if bytes <= ASK_ABOVE {
        return true;
    }
    let mut probe: Vec<u8> = Vec::new();
    probe.try_reserve_exact(bytes).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_sizes_cannot_be_allocated_and_small_ones_can() {
        assert!(can_allocate(0));
        assert!(can_allocate(1 << 20));
        assert!(can_allocate(1 << 29));
        assert!(!can_allocate(usize::MAX / 2));
        assert!(!can_allocate(1 << 60));
    }
}
