//! Clients for the smtpd scenarios: a raw SMTP connection that sends exact bytes (pipelined
//! groups, smuggling sequences, partial lines) and reads whole replies (multi-line ones
//! included) with a deadline, optionally from another loopback source address; and runners
//! for the real clients the scenarios also use (Python's `smtplib`/`ssl`, swaks). Nothing
//! here knows what a reply should be: the scenarios do.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long a scenario waits for one reply before it fails.
pub const REPLY_WAIT: Duration = Duration::from_secs(30);

/// One SMTP reply: its code and its lines without CRLF (`250-PIPELINING`, `250 CHUNKING`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// The reply as sent, CRLF included.
    pub fn wire(&self) -> String {
        self.lines.iter().map(|l| format!("{l}\r\n")).collect()
    }
    /// The text of the last line (after `NNN `).
    pub fn text(&self) -> &str {
        self.lines
            .last()
            .map(|l| l.get(4..).unwrap_or(""))
            .unwrap_or("")
    }
    /// The keywords of an EHLO reply (every line after the first, without the code).
    pub fn keywords(&self) -> Vec<String> {
        self.lines
            .iter()
            .skip(1)
            .map(|l| l.get(4..).unwrap_or("").to_string())
            .collect()
    }
}

/// A raw SMTP connection.
pub struct Wire {
    stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl Wire {
    /// Connect to `addr` (`127.0.0.1:PORT`) without reading the greeting.
    pub fn connect(addr: &str) -> Wire {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        Wire::from_stream(stream)
    }

    /// Connect from the loopback address `src` (e.g. 127.0.0.2, outside a mynetworks of
    /// 127.0.0.1/32) without reading the greeting.
    pub fn connect_from(src: Ipv4Addr, addr: &str) -> Wire {
        use nix::sys::socket::{
            bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn,
        };
        use std::os::fd::AsRawFd;
        let dest: SocketAddrV4 = addr.parse().expect("an IPv4 socket address");
        let fd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .expect("socket");
        bind(fd.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(src, 0)))
            .unwrap_or_else(|e| panic!("bind {src}: {e}"));
        connect(fd.as_raw_fd(), &SockaddrIn::from(dest))
            .unwrap_or_else(|e| panic!("connect {addr} from {src}: {e}"));
        Wire::from_stream(TcpStream::from(fd))
    }

    fn from_stream(stream: TcpStream) -> Wire {
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("set_read_timeout");
        stream.set_nodelay(true).expect("set_nodelay");
        Wire {
            stream,
            buf: Vec::new(),
            eof: false,
        }
    }

    /// Connect and read the 220 greeting.
    pub fn open(addr: &str) -> Wire {
        let mut w = Wire::connect(addr);
        let g = w.reply();
        assert_eq!(g.code, 220, "greeting: {g:?}");
        w
    }

    /// Send exact bytes in one write.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("send {:?}: {e}", String::from_utf8_lossy(bytes)));
    }

    /// Read more bytes; false at EOF, on a reset connection or at the deadline.
    fn fill(&mut self, deadline: Instant) -> bool {
        let mut chunk = [0u8; 16384];
        loop {
            if self.eof {
                return false;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return false;
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    if Instant::now() > deadline {
                        return false;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.eof = true;
                    return false;
                }
            }
        }
    }

    /// One complete reply if one arrives within `wait`; None at EOF or timeout.
    pub fn reply_within(&mut self, wait: Duration) -> Option<Reply> {
        let deadline = Instant::now() + wait;
        let mut lines = Vec::new();
        loop {
            while let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..p]).into_owned();
                self.buf.drain(..p + 2);
                let last = line.as_bytes().get(3) != Some(&b'-');
                lines.push(line);
                if last {
                    let code = lines[0].get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
                    return Some(Reply { code, lines });
                }
            }
            if !self.fill(deadline) {
                return None;
            }
        }
    }

    /// One complete reply; fails the test at EOF or after [`REPLY_WAIT`].
    pub fn reply(&mut self) -> Reply {
        match self.reply_within(REPLY_WAIT) {
            Some(r) => r,
            None => panic!(
                "no complete reply (eof={}); unread bytes: {:?}",
                self.eof,
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// Send `line` + CRLF and read the reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// EHLO and its reply, which must be a 250.
    pub fn ehlo(&mut self, name: &str) -> Reply {
        let r = self.cmd(&format!("EHLO {name}"));
        assert_eq!(r.code, 250, "EHLO: {r:?}");
        r
    }

    /// Wait until the server closes the connection; returns what it sent until then.
    pub fn read_to_eof(&mut self) -> String {
        let deadline = Instant::now() + REPLY_WAIT;
        while self.fill(deadline) {}
        assert!(
            self.eof,
            "the server did not close the connection; it sent {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        let rest = String::from_utf8_lossy(&self.buf).into_owned();
        self.buf.clear();
        rest
    }
}

/// Run `python3 DIR/NAME ARGS...` after writing `script` there; panics unless it exits 0,
/// showing its output. Returns standard output.
pub fn python(dir: &Path, name: &str, script: &str, args: &[&str]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, script).expect("write python script");
    let out = Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python3 {name} {args:?} failed: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run swaks with `args`; returns its output (the exit status is for the caller to judge).
pub fn swaks(args: &[&str]) -> Output {
    Command::new("swaks")
        .args(args)
        .output()
        .expect("run swaks (Debian package swaks)")
}

/// The client as smtpd logged it on its `connect from NAME[ADDR]` line (the name is a
/// reverse lookup that depends on the machine's hosts file: `localhost` or `unknown`).
pub fn client_label(log: &str, addr: &str) -> String {
    let needle = format!("[{addr}]");
    log.lines()
        .filter_map(|l| l.split("connect from ").nth(1))
        .map(str::trim)
        .find(|l| l.ends_with(&needle))
        .unwrap_or_else(|| panic!("no `connect from ...{needle}` in the log:\n{log}"))
        .to_string()
}
