//! The Security Association payload (RFC 7296 3.3): proposals, their
//! transforms, and the transforms' attributes.
//!
//! Proposals and transforms are substructures with their own Last Substruc
//! and Length fields; each is read through a sub-reader of exactly its
//! length, so a wrong inner length cannot reach the next substructure.
//! Only the Key Length attribute (type 14, TV format) is understood; any other
//! attribute sets [`Transform::unknown_attributes`] so the proposal selector
//! can pass the transform over (RFC 7296 3.3.6).

use super::reader::{emit_len_u16, emit_len_u8, Reader};
use super::WireError;

const LAST_PROPOSAL: u8 = 0;
const MORE_PROPOSALS: u8 = 2;
const LAST_TRANSFORM: u8 = 0;
const MORE_TRANSFORMS: u8 = 3;
const PROPOSAL_FIXED_LEN: usize = 8;
const TRANSFORM_FIXED_LEN: usize = 8;
const ATTRIBUTE_FORMAT_TV: u16 = 0x8000;
const ATTRIBUTE_KEY_LENGTH: u16 = 14;
/// What an emitted transform carries when it was parsed with an attribute
/// this module does not understand: a TV attribute of the first private-use
/// type (IANA "Transform Attribute Types" 16384-32767), so that the meaning
/// "this transform has an attribute you may not understand" survives a
/// parse/emit round trip. A transform built locally never sets the flag.
const PLACEHOLDER_ATTRIBUTE: u16 = 16384;

/// Protocol ID of a proposal (RFC 7296 3.3.1).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolId {
    Ike,
    Ah,
    Esp,
    /// A value without a name here (never 1, 2 or 3).
    Other(u8),
}

impl From<u8> for ProtocolId {
    fn from(value: u8) -> Self {
        match value {
            1 => ProtocolId::Ike,
            2 => ProtocolId::Ah,
            3 => ProtocolId::Esp,
            other => ProtocolId::Other(other),
        }
    }
}

impl From<ProtocolId> for u8 {
    fn from(value: ProtocolId) -> u8 {
        match value {
            ProtocolId::Ike => 1,
            ProtocolId::Ah => 2,
            ProtocolId::Esp => 3,
            ProtocolId::Other(other) => other,
        }
    }
}

/// Transform Type (RFC 7296 3.3.2).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransformType {
    Encr,
    Prf,
    Integ,
    /// Diffie-Hellman group (renamed "Key Exchange Method" by RFC 9370).
    Dh,
    Esn,
    /// A value without a name here (never 1 to 5).
    Other(u8),
}

impl From<u8> for TransformType {
    fn from(value: u8) -> Self {
        match value {
            1 => TransformType::Encr,
            2 => TransformType::Prf,
            3 => TransformType::Integ,
            4 => TransformType::Dh,
            5 => TransformType::Esn,
            other => TransformType::Other(other),
        }
    }
}

impl From<TransformType> for u8 {
    fn from(value: TransformType) -> u8 {
        match value {
            TransformType::Encr => 1,
            TransformType::Prf => 2,
            TransformType::Integ => 3,
            TransformType::Dh => 4,
            TransformType::Esn => 5,
            TransformType::Other(other) => other,
        }
    }
}

/// One transform: an algorithm by IANA number, with its key length if the
/// algorithm has a variable one (AES-CBC, AES-GCM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transform {
    pub transform_type: TransformType,
    pub id: u16,
    /// Key Length attribute (type 14), in bits.
    pub key_length: Option<u16>,
    /// RFC 7296 3.3.6: the transform carried an attribute not understood
    /// here; the selector must not choose it.
    pub unknown_attributes: bool,
}

impl Transform {
    /// A transform without attributes.
    pub fn new(transform_type: TransformType, id: u16) -> Transform {
        Transform {
            transform_type,
            id,
            key_length: None,
            unknown_attributes: false,
        }
    }

    /// A transform with a Key Length attribute.
    pub fn with_key_length(transform_type: TransformType, id: u16, bits: u16) -> Transform {
        Transform {
            transform_type,
            id,
            key_length: Some(bits),
            unknown_attributes: false,
        }
    }

