//! Traffic Selector payloads TSi and TSr (RFC 7296 3.13).
//!
//! Only the address-range types of RFC 7296 are kept: TS_IPV4_ADDR_RANGE (7,
//! 16 bytes) and TS_IPV6_ADDR_RANGE (8, 40 bytes). A selector of any other
//! type (the Fibre Channel ones of RFC 4595, TS_SECLABEL of RFC 9478, ...) is
//! skipped: it is counted in Number of TSs and its length is checked, but it
//! does not appear in [`TsPayload::selectors`]. Narrowing then works on the
//! address ranges alone, and a payload made only of unknown types parses to
//! an empty list, which the negotiator answers with TS_UNACCEPTABLE. Emitting
//! such a payload is therefore not byte-exact; every other one is.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::reader::{emit_len_u8, Reader};
use super::WireError;

const TS_IPV4_ADDR_RANGE: u8 = 7;
const TS_IPV6_ADDR_RANGE: u8 = 8;
const IPV4_SELECTOR_LEN: usize = 16;
const IPV6_SELECTOR_LEN: usize = 40;
/// Type, IP protocol and Selector Length: enough to skip any selector.
const SELECTOR_HEADER_LEN: usize = 4;

/// One address range with a protocol and a port range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    /// IP protocol number; 0 means any.
    pub ip_protocol: u8,
    pub start_port: u16,
    pub end_port: u16,
    /// Start and end are of the same family. A mixed pair, which no parse
    /// produces, is emitted as an IPv6 range with the IPv4 end mapped
    /// (`::ffff:a.b.c.d`).
    pub start: IpAddr,
    pub end: IpAddr,
}

impl TrafficSelector {
    /// All IPv4 traffic: protocol 0, ports 0-65535, 0.0.0.0-255.255.255.255.
    pub fn ipv4_any() -> Self {
        TrafficSelector {
            ip_protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            end: IpAddr::V4(Ipv4Addr::BROADCAST),
        }
    }

    /// All IPv6 traffic: protocol 0, ports 0-65535, :: - ffff:...:ffff.
    pub fn ipv6_any() -> Self {
        TrafficSelector {
            ip_protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            end: IpAddr::V6(Ipv6Addr::from(u128::MAX)),
        }
    }

    /// One IPv4 prefix, all protocols and ports.
    pub fn ipv4_prefix(network: Ipv4Addr, prefix_len: u8) -> Self {
        let prefix_len = u32::from(prefix_len.min(32));
        let mask = u32::MAX.checked_shl(32 - prefix_len).unwrap_or(0);
        let start = u32::from(network) & mask;
        TrafficSelector {
            ip_protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: IpAddr::V4(Ipv4Addr::from(start)),
            end: IpAddr::V4(Ipv4Addr::from(start | !mask)),
        }
    }

    fn is_ipv4(&self) -> bool {
        self.start.is_ipv4() && self.end.is_ipv4()
    }

    pub fn buffer_len(&self) -> usize {
        if self.is_ipv4() {
            IPV4_SELECTOR_LEN
        } else {
            IPV6_SELECTOR_LEN
        }
    }

    /// Reads one selector; `None` for a type this module does not keep.
    fn parse(r: &mut Reader<'_>) -> Result<Option<TrafficSelector>, WireError> {
        let ts_type = r.u8("traffic selector")?;
        let ip_protocol = r.u8("traffic selector")?;
        let length = usize::from(r.u16("traffic selector")?);
        if length < SELECTOR_HEADER_LEN {
            return Err(WireError::BadLength {
                what: "traffic selector length",
            });
        }
        let mut body = r.sub(length - SELECTOR_HEADER_LEN, "traffic selector length")?;
        let address_len = match ts_type {
            TS_IPV4_ADDR_RANGE => 4,
            TS_IPV6_ADDR_RANGE => 16,
            _ => return Ok(None),
        };
        // RFC 7296 3.13.1: the Selector Length of an address range is fixed by
        // its type (16 for IPv4, 40 for IPv6).
        if body.left() != 4 + 2 * address_len {
            return Err(WireError::InvalidSelector);
        }
        let start_port = body.u16("traffic selector ports")?;
        let end_port = body.u16("traffic selector ports")?;
        let (start, end) = if ts_type == TS_IPV4_ADDR_RANGE {
            let start = Ipv4Addr::from(body.array::<4>("traffic selector address")?);
            let end = Ipv4Addr::from(body.array::<4>("traffic selector address")?);
            (IpAddr::V4(start), IpAddr::V4(end))
        } else {
            let start = Ipv6Addr::from(body.array::<16>("traffic selector address")?);
            let end = Ipv6Addr::from(body.array::<16>("traffic selector address")?);
            (IpAddr::V6(start), IpAddr::V6(end))
        };
        Ok(Some(TrafficSelector {
            ip_protocol,
            start_port,
            end_port,
            start,
            end,
        }))
    }

