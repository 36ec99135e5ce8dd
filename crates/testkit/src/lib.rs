//! Test support for Postern's end-to-end scenarios: throw-away instances of the real
//! `postern` binary with their own configuration, queue, spool and log; local users to
//! deliver to; waiting on log events; reading what was delivered with independent readers
//! (Python's `mailbox` module).
//!
//! Waiting is always on an observable event (a log line, a file), polled until a deadline;
//! a deadline that passes fails the test with what was seen. Nothing sleeps in place of an
//! event.
//!
//! Identity: run as root (as CI does), an instance drops to `mail_owner = postfix` and the
//! test users are real accounts created on demand (`pt-alice`, `pt-bob`, ...). Run as an
//! ordinary user, everything runs as that user and every test user is that user.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Default deadline for waits: generous for a loaded 2-core CI machine.
pub const WAIT: Duration = Duration::from_secs(30);

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

static USERS: Mutex<()> = Mutex::new(());

/// A local account to deliver to. As root, `name` is created if missing (with a home
/// directory); otherwise the current user is returned whatever the name.
pub fn user(name: &str) -> User {
    if !is_root() {
        let me = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .expect("current user has a passwd entry");
        return User::from(me);
    }
    let _g = USERS.lock().unwrap_or_else(|e| e.into_inner());
    if nix::unistd::User::from_name(name).ok().flatten().is_none() {
        let status = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", name])
            .status()
            .expect("run useradd");
        assert!(status.success(), "useradd {name} failed");
    }
    let u = nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .expect("user exists after useradd");
    User::from(u)
}

#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl From<nix::unistd::User> for User {
    fn from(u: nix::unistd::User) -> User {
        User {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            home: u.dir,
        }
    }
}

impl User {
    /// Write a file in the user's home, owned by the user (e.g. `.forward`).
    pub fn write_home_file(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.home.join(name);
        fs::write(&p, contents).expect("write home file");
        if is_root() {
            std::os::unix::fs::chown(&p, Some(self.uid), Some(self.gid)).expect("chown");
        }
        p
    }

    pub fn remove_home_file(&self, name: &str) {
        let _ = fs::remove_file(self.home.join(name));
        let _ = fs::remove_dir_all(self.home.join(name));
    }
}

/// How to build an instance.
pub struct Builder {
    bin: PathBuf,
    main_cf: Vec<String>,
    aliases: String,
    master_cf: Vec<String>,
    smtp_port: Option<u16>,
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

impl Builder {
    /// Extra `main.cf` lines (later lines override earlier ones, as in Postfix).
    pub fn main_cf(mut self, line: &str) -> Builder {
        self.main_cf.push(line.to_string());
        self
    }

    pub fn aliases(mut self, text: &str) -> Builder {
        self.aliases = text.to_string();
        self
    }

    /// Listen for SMTP on a free loopback port (`127.0.0.1:PORT inet n - n - - smtpd`), with
    /// optional `-o name=value` overrides for that service.
    pub fn smtpd(mut self, overrides: &[&str]) -> Builder {
        let port = free_port();
        self.smtp_port = Some(port);
        let mut line = format!("127.0.0.1:{port} inet n - n - - smtpd");
        for o in overrides {
            line.push_str(&format!("\n  -o {o}"));
        }
        self.master_cf.push(line);
        self
    }

    /// Any other master.cf line(s), as written.
    pub fn master_cf(mut self, text: &str) -> Builder {
        self.master_cf.push(text.to_string());
        self
    }

