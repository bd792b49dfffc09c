//! A generator of large valid configurations, for benches and fuzzing.
//!
//! Invariant: [`generate_config`] output parses without errors or warnings
//! for any tunnel count up to 65,536 (the `tunnel-ipN` range), and its size
//! is linear in the count.

use std::fmt::Write;
use std::net::Ipv4Addr;

/// A valid running-config with `tunnels` tunnels: each with its own keyring
/// (one peer), IKEv2 profile, transform set, IPsec profile, interface and
/// static route; one proposal and one policy shared by all. Meant for
/// benchmarks and as a seed for fuzzing; about 45 lines per tunnel.
pub fn generate_config(tunnels: usize) -> String {
    let mut o = String::with_capacity(1300 * tunnels + 400);
    o.push_str(
        "ikev2 proposal prop_main\n encryption aes-gcm-256 aes-cbc-256\n integrity sha-256\n prf sha-256\n dh-group 20 19\nexit\n!\n",
    );
    o.push_str(
        "ikev2 policy pol_main\n match address local 198.51.100.1\n match fvrf any\n proposal prop_main\nexit\n!\n",
    );
    for i in 0..tunnels {
        // Addresses derive from the index so that every tunnel differs:
        // peers in 10/8, tunnel /30s in 172.16/12, routed /30s in 100.64/10.
        let n = i as u32;
        let peer = Ipv4Addr::from(0x0a00_0000 | (n & 0x00ff_ffff));
        let inner = Ipv4Addr::from(0xac10_0001u32.wrapping_add(n.wrapping_mul(4)));
        let _ = write!(
            o,
            "keyring kr_{i}\n peer p_{i}\n  address {peer} 255.255.255.255\n  pre-shared-key k3y-for-tunnel-{i:08}\n exit\n !\nexit\n!\n\
ikev2 profile ike_{i}\n keyring kr_{i}\n lifetime 3600\n authentication local pre-shared\n match identity remote address {peer} 255.255.255.255\n dpd 10 3\nexit\n!\n\
ipsec transform-set ts_{i}\n mode tunnel\n transform esp-gcm-256\n transform esp-256-aes esp-hmac-sha-256\nexit\n!\n\
ipsec profile ips_{i}\n set ikev2-profile ike_{i}\n set transform-set ts_{i}\n set pfs group20\n set security-association lifetime seconds 3600\nexit\n!\n\
interface tunnel-ip{i}\n description generated tunnel {i}\n ipv4 address {inner} 255.255.255.252\n tunnel mode ipsec ipv4\n tunnel source 198.51.100.1\n tunnel destination {peer}\n tunnel protection ipsec profile ips_{i}\nexit\n!\n",
        );
    }
    if tunnels > 0 {
        o.push_str("router static\n address-family ipv4 unicast\n");
        for i in 0..tunnels {
            let net = Ipv4Addr::from(0x6440_0000u32.wrapping_add((i as u32).wrapping_mul(4)));
            let _ = writeln!(o, "  {net}/30 tunnel-ip{i}");
        }
        o.push_str(" exit\n !\nexit\n!\n");
    }
    o
}