    fn emit(&self, out: &mut Vec<u8>) {
        out.push(if self.is_ipv4() {
            TS_IPV4_ADDR_RANGE
        } else {
            TS_IPV6_ADDR_RANGE
        });
        out.push(self.ip_protocol);
        out.extend_from_slice(&(self.buffer_len() as u16).to_be_bytes());
        out.extend_from_slice(&self.start_port.to_be_bytes());
        out.extend_from_slice(&self.end_port.to_be_bytes());
        for address in [self.start, self.end] {
            match (self.is_ipv4(), address) {
                (true, IpAddr::V4(v4)) => out.extend_from_slice(&v4.octets()),
                (_, IpAddr::V4(v4)) => out.extend_from_slice(&v4.to_ipv6_mapped().octets()),
                (_, IpAddr::V6(v6)) => out.extend_from_slice(&v6.octets()),
            }
        }
    }
}

/// The body of a TSi or TSr payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsPayload {
    pub selectors: Vec<TrafficSelector>,
}

impl TsPayload {
    pub fn parse(body: &[u8]) -> Result<TsPayload, WireError> {
        let mut r = Reader::new(body);
        let count = usize::from(r.u8("Number of TSs")?);
        r.skip_reserved(3, "TS payload header")?;
        // Every selector takes at least its 4-byte header.
        if count * SELECTOR_HEADER_LEN > r.left() {
            return Err(WireError::Malformed {
                what: "Number of TSs",
            });
        }
        let mut selectors = Vec::with_capacity(count);
        for _ in 0..count {
            if let Some(selector) = TrafficSelector::parse(&mut r)? {
                selectors.push(selector);
            }
        }
        r.finish("last traffic selector")?;
        Ok(TsPayload { selectors })
    }

    pub fn buffer_len(&self) -> usize {
        4 + self
            .selectors
            .iter()
            .map(TrafficSelector::buffer_len)
            .sum::<usize>()
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(emit_len_u8(self.selectors.len(), "Number of TSs"));
        out.extend_from_slice(&[0; 3]);
        for selector in &self.selectors {
            selector.emit(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static TS_BODY: [u8; 60] = [
        0x02, 0x00, 0x00, 0x00, // two selectors
        0x07, 0x00, 0x00, 0x10, 0x00, 0x00, 0xff, 0xff, // IPv4, any protocol, 0-65535
        0x0a, 0x01, 0x00, 0x00, 0x0a, 0x01, 0x00, 0xff, // 10.1.0.0-10.1.0.255
        0x08, 0x11, 0x00, 0x28, 0x01, 0xf4, 0x01, 0xf4, // IPv6, UDP, 500-500
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // 2001:db8::1
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // 2001:db8::2
    ];

    fn ts_repr() -> TsPayload {
        TsPayload {
            selectors: vec![
                TrafficSelector::ipv4_prefix(Ipv4Addr::new(10, 1, 0, 0), 24),
                TrafficSelector {
                    ip_protocol: 17,
                    start_port: 500,
                    end_port: 500,
                    start: "2001:db8::1".parse().unwrap(),
                    end: "2001:db8::2".parse().unwrap(),
                },
            ],
        }
    }

    #[test]
    fn test_parse() {
        assert_eq!(TsPayload::parse(&TS_BODY), Ok(ts_repr()));
    }

    #[test]
    fn test_emit() {
        let mut out = Vec::new();
        ts_repr().emit(&mut out);
        assert_eq!(out, TS_BODY);
        assert_eq!(ts_repr().buffer_len(), TS_BODY.len());
    }

    #[test]
    fn ipv4_any_covers_every_address_port_and_protocol() {
        let any = TrafficSelector::ipv4_any();
        assert_eq!(
            (any.ip_protocol, any.start_port, any.end_port),
            (0, 0, 65535)
        );
        assert_eq!(any.start, IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)));
        assert_eq!(any.end, IpAddr::V4(Ipv4Addr::new(255, 255, 255, 255)));
        assert_eq!(
            TrafficSelector::ipv4_prefix(Ipv4Addr::new(1, 2, 3, 4), 0),
            any
        );
    }

    #[test]
    fn rejects_ipv4_selector_with_ipv6_length() {
        let mut body = TS_BODY;
        body[7] = 0x28;
        assert_eq!(TsPayload::parse(&body), Err(WireError::InvalidSelector));
    }

    #[test]
    fn skips_selectors_of_unknown_type() {
        let mut body = TS_BODY.to_vec();
        body[0] = 3;
        body.extend_from_slice(&[10, 0, 0, 8, 0xde, 0xad, 0xbe, 0xef]); // TS_SECLABEL-like
        assert_eq!(TsPayload::parse(&body), Ok(ts_repr()));
    }

    #[test]
    fn rejects_selector_count_beyond_the_payload() {
        let mut body = TS_BODY;
        body[0] = 3;
        assert!(TsPayload::parse(&body).is_err());
        body[0] = 1;
        assert_eq!(
            TsPayload::parse(&body),
            Err(WireError::TrailingBytes {
                what: "last traffic selector"
            })
        );
    }
}