    /// Create the instance (configuration written, `newaliases` run) without starting it.
    pub fn build(self) -> Instance {
        let dir = tempfile::Builder::new()
            .prefix("postern-test-")
            .tempdir()
            .expect("tempdir");
        // The daemon drops to mail_owner when run as root: it must reach its files.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let root = dir.path().to_path_buf();
        let etc = root.join("etc");
        let mail = root.join("mail");
        fs::create_dir_all(&etc).expect("mkdir etc");
        fs::create_dir_all(&mail).expect("mkdir mail");
        fs::set_permissions(&mail, fs::Permissions::from_mode(0o1777)).expect("chmod mail");
        let mut cf = format!(
            "# written by testkit\n\
             queue_directory = {root}/spool\n\
             myhostname = test.example\n\
             mydomain = example\n\
             myorigin = $myhostname\n\
             mydestination = $myhostname, localhost\n\
             inet_interfaces = loopback-only\n\
             mail_spool_directory = {root}/mail\n\
             alias_maps = hash:{root}/etc/aliases\n\
             alias_database = hash:{root}/etc/aliases\n\
             maillog_file = {root}/maillog\n\
             maillog_file_prefixes = {root}\n\
             queue_run_delay = 1s\n\
             minimal_backoff_time = 1s\n\
             maximal_backoff_time = 2s\n\
             deliver_lock_delay = 1s\n",
            root = root.display()
        );
        for l in &self.main_cf {
            cf.push_str(l);
            cf.push('\n');
        }
        fs::write(etc.join("main.cf"), cf).expect("write main.cf");
        fs::write(etc.join("aliases"), &self.aliases).expect("write aliases");
        if !self.master_cf.is_empty() {
            let mut m = self.master_cf.join("\n");
            m.push('\n');
            fs::write(etc.join("master.cf"), m).expect("write master.cf");
        }
        let inst = Instance {
            bin: self.bin,
            root,
            _dir: dir,
            daemon: None,
            smtp_port: self.smtp_port,
        };
        let out = inst.run("newaliases", &[], b"");
        assert!(
            out.status.success(),
            "newaliases failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        inst
    }

    /// Build and start.
    pub fn start(self) -> Instance {
        let mut i = self.build();
        i.start();
        i
    }
}

/// One Postern instance in a temporary directory.
pub struct Instance {
    bin: PathBuf,
    root: PathBuf,
    _dir: tempfile::TempDir,
    daemon: Option<Child>,
    smtp_port: Option<u16>,
}

impl Instance {
    /// `bin` is the `postern` executable (`env!("CARGO_BIN_EXE_postern")`).
    pub fn builder(bin: &str) -> Builder {
        Builder {
            bin: PathBuf::from(bin),
            main_cf: Vec::new(),
            aliases: "postmaster: root\n".into(),
            master_cf: Vec::new(),
            smtp_port: None,
        }
    }

    /// The SMTP port chosen by [`Builder::smtpd`].
    pub fn smtp_port(&self) -> u16 {
        self.smtp_port.expect("instance built with .smtpd()")
    }

