//! The lab's namespaces for real (as root): hosts reach each other directly
//! and through the router, the NAT hides a, loss is injected and removed,
//! and nothing is left behind: not after a normal end, not after a panic,
//! not from a crashed run.

use std::net::Ipv4Addr;
use std::panic::{self, AssertUnwindSafe};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use xrsec_lab::{
    ensure_packages, run_checked, EspEncr, EspInteg, EspSaKey, Node, PingResult, Topology,
    TopologyConfig, Tshark, HOST_UPLINK, NAMESPACE_PREFIX,
};

fn prepare() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")),
        "these tests need root (network namespaces)"
    );
    ensure_packages().expect("install the lab's Debian packages");
}

fn namespaces() -> Vec<String> {
    run_checked(&["ip", "netns", "list"], Duration::from_secs(10))
        .expect("ip netns list")
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

fn names_of(t: &Topology, router: bool) -> Vec<String> {
    let mut nodes = vec![Node::A, Node::B];
    if router {
        nodes.push(Node::Router);
    }
    nodes.into_iter().map(|n| t.ns(n).to_string()).collect()
}

#[test]
fn direct_hosts_reach_each_other_and_leave_nothing_behind() {
    prepare();
    let t = Topology::new(TopologyConfig::direct().with_mtu(1400)).expect("topology");
    let names = names_of(&t, false);
    assert!(names.iter().all(|n| n.starts_with(NAMESPACE_PREFIX)));
    let listed = namespaces();
    assert!(names.iter().all(|n| listed.contains(n)), "{listed:?}");

    let link = t
        .run(Node::A, &["ip", "link", "show", HOST_UPLINK])
        .expect("ip link");
    assert!(link.contains("mtu 1400"), "{link}");
    let ping = t.ping(Node::A, t.address(Node::B), 3).expect("ping");
    assert_eq!(
        ping,
        PingResult {
            sent: 3,
            received: 3
        }
    );

    // Inner addresses on lo, routed across the veth.
    let (inner_a, inner_b) = (Ipv4Addr::new(10, 1, 0, 1), Ipv4Addr::new(10, 2, 0, 1));
    t.add_loopback_addr(Node::A, inner_a).expect("lo addr");
    t.add_loopback_addr(Node::B, inner_b).expect("lo addr");
    t.route_via(Node::A, "10.2.0.1/32", t.address(Node::B), Some(inner_a))
        .expect("route");
    t.route_via(Node::B, "10.1.0.1/32", t.address(Node::A), Some(inner_b))
        .expect("route");
    let inner = t.ping_from(Node::A, inner_a, inner_b, 2).expect("ping");
    assert_eq!(inner.received, 2);
    t.route_del(Node::A, "10.2.0.1/32").expect("route del");
    let unrouted = t.ping_from(Node::A, inner_a, inner_b, 1);
    assert!(
        matches!(unrouted, Err(_) | Ok(PingResult { received: 0, .. })),
        "{unrouted:?}"
    );

    let plain = t
        .iperf3(Node::A, Node::B, t.address(Node::B), 2, 1)
        .expect("iperf3");
    eprintln!(
        "plain veth (mtu 1400): {:.2} Gbit/s, ~{:.0} packets/s, {} retransmits",
        plain.gbits_per_sec, plain.packets_per_sec_estimate, plain.retransmits
    );
    assert!(plain.gbits_per_sec > 0.0);

    // A process still running in a namespace goes with the topology.
    let mut sleeper = t
        .spawn(Node::B, &["sleep", "60"], &t.dir().join("sleep.log"))
        .expect("spawn");
    assert!(sleeper.is_running());
    let dir = t.dir().to_path_buf();
    drop(t);
    assert!(!sleeper.is_running(), "the namespace's process survived");
    let listed = namespaces();
    assert!(names.iter().all(|n| !listed.contains(n)), "{listed:?}");
    assert!(!dir.exists() || std::env::var_os(xrsec_lab::KEEP_ENV).is_some());
}

#[test]
fn nat_router_shows_only_its_address_to_b() {
    prepare();
    let t = Topology::new(TopologyConfig::routed(true)).expect("topology");
    assert_eq!(t.a_as_seen_by_b(), Ipv4Addr::new(10, 99, 1, 254));
    let capture = t
        .capture(Node::B, HOST_UPLINK, t.dir().join("b.pcap"))
        .expect("capture");
    let ping = t.ping(Node::A, t.address(Node::B), 3).expect("ping");
    assert_eq!(ping.received, 3, "{ping:?}");
    let pcap = capture.stop().expect("stop");

    let tshark = Tshark::new().expect("tshark");
    let sources = tshark
        .fields(&pcap, Some("icmp.type == 8"), &["ip.src", "ip.dst"])
        .expect("decode");
    assert_eq!(sources.len(), 3, "{sources:?}");
    for row in &sources {
        assert_eq!(row, &["10.99.1.254", "10.99.1.2"]);
    }

    // The NAT lets nothing in from b's side.
    let back = t.ping(Node::B, t.address(Node::A), 1);
    assert!(
        matches!(back, Err(_) | Ok(PingResult { received: 0, .. })),
        "{back:?}"
    );

    // A key line tshark does not understand is an error, not a silent
    // "nothing decrypted".
    let mut bad = Tshark::new().expect("tshark");
    bad.esp_sa(&EspSaKey {
        src: None,
        dst: None,
        spi: 1,
        encr: EspEncr::AesGcm16,
        encr_key: vec![0; 20],
        integ: EspInteg::HmacSha256_128,
        integ_key: vec![0; 32],
    })
    .option("uat:esp_sa", "\"IPv4\",\"*\"");
    assert!(bad.count(&pcap, "esp").is_err());
}

#[test]
fn router_loss_is_injected_and_removed() {
    prepare();
    let mut t = Topology::new(TopologyConfig::routed(false).with_loss(100)).expect("topology");
    let lost = t.ping(Node::A, t.address(Node::B), 2).expect("ping");
    assert_eq!(lost.received, 0, "{lost:?}");
    t.set_loss(0).expect("set_loss");
    // Without NAT both sides route to each other.
    let from_b = t.ping(Node::B, t.address(Node::A), 3).expect("ping");
    assert_eq!(from_b.received, 3, "{from_b:?}");
    let router = t
        .run(Node::Router, &["nft", "list", "ruleset"])
        .expect("nft");
    assert!(!router.contains("numgen"), "{router}");
}

#[test]
fn a_panicking_test_leaves_no_namespace() {
    prepare();
    let names = Mutex::new(Vec::new());
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let t = Topology::new(TopologyConfig::routed(true)).expect("topology");
        names.lock().unwrap().extend(names_of(&t, true));
        panic!("a test failing with its lab up");
    }));
    assert!(result.is_err());
    let names = names.into_inner().unwrap();
    assert_eq!(names.len(), 3);
    let listed = namespaces();
    assert!(names.iter().all(|n| !listed.contains(n)), "{listed:?}");
}

#[test]
fn leftovers_of_a_dead_run_are_swept() {
    prepare();
    // A pid that has certainly ended: our own reaped child.
    let mut child = Command::new("true").spawn().expect("true");
    let dead = child.id();
    child.wait().expect("wait");
    let stale = format!("{NAMESPACE_PREFIX}{dead}-0-a");
    let _ = run_checked(&["ip", "netns", "del", &stale], Duration::from_secs(10));
    run_checked(&["ip", "netns", "add", &stale], Duration::from_secs(10)).expect("add stale");
    let stale_dir =
        std::env::temp_dir().join(format!("{}{dead}-0-topology", xrsec_lab::DIR_PREFIX));
    std::fs::create_dir_all(&stale_dir).expect("stale dir");

    let t = Topology::new(TopologyConfig::direct()).expect("topology");
    let listed = namespaces();
    assert!(!listed.contains(&stale), "{listed:?}");
    assert!(!stale_dir.exists());
    drop(t);
}
