//! `xrsec-esp-static`: a LAB TOOL, not the daemon. It brings up one tunnel
//! with one statically keyed Child SA, for the namespace tests and the
//! throughput bench, until IKE is wired in by the daemon. Keys on the
//! command line are visible to every local user: never use it with keys
//! that matter.
//!
//! ```text
//! xrsec-esp-static --ifname tunnel-ip1 --address 192.0.2.1/30 [--mtu N]
//!     --local 10.99.0.1 --remote 10.99.0.2
//!     --spi-in 0x1001 --spi-out 0x2001
//!     --encr esp-gcm-128 | esp-128-aes | esp-192-aes | esp-256-aes | esp-gcm-256
//!     [--integ esp-hmac-sha-1 | esp-hmac-sha-256 | esp-hmac-sha-384 | esp-hmac-sha-512]
//!     --key-in HEX --key-out HEX [--integ-key-in HEX --integ-key-out HEX]
//!     [--encap native | udp | udp:PORT] [--esn] [--replay-window N]
//!     [--no-offloads] [--single-thread] [--ready-file PATH]
//! ```
//!
//! `--single-thread`: the tunnel's thread also receives on UDP 4500
//! (`DataplaneOptions::rx_in_tunnel_thread`) instead of a receive thread.
//!
//! GCM keys include the 4-byte salt at their end (RFC 4106 8.1). Runs until
//! SIGTERM or SIGINT, then removes the tunnel and prints the counters;
//! SIGUSR1 prints them without stopping.

use std::net::Ipv4Addr;
use std::process::ExitCode;

use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use xrsec_crypto::{Encr, EspKeys, EspSuite, IntegId, SecretBytes};
use xrsec_esp::{Dataplane, DataplaneOptions, DropReason, Encap, Lifetime, SaSpec, TunnelSpec};

struct Args {
    ifname: String,
    address: Ipv4Addr,
    prefix_len: u8,
    mtu: Option<u16>,
    local: Ipv4Addr,
    remote: Ipv4Addr,
    spi_in: u32,
    spi_out: u32,
    suite: EspSuite,
    keys_in: EspKeys,
    keys_out: EspKeys,
    encap: Encap,
    esn: bool,
    replay_window: u32,
    offloads: bool,
    single_thread: bool,
    ready_file: Option<String>,
}

fn hex(s: &str) -> Result<Vec<u8>, String> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.len() % 2 != 0 {
        return Err(format!("odd-length hex: {s}"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("hex {s}: {e}")))
        .collect()
}

fn number(s: &str) -> Result<u32, String> {
    match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("{s}: {e}"))
}

fn encr_by_name(s: &str) -> Result<Encr, String> {
    Ok(match s {
        "esp-128-aes" => Encr::AesCbc128,
        "esp-192-aes" => Encr::AesCbc192,
        "esp-256-aes" => Encr::AesCbc256,
        "esp-gcm-128" => Encr::AesGcm16_128,
        "esp-gcm-256" => Encr::AesGcm16_256,
        _ => return Err(format!("unknown cipher {s}")),
    })
}

fn integ_by_name(s: &str) -> Result<IntegId, String> {
    Ok(match s {
        "esp-hmac-sha-1" => IntegId::HmacSha1_96,
        "esp-hmac-sha-256" => IntegId::HmacSha2_256_128,
        "esp-hmac-sha-384" => IntegId::HmacSha2_384_192,
        "esp-hmac-sha-512" => IntegId::HmacSha2_512_256,
        _ => return Err(format!("unknown integrity {s}")),
    })
}

