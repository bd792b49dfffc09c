//! The text of the `show` commands, made from the typed [`Status`].
//!
//! Field names and their order are those of IOS-XR's `show ipsec sa`,
//! `show ikev2 session [detail]` and `show ikev2 summary`, so that an engineer's
//! eyes (and screen-scraping scripts) find what they expect; the colons of a
//! block line up in one column. Lines the router does not print (`NAT-T`,
//! `Encapsulation`, the counters, the blocks explaining why a tunnel is not up)
//! come after the router's fields, never between them. These functions are pure:
//! the daemon's clock reaches them only as `daemon.now_unix`.

use std::fmt::Write;
use std::net::SocketAddr;

use crate::{IkeSa, IkeSession, IpsecSa, SaHalf, Status, TunnelState, TunnelStatus};

/// `show ikev2 session` (and `detail`): one block per session, then one block
/// per tunnel that is not up, saying why.
pub fn ikev2_session(status: &Status, detail: bool) -> String {
    let mut out = String::new();
    for session in &status.sessions {
        if !out.is_empty() {
            out.push('\n');
        }
        session_block(session, detail).render(&mut out);
    }
    let not_up: Vec<&TunnelStatus> = status
        .tunnels
        .iter()
        .filter(|t| t.state != TunnelState::Up)
        .collect();
    if status.sessions.is_empty() {
        if status.tunnels.is_empty() {
            return "There are no IKEv2 sessions and no tunnel interfaces.\n".to_string();
        }
        out.push_str("There are no IKEv2 sessions.\n");
    }
    for tunnel in not_up {
        out.push('\n');
        not_up_block(tunnel).render(&mut out);
    }
    out
}

/// `show ikev2 summary`.
pub fn ikev2_summary(status: &Status) -> String {
    let summary = status.summary();
    let mut block = Block::default();
    block.text("IKEv2 Session Summary");
    block.rule('-');
    for (label, counts) in [
        ("Total Sa (Active/Negotiation)", summary.total),
        ("Total Outgoing Sa (Active/Negotiation)", summary.outgoing),
        ("Total Incoming Sa (Active/Negotiation)", summary.incoming),
    ] {
        block.field(
            label,
            format!(
                "{} ({}/{})",
                counts.total(),
                counts.active,
                counts.negotiating
            ),
        );
    }
    let mut out = String::new();
    block.render(&mut out);
    out
}

/// `show ipsec sa` (one table row per tunnel) or, with an interface,
/// `show ipsec sa interface NAME` (that tunnel's SA in detail). An unknown
/// interface is an error naming it and the interfaces that do exist.
pub fn ipsec_sa(status: &Status, interface: Option<&str>) -> Result<String, String> {
    let mut out = timestamp(status.daemon.now_unix);
    out.push('\n');
    match interface {
        None => sa_table(status, &mut out),
        Some(name) => {
            let tunnel = status
                .tunnel(name)
                .ok_or_else(|| unknown_interface(status, name))?;
            sa_detail(tunnel).render(&mut out);
        }
    }
    Ok(out)
}

/// The error for an interface that is not configured, listing those that are.
pub fn unknown_interface(status: &Status, name: &str) -> String {
    if status.tunnels.is_empty() {
        return format!("no interface {name}: no tunnel interface is configured");
    }
    let names: Vec<&str> = status.tunnels.iter().map(|t| t.name.as_str()).collect();
    format!(
        "no interface {name}; the tunnel interfaces are {}",
        names.join(", ")
    )
}

