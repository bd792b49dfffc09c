//! The control socket's view of the daemon: typed values for `show`, built
//! from the endpoint's sessions, the tunnels and the dataplane counters.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use xrsec_control::{
    ChildSaStatus, DaemonInfo, IkeSa, IkeSession, IpsecSa, SaHalf, Status, TunnelState,
    TunnelStatus,
};
use xrsec_esp::{Direction, DropReason};
use xrsec_ike::wire::TrafficSelector;
use xrsec_ike::{Identity, SessionInfo};

use crate::daemon::Daemon;
use crate::names;
use crate::tunnels::{Installed, Tunnel};

pub(crate) fn build(d: &Daemon, now: Instant) -> Status {
    let sessions_info = d.endpoint.sessions();
    let counters: Vec<_> = d.dataplanes.values().flat_map(|dp| dp.counters()).collect();
    let now_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_secs());

    let mut tunnels = Vec::new();
    let mut sessions = Vec::new();
    for (index, t) in d.tunnels.iter().enumerate() {
        let mine: Vec<&SessionInfo> = sessions_info
            .iter()
            .filter(|s| t.ike.as_ref().is_some_and(|c| c.id == s.tunnel))
            .collect();
        let ipsec = t.current().map(|c| {
            let child = sessions_info
                .iter()
                .flat_map(|s| s.children.iter())
                .find(|x| x.spi_in == c.spi_in);
            ipsec_sa(t, c, child, &counters, now)
        });
        let state = if t.admin_down {
            TunnelState::AdminDown
        } else if ipsec.is_some() {
            TunnelState::Up
        } else if mine.iter().any(|s| s.state != "DELETING") {
            TunnelState::Negotiating
        } else {
            TunnelState::Down
        };
        tunnels.push(TunnelStatus {
            name: t.name.clone(),
            ifindex: t.ifindex,
            address: t.address,
            mtu: interface_mtu(&t.name).or(t.mtu).unwrap_or(0),
            local: t.local,
            remote: t.remote,
            state,
            last_error: t.last_error.as_ref().map(|(e, _)| e.clone()),
            last_error_secs_ago: t
                .last_error
                .as_ref()
                .map(|(_, at)| now.saturating_duration_since(*at).as_secs()),
            retry_in_secs: t
                .retry_at
                .map(|r| r.saturating_duration_since(now).as_secs()),
            failures: t.failures,
            ipsec,
        });
        if mine.is_empty() {
            continue;
        }
        let ike_sas: Vec<IkeSa> = mine.iter().map(|s| ike_sa(s, now)).collect();
        let status = if ike_sas
            .iter()
            .any(|s| s.state == "READY" && !s.children.is_empty())
        {
            "UP-ACTIVE"
        } else if ike_sas.iter().any(|s| s.state == "READY") {
            "UP-IDLE"
        } else {
            "NEGOTIATING"
        };
        sessions.push(IkeSession {
            session_id: index as u64 + 1,
            status: status.into(),
            tunnel: t.name.clone(),
            ike_sas,
        });
    }

    Status {
        daemon: DaemonInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            config_path: d.args.config.display().to_string(),
            uptime_secs: now.saturating_duration_since(d.started).as_secs(),
            now_unix,
        },
        tunnels,
        sessions,
    }
}

fn selector(ts: &TrafficSelector) -> String {
    format!(
        "{}/{} - {}/{}",
        ts.start, ts.start_port, ts.end, ts.end_port
    )
}

fn identity(id: &Identity) -> String {
    match id {
        Identity::Ipv4(a) => a.to_string(),
        Identity::Fqdn(n) => n.clone(),
        other => other.to_string(),
    }
}

