//! Facts about the machine that feed computed defaults: the host name and
//! the local interface addresses behind `mynetworks`.
//!
//! Owns `mynetworks` as postconf(5) `mynetworks_style` describes it: `host`
//! trusts the machine's own addresses (as Postfix 3.7 prints it:
//! `127.0.0.1/32 192.0.2.2/32 [::1]/128 ...`, every address as a /32 or
//! /128), `subnet` the networks of its interfaces (`127.0.0.0/8
//! 192.0.2.0/24 [::1]/128 [fd00::]/64`), `class` their class A/B/C networks
//! (IPv6 as `subnet`). IPv4 entries come first, then IPv6 in brackets;
//! `inet_protocols` selects the families and `inet_interfaces` the
//! addresses (`all`, `loopback-only`, or listed IP addresses).
//!
//! Failure: when the interface list cannot be read or yields nothing, the
//! result is the loopback networks `127.0.0.0/8 [::1]/128`; `hostname()`
//! falls back to `localhost`. Nothing here fails or panics.

use std::net::IpAddr;

use crate::value::split_list;

/// One address of a local interface with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IfAddr {
    pub(crate) addr: IpAddr,
    pub(crate) prefix: u8,
}

/// `gethostname()`, or `localhost` when it fails or is not UTF-8.
pub(crate) fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The IPv4 and IPv6 addresses of the local interfaces; empty when they
/// cannot be read.
pub(crate) fn interface_addresses() -> Vec<IfAddr> {
    let Ok(list) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    list.filter_map(|ifa| {
        let address = ifa.address?;
        let mask = ifa.netmask;
        if let Some(v4) = address.as_sockaddr_in() {
            let prefix = mask
                .as_ref()
                .and_then(|m| m.as_sockaddr_in())
                .map_or(32, |m| prefix_len(&m.ip().octets()));
            Some(IfAddr {
                addr: IpAddr::V4(v4.ip()),
                prefix,
            })
        } else if let Some(v6) = address.as_sockaddr_in6() {
            let prefix = mask
                .as_ref()
                .and_then(|m| m.as_sockaddr_in6())
                .map_or(128, |m| prefix_len(&m.ip().octets()));
            Some(IfAddr {
                addr: IpAddr::V6(v6.ip()),
                prefix,
            })
        } else {
            None
        }
    })
    .collect()
}

/// The number of leading one bits of a netmask.
fn prefix_len(mask: &[u8]) -> u8 {
    let mut n = 0u8;
    for byte in mask {
        let ones = byte.leading_ones() as u8;
        n = n.saturating_add(ones);
        if ones < 8 {
            break;
        }
    }
    n
}

/// `addr` with every bit after the first `prefix` cleared.
fn network(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6((bits & mask).into())
        }
    }
}

