//! Shared pieces of the end-to-end tests (run as root by `scripts/test`).

use std::sync::Mutex;

/// The end-to-end tests bind UDP 500/4500 and create TUNs only inside their
/// own namespaces, but strongSwan's and iperf3's CPU use distorts the timing
/// of the others: run them one at a time.
pub static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the serial lock even if a previous test panicked holding it.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Skips (returns true) when not root, with a line saying so.
pub fn needs_root() -> bool {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .unwrap_or_default();
    if uid != "0" {
        eprintln!("skipped: needs root (network namespaces, TUN)");
        return true;
    }
    false
}