fn ike_sa(s: &SessionInfo, now: Instant) -> IkeSa {
    let (local_spi, remote_spi) = match s.role {
        xrsec_crypto::Role::Initiator => (s.spi_i, s.spi_r),
        _ => (s.spi_r, s.spi_i),
    };
    let alg = s.algorithms;
    IkeSa {
        id: s.id.0,
        local: s.local,
        remote: s.remote,
        state: s.state.into(),
        state_description: s.state_description.into(),
        role: match s.role {
            xrsec_crypto::Role::Initiator => "Initiator",
            _ => "Responder",
        }
        .into(),
        encryption: alg.map_or("-", |a| names::cipher(a.encr)).into(),
        keysize: alg.map_or(0, |a| a.encr.key_bits()),
        prf: alg.map_or("-", |a| names::prf(a.prf)).into(),
        hash: alg.map_or("-", |a| names::integ(a.integ)).into(),
        dh_group: alg.map_or(0, |a| names::dh(a.dh)),
        auth_sign: s.local_auth.into(),
        auth_verify: s.remote_auth.into(),
        lifetime_secs: s.lifetime.as_secs(),
        active_secs: s
            .established_at
            .map_or(0, |at| now.saturating_duration_since(at).as_secs()),
        local_spi,
        remote_spi,
        local_id: identity(&s.local_identity),
        remote_id: s.remote_identity.as_ref().map(identity).unwrap_or_default(),
        nat_t: s.nat.local_behind_nat || s.nat.remote_behind_nat,
        children: s
            .children
            .iter()
            .map(|c| ChildSaStatus {
                local_selectors: c.local_ts.iter().map(selector).collect(),
                remote_selectors: c.remote_ts.iter().map(selector).collect(),
                spi_in: c.spi_in,
                spi_out: c.spi_out,
                encryption: names::cipher(c.suite.encr()).into(),
                keysize: c.suite.encr().key_bits(),
                esp_hmac: names::integ(c.suite.integ()).into(),
            })
            .collect(),
    }
}

fn ipsec_sa(
    t: &Tunnel,
    c: &Installed,
    child: Option<&xrsec_ike::ChildInfo>,
    counters: &[xrsec_esp::SaCounters],
    now: Instant,
) -> IpsecSa {
    // The negotiator's timers: the rekey starts at the soft lifetime (with
    // its jitter), the SA is gone at the hard one. A rekey under way shows
    // 0 s to go.
    let left = match child {
        Some(x) => x.expire_at.saturating_duration_since(now),
        None => c
            .lifetime
            .saturating_sub(now.saturating_duration_since(c.installed_at)),
    };
    let rekey_in = child.map_or(left, |x| {
        x.rekey_at
            .map_or(Duration::ZERO, |r| r.saturating_duration_since(now))
    });
    let half = |spi: u32, dir: Direction| {
        let snap = counters
            .iter()
            .find(|k| k.spi == spi && k.direction == dir)
            .map(|k| k.counts);
        let mut drops = BTreeMap::new();
        if let Some(s) = &snap {
            for r in DropReason::ALL {
                let n = s.dropped(r);
                if n > 0 {
                    drops.insert(r.as_str().to_string(), n);
                }
            }
        }
        SaHalf {
            spi,
            protocol: "ESP".into(),
            encrypt_algorithm: names::esp_encrypt(c.suite.encr()),
            auth_algorithm: names::esp_auth(c.suite.integ()).into(),
            rekey_after_secs: rekey_in.as_secs(),
            expires_after_secs: left.as_secs(),
            packets: snap.as_ref().map_or(0, |s| s.packets),
            bytes: snap.as_ref().map_or(0, |s| s.bytes),
            drops,
        }
    };
    IpsecSa {
        interface: t.name.clone(),
        interface_handle: t.ifindex,
        sa_id: c.sa_id,
        mode: "Tunnel".into(),
        udp_encap: c.udp_encap,
        local: c.local,
        remote: c.remote,
        inbound: half(c.spi_in, Direction::Inbound),
        outbound: half(c.spi_out, Direction::Outbound),
    }
}

/// The MTU the interface has now (the dataplane sets it from the suite
/// when the configuration does not).
fn interface_mtu(name: &str) -> Option<u16> {
    std::fs::read_to_string(format!("/sys/class/net/{name}/mtu"))
        .ok()?
        .trim()
        .parse()
        .ok()
}
