//! trivial-rewrite: bring addresses into canonical form and decide where they go.
//!
//! `rewrite` does Postfix's hard-coded manipulations for the `local` rewriting context
//! (ADDRESS_REWRITING_README): drop a source route, `site!user` → `user@site`
//! (`swap_bangpath`), append `@$myorigin` (`append_at_myorigin`) and `.$mydomain`
//! (`append_dot_mydomain`), lower-case the domain and drop a trailing dot.
//!
//! `resolve` assigns an address class (ADDRESS_CLASS_README): `local` for `$mydestination`
//! and our own `[address]` literals, `relay` for `$relay_domains`, `default` for the rest, and the
//! transport and next hop that go with it (`local_transport`, `relay_transport`,
//! `default_transport`, `relayhost`). Routing left in the local part of a local address is
//! followed as Postfix's resolver does: the percent hack (`user%domain@ourdomain`, with
//! `allow_percent_hack`), bang paths (`site!user@ourdomain`, with `swap_bangpath`) and quoted
//! local parts that hide either or an `@` (`resolve_dequoted_address`). Pure functions over
//! a snapshot of the configuration; nothing here fails.

use config::MainCf;
use smtp::address;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressClass {
    Local,
    Relay,
    Default,
}

impl AddressClass {
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Local => "local",
            AddressClass::Relay => "relay",
            AddressClass::Default => "default",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub class: AddressClass,
    pub transport: String,
    pub nexthop: String,
    /// The address after the percent hack, in canonical form.
    pub address: String,
}

#[derive(Clone, Debug)]
pub struct Rewriter {
    myorigin: String,
    mydomain: String,
    myhostname: String,
    mydestination: Vec<String>,
    my_addresses: Vec<String>,
    relay_domains: Vec<String>,
    swap_bangpath: bool,
    allow_percent_hack: bool,
    resolve_dequoted: bool,
    append_at_myorigin: bool,
    append_dot_mydomain: bool,
    local_transport: (String, String),
    default_transport: (String, String),
    relay_transport: (String, String),
    relayhost: String,
}

fn split_transport(spec: &str, default_nexthop: &str) -> (String, String) {
    match spec.split_once(':') {
        Some((t, n)) if !n.is_empty() => (t.to_string(), n.to_string()),
        Some((t, _)) => (t.to_string(), default_nexthop.to_string()),
        None => (spec.to_string(), default_nexthop.to_string()),
    }
}

impl Rewriter {
    pub fn new(cfg: &MainCf) -> Rewriter {
        let myhostname = cfg.str("myhostname").to_ascii_lowercase();
        let lower = |v: Vec<String>| -> Vec<String> {
            v.into_iter()
                .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
                .collect()
        };
        let mut my_addresses = vec!["127.0.0.1".to_string(), "::1".to_string()];
        for a in cfg.list("inet_interfaces") {
            if a != "all" && a != "loopback-only" {
                my_addresses.push(a.trim_matches(|c| c == '[' || c == ']').to_string());
            }
        }
        Rewriter {
            myorigin: cfg.str("myorigin").to_ascii_lowercase(),
            mydomain: cfg.str("mydomain").to_ascii_lowercase(),
            mydestination: lower(cfg.list("mydestination")),
            my_addresses,
            relay_domains: lower(cfg.list("relay_domains")),
            swap_bangpath: cfg.bool("swap_bangpath"),
            allow_percent_hack: cfg.bool("allow_percent_hack"),
            resolve_dequoted: cfg.bool("resolve_dequoted_address"),
            append_at_myorigin: cfg.bool("append_at_myorigin"),
            append_dot_mydomain: cfg.bool("append_dot_mydomain"),
            local_transport: split_transport(&cfg.str("local_transport"), &myhostname),
            default_transport: split_transport(&cfg.str("default_transport"), ""),
            relay_transport: split_transport(&cfg.str("relay_transport"), ""),
            relayhost: cfg.str("relayhost"),
            myhostname,
        }
    }

    pub fn myorigin(&self) -> &str {
        &self.myorigin
    }

    pub fn myhostname(&self) -> &str {
        &self.myhostname
    }