fn parse() -> Result<Args, String> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut get = std::collections::HashMap::new();
    let mut flags = std::collections::HashSet::new();
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        let Some(name) = a.strip_prefix("--") else {
            return Err(format!("unexpected argument {a}"));
        };
        if matches!(name, "esn" | "no-offloads" | "single-thread" | "help") {
            flags.insert(name.to_owned());
            i += 1;
            continue;
        }
        let v = argv.get(i + 1).ok_or(format!("--{name} needs a value"))?;
        get.insert(name.to_owned(), v.clone());
        i += 2;
    }
    if flags.contains("help") {
        return Err(
            "see the module documentation at the top of src/bin/xrsec-esp-static.rs".into(),
        );
    }
    let need = |k: &str| get.get(k).cloned().ok_or(format!("missing --{k}"));
    let ip = |k: &str| -> Result<Ipv4Addr, String> {
        need(k)?.parse().map_err(|e| format!("--{k}: {e}"))
    };
    let (addr, prefix) = need("address")?
        .split_once('/')
        .map(|(a, p)| (a.to_owned(), p.to_owned()))
        .ok_or("--address A.B.C.D/LEN")?;
    let encr = encr_by_name(&need("encr")?)?;
    let integ = get.get("integ").map(|s| integ_by_name(s)).transpose()?;
    let suite = EspSuite::new(encr, integ).map_err(|e| format!("suite: {e}"))?;
    let keys = |dir: &str| -> Result<EspKeys, String> {
        let integ = match get.get(&format!("integ-key-{dir}")) {
            Some(k) => hex(k)?,
            None => Vec::new(),
        };
        Ok(EspKeys {
            encr: SecretBytes::new(&hex(&need(&format!("key-{dir}"))?)?),
            integ: SecretBytes::new(&integ),
        })
    };
    let encap = match get.get("encap").map(String::as_str) {
        None | Some("native") => Encap::Native,
        Some("udp") => Encap::Udp { peer_port: 4500 },
        Some(other) => match other.strip_prefix("udp:") {
            Some(p) => Encap::Udp {
                peer_port: p.parse().map_err(|e| format!("--encap: {e}"))?,
            },
            None => return Err(format!("--encap {other}: native, udp or udp:PORT")),
        },
    };
    Ok(Args {
        ifname: need("ifname")?,
        address: addr.parse().map_err(|e| format!("--address: {e}"))?,
        prefix_len: prefix
            .parse()
            .map_err(|e| format!("--address prefix: {e}"))?,
        mtu: get
            .get("mtu")
            .map(|m| m.parse())
            .transpose()
            .map_err(|e| format!("--mtu: {e}"))?,
        local: ip("local")?,
        remote: ip("remote")?,
        spi_in: number(&need("spi-in")?)?,
        spi_out: number(&need("spi-out")?)?,
        suite,
        keys_in: keys("in")?,
        keys_out: keys("out")?,
        encap,
        esn: flags.contains("esn"),
        replay_window: get
            .get("replay-window")
            .map(|w| number(w))
            .transpose()?
            .unwrap_or(64),
        offloads: !flags.contains("no-offloads"),
        single_thread: flags.contains("single-thread"),
        ready_file: get.get("ready-file").cloned(),
    })
}

fn print_counters(dp: &Dataplane) {
    for c in dp.counters() {
        let drops: Vec<String> = DropReason::ALL
            .iter()
            .filter(|r| c.counts.dropped(**r) != 0)
            .map(|r| format!("{}={}", r, c.counts.dropped(*r)))
            .collect();
        println!(
            "sa tunnel={} dir={:?} spi={:#010x} suite={} encap={:?} packets={} bytes={} drops={} [{}]",
            c.tunnel.0,
            c.direction,
            c.spi,
            c.suite,
            c.encap,
            c.counts.packets,
            c.counts.bytes,
            c.counts.total_drops(),
            drops.join(" ")
        );
    }
    let g = dp.global_counters();
    let drops: Vec<String> = DropReason::ALL
        .iter()
        .filter(|r| g.dropped(**r) != 0)
        .map(|r| format!("{}={}", r, g.dropped(*r)))
        .collect();
    println!("global drops={} [{}]", g.total_drops(), drops.join(" "));
}

fn run(args: Args) -> Result<(), String> {
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGUSR1]).map_err(|e| format!("signals: {e}"))?;
    let dp = Dataplane::start(DataplaneOptions {
        local: args.local,
        native: true,
        udp_port: Some(xrsec_esp::NAT_T_PORT),
        offloads: args.offloads,
        rx_in_tunnel_thread: args.single_thread,
        ..DataplaneOptions::default()
    })
    .map_err(|e| format!("start: {e}"))?;
    let tunnel = dp
        .add_tunnel(TunnelSpec {
            ifname: args.ifname.clone(),
            address: args.address,
            prefix_len: args.prefix_len,
            mtu: args.mtu,
            local: args.local,
            remote: args.remote,
        })
        .map_err(|e| format!("tunnel {}: {e}", args.ifname))?;
    dp.install_sa(
        tunnel,
        SaSpec {
            spi_in: args.spi_in,
            spi_out: args.spi_out,
            suite: args.suite,
            keys_in: args.keys_in,
            keys_out: args.keys_out,
            esn: args.esn,
            replay_window: args.replay_window,
            lifetime: Lifetime::UNLIMITED,
            encap: args.encap,
        },
    )
    .map_err(|e| format!("install SA: {e}"))?;
    println!("features {}", dp.features());
    println!(
        "ready {} suite={} encap={:?}",
        args.ifname, args.suite, args.encap
    );
    if let Some(path) = &args.ready_file {
        std::fs::write(path, format!("{}\n", dp.features())).map_err(|e| format!("{path}: {e}"))?;
    }
    for signal in signals.forever() {
        match signal {
            SIGUSR1 => print_counters(&dp),
            _ => break,
        }
    }
    print_counters(&dp);
    dp.remove_tunnel(tunnel);
    dp.shutdown();
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("xrsec-esp-static: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xrsec-esp-static: {e}");
            ExitCode::FAILURE
        }
    }
}
