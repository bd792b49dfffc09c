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

/// Waits until the two daemons agree: on each side exactly one READY IKE SA per
/// session, and every tunnel's inbound SPI on
/// one side is the outbound SPI on the other. (A daemon started before its
/// peer may first come up as responder and then replace that SA with its
/// own once its retransmission gets through: "up" alone is not settled.)
pub fn wait_converged(
    a: &xrsec_lab::Xrsecd,
    b: &xrsec_lab::Xrsecd,
    timeout: std::time::Duration,
) -> (xrsec_control::Status, xrsec_control::Status) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let (sa, sb) = (a.status().unwrap(), b.status().unwrap());
        if converged(&sa, &sb) {
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

fn converged(a: &xrsec_control::Status, b: &xrsec_control::Status) -> bool {
    // A negotiation of ours that lost the race may still be retrying (its
    // IKE_AUTH dropped by a NAT, say): it shows as CONNECTING until it gives
    // up, and replaces nothing. What must be single is the READY SA.
    let single_ready = |s: &xrsec_control::Status| {
        s.sessions
            .iter()
            .all(|x| x.ike_sas.iter().filter(|i| i.state == "READY").count() == 1)
    };
    if !single_ready(a) || !single_ready(b) {
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