    /// Canonical form in the `local` context. The null address stays empty.
    pub fn rewrite(&self, addr: &str) -> String {
        let mut addr = addr.trim().to_string();
        if addr.is_empty() {
            return addr;
        }
        // Source route: @a,@b:user@domain → user@domain.
        if addr.starts_with('@') {
            if let Some((_, rest)) = addr.split_once(':') {
                addr = rest.to_string();
            }
        }
        let (local, domain) = address::split(&addr);
        let (mut local, mut domain) = (local.to_string(), domain.map(str::to_string));
        if domain.is_none() && self.swap_bangpath {
            if let Some((site, user)) = unquoted_split_once(&local, '!') {
                if !site.is_empty() && !user.is_empty() {
                    domain = Some(site);
                    local = user;
                }
            }
        }
        let mut domain = match domain {
            Some(d) => d,
            None if self.append_at_myorigin => self.myorigin.clone(),
            None => return local,
        };
        if domain.ends_with('.') {
            domain.pop();
        }
        domain = domain.to_ascii_lowercase();
        if self.append_dot_mydomain
            && !domain.contains('.')
            && !domain.starts_with('[')
            && !self.mydomain.is_empty()
        {
            domain = format!("{domain}.{}", self.mydomain);
        }
        format!("{local}@{domain}")
    }

    /// Is `domain` (lower case, no trailing dot) one of ours?
    pub fn is_local_domain(&self, domain: &str) -> bool {
        let d = domain.trim_end_matches('.').to_ascii_lowercase();
        if let Some(lit) = d.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            let lit = lit.strip_prefix("ipv6:").unwrap_or(lit);
            return self.my_addresses.iter().any(|a| a == lit);
        }
        self.mydestination.contains(&d)
    }

    fn is_relay_domain(&self, domain: &str) -> bool {
        let d = domain.to_ascii_lowercase();
        self.relay_domains.iter().any(|r| {
            *r == d
                || (r.starts_with('.') && d.ends_with(r.as_str()))
                || (!r.starts_with('.') && d.ends_with(&format!(".{r}")))
        })
    }

    /// The routing left in the local part once our own domain is stripped, as Postfix's
    /// resolver finds it: `user%site` (`allow_percent_hack`), `site!user` (`swap_bangpath`),
    /// and a quoted local part hiding an `@` or either of those (`resolve_dequoted_address`).
    /// Without this, `"user@remote"@ourdomain` would pass relay control as local mail.
    fn local_route(&self, local: &str) -> Option<String> {
        if self.allow_percent_hack {
            if let Some((user, site)) = unquoted_rsplit_once(local, '%') {
                return Some(format!("{user}@{site}"));
            }
        }
        if self.swap_bangpath {
            if let Some((site, user)) = unquoted_split_once(local, '!') {
                if !site.is_empty() && !user.is_empty() {
                    return Some(format!("{user}@{site}"));
                }
            }
        }
        if self.resolve_dequoted && local.starts_with('"') {
            let inner = address::unquote_local(local);
            if inner.contains('@') {
                return Some(inner);
            }
            if self.allow_percent_hack {
                if let Some((user, site)) = inner.rsplit_once('%') {
                    return Some(format!("{user}@{site}"));
                }
            }
            if self.swap_bangpath {
                if let Some((site, user)) = inner.split_once('!') {
                    if !site.is_empty() && !user.is_empty() {
                        return Some(format!("{user}@{site}"));
                    }
                }
            }
        }
        None
    }

    /// Address class, transport and next hop for a canonical address.
    pub fn resolve(&self, addr: &str) -> Resolved {
        let mut addr = self.rewrite(addr);
        for _ in 0..10 {
            let (local, domain) = address::split(&addr);
            let domain = domain.unwrap_or("").to_string();
            if self.is_local_domain(&domain) {
                if let Some(next) = self.local_route(local) {
                    addr = self.rewrite(&next);
                    continue;
                }
                return Resolved {
                    class: AddressClass::Local,
                    transport: self.local_transport.0.clone(),
                    nexthop: self.local_transport.1.clone(),
                    address: addr,
                };
            }
            let (class, (transport, nexthop)) = if self.is_relay_domain(&domain) {
                (AddressClass::Relay, self.relay_transport.clone())
            } else {
                (AddressClass::Default, self.default_transport.clone())
            };
            let nexthop = if !nexthop.is_empty() {
                nexthop
            } else if !self.relayhost.is_empty() {
                self.relayhost.clone()
            } else {
                domain
            };
            return Resolved {
                class,
                transport,
                nexthop,
                address: addr,
            };
        }
        // Percent hack nesting beyond reason: treat what is left as remote.
        Resolved {
            class: AddressClass::Default,
            transport: self.default_transport.0.clone(),
            nexthop: address::split(&addr).1.unwrap_or("").to_string(),
            address: addr,
        }
    }
}