/// The time stamp line IOS-XR prints above `show ipsec sa`, in UTC:
/// `Tue Oct  5 15:45:55 UTC`. The router adds milliseconds; the status
/// snapshot carries whole seconds, so we do not invent them.
pub fn timestamp(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (_, month, day) = civil_date(days);
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[((days + 4) % 7) as usize];
    format!(
        "{weekday} {} {day:>2} {:02}:{:02}:{:02} UTC",
        MONTHS[month as usize - 1],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// (year, month 1-12, day 1-31) of a count of days since 1970-01-01.
///
/// Gregorian years repeat every 400 years (146 097 days). Counting years from
/// 1 March makes the leap day the last day of its year, so within a year the
/// month lengths from March on follow a fixed 153-days-per-5-months pattern.
fn civil_date(days_since_epoch: u64) -> (u64, u32, u32) {
    // 0000-03-01 is 719 468 days before 1970-01-01.
    let days = days_since_epoch + 719_468;
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    // Subtract the leap days already passed within the era (one every 4
    // years, none every 100, one again at 400) to find the year of the era.
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Month counted from March = 0.
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month as u32, day as u32)
}

fn session_block(session: &IkeSession, detail: bool) -> Block {
    let mut b = Block::default();
    b.field("Session ID", session.session_id);
    b.rule('=');
    b.field("Status", &session.status);
    b.field("IKE Count", session.ike_sas.len());
    b.field("Child Count", session.child_count());
    for sa in &session.ike_sas {
        ike_sa_lines(&mut b, session.session_id, sa, detail);
    }
    b
}

fn ike_sa_lines(b: &mut Block, session_id: u64, sa: &IkeSa, detail: bool) {
    b.field("IKE SA ID", sa.id);
    b.rule('-');
    b.field("Local", slash_port(sa.local));
    b.field("Remote", slash_port(sa.remote));
    b.field("Status(Description)", &sa.state_description);
    b.field("Role", &sa.role);
    if detail {
        b.field(
            "Encryption/Keysize",
            format!("{}/{}", dash(&sa.encryption), nonzero(sa.keysize)),
        );
        b.field(
            "PRF/Hash/DH Group",
            format!(
                "{}/{}/{}",
                dash(&sa.prf),
                dash(&sa.hash),
                nonzero(sa.dh_group)
            ),
        );
        b.field(
            "Authentication(Sign/Verify)",
            format!("{}/{}", dash(&sa.auth_sign), dash(&sa.auth_verify)),
        );
        b.field(
            "Life/Active Time(sec)",
            format!("{}/{}", sa.lifetime_secs, sa.active_secs),
        );
        b.field("Session ID", session_id);
        b.field("Local SPI", format!("{:016X}", sa.local_spi));
        b.field("Remote SPI", format!("{:016X}", sa.remote_spi));
        b.field("Local ID", dash(&sa.local_id));
        b.field("Remote ID", dash(&sa.remote_id));
        b.field("NAT-T", if sa.nat_t { "yes" } else { "no" });
    }
    for child in &sa.children {
        b.text("Child SA");
        b.rule('-');
        selector_lines(b, "Local Selector", &child.local_selectors);
        selector_lines(b, "Remote Selector", &child.remote_selectors);
        b.field(
            "ESP SPI IN/OUT",
            format!("0x{:08x} / 0x{:08x}", child.spi_in, child.spi_out),
        );
        if detail {
            b.field("Encryption", dash(&child.encryption));
            b.field("Keysize", nonzero(child.keysize));
            b.field("ESP HMAC", dash(&child.esp_hmac));
        }
    }
}

/// One line per traffic selector, each with its label, so that a line read on
/// its own (or by `grep`) still says what it is.
fn selector_lines(b: &mut Block, label: &'static str, selectors: &[String]) {
    if selectors.is_empty() {
        b.field(label, "-");
    }
    for selector in selectors {
        b.field(label, selector);
    }
}

/// Why a tunnel is not up, and when the daemon tries again.
fn not_up_block(tunnel: &TunnelStatus) -> Block {
    let mut b = Block::default();
    b.text(format!(
        "Tunnel {} ({} -> {}): {}",
        tunnel.name,
        tunnel.local.map_or("-".to_string(), |a| a.to_string()),
        tunnel.remote.map_or("-".to_string(), |a| a.to_string()),
        state_word(tunnel.state)
    ));
    b.field("Reason", reason(tunnel));
    if tunnel.state != TunnelState::AdminDown {
        if let Some(secs) = tunnel.retry_in_secs {
            b.field(
                "Retry in",
                format!("{secs} s (attempt {})", u64::from(tunnel.failures) + 1),
            );
        }
    }
    b
}

fn reason(tunnel: &TunnelStatus) -> String {
    if tunnel.state == TunnelState::AdminDown {
        return "shutdown".to_string();
    }
    match (&tunnel.last_error, tunnel.last_error_secs_ago) {
        (Some(error), Some(ago)) => format!("{error} ({ago} s ago)"),
        (Some(error), None) => error.clone(),
        (None, _) if tunnel.state == TunnelState::Negotiating => {
            "negotiation in progress".to_string()
        }
        (None, _) => "not negotiated yet".to_string(),
    }
}

fn state_word(state: TunnelState) -> &'static str {
    match state {
        TunnelState::AdminDown => "ADMIN-DOWN",
        TunnelState::Negotiating => "NEGOTIATING",
        TunnelState::Up => "UP",
        TunnelState::Down => "DOWN",
    }
}

