//! The allocation model: name rules, the reserved list and the commit state machine.
//!
//! Pure: no IO, no clock, no randomness source (callers pass random bytes). Everything the
//! store and the allocator decide about a name is decided here, so it is tested by feeding values.
use std::net::Ipv4Addr;

use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;

/// The fixed detail of an invalid subdomain label.
pub const LABEL_DETAIL: &str =
    "subdomain must be a-z, 0-9 and hyphens, start with a letter, max 63 characters";

/// Subdomains a pool Sovereign may not take: they name control-plane endpoints or the name
/// servers themselves. Sorted; matching is case-insensitive after trimming.
pub const RESERVED: &[&str] = &[
    "admin", "api", "app", "catalyst", "console", "docs", "flux", "gitea", "harbor", "imap", "k8s",
    "keycloak", "mail", "ns1", "ns2", "ns3", "openbao", "openova", "smtp", "status", "system",
    "vault", "vpn", "www",
];

/// Owner labels of the records a commit publishes in a child zone (`""` is the apex).
pub const CANONICAL_HOSTS: [&str; 6] = ["", "*", "console", "api", "gitea", "harbor"];

/// TTL of the published A records.
pub const A_TTL: u32 = 300;

/// TTL of the NS and DS delegation records in the parent zone.
pub const DELEGATION_TTL: u32 = 3600;

/// Lowercases and trims a path or body value.
pub fn normalise(s: &str) -> String {
    s.trim().to_ascii_lowercase()
}

/// True for a label of 1..=63 of `a-z0-9-`, starting with a letter, not ending with `-`.
pub fn is_valid_label(sub: &str) -> bool {
    let b = sub.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            b.len() <= 63
                && first.is_ascii_lowercase()
                && *last != b'-'
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        }
        _ => false,
    }
}

/// True when `sub` (any case, surrounding spaces ignored) is on the reserved list.
pub fn is_reserved(sub: &str) -> bool {
    RESERVED.binary_search(&normalise(sub).as_str()).is_ok()
}

/// The child zone of a pool Sovereign: `sub.pool`, normalised, without a trailing dot.
pub fn child_zone(pool: &str, sub: &str) -> String {
    format!("{}.{}", normalise(sub), normalise(pool))
}

/// The owner names (without trailing dot) of the A records a commit publishes in `zone`.
pub fn canonical_names(zone: &str) -> Vec<String> {
    CANONICAL_HOSTS
        .iter()
        .map(|h| {
            if h.is_empty() {
                zone.to_owned()
            } else {
                format!("{h}.{zone}")
            }
        })
        .collect()
}

/// Parses a load-balancer address: a dotted IPv4 address.
pub fn parse_lb_ip(s: &str) -> Option<Ipv4Addr> {
    s.trim().parse().ok()
}

/// Normalises a comma/whitespace separated list: lowercased, trimmed, trailing dots removed,
/// empties dropped, duplicates removed, order kept.
pub fn parse_name_list(s: &str) -> Vec<String> {
    normalise_names(s.split(|c: char| c == ',' || c.is_whitespace()))
}

/// Normalises names: lowercased, trimmed, trailing dots removed, empties and duplicates dropped.
pub fn normalise_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let n = normalise(n).trim_end_matches('.').to_owned();
        if !n.is_empty() && !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// A reservation token (UUID v4 text) made from 16 random bytes.
pub fn token_from_bytes(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Compares a presented token with the held one in time independent of where they differ.
pub fn tokens_match(held: &str, presented: &str) -> bool {
    let presented = presented.trim().to_ascii_lowercase();
    held.len() == presented.len() && bool::from(held.as_bytes().ct_eq(presented.as_bytes()))
}

/// The stored state of an allocation. No row means the name is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllocationState {
    /// Held by a deployment in progress until `expires_at`.
    Reserved,
    /// Committed: records published for a live Sovereign.
    Active,
    /// Being removed: the row stays until PowerDNS confirms the zone and delegation are gone.
    Releasing,
}

impl AllocationState {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AllocationState::Reserved => "reserved",
            AllocationState::Active => "active",
            AllocationState::Releasing => "releasing",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reserved" => Some(AllocationState::Reserved),
            "active" => Some(AllocationState::Active),
            "releasing" => Some(AllocationState::Releasing),
            _ => None,
        }
    }
}

