//! Which IP addresses an outbound fetch may connect to. Public unicast only, unless the operator
//! allows more: `allow_private` opens the private-use ranges (loopback, RFC 1918, CGNAT, IPv6
//! ULA), `allowed_cidrs` opens exactly the listed networks. Link-local (cloud metadata at
//! 169.254.169.254), unspecified, multicast, broadcast, documentation and reserved ranges stay
//! closed unless a CIDR names them: they are never "our network" by accident.
//!
//! IPv6 forms that carry an IPv4 address (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`,
//! NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the IPv4 address they reach.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

/// An IP network, `addr/prefix` (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a CIDR does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not an IP network (address/prefix)")]
pub struct CidrError(String);

/// How an address is classed, and so what may open it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// Global unicast: allowed.
    Public,
    /// Loopback, RFC 1918, CGNAT, ULA: allowed with `allow_private` or a CIDR.
    Private,
    /// Everything else (link-local, metadata, multicast, documentation, reserved, …): only a
    /// CIDR naming it opens it.
    Special,
}

/// The address rules of one outbound client.
#[derive(Debug, Clone, Default)]
pub struct AddressRules {
    pub allow_private: bool,
    pub allowed_cidrs: Vec<Cidr>,
}

// === impl Cidr ===

impl Cidr {
    /// Whether `ip`, as written or as the IPv4 address it stands for, is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.contains_exactly(ip) || self.contains_exactly(canonical(ip))
    }

    fn contains_exactly(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, CidrError> {
        let bad = || CidrError(text.to_owned());
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        // Only the mapped form is read as IPv4: `2002::/16` names 6to4, not 0.0.0.0/16.
        let addr = match IpAddr::from_str(addr.trim()).map_err(|_| bad())? {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

// === impl AddressRules ===

impl AddressRules {
    /// Whether a connection to `ip` is allowed.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.allowed_cidrs.iter().any(|net| net.contains(ip)) {
            return true;
        }
        match classify(ip) {
            AddressClass::Public => true,
            AddressClass::Private => self.allow_private,
            AddressClass::Special => false,
        }
    }
}

/// `ip` with IPv4-in-IPv6 forms turned into the IPv4 address they reach.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The IPv4 address an IPv6 address stands for: mapped, compatible, NAT64 or 6to4.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let bits = u128::from(v6);
    let low = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    match s {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible; :: and ::1 are not IPv4).
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(low),
        // NAT64 well-known prefix, 64:ff9b::/96.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        // 6to4, 2002:AABB:CCDD::/48.
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))),
        _ => None,
    }
}

