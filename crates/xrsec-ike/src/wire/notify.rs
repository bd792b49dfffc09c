//! Notify Message Types (RFC 7296 3.10.1 and the IANA registry): the numbers,
//! their names for logs, and whether a type reports an error.

pub const UNSUPPORTED_CRITICAL_PAYLOAD: u16 = 1;
pub const INVALID_IKE_SPI: u16 = 4;
pub const INVALID_MAJOR_VERSION: u16 = 5;
pub const INVALID_SYNTAX: u16 = 7;
pub const INVALID_MESSAGE_ID: u16 = 9;
pub const INVALID_SPI: u16 = 11;
pub const NO_PROPOSAL_CHOSEN: u16 = 14;
pub const INVALID_KE_PAYLOAD: u16 = 17;
pub const AUTHENTICATION_FAILED: u16 = 24;
pub const SINGLE_PAIR_REQUIRED: u16 = 34;
pub const NO_ADDITIONAL_SAS: u16 = 35;
pub const INTERNAL_ADDRESS_FAILURE: u16 = 36;
pub const FAILED_CP_REQUIRED: u16 = 37;
pub const TS_UNACCEPTABLE: u16 = 38;
pub const INVALID_SELECTORS: u16 = 39;
pub const TEMPORARY_FAILURE: u16 = 43;
pub const CHILD_SA_NOT_FOUND: u16 = 44;

pub const INITIAL_CONTACT: u16 = 16384;
pub const SET_WINDOW_SIZE: u16 = 16385;
pub const ADDITIONAL_TS_POSSIBLE: u16 = 16386;
pub const IPCOMP_SUPPORTED: u16 = 16387;
pub const NAT_DETECTION_SOURCE_IP: u16 = 16388;
pub const NAT_DETECTION_DESTINATION_IP: u16 = 16389;
pub const COOKIE: u16 = 16390;
pub const USE_TRANSPORT_MODE: u16 = 16391;
pub const REKEY_SA: u16 = 16393;
pub const ESP_TFC_PADDING_NOT_SUPPORTED: u16 = 16394;
pub const NON_FIRST_FRAGMENTS_ALSO: u16 = 16395;
/// RFC 4555; strongSwan announces it unless MOBIKE is disabled.
pub const MOBIKE_SUPPORTED: u16 = 16396;
pub const ADDITIONAL_IP4_ADDRESS: u16 = 16397;
pub const ADDITIONAL_IP6_ADDRESS: u16 = 16398;
pub const NO_ADDITIONAL_ADDRESSES: u16 = 16399;
/// RFC 4478.
pub const AUTH_LIFETIME: u16 = 16403;
/// RFC 4739.
pub const MULTIPLE_AUTH_SUPPORTED: u16 = 16404;
/// RFC 5685.
pub const REDIRECT_SUPPORTED: u16 = 16406;
/// RFC 5998.
pub const EAP_ONLY_AUTHENTICATION: u16 = 16417;
/// RFC 6023.
pub const CHILDLESS_IKEV2_SUPPORTED: u16 = 16418;
/// RFC 7383.
pub const IKEV2_FRAGMENTATION_SUPPORTED: u16 = 16430;
/// RFC 7427.
pub const SIGNATURE_HASH_ALGORITHMS: u16 = 16431;