    fn parse(r: &mut Reader<'_>, is_last: bool) -> Result<Transform, WireError> {
        let last_substruc = r.u8("transform header")?;
        // RFC 7296 3.3.2: 0 for the last transform of a proposal, 3 before more.
        let expected = if is_last {
            LAST_TRANSFORM
        } else {
            MORE_TRANSFORMS
        };
        if last_substruc != expected {
            return Err(WireError::Malformed {
                what: "transform Last Substruc",
            });
        }
        r.skip_reserved(1, "transform header")?;
        let length = usize::from(r.u16("transform header")?);
        if length < TRANSFORM_FIXED_LEN {
            return Err(WireError::BadLength {
                what: "transform length",
            });
        }
        let mut body = r.sub(length - 4, "transform length")?;
        let transform_type = TransformType::from(body.u8("transform type")?);
        body.skip_reserved(1, "transform type")?;
        let id = body.u16("transform ID")?;
        let mut transform = Transform {
            transform_type,
            id,
            key_length: None,
            unknown_attributes: false,
        };
        while !body.is_empty() {
            let format_and_type = body.u16("transform attribute")?;
            let attribute_type = format_and_type & !ATTRIBUTE_FORMAT_TV;
            if format_and_type & ATTRIBUTE_FORMAT_TV != 0 {
                let value = body.u16("transform attribute value")?;
                if attribute_type == ATTRIBUTE_KEY_LENGTH {
                    if transform.key_length.is_some() {
                        return Err(WireError::Malformed {
                            what: "repeated Key Length attribute",
                        });
                    }
                    transform.key_length = Some(value);
                } else {
                    transform.unknown_attributes = true;
                }
            } else {
                // RFC 7296 3.3.5: Key Length only ever comes in TV format.
                if attribute_type == ATTRIBUTE_KEY_LENGTH {
                    return Err(WireError::Malformed {
                        what: "Key Length attribute in TLV format",
                    });
                }
                let length = usize::from(body.u16("transform attribute length")?);
                body.sub(length, "transform attribute length")?;
                transform.unknown_attributes = true;
            }
        }
        Ok(transform)
    }

    /// Bytes this transform takes on the wire.
    pub fn buffer_len(&self) -> usize {
        TRANSFORM_FIXED_LEN
            + if self.key_length.is_some() { 4 } else { 0 }
            + if self.unknown_attributes { 4 } else { 0 }
    }

    fn emit(&self, is_last: bool, out: &mut Vec<u8>) {
        out.push(if is_last {
            LAST_TRANSFORM
        } else {
            MORE_TRANSFORMS
        });
        out.push(0);
        out.extend_from_slice(&(self.buffer_len() as u16).to_be_bytes());
        out.push(u8::from(self.transform_type));
        out.push(0);
        out.extend_from_slice(&self.id.to_be_bytes());
        if let Some(bits) = self.key_length {
            out.extend_from_slice(&(ATTRIBUTE_FORMAT_TV | ATTRIBUTE_KEY_LENGTH).to_be_bytes());
            out.extend_from_slice(&bits.to_be_bytes());
        }
        if self.unknown_attributes {
            out.extend_from_slice(&(ATTRIBUTE_FORMAT_TV | PLACEHOLDER_ATTRIBUTE).to_be_bytes());
            out.extend_from_slice(&0u16.to_be_bytes());
        }
    }
}

/// One proposal: a protocol, an SPI (empty in IKE_SA_INIT), and the
/// transforms offered, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Proposal Num: 1, 2, ... in a request; the chosen one's in a response.
    pub number: u8,
    pub protocol: ProtocolId,
    /// 0 bytes (initial IKE SA), 4 (ESP, AH) or 8 (IKE SA rekey).
    pub spi: Vec<u8>,
    pub transforms: Vec<Transform>,
}

