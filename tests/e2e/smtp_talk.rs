//! A plain SMTP client for the smtpd scenarios: one command line out, one reply in, over a
//! real TCP connection, so a test can hold Postern's replies against Postfix's word for word.
//! It can bind its end of the connection to another loopback address (127.0.0.2 is outside
//! `mynetworks = 127.0.0.1/32`). Every read has a deadline: a server that stops answering
//! fails the test with the conversation so far instead of hanging it.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::time::Duration;

/// One SMTP reply: its code and its lines as sent, without CRLF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// The last (for a one-line reply, the only) line, e.g. `250 2.1.5 Ok`.
    pub fn line(&self) -> &str {
        self.lines.last().map(String::as_str).unwrap_or("")
    }
}

/// An open SMTP conversation.
pub struct Smtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    pub greeting: Reply,
    /// What was said so far, for failure messages.
    pub transcript: String,
}

const READ_DEADLINE: Duration = Duration::from_secs(30);

impl Smtp {
    /// Connect to `addr` (`127.0.0.1:PORT`, `[::1]:PORT`) and read the greeting.
    pub fn connect(addr: &str) -> Smtp {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        Smtp::over(stream)
    }

    /// Connect from the local address `src` (e.g. 127.0.0.2) to `addr`.
    pub fn connect_from(src: &str, addr: &str) -> Smtp {
        Smtp::over(
            connect_from(src, addr).unwrap_or_else(|e| panic!("connect {src} → {addr}: {e}")),
        )
    }

    fn over(stream: TcpStream) -> Smtp {
        stream
            .set_read_timeout(Some(READ_DEADLINE))
            .expect("set read timeout");
        let writer = stream.try_clone().expect("clone stream");
        let mut s = Smtp {
            reader: BufReader::new(stream),
            writer,
            greeting: Reply {
                code: 0,
                lines: Vec::new(),
            },
            transcript: String::new(),
        };
        s.greeting = s.reply();
        s
    }

    /// Send raw bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.transcript.push_str(&format!(
            "C: {}\n",
            String::from_utf8_lossy(bytes).trim_end()
        ));
        self.writer.write_all(bytes).expect("send to server");
    }

    /// Read one complete reply (all lines of a multi-line reply).
    pub fn reply(&mut self) -> Reply {
        let mut lines = Vec::new();
        loop {
            let mut buf = Vec::new();
            match self.reader.read_until(b'\n', &mut buf) {
                Ok(0) => panic!(
                    "server closed the connection in the middle of a reply\n{}",
                    self.transcript
                ),
                Ok(_) => {}
                Err(e) => panic!("reading a reply: {e}\n{}", self.transcript),
            }
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            self.transcript.push_str(&format!("S: {line}\n"));
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                break;
            }
        }
        let code = lines[0].get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        Reply { code, lines }
    }

    /// Send one command line (CRLF added) and read its reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Send a command and return the last line of its reply (the whole of a one-line reply).
    pub fn line(&mut self, line: &str) -> String {
        self.cmd(line).line().to_string()
    }

    /// Send a command and insist on the reply code.
    pub fn expect(&mut self, line: &str, code: u16) -> Reply {
        let r = self.cmd(line);
        assert_eq!(
            r.code, code,
            "{line:?} got {:?}, want {code}\n{}",
            r.lines, self.transcript
        );
        r
    }

    /// DATA, the message (dot-stuffed by the caller), and the final dot; returns the reply
    /// to the content (for a `354` go-ahead) or to DATA itself.
    pub fn data(&mut self, message: &str) -> Reply {
        let r = self.cmd("DATA");
        if r.code != 354 {
            return r;
        }
        let mut body = message.replace("\r\n", "\n").replace('\n', "\r\n");
        if !body.ends_with("\r\n") {
            body.push_str("\r\n");
        }
        body.push_str(".\r\n");
        self.send(body.as_bytes());
        self.reply()
    }

    /// QUIT, and wait until the server closes its end.
    pub fn quit(mut self) {
        let r = self.cmd("QUIT");
        assert_eq!(r.line(), "221 2.0.0 Bye", "{}", self.transcript);
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut self.reader, &mut rest);
    }
}

/// The queue ID of `250 2.0.0 Ok: queued as ID`.
pub fn queued_id(r: &Reply) -> String {
    r.line()
        .strip_prefix("250 2.0.0 Ok: queued as ")
        .unwrap_or_else(|| panic!("not a queued reply: {:?}", r.lines))
        .to_string()
}

/// A TCP connection from a chosen local address.
pub fn connect_from(src: &str, addr: &str) -> std::io::Result<TcpStream> {
    use nix::sys::socket::{
        bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrStorage,
    };
    use std::os::fd::AsRawFd;
    let src: IpAddr = src.parse().expect("source address");
    let dst: SocketAddr = addr.parse().expect("server address");
    let family = if dst.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd: OwnedFd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    bind(
        fd.as_raw_fd(),
        &SockaddrStorage::from(SocketAddr::new(src, 0)),
    )?;
    connect(fd.as_raw_fd(), &SockaddrStorage::from(dst))?;
    Ok(TcpStream::from(fd))
}

/// The last line of the log that ends with `message` (the part after `postfix/smtpd[PID]: `).
pub fn smtpd_line(inst: &testkit::Instance, message: &str) -> Option<String> {
    inst.log()
        .lines()
        .rev()
        .find(|l| l.contains("postfix/smtpd[") && l.ends_with(&format!("]: {message}")))
        .map(str::to_string)
}

/// Wait for an smtpd log line whose message is exactly `message`.
pub fn wait_smtpd_line(inst: &testkit::Instance, message: &str) -> String {
    inst.wait_until(&format!("smtpd to log {message:?}"), || {
        smtpd_line(inst, message)
    })
}