/// Split at the first `sep` outside double quotes.
fn unquoted_split_once(s: &str, sep: char) -> Option<(String, String)> {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => return Some((s[..i].to_string(), s[i + 1..].to_string())),
            _ => {}
        }
    }
    None
}

/// Split at the last `sep` outside double quotes.
fn unquoted_rsplit_once(s: &str, sep: char) -> Option<(String, String)> {
    let mut quoted = false;
    let mut at = None;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => at = Some(i),
            _ => {}
        }
    }
    at.map(|i| (s[..i].to_string(), s[i + 1..].to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn rw(extra: &str) -> Rewriter {
        let text = format!(
            "myhostname = mail.example.com\nmydomain = example.com\n\
             mydestination = $myhostname, localhost.$mydomain, localhost, example.com\n{extra}"
        );
        let cfg = MainCf::parse(&text, Path::new("/t/main.cf"), Path::new("/t")).unwrap();
        Rewriter::new(&cfg)
    }

    #[test]
    fn rewrite_table() {
        let r = rw("");
        for (input, want) in [
            ("alice", "alice@mail.example.com"),
            ("alice@Example.COM", "alice@example.com"),
            ("alice@example.com.", "alice@example.com"),
            ("@relay.net,@x.net:bob@far.org", "bob@far.org"),
            ("far.org!bob", "bob@far.org"),
            ("\"john doe\"", "\"john doe\"@mail.example.com"),
            ("\"a!b\"", "\"a!b\"@mail.example.com"),
            ("", ""),
        ] {
            assert_eq!(r.rewrite(input), want, "{input}");
        }
    }

    #[test]
    fn append_dot_mydomain_when_asked() {
        let r = rw("append_dot_mydomain = yes\n");
        assert_eq!(r.rewrite("bob@host"), "bob@host.example.com");
        let r = rw("");
        assert_eq!(r.rewrite("bob@host"), "bob@host");
    }

    #[test]
    fn resolve_classes() {
        let r = rw("relay_domains = relayed.org\n");
        let l = r.resolve("alice");
        assert_eq!(l.class, AddressClass::Local);
        assert_eq!(l.transport, "local");
        assert_eq!(l.nexthop, "mail.example.com");
        assert_eq!(r.resolve("bob@LOCALHOST").class, AddressClass::Local);
        assert_eq!(r.resolve("bob@[127.0.0.1]").class, AddressClass::Local);
        let rel = r.resolve("x@relayed.org");
        assert_eq!(
            (rel.class, rel.transport.as_str()),
            (AddressClass::Relay, "relay")
        );
        let d = r.resolve("x@gmail.com");
        assert_eq!(d.class, AddressClass::Default);
        assert_eq!(
            (d.transport.as_str(), d.nexthop.as_str()),
            ("smtp", "gmail.com")
        );
    }

    #[test]
    fn percent_hack_and_relayhost() {
        let r = rw("relayhost = [smarthost.example.net]:587\n");
        let p = r.resolve("user%far.org@example.com");
        assert_eq!(p.address, "user@far.org");
        assert_eq!(p.class, AddressClass::Default);
        assert_eq!(p.nexthop, "[smarthost.example.net]:587");
        let r = rw("allow_percent_hack = no\n");
        assert_eq!(
            r.resolve("user%far.org@example.com").class,
            AddressClass::Local
        );
    }

    #[test]
    fn routing_hidden_in_a_local_part_is_followed() {
        let r = rw("");
        for (input, want) in [
            ("far.org!user@example.com", "user@far.org"),
            ("\"user@far.org\"@example.com", "user@far.org"),
            ("\"user%far.org\"@example.com", "user@far.org"),
            ("\"far.org!user\"@example.com", "user@far.org"),
        ] {
            let p = r.resolve(input);
            assert_eq!(
                (p.address.as_str(), p.class),
                (want, AddressClass::Default),
                "{input}"
            );
        }
        let plain = r.resolve("\"john doe\"@example.com");
        assert_eq!(plain.class, AddressClass::Local);
        let r = rw("swap_bangpath = no\nresolve_dequoted_address = no\n");
        assert_eq!(
            r.resolve("far.org!user@example.com").class,
            AddressClass::Local
        );
        assert_eq!(
            r.resolve("\"user@far.org\"@example.com").class,
            AddressClass::Local
        );
    }
}
