//! Two xrsecd between two network namespaces.

use std::time::Duration;

use xrsec_lab::{router_config, Node, Topology, TopologyConfig, XrSuite, Xrsecd};

#[test]
fn seed_suite_comes_up_and_carries_ping() {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    let topo = Topology::new(TopologyConfig::direct()).unwrap();
    let (a, b) = (topo.address(Node::A), topo.address(Node::B));
    let suite = XrSuite::seed();
    let ca = router_config(a, b, "192.0.2.1".parse().unwrap(), &suite);
    let cb = router_config(b, a, "192.0.2.2".parse().unwrap(), &suite);
    let da = Xrsecd::start(&topo, Node::A, &ca, &[]).unwrap();
    let db = Xrsecd::start(&topo, Node::B, &cb, &[]).unwrap();
    let sa = da.wait_up(Duration::from_secs(15)).unwrap();
    let sb = db.wait_up(Duration::from_secs(15)).unwrap();
    let ia = sa.tunnels[0].ipsec.as_ref().unwrap();
    let ib = sb.tunnels[0].ipsec.as_ref().unwrap();
    assert_eq!(ia.inbound.spi, ib.outbound.spi);
    assert_eq!(ia.outbound.spi, ib.inbound.spi);
    let p = topo.ping(Node::A, "192.0.2.2".parse().unwrap(), 3).unwrap();
    assert_eq!(p.received, 3, "{p:?}");
}