/// The class of `ip` (after [`canonical`]).
pub fn classify(ip: IpAddr) -> AddressClass {
    match canonical(ip) {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    let private = ip.is_loopback()           // 127/8
        || a == 10                           // 10/8
        || (a == 172 && (16..32).contains(&b)) // 172.16/12
        || (a == 192 && b == 168)            // 192.168/16
        || (a == 100 && (64..128).contains(&b)); // CGNAT 100.64/10
    let special = a == 0                     // "this network", 0.0.0.0/8
        || (a == 169 && b == 254)            // link-local, cloud metadata
        || (a == 192 && b == 0 && c == 0)    // IETF protocol assignments 192.0.0/24
        || (a == 192 && b == 0 && c == 2)    // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)  // 6to4 relay anycast
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18/15
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)  // TEST-NET-3
        || a >= 224; // multicast 224/4, reserved 240/4, broadcast
    if private {
        AddressClass::Private
    } else if special {
        AddressClass::Special
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let s = ip.segments();
    if ip.is_loopback() || (s[0] & 0xfe00) == 0xfc00 {
        // ::1, ULA fc00::/7
        return AddressClass::Private;
    }
    // Only global unicast 2000::/3 is public, minus the special blocks inside it.
    let global = (s[0] & 0xe000) == 0x2000;
    // IETF protocol 2001::/23 (Teredo, …), documentation 2001:db8::/32 and 3fff::/20.
    let special_inside =
        (s[0] == 0x2001 && (s[1] < 0x0200 || s[1] == 0x0db8)) || (s[0] == 0x3fff && s[1] < 0x1000);
    if global && !special_inside {
        AddressClass::Public
    } else {
        // ::, fe80::/10, fec0::/10, ff00::/8, 100::/64, 64:ff9b:1::/48 and the rest.
        AddressClass::Special
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|_| panic!("{text}"))
    }

    #[test]
    fn cidrs_parse_and_contain() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(
            net.contains(ip("::ffff:10.1.0.9")),
            "mapped forms match too"
        );
        let one: Cidr = "::1".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(all.contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "::/129", "10.0.0/8", "x", "10.0.0.0/", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn operator_rules_open_only_what_they_name() {
        let strict = AddressRules::default();
        let private = AddressRules {
            allow_private: true,
            ..AddressRules::default()
        };
        let metadata = AddressRules {
            allowed_cidrs: vec!["169.254.169.254".parse().unwrap_or_else(|e| panic!("{e}"))],
            ..AddressRules::default()
        };
        assert!(!strict.allows(ip("10.0.0.1")) && private.allows(ip("10.0.0.1")));
        assert!(
            !private.allows(ip("169.254.169.254")),
            "allow_private is not metadata"
        );
        assert!(metadata.allows(ip("169.254.169.254")) && !metadata.allows(ip("169.254.0.1")));
        assert!(strict.allows(ip("8.8.8.8")) && strict.allows(ip("2606:4700::1111")));
    }

    /// Blocked networks as (first address, prefix length): every address generated inside one
    /// must be refused by the default rules.
    const BLOCKED_V4: &[([u8; 4], u8)] = &[
        ([0, 0, 0, 0], 8),
        ([10, 0, 0, 0], 8),
        ([100, 64, 0, 0], 10),
        ([127, 0, 0, 0], 8),
        ([169, 254, 0, 0], 16),
        ([172, 16, 0, 0], 12),
        ([192, 0, 0, 0], 24),
        ([192, 0, 2, 0], 24),
        ([192, 88, 99, 0], 24),
        ([192, 168, 0, 0], 16),
        ([198, 18, 0, 0], 15),
        ([198, 51, 100, 0], 24),
        ([203, 0, 113, 0], 24),
        ([224, 0, 0, 0], 4),
        ([240, 0, 0, 0], 4),
    ];

    const BLOCKED_V6: &[(u128, u8)] = &[
        (0, 128),                     // ::
        (1, 128),                     // ::1
        (0xfc00 << 112, 7),           // ULA
        (0xfe80 << 112, 10),          // link-local
        (0xfec0 << 112, 10),          // site-local
        (0xff00 << 112, 8),           // multicast
        (0x2001_0db8 << 96, 32),      // documentation
        (0x2001 << 112, 23),          // IETF protocol (Teredo)
        (0x0100 << 112, 64),          // discard
        (0x3fff << 112, 20),          // documentation
        (0x0064_ff9b_0001 << 80, 48), // local NAT64
    ];

    fn v4_in(net: [u8; 4], prefix: u8, host: u32) -> Ipv4Addr {
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        Ipv4Addr::from((u32::from(Ipv4Addr::from(net)) & mask) | (host & !mask))
    }

    fn v6_in(net: u128, prefix: u8, host: u128) -> Ipv6Addr {
        let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
        Ipv6Addr::from((net & mask) | (host & !mask))
    }

    /// The IPv6 forms that reach `v4`.
    fn v6_forms(v4: Ipv4Addr) -> Vec<Ipv6Addr> {
        let bits = u128::from(u32::from(v4));
        let o = v4.octets();
        let six_to_four = (0x2002u128 << 112)
            | (u128::from(u16::from_be_bytes([o[0], o[1]])) << 96)
            | (u128::from(u16::from_be_bytes([o[2], o[3]])) << 80);
        vec![
            v4.to_ipv6_mapped(),
            Ipv6Addr::from((0x64_ff9bu128 << 96) | bits),
            Ipv6Addr::from(six_to_four | 1),
        ]
    }

    /// The textual forms a URL host can take for `v4`, which WHATWG parsers (browsers, the
    /// `url` crate, so reqwest) turn into the same address: decimal, hex, octal, short forms.
    fn url_forms(v4: Ipv4Addr) -> Vec<String> {
        let n = u32::from(v4);
        let [a, b, c, d] = v4.octets();
        vec![
            format!("{v4}"),
            format!("{n}"),
            format!("0x{n:x}"),
            format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"),
            format!("0x{a:x}.0x{b:x}.0x{c:x}.0x{d:x}"),
            format!(
                "{a}.{}",
                (u32::from(b) << 16) | (u32::from(c) << 8) | u32::from(d)
            ),
            format!("[::ffff:{v4}]"),
            format!("[::ffff:{:x}:{:x}]", n >> 16, n & 0xffff),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        /// Every address of every blocked IPv4 network, in every IPv6 and URL spelling, is
        /// refused by the default rules.
        #[test]
        fn blocked_ipv4_networks_are_refused_in_every_form(
            net in prop::sample::select(BLOCKED_V4.to_vec()),
            host in any::<u32>(),
        ) {
            let rules = AddressRules::default();
            let v4 = v4_in(net.0, net.1, host);
            prop_assert!(!rules.allows(IpAddr::V4(v4)), "{v4}");
            for v6 in v6_forms(v4) {
                prop_assert!(!rules.allows(IpAddr::V6(v6)), "{v6} reaches {v4}");
            }
            for form in url_forms(v4) {
                let url = url::Url::parse(&format!("https://{form}/x"));
                let host = url.as_ref().ok().and_then(|u| match u.host() {
                    Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
                    Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
                    _ => None,
                });
                let host = host.unwrap_or_else(|| panic!("{form} is not an IP host"));
                prop_assert!(!rules.allows(host), "{form} ({host}) reaches {v4}");
            }
        }

        #[test]
        fn blocked_ipv6_networks_are_refused(
            net in prop::sample::select(BLOCKED_V6.to_vec()),
            host in any::<u128>(),
        ) {
            let v6 = v6_in(net.0, net.1, host);
            prop_assert!(!AddressRules::default().allows(IpAddr::V6(v6)), "{v6}");
        }

        /// Addresses outside every blocked network are allowed, as are their IPv6 forms; and
        /// `allow_private` never opens a special (non-private) range.
        #[test]
        fn public_addresses_are_allowed(raw in any::<u32>(), raw6 in any::<u128>()) {
            let v4 = Ipv4Addr::from(raw);
            let blocked = BLOCKED_V4.iter().any(|(net, prefix)| v4_in(*net, *prefix, raw) == v4);
            let rules = AddressRules::default();
            prop_assert_eq!(rules.allows(IpAddr::V4(v4)), !blocked, "{}", v4);
            for v6 in v6_forms(v4) {
                prop_assert_eq!(rules.allows(IpAddr::V6(v6)), !blocked, "{}", v6);
            }
            let open = AddressRules { allow_private: true, ..AddressRules::default() };
            if classify(IpAddr::V4(v4)) == AddressClass::Special {
                prop_assert!(!open.allows(IpAddr::V4(v4)));
            }
            // A global unicast IPv6 address outside the special blocks is public.
            let v6 = v6_in(0x2400 << 112, 6, raw6);
            prop_assert!(rules.allows(IpAddr::V6(v6)), "{}", v6);
        }
    }
}
