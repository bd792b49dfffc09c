//! The per-packet ESP path does not allocate: a counting global allocator
//! watches seal, seal_batch and open for every suite.
//!
//! This test binary holds its own `unsafe impl GlobalAlloc` (the library
//! itself is `forbid(unsafe_code)`); it only counts and forwards to `System`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use xrsec_crypto::{Encr, EspKeys, EspOpener, EspSealer, EspSuite, IntegId, SealJob, SecretBytes};

struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards every call unchanged to the system allocator.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if WATCHING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if WATCHING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    WATCHING.with(|w| w.set(true));
    f();
    WATCHING.with(|w| w.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn seal_seal_batch_and_open_do_not_allocate() {
    // The counter itself works.
    assert_eq!(
        allocations_during(|| drop(std::hint::black_box(vec![1u8; 10]))),
        1
    );
    let mut suites = vec![
        EspSuite::new(Encr::AesGcm16_128, None).unwrap(),
        EspSuite::new(Encr::AesGcm16_256, None).unwrap(),
    ];
    for encr in [Encr::AesCbc128, Encr::AesCbc192, Encr::AesCbc256] {
        for integ in IntegId::ALL {
            suites.push(EspSuite::new(encr, Some(integ)).unwrap());
        }
    }
    for suite in suites {
        let keys = EspKeys {
            encr: SecretBytes::new(&vec![1; suite.encr_key_len()]),
            integ: SecretBytes::new(&vec![2; suite.integ_key_len()]),
        };
        let mut sealer = EspSealer::new(suite, &keys, 7, true).unwrap();
        let opener = EspOpener::new(suite, &keys, true).unwrap();
        let mut a = vec![0u8; 2000];
        let mut b = vec![0u8; 2000];
        let mut c = vec![0u8; 2000];
        let allocated = allocations_during(|| {
            for seq in 1..50u64 {
                let len = sealer.seal_in_place(&mut a, 1400, seq, 4).unwrap();
                opener.open_in_place(&mut a[..len], 0).unwrap();
            }
            let mut jobs = [
                SealJob::new(&mut b, 100, 60, 4),
                SealJob::new(&mut c, 1400, 61, 4),
            ];
            sealer.seal_batch(&mut jobs);
            assert!(jobs.iter().all(|j| matches!(j.outcome, Some(Ok(_)))));
        });
        assert_eq!(allocated, 0, "{suite}");
    }
}
