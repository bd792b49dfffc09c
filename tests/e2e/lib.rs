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

/// Waits until the two daemons agree: on each side exactly one IKE SA per
/// session, READY, nothing else negotiating, and every tunnel's inbound SPI
/// on one side is the outbound SPI on the other. (A daemon started before
/// its peer may first come up as responder and then replace that SA with its
/// own once its retransmission gets through: "up" alone is not settled.)
pub fn wait_converged(
    a: &xrsec_lab::Xrsecd,
    b: &xrsec_lab::Xrsecd,
    timeout: std::time::Duration,
) -> (xrsec_control::Status, xrsec_control::Status) {
    wait_agreement(a, b, timeout, false)
}

/// As [`wait_converged`], but a negotiation that cannot complete may still
/// be retrying beside the READY SA (behind a NAT, the public side's own
/// initiation to the NAT's address is dropped until it gives up, after a
/// minute; it replaces nothing).
pub fn wait_converged_behind_nat(
    a: &xrsec_lab::Xrsecd,
    b: &xrsec_lab::Xrsecd,
    timeout: std::time::Duration,
) -> (xrsec_control::Status, xrsec_control::Status) {
    wait_agreement(a, b, timeout, true)
}

fn wait_agreement(
    a: &xrsec_lab::Xrsecd,
    b: &xrsec_lab::Xrsecd,
    timeout: std::time::Duration,
    allow_negotiating: bool,
) -> (xrsec_control::Status, xrsec_control::Status) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let (sa, sb) = (a.status().unwrap(), b.status().unwrap());
        if agree(&sa, &sb, allow_negotiating) {
            return (sa, sb);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the two daemons did not converge in {timeout:?}:\nA: {sa:#?}\nB: {sb:#?}\nA's log:\n{}\nB's log:\n{}",
            a.log(),
            b.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn agree(a: &xrsec_control::Status, b: &xrsec_control::Status, allow_negotiating: bool) -> bool {
    let settled = |s: &xrsec_control::Status| {
        s.sessions.iter().all(|x| {
            let ready = x.ike_sas.iter().filter(|i| i.state == "READY").count();
            ready == 1 && (allow_negotiating || x.ike_sas.len() == 1)
        })
    };
    if !settled(a) || !settled(b) {
        return false;
    }
    a.tunnels.iter().all(|ta| {
        if ta.state == xrsec_control::TunnelState::AdminDown {
            return true;
        }
        let Some(x) = &ta.ipsec else { return false };
        b.tunnels.iter().any(|tb| {
            tb.ipsec
                .as_ref()
                .is_some_and(|y| y.inbound.spi == x.outbound.spi && y.outbound.spi == x.inbound.spi)
        })
    })
}
