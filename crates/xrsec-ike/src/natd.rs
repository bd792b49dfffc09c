//! NAT detection (RFC 7296 2.23): NAT_DETECTION_SOURCE_IP and
//! NAT_DETECTION_DESTINATION_IP carry SHA-1(SPIi | SPIr | IP | Port) of the
//! sender's and the receiver's address as the sender sees them; SPIr is zero
//! in the IKE_SA_INIT request.
//!
//! The receiver recomputes both from the addresses it sees: a source hash that
//! matches none of the received ones means the sender is behind a NAT; a
//! destination hash that does not match means the receiver is. strongSwan with
//! kernel-libipsec sends a deliberately wrong source hash to force UDP
//! encapsulation (LAB.md), which this reads as "the peer is behind a NAT",
//! exactly as intended.

use std::net::{IpAddr, SocketAddr};

use sha1::{Digest, Sha1};

/// One NAT_DETECTION_*_IP hash.
pub(crate) fn natd_hash(spi_i: u64, spi_r: u64, addr: SocketAddr) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(spi_i.to_be_bytes());
    h.update(spi_r.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(a) => h.update(a.octets()),
        IpAddr::V6(a) => h.update(a.octets()),
    }
    h.update(addr.port().to_be_bytes());
    h.finalize().into()
}

/// What NAT detection found for one IKE SA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NatStatus {
    /// We are behind a NAT (the peer saw another address for us).
    pub local_behind_nat: bool,
    /// The peer is behind a NAT (or pretends to be, as strongSwan does to
    /// force UDP encapsulation).
    pub remote_behind_nat: bool,
}

impl NatStatus {
    /// Whether IKE moves to port 4500 and ESP travels in UDP (RFC 3948).
    pub fn any(self) -> bool {
        self.local_behind_nat || self.remote_behind_nat
    }
}

/// Checks received hashes. `None` when the peer sent no NAT detection
/// notifies (RFC 7296 2.23: then no NAT traversal is done).
pub(crate) fn detect(
    spi_i: u64,
    spi_r: u64,
    source_hashes: &[&[u8]],
    destination_hashes: &[&[u8]],
    peer: SocketAddr,
    us: SocketAddr,
) -> Option<NatStatus> {
    if source_hashes.is_empty() && destination_hashes.is_empty() {
        return None;
    }
    let peer_hash = natd_hash(spi_i, spi_r, peer);
    let our_hash = natd_hash(spi_i, spi_r, us);
    // RFC 7296 2.23: several source notifies may come from a multihomed
    // peer; a match with any of them means no NAT on its side.
    let remote_behind_nat =
        !source_hashes.is_empty() && !source_hashes.contains(&peer_hash.as_slice());
    let local_behind_nat =
        !destination_hashes.is_empty() && !destination_hashes.contains(&our_hash.as_slice());
    Some(NatStatus {
        local_behind_nat,
        remote_behind_nat,
    })
}

/// With `force_udp_encap` we send a source hash no peer can match, i.e. we
/// claim to be behind a NAT: count it as such on our side too, so that as
/// initiator we move to port 4500 ourselves (the peer's genuine hashes
/// match) and our Child SAs use UDP as the peer's do.
pub(crate) fn forced(mut nat: NatStatus, force_udp_encap: bool) -> NatStatus {
    if force_udp_encap {
        nat.local_behind_nat = true;
    }
    nat
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_covers_spis_address_and_port() {
        let a: SocketAddr = "10.99.0.1:500".parse().unwrap();
        // SHA-1 over 8 + 8 + 4 + 2 bytes, recomputed by hand.
        let mut input = Vec::new();
        input.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        input.extend_from_slice(&[0; 8]);
        input.extend_from_slice(&[10, 99, 0, 1, 0x01, 0xf4]);
        let want: [u8; 20] = Sha1::digest(&input).into();
        assert_eq!(natd_hash(0x0102_0304_0506_0708, 0, a), want);
        assert_ne!(
            natd_hash(1, 0, a),
            natd_hash(1, 0, "10.99.0.1:4500".parse().unwrap())
        );
    }

    #[test]
    fn a_rewritten_source_shows_the_sender_behind_a_nat() {
        let inside: SocketAddr = "10.0.0.1:500".parse().unwrap();
        let outside: SocketAddr = "203.0.113.5:40500".parse().unwrap();
        let responder: SocketAddr = "10.99.0.2:500".parse().unwrap();
        let src = natd_hash(5, 0, inside);
        let dst = natd_hash(5, 0, responder);
        let seen = detect(5, 0, &[&src], &[&dst], outside, responder).unwrap();
        assert_eq!(
            seen,
            NatStatus {
                local_behind_nat: false,
                remote_behind_nat: true
            }
        );
        assert!(seen.any());
        let direct = detect(5, 0, &[&src], &[&dst], inside, responder).unwrap();
        assert!(!direct.any());
        assert_eq!(detect(5, 0, &[], &[], inside, responder), None);
    }
}