/// (type, IANA name, strongSwan's abbreviation in its message summaries).
const TABLE: &[(u16, &str, &str)] = &[
    (
        UNSUPPORTED_CRITICAL_PAYLOAD,
        "UNSUPPORTED_CRITICAL_PAYLOAD",
        "UNSUPPORTED_CRITICAL_PAYLOAD",
    ),
    (INVALID_IKE_SPI, "INVALID_IKE_SPI", "INVAL_IKE_SPI"),
    (
        INVALID_MAJOR_VERSION,
        "INVALID_MAJOR_VERSION",
        "INVAL_MAJOR",
    ),
    (INVALID_SYNTAX, "INVALID_SYNTAX", "INVAL_SYN"),
    (INVALID_MESSAGE_ID, "INVALID_MESSAGE_ID", "INVAL_MID"),
    (INVALID_SPI, "INVALID_SPI", "INVAL_SPI"),
    (NO_PROPOSAL_CHOSEN, "NO_PROPOSAL_CHOSEN", "NO_PROP"),
    (INVALID_KE_PAYLOAD, "INVALID_KE_PAYLOAD", "INVAL_KE"),
    (
        AUTHENTICATION_FAILED,
        "AUTHENTICATION_FAILED",
        "AUTH_FAILED",
    ),
    (SINGLE_PAIR_REQUIRED, "SINGLE_PAIR_REQUIRED", "SINGLE_PAIR"),
    (NO_ADDITIONAL_SAS, "NO_ADDITIONAL_SAS", "NO_ADD_SAS"),
    (
        INTERNAL_ADDRESS_FAILURE,
        "INTERNAL_ADDRESS_FAILURE",
        "INT_ADDR_FAIL",
    ),
    (FAILED_CP_REQUIRED, "FAILED_CP_REQUIRED", "FAIL_CP_REQ"),
    (TS_UNACCEPTABLE, "TS_UNACCEPTABLE", "TS_UNACCEPT"),
    (INVALID_SELECTORS, "INVALID_SELECTORS", "INVAL_SEL"),
    (TEMPORARY_FAILURE, "TEMPORARY_FAILURE", "TEMP_FAIL"),
    (
        CHILD_SA_NOT_FOUND,
        "CHILD_SA_NOT_FOUND",
        "CHLD_SA_NOT_FOUND",
    ),
    (INITIAL_CONTACT, "INITIAL_CONTACT", "INIT_CONTACT"),
    (SET_WINDOW_SIZE, "SET_WINDOW_SIZE", "SET_WINSIZE"),
    (
        ADDITIONAL_TS_POSSIBLE,
        "ADDITIONAL_TS_POSSIBLE",
        "ADD_TS_POSS",
    ),
    (IPCOMP_SUPPORTED, "IPCOMP_SUPPORTED", "IPCOMP_SUP"),
    (
        NAT_DETECTION_SOURCE_IP,
        "NAT_DETECTION_SOURCE_IP",
        "NATD_S_IP",
    ),
    (
        NAT_DETECTION_DESTINATION_IP,
        "NAT_DETECTION_DESTINATION_IP",
        "NATD_D_IP",
    ),
    (COOKIE, "COOKIE", "COOKIE"),
    (USE_TRANSPORT_MODE, "USE_TRANSPORT_MODE", "USE_TRANSP"),
    (REKEY_SA, "REKEY_SA", "REKEY_SA"),
    (
        ESP_TFC_PADDING_NOT_SUPPORTED,
        "ESP_TFC_PADDING_NOT_SUPPORTED",
        "ESP_TFC_PAD_N",
    ),
    (
        NON_FIRST_FRAGMENTS_ALSO,
        "NON_FIRST_FRAGMENTS_ALSO",
        "NON_FIRST_FRAG",
    ),
    (MOBIKE_SUPPORTED, "MOBIKE_SUPPORTED", "MOBIKE_SUP"),
    (
        ADDITIONAL_IP4_ADDRESS,
        "ADDITIONAL_IP4_ADDRESS",
        "ADD_4_ADDR",
    ),
    (
        ADDITIONAL_IP6_ADDRESS,
        "ADDITIONAL_IP6_ADDRESS",
        "ADD_6_ADDR",
    ),
    (
        NO_ADDITIONAL_ADDRESSES,
        "NO_ADDITIONAL_ADDRESSES",
        "NO_ADD_ADDR",
    ),
    (AUTH_LIFETIME, "AUTH_LIFETIME", "AUTH_LFT"),
    (
        MULTIPLE_AUTH_SUPPORTED,
        "MULTIPLE_AUTH_SUPPORTED",
        "MULT_AUTH",
    ),
    (REDIRECT_SUPPORTED, "REDIRECT_SUPPORTED", "REDIR_SUP"),
    (
        EAP_ONLY_AUTHENTICATION,
        "EAP_ONLY_AUTHENTICATION",
        "EAP_ONLY",
    ),
    (
        CHILDLESS_IKEV2_SUPPORTED,
        "CHILDLESS_IKEV2_SUPPORTED",
        "CHDLESS_SUP",
    ),
    (
        IKEV2_FRAGMENTATION_SUPPORTED,
        "IKEV2_FRAGMENTATION_SUPPORTED",
        "FRAG_SUP",
    ),
    (
        SIGNATURE_HASH_ALGORITHMS,
        "SIGNATURE_HASH_ALGORITHMS",
        "HASH_ALG",
    ),
];

fn lookup(t: u16) -> Option<&'static (u16, &'static str, &'static str)> {
    TABLE.iter().find(|entry| entry.0 == t)
}

/// The IANA name of a Notify type, or "UNKNOWN".
pub fn name(t: u16) -> &'static str {
    lookup(t).map_or("UNKNOWN", |entry| entry.1)
}

/// The short name strongSwan prints in message summaries ("NATD_S_IP"), or
/// `None` for a type not in the table (the summary then prints the number).
pub fn short_name(t: u16) -> Option<&'static str> {
    lookup(t).map(|entry| entry.2)
}

/// RFC 7296 3.10.1: types below 16384 report errors; the rest are status.
pub fn is_error(t: u16) -> bool {
    t < 16384
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_known_types_and_calls_the_rest_unknown() {
        assert_eq!(name(NO_PROPOSAL_CHOSEN), "NO_PROPOSAL_CHOSEN");
        assert_eq!(name(16430), "IKEV2_FRAGMENTATION_SUPPORTED");
        assert_eq!(name(12345), "UNKNOWN");
        assert_eq!(short_name(NAT_DETECTION_SOURCE_IP), Some("NATD_S_IP"));
        assert_eq!(short_name(12345), None);
    }

    #[test]
    fn types_below_16384_are_errors() {
        assert!(is_error(AUTHENTICATION_FAILED));
        assert!(is_error(16383));
        assert!(!is_error(INITIAL_CONTACT));
    }

    #[test]
    fn table_has_no_duplicate_types() {
        for (i, a) in TABLE.iter().enumerate() {
            assert!(TABLE[i + 1..].iter().all(|b| b.0 != a.0), "{} twice", a.1);
        }
    }
}