/// The `mynetworks` default for `style` (`host`, `subnet` or `class`; any
/// other value is treated as `host`, the value is validated elsewhere).
pub(crate) fn mynetworks(
    style: &str,
    inet_protocols: &str,
    inet_interfaces: &str,
    addrs: &[IfAddr],
) -> String {
    let protocols = split_list(inet_protocols);
    let all = protocols.is_empty() || protocols.iter().any(|p| p == "all");
    let v4 = all || protocols.iter().any(|p| p == "ipv4");
    let v6 = all || protocols.iter().any(|p| p == "ipv6");
    let family_ok = |a: &IpAddr| if a.is_ipv4() { v4 } else { v6 };

    let selected = select_interfaces(inet_interfaces, addrs);
    let mut entries: Vec<(IpAddr, u8)> = Vec::new();
    for ifa in selected.iter().filter(|i| family_ok(&i.addr)) {
        let entry = match (style, ifa.addr) {
            ("subnet", a) => (network(a, ifa.prefix), ifa.prefix),
            ("class", IpAddr::V4(a)) => {
                let prefix = match a.octets()[0] {
                    0..=127 => 8,
                    128..=191 => 16,
                    192..=223 => 24,
                    _ => 32,
                };
                (network(ifa.addr, prefix), prefix)
            }
            ("class", a) => (network(a, ifa.prefix), ifa.prefix),
            (_, a) => (a, if a.is_ipv4() { 32 } else { 128 }),
        };
        if !entries.contains(&entry) {
            entries.push(entry);
        }
    }
    if entries.is_empty() {
        if v4 {
            entries.push((IpAddr::V4([127, 0, 0, 0].into()), 8));
        }
        if v6 {
            entries.push((IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), 128));
        }
    }
    entries.sort_by_key(|(a, _)| a.is_ipv6());
    entries
        .iter()
        .map(|(a, p)| match a {
            IpAddr::V4(a) => format!("{a}/{p}"),
            IpAddr::V6(a) => format!("[{a}]/{p}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The interface addresses named by `inet_interfaces`.
fn select_interfaces(inet_interfaces: &str, addrs: &[IfAddr]) -> Vec<IfAddr> {
    let items = split_list(inet_interfaces);
    if items.is_empty() || items.iter().any(|i| i == "all") {
        return addrs.to_vec();
    }
    let mut out = Vec::new();
    for item in &items {
        if item == "loopback-only" {
            out.extend(addrs.iter().filter(|a| a.addr.is_loopback()));
            continue;
        }
        let literal = item.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>() {
            let found = addrs.iter().find(|a| a.addr == ip).copied();
            out.push(found.unwrap_or(IfAddr {
                addr: ip,
                prefix: if ip.is_ipv4() { 32 } else { 128 },
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> Vec<IfAddr> {
        let a = |s: &str, prefix| IfAddr {
            addr: s.parse().expect("test address"),
            prefix,
        };
        vec![
            a("127.0.0.1", 8),
            a("::1", 128),
            a("192.0.2.2", 24),
            a("fd00::2", 64),
            a("fe80::fc:ff:fe00:1", 64),
            a("172.16.5.9", 12),
        ]
    }

    #[test]
    fn styles_match_postfix_output() {
        let cases = [
            (
                "host",
                "all",
                "all",
                "127.0.0.1/32 192.0.2.2/32 172.16.5.9/32 [::1]/128 [fd00::2]/128 [fe80::fc:ff:fe00:1]/128",
            ),
            (
                "subnet",
                "all",
                "all",
                "127.0.0.0/8 192.0.2.0/24 172.16.0.0/12 [::1]/128 [fd00::]/64 [fe80::]/64",
            ),
            (
                "class",
                "all",
                "all",
                "127.0.0.0/8 192.0.2.0/24 172.16.0.0/16 [::1]/128 [fd00::]/64 [fe80::]/64",
            ),
            ("host", "ipv4", "all", "127.0.0.1/32 192.0.2.2/32 172.16.5.9/32"),
            ("host", "ipv6", "loopback-only", "[::1]/128"),
            ("host", "all", "loopback-only", "127.0.0.1/32 [::1]/128"),
            ("subnet", "all", "192.0.2.2, [fd00::2]", "192.0.2.0/24 [fd00::]/64"),
        ];
        for (style, protocols, interfaces, want) in cases {
            assert_eq!(
                mynetworks(style, protocols, interfaces, &addrs()),
                want,
                "{style} {protocols} {interfaces}"
            );
        }
    }

    #[test]
    fn falls_back_to_loopback() {
        assert_eq!(
            mynetworks("host", "all", "all", &[]),
            "127.0.0.0/8 [::1]/128"
        );
        assert_eq!(mynetworks("subnet", "ipv4", "all", &[]), "127.0.0.0/8");
    }

    #[test]
    fn netmask_prefixes() {
        let cases: [(&[u8], u8); 4] = [
            (&[255, 0, 0, 0], 8),
            (&[255, 255, 255, 0], 24),
            (&[255, 240, 0, 0], 12),
            (&[0, 0, 0, 0], 0),
        ];
        for (mask, want) in cases {
            assert_eq!(prefix_len(mask), want);
        }
    }

    #[test]
    fn this_host_has_an_answer() {
        assert!(!hostname().is_empty());
        let got = mynetworks("host", "all", "all", &interface_addresses());
        assert!(!got.is_empty());
    }
}
