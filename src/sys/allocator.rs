//! The static (musl) binary's allocator: musl's own for a command that is over in a
//! millisecond, mimalloc for the daemon.
//!
//! musl's allocator maps and unmaps memory as blocks come and go. Under load that cost the
//! static daemon a third of its HTTP throughput against the glibc build (30,000 requests a
//! second against 47,000) and a tenth more CPU to start 1,000 programs. mimalloc does not,
//! but its own start-up (its arenas, the first pages of each) costs a `kahi ctl status` more
//! than the status itself: 0.78 ms of CPU against musl's 0.33. So the choice is made by the
//! command, in `main`, before the first allocation, and never changes: every block is freed
//! by the allocator that made it. docs/performance.md has the figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once, before the first allocation, for a command that runs for long.
static LONG_LIVED: AtomicBool = AtomicBool::new(false);

/// musl's allocator, or mimalloc once [`long_lived`] has chosen it.
pub struct Allocator;

// SAFETY: each call goes to one of two allocators, the same one for every call of the
// process's life (see the module comment), so each block is freed, grown or shrunk by the
// allocator that made it; both uphold GlobalAlloc's contract.
unsafe impl GlobalAlloc for Allocator {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's promises, passed on.
        unsafe {
            if LONG_LIVED.load(Ordering::Relaxed) {
                mimalloc::MiMalloc.alloc(layout)
            } else {
                System.alloc(layout)
            }
        }
    }

    #[inline(never)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        unsafe {
            if LONG_LIVED.load(Ordering::Relaxed) {
                mimalloc::MiMalloc.alloc_zeroed(layout)
            } else {
                System.alloc_zeroed(layout)
            }
        }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe {
            if LONG_LIVED.load(Ordering::Relaxed) {
                mimalloc::MiMalloc.dealloc(ptr, layout)
            } else {
                System.dealloc(ptr, layout)
            }
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        unsafe {
            if LONG_LIVED.load(Ordering::Relaxed) {
                mimalloc::MiMalloc.realloc(ptr, layout, new_size)
            } else {
                System.realloc(ptr, layout, new_size)
            }
        }
    }
}

/// Chooses mimalloc, set for a daemon that sits idle most of its life: memory freed goes
/// back to the kernel at once, not after a delay that only the next allocations would act on
/// (an idle loop makes none), and arenas take memory as it is used rather than all at once.
/// With mimalloc's defaults a daemon of 1,000 programs held 27.7 MB; with these, 9.0 MB
/// (musl's allocator 8.6, glibc's 10.2).
///
/// # Safety
/// Only before the first allocation, on the only thread.
pub unsafe fn long_lived() {
    // The numbers of `mi_option_arena_eager_commit` and `mi_option_purge_delay` in the
    // mi_option_e enum of the mimalloc that Cargo.lock pins (v3).
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: setting two options, before mimalloc has allocated anything.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
    LONG_LIVED.store(true, Ordering::Relaxed);
}
