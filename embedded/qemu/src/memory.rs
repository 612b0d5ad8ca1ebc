//! RAM: a fixed heap that keeps its high-water mark, and the stack's,
//! measured by painting it at the start and looking how far down the
//! paint was overwritten.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

use embedded_alloc::LlffHeap;

/// The heap: fixed, as on a chip with no operating system.
pub const HEAP_SIZE: usize = 48 << 10;
/// The stack looked at for its high-water mark (the stack may grow past
/// it; the report then says "at least").
const STACK_WATCHED: usize = 32 << 10;
/// The paint.
const PAINT: u32 = 0xDEAD_BEEF;

/// The global allocator: embedded-alloc's linked-list heap, counted.
pub struct Counted {
    heap: LlffHeap,
    used: AtomicUsize,
    peak: AtomicUsize,
}

#[global_allocator]
static HEAP: Counted = Counted {
    heap: LlffHeap::empty(),
    used: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
};

// SAFETY: every call goes to the heap; the counts are only counts.
unsafe impl GlobalAlloc for Counted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let ptr = unsafe { self.heap.alloc(layout) };
        if !ptr.is_null() {
            let used = self.used.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            self.peak.fetch_max(used, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.used.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { self.heap.dealloc(ptr, layout) }
    }
}

/// Gives the heap its memory and paints the stack below the caller's
/// frame. Called once, first thing.
pub fn start() {
    static mut MEMORY: [u8; HEAP_SIZE] = [0; HEAP_SIZE];
    // SAFETY: called once, before any allocation; MEMORY is used by no one else.
    unsafe {
        HEAP.heap
            .init(core::ptr::addr_of_mut!(MEMORY) as usize, HEAP_SIZE)
    };
    let (bottom, _) = watched();
    // Below this function's frame (and its caller's, which holds the
    // programs' futures): 256 bytes under the stack pointer.
    let top = cortex_m::register::msp::read() as usize - 256;
    let mut word = bottom;
    while word < top {
        // SAFETY: below the live stack, within RAM.
        unsafe { (word as *mut u32).write_volatile(PAINT) };
        word += 4;
    }
}

/// The range looked at: [`STACK_WATCHED`] bytes below the stack's start
/// (what the programs' frames take before painting counts as used).
fn watched() -> (usize, usize) {
    extern "C" {
        static _stack_start: u32;
    }
    // Only the symbol's address is taken.
    let start = core::ptr::addr_of!(_stack_start) as usize;
    (start - STACK_WATCHED, start)
}

/// The heap in use now, its high-water mark, and the stack's high-water
/// mark, in bytes.
pub fn report() -> (usize, usize, usize) {
    let (bottom, top) = watched();
    let mut word = bottom;
    // SAFETY: the painted range, within RAM.
    while word < top && unsafe { (word as *const u32).read_volatile() } == PAINT {
        word += 4;
    }
    (
        HEAP.used.load(Ordering::Relaxed),
        HEAP.peak.load(Ordering::Relaxed),
        top - word,
    )
}

/// Starts the heap's high-water mark again from what is in use now.
pub fn reset_peak() {
    HEAP.peak
        .store(HEAP.used.load(Ordering::Relaxed), Ordering::Relaxed);
}
