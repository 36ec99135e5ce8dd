//! Shared helpers for the scenarios.
pub use testkit::{is_root, read_maildir, read_mbox, user, Instance, User};

pub const BIN: &str = env!("CARGO_BIN_EXE_postern");

/// An instance with the defaults every scenario starts from.
pub fn instance() -> testkit::Builder {
    Instance::builder(BIN)
}

/// One message of an mbox as Python's `email` package parses it, with the MIME structure of
/// delivery status notifications (RFC 3464) laid open.
#[derive(Debug, Clone)]
pub struct MimeMessage {
    /// The From_ line without "From ".
    pub from_line: String,
    /// (name, value) in order, values unfolded.
    pub headers: Vec<(String, String)>,
    /// `maintype/subtype`, lower case.
    pub content_type: String,
    /// The `report-type` parameter of the Content-Type, or "".
    pub report_type: String,
    pub parts: Vec<MimePart>,
}

/// One part of a multipart message.
#[derive(Debug, Clone)]
pub struct MimePart {
    pub content_type: String,
    pub description: String,
    /// message/delivery-status: the per-message block, then one block per recipient.
    pub fields: Vec<Vec<(String, String)>>,
    /// message/rfc822: the attached message's headers.
    pub headers: Vec<(String, String)>,
    /// message/rfc822: the attached message's body; otherwise the part's text.
    pub body: String,
}

fn find<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl MimeMessage {
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }
    /// The first part with this content type.
    pub fn part(&self, content_type: &str) -> Option<&MimePart> {
        self.parts.iter().find(|p| p.content_type == content_type)
    }
}

impl MimePart {
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }
    /// A field of block `block` of a message/delivery-status part (0 = per-message).
    pub fn field(&self, block: usize, name: &str) -> Option<&str> {
        self.fields.get(block).and_then(|b| find(b, name))
    }
}

const MIME_READER: &str = r#"
import mailbox, sys, json
def hdrs(m):
    return [[k, " ".join(str(v).split())] for k, v in m.items()]
out = []
for m in mailbox.mbox(sys.argv[1], create=False):
    d = {"from_line": m.get_from(), "headers": hdrs(m), "content_type": m.get_content_type(),
         "report_type": m.get_param("report-type") or "", "parts": []}
    if m.is_multipart():
        for p in m.get_payload():
            ct = p.get_content_type()
            pd = {"content_type": ct, "description": p.get("Content-Description", ""),
                  "fields": [], "headers": [], "body": ""}
            if ct == "message/delivery-status":
                pd["fields"] = [hdrs(block) for block in p.get_payload()]
            elif ct == "message/rfc822":
                inner = p.get_payload()[0]
                pd["headers"] = hdrs(inner)
                pd["body"] = inner.as_string().split("\n\n", 1)[-1] if inner.is_multipart() else inner.get_payload()
            else:
                pd["body"] = p.get_payload()
            d["parts"].append(pd)
    out.append(d)
print(json.dumps(out))
"#;

/// Read an mbox with Python's `mailbox` and `email` packages, MIME parts included.
pub fn read_mime_mbox(path: &std::path::Path) -> Vec<MimeMessage> {
    if !path.exists() {
        return Vec::new();
    }
    let out = std::process::Command::new("python3")
        .args(["-c", MIME_READER])
        .arg(path)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python MIME reader failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = testkit::json::parse(String::from_utf8_lossy(&out.stdout).trim())
        .expect("reader output is JSON");
    let pairs = |v: &testkit::json::Value| -> Vec<(String, String)> {
        v.as_array()
            .iter()
            .map(|p| {
                (
                    p.as_array()[0].as_str().to_string(),
                    p.as_array()[1].as_str().to_string(),
                )
            })
            .collect()
    };
    v.as_array()
        .iter()
        .map(|m| MimeMessage {
            from_line: m.get("from_line").as_str().to_string(),
            headers: pairs(m.get("headers")),
            content_type: m.get("content_type").as_str().to_string(),
            report_type: m.get("report_type").as_str().to_string(),
            parts: m
                .get("parts")
                .as_array()
                .iter()
                .map(|p| MimePart {
                    content_type: p.get("content_type").as_str().to_string(),
                    description: p.get("description").as_str().to_string(),
                    fields: p.get("fields").as_array().iter().map(pairs).collect(),
                    headers: pairs(p.get("headers")),
                    body: p.get("body").as_str().to_string(),
                })
                .collect(),
        })
        .collect()
}