/// One row of the allocation table.
#[derive(Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The pool apex, e.g. `omani.works`.
    pub pool_domain: String,
    /// The label, e.g. `omantel`.
    pub subdomain: String,
    /// Current state.
    pub state: AllocationState,
    /// When the reservation was made (database clock).
    pub reserved_at: DateTime<Utc>,
    /// When an unconfirmed reservation lapses (reserved rows only).
    pub expires_at: Option<DateTime<Utc>>,
    /// Who reserved it.
    pub created_by: String,
    /// The Sovereign's FQDN, set on commit.
    pub sovereign_fqdn: Option<String>,
    /// The load-balancer IPv4 the records point at, set on commit.
    pub load_balancer_ip: Option<String>,
    /// The reservation token. Kept after commit so a retried commit can be recognised; never
    /// listed.
    pub reservation_token: Option<String>,
}

impl std::fmt::Debug for Allocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Allocation")
            .field("pool_domain", &self.pool_domain)
            .field("subdomain", &self.subdomain)
            .field("state", &self.state)
            .field("reserved_at", &self.reserved_at)
            .field("expires_at", &self.expires_at)
            .field("created_by", &self.created_by)
            .field("sovereign_fqdn", &self.sovereign_fqdn)
            .field("load_balancer_ip", &self.load_balancer_ip)
            .finish_non_exhaustive()
    }
}

impl Allocation {
    /// The child zone name.
    pub fn zone(&self) -> String {
        child_zone(&self.pool_domain, &self.subdomain)
    }
}

/// What a commit does to a row that passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitAction {
    /// `reserved` → `active`.
    Activate,
    /// Already active with the same token and address: publish the records again.
    Republish,
}

/// Why a commit is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitRefusal {
    /// No row.
    NotFound,
    /// Active with another token or address.
    AlreadyActive,
    /// Being released.
    Releasing,
    /// The reservation lapsed.
    Expired,
    /// The presented token is not the held one.
    TokenMismatch,
}

/// What the store knows about a row at commit time (`expired` judged by the database clock).
#[derive(Debug, Clone, Copy)]
pub struct CommitRow<'a> {
    /// The state.
    pub state: AllocationState,
    /// `expires_at <= now()` on the database.
    pub expired: bool,
    /// The held token.
    pub token: Option<&'a str>,
    /// The committed address (active rows).
    pub load_balancer_ip: Option<&'a str>,
}

/// Decides a commit. Order of checks: not found → active → releasing → expired → token, so an
/// expired reservation presented with a wrong token answers "expired".
pub fn decide_commit(
    row: Option<CommitRow<'_>>,
    token: &str,
    lb_ip: &str,
) -> Result<CommitAction, CommitRefusal> {
    let row = row.ok_or(CommitRefusal::NotFound)?;
    let token_ok = row.token.is_some_and(|held| tokens_match(held, token));
    match row.state {
        AllocationState::Active => {
            if token_ok && row.load_balancer_ip == Some(lb_ip) {
                Ok(CommitAction::Republish)
            } else {
                Err(CommitRefusal::AlreadyActive)
            }
        }
        AllocationState::Releasing => Err(CommitRefusal::Releasing),
        AllocationState::Reserved if row.expired => Err(CommitRefusal::Expired),
        AllocationState::Reserved if !token_ok => Err(CommitRefusal::TokenMismatch),
        AllocationState::Reserved => Ok(CommitAction::Activate),
    }
}

