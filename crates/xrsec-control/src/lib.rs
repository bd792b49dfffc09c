//! The control protocol between `xrsecd` and `xrsec`.
//!
//! One request per connection on a Unix stream socket (default
//! [`DEFAULT_CONTROL_PATH`], mode 0600): the client writes one JSON line
//! ([`Request`]), the daemon answers one JSON line ([`Response`]) and closes.
//! The status types carry typed values (addresses, SPIs, seconds), never
//! preformatted text, so that `--json` prints the same data the `show`
//! layouts ([`show`]) are made of. No type here holds a key: secrets never
//! cross the control socket.

#![forbid(unsafe_code)]

pub mod client;
pub mod show;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

/// Where `xrsecd` listens and `xrsec` connects unless told otherwise.
pub const DEFAULT_CONTROL_PATH: &str = "/run/xrsec/xrsecd.sock";

/// Longest request line the daemon reads (bytes); anything longer is refused.
pub const MAX_REQUEST_LEN: usize = 4096;

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// Everything the `show` commands print.
    Status,
    /// The running configuration, secrets redacted.
    RunningConfig,
    /// Delete an IKE SA (all of them when `id` is `None`) and renegotiate.
    ClearIkeSa {
        /// `IKE SA ID` of `show ikev2 session`.
        id: Option<u64>,
    },
    /// Delete the Child SAs of one tunnel (all when `None`) and renegotiate.
    ClearIpsecSa {
        /// `tunnel-ipN`.
        interface: Option<String>,
    },
}

/// What the daemon answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    /// Answer to [`Request::Status`].
    Status(Status),
    /// Answer to [`Request::RunningConfig`].
    RunningConfig {
        /// Rendered running-config, keys replaced by `<redacted>`.
        text: String,
    },
    /// Answer to the `clear` requests.
    Cleared {
        /// How many SAs were deleted.
        count: usize,
        /// A human sentence ("deleted IKE SA 1 (tunnel-ip1); renegotiating").
        message: String,
    },
    /// The request could not be served.
    Error {
        /// What was wrong.
        message: String,
    },
}

/// The daemon's whole state as `show` sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// About the daemon itself.
    pub daemon: DaemonInfo,
    /// One entry per `interface tunnel-ipN` (shut-down ones included).
    pub tunnels: Vec<TunnelStatus>,
    /// One per peer with at least one IKE SA (established or negotiating).
    pub sessions: Vec<IkeSession>,
}

/// About the running daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    /// Crate version of xrsecd.
    pub version: String,
    /// Process id.
    pub pid: u32,
    /// The `--config` file.
    pub config_path: String,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Unix time of this snapshot (for the time stamp line of `show ipsec sa`).
    pub now_unix: u64,
}

/// Where a tunnel stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TunnelState {
    /// `shutdown` in the config.
    AdminDown,
    /// An IKE SA is being negotiated.
    Negotiating,
    /// A Child SA carries traffic.
    Up,
    /// Nothing established; waiting to retry.
    Down,
}

/// One `interface tunnel-ipN`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TunnelStatus {
    /// `tunnel-ipN`.
    pub name: String,
    /// Linux ifindex of the TUN (0 when not created).
    pub ifindex: u32,
    /// The interface's address and prefix length.
    pub address: Option<(Ipv4Addr, u8)>,
    /// The interface MTU in use.
    pub mtu: u16,
    /// `tunnel source` (resolved).
    pub local: Option<Ipv4Addr>,
    /// `tunnel destination`.
    pub remote: Option<Ipv4Addr>,
    /// Current state.
    pub state: TunnelState,
    /// Why the last negotiation failed or the last SA went down (a sentence
    /// naming the cause: no answer, NO_PROPOSAL_CHOSEN with both sides'
    /// proposals, AUTHENTICATION_FAILED, the peer's notify).
    pub last_error: Option<String>,
    /// Seconds since that happened.
    pub last_error_secs_ago: Option<u64>,
    /// Seconds until the next initiation attempt, when one is scheduled.
    pub retry_in_secs: Option<u64>,
    /// Failed attempts in a row.
    pub failures: u32,
    /// The Child SA carrying the tunnel's traffic, when there is one.
    pub ipsec: Option<IpsecSa>,
}

/// One Child SA as `show ipsec sa` prints it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IpsecSa {
    /// `tunnel-ipN`.
    pub interface: String,
    /// `Interface handle` (the TUN's ifindex).
    pub interface_handle: u32,
    /// `SA id` / `SA-Id`: daemon-wide number of this Child SA.
    pub sa_id: u32,
    /// `Mode`: always "Tunnel".
    pub mode: String,
    /// ESP directly over IP (false) or in UDP 4500 (true).
    pub udp_encap: bool,
    /// Local and remote outer addresses.
    pub local: SocketAddr,
    /// The peer.
    pub remote: SocketAddr,
    /// The inbound half.
    pub inbound: SaHalf,
    /// The outbound half.
    pub outbound: SaHalf,
}

/// One direction of a Child SA.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaHalf {
    /// SPI.
    pub spi: u32,
    /// `Protocol`: "ESP".
    pub protocol: String,
    /// `Encrypt Algorithm` as IOS-XR names it (`ESP_192_AES`, `ESP_AES_GCM_256`...).
    pub encrypt_algorithm: String,
    /// `Auth Algorithm` (`HMAC_SHA_256`, or `None` with GCM).
    pub auth_algorithm: String,
    /// Seconds until the SA's soft lifetime (rekey) expires.
    pub rekey_after_secs: u64,
    /// Seconds until its hard lifetime.
    pub expires_after_secs: u64,
    /// Packets counted in this direction.
    pub packets: u64,
    /// Bytes (inner packets) counted in this direction.
    pub bytes: u64,
    /// Dropped packets by reason (only reasons with a non-zero count).
    pub drops: BTreeMap<String, u64>,
}