    /// `127.0.0.1:PORT` of the SMTP listener.
    pub fn smtp_addr(&self) -> String {
        format!("127.0.0.1:{}", self.smtp_port())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn config_dir(&self) -> PathBuf {
        self.root.join("etc")
    }
    pub fn spool(&self) -> PathBuf {
        self.root.join("spool")
    }
    pub fn log_path(&self) -> PathBuf {
        self.root.join("maillog")
    }
    /// The mbox of `user` in mail_spool_directory.
    pub fn mailbox(&self, user: &str) -> PathBuf {
        self.root.join("mail").join(user)
    }
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// A command of the instance, e.g. `inst.command("postqueue", &["-p"])`, with
    /// `MAIL_CONFIG` pointing at this instance.
    pub fn command(&self, name: &str, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg(name).args(args).env("MAIL_CONFIG", self.config_dir());
        c
    }

    /// Run a command with `input` on stdin and wait for it.
    pub fn run(&self, name: &str, args: &[&str], input: &[u8]) -> Output {
        run_with_input(self.command(name, args), input)
    }

    /// `sendmail ARGS` with the message on stdin; panics unless it exits 0.
    pub fn send(&self, args: &[&str], message: &str) {
        let out = self.run("sendmail", args, message.as_bytes());
        assert!(
            out.status.success(),
            "sendmail {args:?} failed: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Append to main.cf (takes effect at the next start or `postfix reload`).
    pub fn add_main_cf(&self, line: &str) {
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(self.config_dir().join("main.cf"))
            .expect("open main.cf");
        writeln!(f, "{line}").expect("append main.cf");
    }

    /// `postfix start-fg` as a child process; returns once the daemon has logged its start.
    pub fn start(&mut self) {
        assert!(self.daemon.is_none(), "already started");
        let before = self.log().matches("daemon started").count();
        let child = self
            .command("postfix", &["start-fg"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn postfix start-fg");
        self.daemon = Some(child);
        self.wait_until("the daemon to start", || {
            (self.log().matches("daemon started").count() > before).then_some(())
        });
    }

    /// `postfix stop` and wait for the daemon process to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let out = self.run("postfix", &["stop"], b"");
            assert!(
                out.status.success(),
                "postfix stop: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let _ = child.wait();
        }
    }

    /// SIGKILL the whole daemon (supervisor, daemon and agents) at once.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            // start-fg runs the master in this child; its process group holds everything.
            let pid = child.id() as i32;
            // SAFETY: kill(2) on a process we started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            let _ = child.wait();
            // The privileged supervisor's children (daemon, agents) die with it or on EOF;
            // wait until the pid lock is free.
            self.wait_until("the old daemon to release its lock", || {
                let out = self.run("postfix", &["status"], b"");
                (!out.status.success()).then_some(())
            });
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Poll `f` until it returns Some or the deadline (WAIT) passes; panics with the log.
    pub fn wait_until<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}\n--- maillog ---\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until at least `n` log lines contain every one of `needles`; returns those lines.
    pub fn wait_log(&self, needles: &[&str], n: usize) -> Vec<String> {
        self.wait_until(&format!("{n} log line(s) with {needles:?}"), || {
            let lines: Vec<String> = self
                .log()
                .lines()
                .filter(|l| needles.iter().all(|s| l.contains(s)))
                .map(str::to_string)
                .collect();
            (lines.len() >= n).then_some(lines)
        })
    }

    /// Lines of the log containing every needle (no waiting).
    pub fn log_lines(&self, needles: &[&str]) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| needles.iter().all(|s| l.contains(s)))
            .map(str::to_string)
            .collect()
    }

    /// Queue IDs currently in queue directory `q` (`deferred`, `hold`, ...).
    pub fn queue_ids(&self, q: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.spool().join(q))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Wait until no message is left in any queue.
    pub fn wait_queue_empty(&self) {
        self.wait_until("the queue to empty", || {
            ["maildrop", "incoming", "active", "deferred", "hold"]
                .iter()
                .all(|q| self.queue_ids(q).is_empty())
                .then_some(())
        });
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = self.run("postfix", &["stop"], b"");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn run_with_input(mut cmd: Command, input: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn command");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait for command");
    let _ = writer.join();
    out
}

/// One message as Python's `mailbox` module reads it.
#[derive(Debug, Clone)]
pub struct ReadMessage {
    /// (name, value) in order, values unfolded.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// mbox only: the From_ line without "From ".
    pub from_line: String,
}

impl ReadMessage {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

const READER: &str = r#"
import mailbox, sys, json
kind, path = sys.argv[1], sys.argv[2]
box = mailbox.mbox(path, create=False) if kind == "mbox" else mailbox.Maildir(path, factory=None, create=False)
out = []
for key in sorted(box.keys()) if kind == "maildir" else box.keys():
    m = box[key]
    payload = m.get_payload(decode=False)
    if isinstance(payload, list):
        payload = m.as_string().split("\n\n", 1)[1] if "\n\n" in m.as_string() else ""
    out.append({
        "headers": [[k, " ".join(str(v).split())] for k, v in m.items()],
        "body": payload,
        "from_line": m.get_from() if kind == "mbox" else "",
    })
print(json.dumps(out))
"#;

fn read_box(kind: &str, path: &Path) -> Vec<ReadMessage> {
    let out = Command::new("python3")
        .args(["-c", READER, kind])
        .arg(path)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python mailbox reader failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_reader_json(&String::from_utf8_lossy(&out.stdout))
}

/// Read an mbox with Python's `mailbox.mbox`.
pub fn read_mbox(path: &Path) -> Vec<ReadMessage> {
    if !path.exists() {
        return Vec::new();
    }
    read_box("mbox", path)
}

/// Read a Maildir with Python's `mailbox.Maildir` (messages in name order).
pub fn read_maildir(path: &Path) -> Vec<ReadMessage> {
    if !path.exists() {
        return Vec::new();
    }
    read_box("maildir", path)
}

// A minimal JSON reader for the reader's output (arrays, objects, strings), so the testkit
// needs no JSON crate.
fn parse_reader_json(s: &str) -> Vec<ReadMessage> {
    let v = json::parse(s.trim()).expect("reader output is JSON");
    let mut out = Vec::new();
    for m in v.as_array() {
        let headers = m
            .get("headers")
            .as_array()
            .iter()
            .map(|p| {
                let p = p.as_array();
                (p[0].as_str().to_string(), p[1].as_str().to_string())
            })
            .collect();
        out.push(ReadMessage {
            headers,
            body: m.get("body").as_str().to_string(),
            from_line: m.get("from_line").as_str().to_string(),
        });
    }
    out
}

pub mod json;