fn sa_table(status: &Status, out: &mut String) {
    const NAME: &str = "If/name";
    const ID: &str = "SA-Id";
    const IN: &str = "Inbound SPI";
    const OUT: &str = "Outbound SPI";
    let ids: Vec<String> = status
        .tunnels
        .iter()
        .map(|t| {
            t.ipsec
                .as_ref()
                .map_or("-".into(), |sa| sa.sa_id.to_string())
        })
        .collect();
    let name_w = status
        .tunnels
        .iter()
        .map(|t| t.name.len())
        .fold(NAME.len(), usize::max);
    let id_w = ids.iter().map(String::len).fold(ID.len(), usize::max);
    // An SPI is always 0x and 8 digits, narrower than both headers.
    let (in_w, out_w) = (IN.len(), OUT.len());
    let header = format!("{NAME:<name_w$}  {ID:<id_w$}  {IN:<in_w$}  {OUT}");
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out, "{}", "-".repeat(header.len()));
    for (tunnel, id) in status.tunnels.iter().zip(&ids) {
        let name = &tunnel.name;
        let _ = match &tunnel.ipsec {
            Some(sa) => writeln!(
                out,
                "{name:<name_w$}  {id:<id_w$}  {:<in_w$}  0x{:08x}",
                format!("0x{:08x}", sa.inbound.spi),
                sa.outbound.spi
            ),
            // Listed anyway: a tunnel missing from this table is the first
            // thing an engineer looks for.
            None => writeln!(
                out,
                "{name:<name_w$}  {id:<id_w$}  {:<in_w$}  {:<out_w$}  {}",
                "-",
                "-",
                state_word(tunnel.state)
            ),
        };
    }
}

fn sa_detail(tunnel: &TunnelStatus) -> Block {
    let mut b = Block::default();
    b.rule('-');
    b.field("Interface Name", &tunnel.name);
    let Some(sa) = &tunnel.ipsec else {
        b.field("Interface handle", format!("0x{:x}", tunnel.ifindex));
        b.field("SA id", "-");
        b.field("State", state_word(tunnel.state));
        b.field("Reason", reason(tunnel));
        return b;
    };
    b.field("Interface handle", format!("0x{:x}", sa.interface_handle));
    b.field("SA id", sa.sa_id);
    b.field("Mode", &sa.mode);
    for (title, half) in [("Inbound SA", &sa.inbound), ("Outbound SA", &sa.outbound)] {
        b.rule('-');
        b.text(title);
        sa_half_lines(&mut b, sa, half);
    }
    b
}

fn sa_half_lines(b: &mut Block, sa: &IpsecSa, half: &SaHalf) {
    b.field("SPI", format!("0x{:08x}", half.spi));
    b.field("Protocol", &half.protocol);
    b.field("Encrypt Algorithm", &half.encrypt_algorithm);
    b.field("Auth Algorithm", &half.auth_algorithm);
    b.field("Rekey (After Seconds)", half.rekey_after_secs);
    let encapsulation = if sa.udp_encap {
        // The port is shown: behind a NAT the peer's is rarely 4500.
        format!("ESP-in-UDP 4500, remote {}", sa.remote)
    } else {
        format!("ESP, remote {}", sa.remote.ip())
    };
    b.field("Encapsulation", encapsulation);
    b.field("Packets", half.packets);
    b.field("Bytes", half.bytes);
    b.field("Drops", drops(half));
}