/// IKE SAs with one peer (`Session ID` of `show ikev2 session`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkeSession {
    /// `Session ID`.
    pub session_id: u64,
    /// `Status`: "UP-ACTIVE" (a Child SA is up), "UP-IDLE" (IKE SA only),
    /// "UP-NEGOTIATING".
    pub status: String,
    /// The tunnel interface.
    pub tunnel: String,
    /// The IKE SAs (`IKE Count` is their number).
    pub ike_sas: Vec<IkeSa>,
}

impl IkeSession {
    /// `Child Count`.
    pub fn child_count(&self) -> usize {
        self.ike_sas.iter().map(|s| s.children.len()).sum()
    }
}

/// One IKE SA.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkeSa {
    /// `IKE SA ID`.
    pub id: u64,
    /// `Local`: address/port.
    pub local: SocketAddr,
    /// `Remote`.
    pub remote: SocketAddr,
    /// Negotiation state: "READY", "CONNECTING", "DELETING".
    pub state: String,
    /// `Status(Description)`: "READY (Negotiation done)", "CONNECTING (IKE_SA_INIT sent)"...
    pub state_description: String,
    /// `Role`: "Initiator" or "Responder".
    pub role: String,
    /// `Encryption/Keysize`: "AES-CBC", 256.
    pub encryption: String,
    /// Key size in bits (0 until negotiated).
    pub keysize: u16,
    /// `PRF/Hash/DH Group`: PRF name ("SHA256").
    pub prf: String,
    /// Integrity name ("SHA256", "None" with AEAD).
    pub hash: String,
    /// DH group number (0 until negotiated).
    pub dh_group: u16,
    /// `Authentication(Sign/Verify)`: "PSK", "RSA".
    pub auth_sign: String,
    /// The peer's method.
    pub auth_verify: String,
    /// `Life/Active Time(sec)`: configured lifetime.
    pub lifetime_secs: u64,
    /// Seconds since established (0 while negotiating).
    pub active_secs: u64,
    /// `Local SPI`.
    pub local_spi: u64,
    /// `Remote SPI` (0 until the responder answered).
    pub remote_spi: u64,
    /// `Local ID`.
    pub local_id: String,
    /// `Remote ID` (empty until authenticated).
    pub remote_id: String,
    /// NAT detected / UDP encapsulation in use.
    pub nat_t: bool,
    /// The Child SAs.
    pub children: Vec<ChildSaStatus>,
}

/// One Child SA under an IKE SA.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildSaStatus {
    /// `Local Selector`: "192.0.2.1/0 - 192.0.2.1/65535" style ranges.
    pub local_selectors: Vec<String>,
    /// `Remote Selector`.
    pub remote_selectors: Vec<String>,
    /// `ESP SPI IN`.
    pub spi_in: u32,
    /// `ESP SPI OUT`.
    pub spi_out: u32,
    /// `Encryption`: "AES-CBC", "AES-GCM".
    pub encryption: String,
    /// `Keysize`.
    pub keysize: u16,
    /// `ESP HMAC`: "SHA256", "None".
    pub esp_hmac: String,
}

/// `show ikev2 summary`, computed from the sessions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// All IKE SAs.
    pub total: Counts,
    /// IKE SAs we initiated.
    pub outgoing: Counts,
    /// IKE SAs the peer initiated.
    pub incoming: Counts,
}

/// Active (READY) and negotiating IKE SAs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// READY.
    pub active: u64,
    /// Anything else.
    pub negotiating: u64,
}

impl Counts {
    /// Active plus negotiating.
    pub fn total(self) -> u64 {
        self.active + self.negotiating
    }
}

impl Status {
    /// The tunnel named `name` (`tunnel-ip1`; case does not matter, as on the
    /// router's command line).
    pub fn tunnel(&self, name: &str) -> Option<&TunnelStatus> {
        self.tunnels
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }

    /// The numbers of `show ikev2 summary`.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for sa in self.sessions.iter().flat_map(|x| &x.ike_sas) {
            let side = if sa.role == "Initiator" {
                &mut s.outgoing
            } else {
                &mut s.incoming
            };
            if sa.state == "READY" {
                s.total.active += 1;
                side.active += 1;
            } else {
                s.total.negotiating += 1;
                side.negotiating += 1;
            }
        }
        s
    }
}

/// Encodes a message as one line (the protocol's framing).
pub fn encode_line<T: Serialize>(msg: &T) -> String {
    let mut s = serde_json::to_string(msg).unwrap_or_else(|e| {
        // Our own types always serialize; keep the protocol answering anyway.
        format!(r#"{{"response":"error","message":"cannot encode answer: {e}"}}"#)
    });
    s.push('\n');
    s
}

/// Decodes a request line, naming what was wrong with it.
pub fn decode_request(line: &str) -> Result<Request, String> {
    if line.len() > MAX_REQUEST_LEN {
        return Err(format!(
            "request of {} bytes is longer than the {MAX_REQUEST_LEN} allowed",
            line.len()
        ));
    }
    serde_json::from_str(line.trim_end()).map_err(|e| format!("invalid request: {e}"))
}