/// The queue ID at the start of a log line's message (`... postfix/qmgr[1]: ID: ...`).
pub fn log_queue_id(line: &str) -> String {
    line.split("]: ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_default()
        .to_string()
}

/// The new queue ID at the end of a bounce log line (`...notification: NEWID`).
pub fn notice_id(line: &str) -> String {
    line.rsplit(": ")
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A scratch directory every uid can reach (deliveries run as recipients, `default_privs`
/// or the alias owner when the daemon runs as root), holding `record.sh`: a delivery command
/// that writes what it saw — its uid, gid, working directory, environment and standard
/// input — to `out/NAME`, atomically (written aside, then renamed), so a test can wait for
/// the file and then read all of it.
pub struct Probe {
    dir: tempfile::TempDir,
}

/// What one run of `record.sh` saw.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub uid: u32,
    pub gid: u32,
    pub cwd: String,
    pub env: Vec<(String, String)>,
    /// Everything the command read on standard input.
    pub input: String,
}

impl Recorded {
    pub fn env(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Probe {
    pub fn new() -> Probe {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("postern-probe-")
            .tempdir()
            .expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let out = dir.path().join("out");
        std::fs::create_dir(&out).expect("mkdir out");
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o1777)).expect("chmod out");
        let script = dir.path().join("record.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\n\
             # record.sh OUT: what a delivery command saw\n\
             { echo \"uid=$(id -u)\"; echo \"gid=$(id -g)\"; echo \"cwd=$(pwd)\";\n  \
               env | sort | sed 's/^/env /'; echo '--- input'; cat; } > \"$1.part.$$\" && mv \"$1.part.$$\" \"$1\"\n",
        )
        .expect("write record.sh");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Probe { dir }
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// `out/NAME`: where a recording or a file delivery named NAME lands.
    pub fn out(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join("out").join(name)
    }

    /// The command line that records into `out/NAME`.
    pub fn command(&self, name: &str) -> String {
        format!(
            "{} {}",
            self.dir.path().join("record.sh").display(),
            self.out(name).display()
        )
    }

    /// Write an executable script into the probe directory; returns its path.
    pub fn script(&self, name: &str, body: &str) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.path().join(name);
        std::fs::write(&p, body).expect("write script");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod script");
        p
    }

    /// Wait until `out/NAME` was recorded and read it.
    pub fn wait(&self, inst: &Instance, name: &str) -> Recorded {
        let path = self.out(name);
        inst.wait_until(&format!("{} to be recorded", path.display()), || {
            std::fs::read_to_string(&path).ok()
        });
        self.read(name)
    }

    pub fn read(&self, name: &str) -> Recorded {
        let text = std::fs::read_to_string(self.out(name)).expect("read recording");
        let (head, input) = text
            .split_once("--- input\n")
            .expect("recording has an input section");
        let mut r = Recorded {
            uid: u32::MAX,
            gid: u32::MAX,
            cwd: String::new(),
            env: Vec::new(),
            input: input.to_string(),
        };
        for line in head.lines() {
            if let Some(v) = line.strip_prefix("uid=") {
                r.uid = v.parse().expect("uid");
            } else if let Some(v) = line.strip_prefix("gid=") {
                r.gid = v.parse().expect("gid");
            } else if let Some(v) = line.strip_prefix("cwd=") {
                r.cwd = v.to_string();
            } else if let Some((k, v)) = line.strip_prefix("env ").and_then(|kv| kv.split_once('='))
            {
                r.env.push((k.to_string(), v.to_string()));
            }
        }
        r
    }
}

/// uid and gid of the account `name` (e.g. `default_privs`).
pub fn account_ids(name: &str) -> (u32, u32) {
    let u = nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no account {name}"));
    (u.uid.as_raw(), u.gid.as_raw())
}

/// The identity of this test process.
pub fn my_ids() -> (u32, u32) {
    (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    )
}