/// `none`, or the reasons with their counts, the most frequent first.
fn drops(half: &SaHalf) -> String {
    let mut reasons: Vec<(&String, u64)> = half
        .drops
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| (r, *n))
        .collect();
    if reasons.is_empty() {
        return "none".to_string();
    }
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
    parts.join(", ")
}

/// IOS-XR writes endpoints as `address/port`.
fn slash_port(addr: SocketAddr) -> String {
    format!("{}/{}", addr.ip(), addr.port())
}

/// Text fields are empty until negotiated; a dash says so visibly.
fn dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// Numbers that are 0 until negotiated (key size, DH group).
fn nonzero(n: u16) -> String {
    if n == 0 {
        "-".to_string()
    } else {
        n.to_string()
    }
}

/// Lines of one block of `label : value` fields, rendered with every colon
/// in the same column (the widest label's), and rules as wide as that column.
#[derive(Default)]
struct Block {
    lines: Vec<Line>,
}

enum Line {
    Field(&'static str, String),
    Text(String),
    Rule(char),
}

impl Block {
    fn field(&mut self, label: &'static str, value: impl ToString) {
        self.lines.push(Line::Field(label, value.to_string()));
    }

    fn text(&mut self, text: impl Into<String>) {
        self.lines.push(Line::Text(text.into()));
    }

    fn rule(&mut self, c: char) {
        self.lines.push(Line::Rule(c));
    }

    fn render(&self, out: &mut String) {
        let width = self
            .lines
            .iter()
            .filter_map(|l| match l {
                Line::Field(label, _) => Some(label.len()),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        for line in &self.lines {
            let _ = match line {
                Line::Field(label, value) => writeln!(out, "{label:<width$} : {value}"),
                Line::Text(text) => writeln!(out, "{text}"),
                Line::Rule(c) => writeln!(out, "{}", c.to_string().repeat(width + 2)),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_date_of_known_unix_days() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        // 951782400 s: the leap day of 2000, a year divisible by 400.
        assert_eq!(civil_date(951_782_400 / 86_400), (2000, 2, 29));
        assert_eq!(civil_date(951_782_400 / 86_400 + 1), (2000, 3, 1));
        assert_eq!(civil_date(1_633_448_755 / 86_400), (2021, 10, 5));
        // 2100 is divisible by 100 and not by 400: no 29 February.
        assert_eq!(civil_date(4_107_456_000 / 86_400), (2100, 2, 28));
        assert_eq!(civil_date(4_107_542_400 / 86_400), (2100, 3, 1));
        assert_eq!(civil_date(1_704_067_199 / 86_400), (2023, 12, 31));
        assert_eq!(civil_date(1_704_067_200 / 86_400), (2024, 1, 1));
    }

    #[test]
    fn timestamp_is_the_routers_layout_in_utc() {
        assert_eq!(timestamp(0), "Thu Jan  1 00:00:00 UTC");
        assert_eq!(timestamp(951_782_400), "Tue Feb 29 00:00:00 UTC");
        // The seed's own time stamp, taken as UTC.
        assert_eq!(timestamp(1_633_448_755), "Tue Oct  5 15:45:55 UTC");
        assert_eq!(timestamp(1_704_067_199), "Sun Dec 31 23:59:59 UTC");
    }

    #[test]
    fn block_aligns_every_colon_on_the_widest_label() {
        let mut b = Block::default();
        b.field("SPI", "0x1");
        b.rule('-');
        b.field("Rekey (After Seconds)", 37);
        let mut out = String::new();
        b.render(&mut out);
        assert_eq!(
            out,
            "SPI                   : 0x1\n\
             -----------------------\n\
             Rekey (After Seconds) : 37\n"
        );
    }
}