impl Proposal {
    /// Reads one proposal; the flag says whether its Last Substruc announced
    /// more proposals after it.
    fn parse(r: &mut Reader<'_>) -> Result<(Proposal, bool), WireError> {
        // RFC 7296 3.3.1: 0 for the last proposal of the SA, 2 before more.
        let more = match r.u8("proposal header")? {
            LAST_PROPOSAL => false,
            MORE_PROPOSALS => true,
            _ => {
                return Err(WireError::Malformed {
                    what: "proposal Last Substruc",
                })
            }
        };
        r.skip_reserved(1, "proposal header")?;
        let length = usize::from(r.u16("proposal header")?);
        if length < PROPOSAL_FIXED_LEN {
            return Err(WireError::BadLength {
                what: "proposal length",
            });
        }
        let mut body = r.sub(length - 4, "proposal length")?;
        let number = body.u8("proposal number")?;
        let protocol = ProtocolId::from(body.u8("protocol ID")?);
        let spi_size = usize::from(body.u8("SPI size")?);
        // RFC 7296 3.3.1: zero for the initial IKE SA, else the protocol's SPI
        // size (8 for IKE, 4 for ESP and AH).
        if !matches!(spi_size, 0 | 4 | 8) {
            return Err(WireError::Malformed {
                what: "proposal SPI size",
            });
        }
        let count = usize::from(body.u8("transform count")?);
        let spi = body.take(spi_size, "proposal SPI")?.to_vec();
        // Each transform needs at least 8 bytes, so the count is checked
        // against what is left before anything is reserved for it.
        if count * TRANSFORM_FIXED_LEN > body.left() {
            return Err(WireError::Malformed {
                what: "transform count",
            });
        }
        let mut transforms = Vec::with_capacity(count);
        for i in 0..count {
            transforms.push(Transform::parse(&mut body, i + 1 == count)?);
        }
        body.finish("last transform")?;
        Ok((
            Proposal {
                number,
                protocol,
                spi,
                transforms,
            },
            more,
        ))
    }

    pub fn buffer_len(&self) -> usize {
        PROPOSAL_FIXED_LEN
            + self.spi.len()
            + self
                .transforms
                .iter()
                .map(Transform::buffer_len)
                .sum::<usize>()
    }

    fn emit(&self, is_last: bool, out: &mut Vec<u8>) {
        out.push(if is_last {
            LAST_PROPOSAL
        } else {
            MORE_PROPOSALS
        });
        out.push(0);
        out.extend_from_slice(&emit_len_u16(self.buffer_len(), "proposal length").to_be_bytes());
        out.push(self.number);
        out.push(u8::from(self.protocol));
        out.push(emit_len_u8(self.spi.len(), "proposal SPI size"));
        out.push(emit_len_u8(self.transforms.len(), "transform count"));
        out.extend_from_slice(&self.spi);
        for (i, transform) in self.transforms.iter().enumerate() {
            transform.emit(i + 1 == self.transforms.len(), out);
        }
    }
}

/// The SA payload body: one or more proposals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaPayload {
    pub proposals: Vec<Proposal>,
}

impl SaPayload {
    /// Parses the payload body (after the generic header).
    pub fn parse(body: &[u8]) -> Result<SaPayload, WireError> {
        let mut r = Reader::new(body);
        let mut proposals = Vec::new();
        // RFC 7296 3.3: an SA payload consists of one or more proposals.
        if r.is_empty() {
            return Err(WireError::Malformed {
                what: "SA payload without proposals",
            });
        }
        loop {
            let (proposal, more) = Proposal::parse(&mut r)?;
            proposals.push(proposal);
            match (more, r.is_empty()) {
                (true, false) | (false, true) => {}
                (false, false) => {
                    return Err(WireError::TrailingBytes {
                        what: "last proposal",
                    })
                }
                (true, true) => {
                    return Err(WireError::Malformed {
                        what: "proposal Last Substruc",
                    })
                }
            }
            if !more {
                break;
            }
        }
        Ok(SaPayload { proposals })
    }

    pub fn buffer_len(&self) -> usize {
        self.proposals.iter().map(Proposal::buffer_len).sum()
    }

