//! IKEv2 (RFC 7296) for xrsec: the wire format ([`wire`]) and the sans-IO
//! negotiator that drives IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA and
//! INFORMATIONAL exchanges between two peers.
//!
//! Nothing here owns a socket, a clock or a random source: time and
//! randomness are passed in, so every exchange and every failure can be run in
//! memory, deterministically. [`Endpoint`] is the driver; its module doc says
//! when to call what.

#![forbid(unsafe_code)]

mod auth;
pub mod config;
mod endpoint;
pub mod event;
mod natd;
mod proposal;
mod sa;
pub mod wire;

pub use config::{
    from_tunnel, from_tunnel_with_pki, ConfigError, Dpd, Identity, IdentityMatch,
    IkeProposalConfig, Ipv4Prefix, LoadedTrustpoint, LocalAuth, RemoteAuth, TunnelConfig, TunnelId,
};
pub use endpoint::{Endpoint, EndpointOptions, LogLine, Transmit};
pub use event::{
    ChildInfo, ChildSa, DownReason, Event, FailureReason, IkeKeyExport, IkeSaId, IkeSaInfo,
    Oversized, SaKind, SessionInfo,
};
pub use natd::NatStatus;
pub use proposal::IkeAlgorithms;
/// The RNG traits [`Endpoint`] takes, at the version it takes them.
pub use rand_core;
/// The certificate and key types [`LocalAuth`] and [`RemoteAuth`] hold.
pub use xrsec_pki;