/// What a reserve may do to an existing row (`expired` judged by the database clock).
pub fn reserve_may_take_over(state: AllocationState, expired: bool) -> bool {
    state == AllocationState::Reserved && expired
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn labels() {
        for ok in ["a", "omantel", "my-corp", "a--b", "x1", &"a".repeat(63)] {
            assert!(is_valid_label(ok), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "-a",
            "a-",
            "A",
            "a_b",
            "a.b",
            "é",
            &"a".repeat(64),
        ] {
            assert!(!is_valid_label(bad), "{bad}");
        }
    }

    #[test]
    fn reserved_list() {
        assert!(RESERVED.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
        for r in RESERVED {
            assert!(is_reserved(r) && is_valid_label(r));
        }
        for yes in ["api", "console", "openbao", "k8s", "API", "  api  ", "ns1"] {
            assert!(is_reserved(yes), "{yes}");
        }
        for no in ["omantel", "acme", "", "foo-bar", "my-corp", "pool"] {
            assert!(!is_reserved(no), "{no}");
        }
    }

    #[test]
    fn zones_and_names() {
        assert_eq!(
            child_zone(" Omani.Works ", "OMANTEL-prod"),
            "omantel-prod.omani.works"
        );
        assert_eq!(
            canonical_names("a.b"),
            [
                "a.b",
                "*.a.b",
                "console.a.b",
                "api.a.b",
                "gitea.a.b",
                "harbor.a.b"
            ]
        );
        assert_eq!(
            parse_name_list("NS1.openova.io., ns2.openova.io\tns1.openova.io ,"),
            ["ns1.openova.io", "ns2.openova.io"]
        );
        assert_eq!(parse_lb_ip(" 10.0.0.1 "), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(parse_lb_ip("10.0.0"), None);
        assert_eq!(parse_lb_ip("::1"), None);
    }

    #[test]
    fn tokens() {
        let t = token_from_bytes([0xff; 16]);
        assert_eq!(t.len(), 36);
        assert_eq!(&t[14..15], "4");
        assert!(tokens_match(&t, &t.to_uppercase()));
        assert!(!tokens_match(&t, &token_from_bytes([0; 16])));
        assert!(!tokens_match(&t, ""));
    }

    fn row(state: AllocationState, expired: bool) -> CommitRow<'static> {
        CommitRow {
            state,
            expired,
            token: Some("t"),
            load_balancer_ip: (state == AllocationState::Active).then_some("1.2.3.4"),
        }
    }

    #[test]
    fn commit_table() {
        use AllocationState::*;
        use CommitAction::*;
        use CommitRefusal::*;
        type Case<'a> = (
            Option<CommitRow<'a>>,
            &'a str,
            &'a str,
            Result<CommitAction, CommitRefusal>,
        );
        let cases: &[Case] = &[
            (None, "t", "1.2.3.4", Err(NotFound)),
            (Some(row(Reserved, false)), "t", "1.2.3.4", Ok(Activate)),
            (
                Some(row(Reserved, false)),
                "u",
                "1.2.3.4",
                Err(TokenMismatch),
            ),
            (Some(row(Reserved, true)), "u", "1.2.3.4", Err(Expired)),
            (Some(row(Reserved, true)), "t", "1.2.3.4", Err(Expired)),
            (Some(row(Active, false)), "t", "1.2.3.4", Ok(Republish)),
            (Some(row(Active, false)), "t", "5.6.7.8", Err(AlreadyActive)),
            (Some(row(Active, false)), "u", "1.2.3.4", Err(AlreadyActive)),
            (
                Some(row(AllocationState::Releasing, false)),
                "t",
                "1.2.3.4",
                Err(CommitRefusal::Releasing),
            ),
        ];
        for (r, token, ip, want) in cases {
            assert_eq!(decide_commit(*r, token, ip), *want, "{r:?} {token} {ip}");
        }
    }

    #[test]
    fn takeover_only_of_lapsed_reservations() {
        use AllocationState::*;
        assert!(reserve_may_take_over(Reserved, true));
        assert!(!reserve_may_take_over(Reserved, false));
        assert!(!reserve_may_take_over(Active, true));
        assert!(!reserve_may_take_over(Releasing, true));
    }

    proptest! {
        #[test]
        fn valid_labels_are_dns_safe(s in "\\PC{0,70}") {
            if is_valid_label(&s) {
                prop_assert!(s.len() <= 63);
                prop_assert!(s.starts_with(|c: char| c.is_ascii_lowercase()));
                prop_assert!(!s.ends_with('-'));
                prop_assert_eq!(normalise(&s), s.clone());
            }
        }

        #[test]
        fn generated_labels_validate(s in "[a-z][a-z0-9-]{0,61}[a-z0-9]") {
            prop_assert!(is_valid_label(&s));
        }

        #[test]
        fn only_the_held_token_commits(held in "[0-9a-f]{8}", presented in "[0-9a-f]{8}") {
            let r = CommitRow { state: AllocationState::Reserved, expired: false, token: Some(&held), load_balancer_ip: None };
            let got = decide_commit(Some(r), &presented, "1.1.1.1");
            prop_assert_eq!(got.is_ok(), held == presented);
        }

        #[test]
        fn tokens_are_uuid_v4(b in any::<[u8; 16]>()) {
            let t = token_from_bytes(b);
            prop_assert_eq!(t.len(), 36);
            prop_assert!(t.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
            prop_assert_eq!(&t[14..15], "4");
        }
    }
}