    /// Appends the payload body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        for (i, proposal) in self.proposals.iter().enumerate() {
            proposal.emit(i + 1 == self.proposals.len(), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One IKE proposal: AES-CBC-256, HMAC-SHA2-256-128, PRF-HMAC-SHA2-256, group 19.
    static SA_BODY: [u8; 44] = [
        0x00, 0x00, 0x00, 0x2c, 0x01, 0x01, 0x00,
        0x04, // last, len 44, #1, IKE, spi 0, 4 transforms
        0x03, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x0c, 0x80, 0x0e, 0x01,
        0x00, // ENCR 12, KL 256
        0x03, 0x00, 0x00, 0x08, 0x03, 0x00, 0x00, 0x0c, // INTEG 12
        0x03, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x05, // PRF 5
        0x00, 0x00, 0x00, 0x08, 0x04, 0x00, 0x00, 0x13, // DH 19
    ];

    fn sa_repr() -> SaPayload {
        SaPayload {
            proposals: vec![Proposal {
                number: 1,
                protocol: ProtocolId::Ike,
                spi: vec![],
                transforms: vec![
                    Transform::with_key_length(TransformType::Encr, 12, 256),
                    Transform::new(TransformType::Integ, 12),
                    Transform::new(TransformType::Prf, 5),
                    Transform::new(TransformType::Dh, 19),
                ],
            }],
        }
    }

    #[test]
    fn test_parse() {
        assert_eq!(SaPayload::parse(&SA_BODY), Ok(sa_repr()));
    }

    #[test]
    fn test_emit() {
        let mut out = Vec::new();
        sa_repr().emit(&mut out);
        assert_eq!(out, SA_BODY);
        assert_eq!(sa_repr().buffer_len(), SA_BODY.len());
    }

    #[test]
    fn flags_a_transform_with_an_unknown_attribute_and_keeps_it() {
        let mut body = SA_BODY.to_vec();
        // Give the INTEG transform a TLV attribute of type 99 with 2 bytes.
        body.splice(28..28, [0x00, 0x63, 0x00, 0x02, 0xaa, 0xbb]);
        body[23] = 0x0e; // transform length 8 + 6
        body[3] = 44 + 6; // proposal length
        let sa = SaPayload::parse(&body).unwrap();
        let integ = &sa.proposals[0].transforms[1];
        assert!(integ.unknown_attributes);
        assert_eq!(integ.id, 12);
        let mut again = Vec::new();
        sa.emit(&mut again);
        assert_eq!(SaPayload::parse(&again), Ok(sa));
    }

    #[test]
    fn rejects_transform_count_larger_than_the_proposal() {
        let mut body = SA_BODY;
        body[7] = 5;
        assert_eq!(
            SaPayload::parse(&body),
            Err(WireError::Malformed {
                what: "transform count"
            })
        );
    }

    #[test]
    fn rejects_wrong_last_substruc() {
        let mut body = SA_BODY;
        body[8] = 0; // the first of four transforms says "last"
        assert_eq!(
            SaPayload::parse(&body),
            Err(WireError::Malformed {
                what: "transform Last Substruc"
            })
        );
        let mut body = SA_BODY;
        body[0] = 2; // the only proposal says "more"
        assert_eq!(
            SaPayload::parse(&body),
            Err(WireError::Malformed {
                what: "proposal Last Substruc"
            })
        );
    }

    #[test]
    fn rejects_key_length_in_tlv_format() {
        let mut body = SA_BODY;
        body[16] = 0x00;
        assert!(matches!(
            SaPayload::parse(&body),
            Err(WireError::Malformed { .. })
        ));
    }

    #[test]
    fn rejects_transform_length_past_the_proposal() {
        let mut body = SA_BODY;
        body[43 - 4] = 0x10; // DH transform says 16 bytes, 8 are left
        assert_eq!(
            SaPayload::parse(&body),
            Err(WireError::BadLength {
                what: "transform length"
            })
        );
    }

    #[test]
    fn rejects_proposal_spi_size_other_than_0_4_or_8() {
        let mut body = SA_BODY.to_vec();
        body[6] = 2;
        body.splice(8..8, [0xaa, 0xbb]);
        body[3] += 2;
        assert_eq!(
            SaPayload::parse(&body),
            Err(WireError::Malformed {
                what: "proposal SPI size"
            })
        );
    }

    #[test]
    fn rejects_empty_sa_payload() {
        assert!(SaPayload::parse(&[]).is_err());
    }
}
