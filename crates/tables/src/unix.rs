//! `unix:passwd.byname` and `unix:group.byname`: the system user and group databases.
//!
//! Owns the lookup through getpwnam/getgrnam (via `nix`) and the result text, which is the
//! passwd or group file line for the entry (`name:passwd:uid:gid:gecos:dir:shell`,
//! `name:passwd:gid:member,member`), as Postfix's unix: table returns. This is what makes
//! `local_recipient_maps = proxy:unix:passwd.byname $alias_maps` work.
//!
//! Invariants: a name the system does not know is "not found", never an error; a failing
//! name service (an errno other than "no such entry") is `Unavailable`. Keys that cannot be a
//! user name (empty, or containing NUL) are not found. Nothing panics.

use crate::error::TableError;
use crate::Table;

/// Which system map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnixMap {
    /// `unix:passwd.byname`
    PasswdByName,
    /// `unix:group.byname`
    GroupByName,
}

impl UnixMap {
    /// The map for a `unix:` table name, if Postern knows it.
    pub fn from_name(name: &str) -> Option<UnixMap> {
        match name {
            "passwd.byname" => Some(UnixMap::PasswdByName),
            "group.byname" => Some(UnixMap::GroupByName),
            _ => None,
        }
    }
}

/// A `unix:` table.
#[derive(Debug, Clone)]
pub struct UnixTable {
    spec: String,
    map: UnixMap,
}

impl UnixTable {
    /// A table over `map`, reported as `spec`.
    pub fn new(spec: &str, map: UnixMap) -> UnixTable {
        UnixTable {
            spec: spec.to_string(),
            map,
        }
    }
}

impl Table for UnixTable {
    fn lookup(&self, key: &str) -> Result<Option<String>, TableError> {
        if key.is_empty() || key.contains('\0') {
            return Ok(None);
        }
        let unavailable = |e: nix::Error| TableError::Unavailable {
            spec: self.spec.clone(),
            reason: format!("lookup of \"{key}\": {}", e.desc()),
        };
        match self.map {
            UnixMap::PasswdByName => {
                let user = nix::unistd::User::from_name(key).map_err(unavailable)?;
                Ok(user.map(|u| {
                    format!(
                        "{}:{}:{}:{}:{}:{}:{}",
                        u.name,
                        u.passwd.to_string_lossy(),
                        u.uid,
                        u.gid,
                        u.gecos.to_string_lossy(),
                        u.dir.display(),
                        u.shell.display()
                    )
                }))
            }
            UnixMap::GroupByName => {
                let group = nix::unistd::Group::from_name(key).map_err(unavailable)?;
                Ok(group.map(|g| {
                    format!(
                        "{}:{}:{}:{}",
                        g.name,
                        g.passwd.to_string_lossy(),
                        g.gid,
                        g.mem.join(",")
                    )
                }))
            }
        }
    }

    fn spec(&self) -> &str {
        &self.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_and_group_lookups() {
        let passwd = UnixTable::new("unix:passwd.byname", UnixMap::PasswdByName);
        let root = passwd.lookup("root").expect("lookup").expect("root exists");
        let fields: Vec<&str> = root.split(':').collect();
        assert_eq!(fields.len(), 7, "{root}");
        assert_eq!(fields[0], "root");
        assert_eq!(fields[2], "0");
        assert_eq!(fields[3], "0");
        let group = UnixTable::new("unix:group.byname", UnixMap::GroupByName);
        let root_group = group.lookup("root").expect("lookup").expect("group root");
        assert!(root_group.starts_with("root:"), "{root_group}");
        for key in ["no-such-user-postern-test", "", "a\0b"] {
            assert_eq!(passwd.lookup(key).expect("lookup"), None, "{key:?}");
            assert_eq!(group.lookup(key).expect("lookup"), None, "{key:?}");
        }
    }

    #[test]
    fn map_names() {
        let cases = [
            ("passwd.byname", Some(UnixMap::PasswdByName)),
            ("group.byname", Some(UnixMap::GroupByName)),
            ("passwd.byuid", None),
        ];
        for (name, want) in cases {
            assert_eq!(UnixMap::from_name(name), want, "{name}");
        }
    }
}
