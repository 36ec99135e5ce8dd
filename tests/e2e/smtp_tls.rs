//! STARTTLS in smtpd, with certificates made by rcgen: offered under
//! `smtpd_tls_security_level = may`, used by Python's smtplib to deliver a message that is
//! then marked `with ESMTPS` and logged as `Anonymous TLS connection established`;
//! `encrypt` refuses mail commands before TLS with `530 5.7.0`; commands pipelined after
//! STARTTLS in the clear are never executed (the 2011 injection bug class); `postfix reload`
//! makes new connections see a replaced certificate.

use std::path::PathBuf;

use crate::common::*;
use crate::smtp_wire::{client_label, python, Reply, Wire};

/// A self-signed certificate for `test.example` and `127.0.0.1` (smtplib checks the name it
/// connected to) written as `NAME.crt`/`NAME.key` into `dir`.
struct Cert {
    crt: PathBuf,
    key: PathBuf,
}

fn make_cert(dir: &std::path::Path, name: &str, common_name: &str, serial: u64) -> Cert {
    let mut params =
        rcgen::CertificateParams::new(vec!["test.example".to_string(), "127.0.0.1".to_string()])
            .expect("cert params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params.serial_number = Some(rcgen::SerialNumber::from(serial));
    let key = rcgen::KeyPair::generate().expect("key pair");
    let cert = params.self_signed(&key).expect("self-signed certificate");
    let c = Cert {
        crt: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    std::fs::write(&c.crt, cert.pem()).expect("write certificate");
    std::fs::write(&c.key, key.serialize_pem()).expect("write key");
    c
}

/// An instance whose smtpd has `smtpd_tls_security_level = LEVEL` and a fresh certificate
/// (`smtpd.crt`/`smtpd.key` in the instance directory, readable by the daemon), plus
/// `overrides` for the listener.
fn tls_instance(level: &str, overrides: &[&str]) -> (Instance, Cert) {
    let mut o = vec![format!("smtpd_tls_security_level={level}")];
    o.extend(overrides.iter().map(|s| s.to_string()));
    let o: Vec<&str> = o.iter().map(String::as_str).collect();
    let mut inst = instance().smtpd(&o).build();
    let cert = make_cert(inst.root(), "smtpd", "first certificate", 1001);
    inst.add_main_cf(&format!("smtpd_tls_cert_file = {}", cert.crt.display()));
    inst.add_main_cf(&format!("smtpd_tls_key_file = {}", cert.key.display()));
    inst.start();
    (inst, cert)
}

fn assert_reply(r: &Reply, wire: &str) {
    assert_eq!(r.wire(), wire, "reply");
}

const STARTTLS_SEND: &str = r#"
import smtplib, ssl, sys
port, cafile, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=30)
s.ehlo()
print("offered", s.has_extn("starttls"))
print("starttls", *s.starttls(context=ctx))
proto, cipher, bits = s.sock.version(), s.sock.cipher()[0], s.sock.cipher()[2]
print("tls", proto, cipher, bits)
s.ehlo()
print("offered-after", s.has_extn("starttls"))
s.sendmail("sender@client.example", [rcpt], b"Subject: over tls\r\n\r\nsecret over tls\r\n")
s.quit()
"#;

#[test]
fn starttls_delivers_with_esmtps_and_logs_the_tls_session() {
    let u = user("pt-smtp3");
    let (inst, cert) = tls_instance(
        "may",
        &["smtpd_tls_loglevel=1", "smtpd_tls_received_header=yes"],
    );
    let _ = std::fs::remove_file(inst.mailbox(&u.name));
    let rcpt = format!("{}@test.example", u.name);
    let out = python(
        inst.root(),
        "starttls.py",
        STARTTLS_SEND,
        &[
            &inst.smtp_port().to_string(),
            &cert.crt.display().to_string(),
            &rcpt,
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "offered True", "{out}");
    assert_eq!(
        lines[1], "starttls 220 b'2.0.0 Ready to start TLS'",
        "{out}"
    );
    let tls: Vec<&str> = lines[2].split(' ').collect();
    assert_eq!(tls[0], "tls", "{out}");
    assert_eq!(
        lines[3], "offered-after False",
        "STARTTLS is not offered twice"
    );

    inst.wait_log(&["status=sent (delivered to mailbox)"], 1);
    let label = client_label(&inst.log(), "127.0.0.1");
    let (proto, cipher, bits) = (tls[1], tls[2], tls[3]);
    assert_eq!(
        inst.log_lines(&[&format!(
            "Anonymous TLS connection established from {label}: {proto} with cipher {cipher} ({bits}/{bits} bits)"
        )])
        .len(),
        1,
        "{}",
        inst.log()
    );
    inst.wait_log(
        &[&format!(
            "disconnect from {label} ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7"
        )],
        1,
    );
    let msgs = read_mbox(&inst.mailbox(&u.name));
    assert_eq!(msgs.len(), 1);
    let received = msgs[0].header("Received").expect("Received");
    let name = label.split('[').next().unwrap_or_default();
    // smtpd_tls_received_header = yes: the protocol and cipher, as Postfix writes them.
    assert!(
        received.starts_with(&format!(
            "from client.example ({name} [127.0.0.1]) (using {proto} with cipher {cipher} ({bits}/{bits} bits)"
        )) && received.contains(") (No client certificate requested) by test.example (Postern) with ESMTPS id ")
            && received.contains(&format!(" for <{rcpt}>; ")),
        "{received}"
    );
    assert_eq!(msgs[0].body, "secret over tls\n");
}

#[test]
fn security_level_encrypt_refuses_mail_before_starttls() {
    let u = user("pt-smtp3");
    let (inst, cert) = tls_instance("encrypt", &[]);
    let rcpt = format!("{}@test.example", u.name);
    let mut w = Wire::open(&inst.smtp_addr());
    let ehlo = w.ehlo("client.example");
    assert!(ehlo.keywords().iter().any(|k| k == "STARTTLS"), "{ehlo:?}");
    for cmd in [
        "MAIL FROM:<a@client.example>".to_string(),
        format!("RCPT TO:<{rcpt}>"),
        "DATA".into(),
        format!("VRFY {}", u.name),
        "ETRN test.example".into(),
    ] {
        assert_reply(
            &w.cmd(&cmd),
            "530 5.7.0 Must issue a STARTTLS command first\r\n",
        );
    }
    assert_reply(&w.cmd("NOOP"), "250 2.0.0 Ok\r\n");
    assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");
    let label = client_label(&inst.log(), "127.0.0.1");
    inst.wait_log(
        &[&format!(
            "disconnect from {label} ehlo=1 mail=0/1 rcpt=0/1 data=0/1 noop=1 vrfy=0/1 etrn=0/1 quit=1 commands=3/8"
        )],
        1,
    );

    // After STARTTLS the same client may send.
    let _ = std::fs::remove_file(inst.mailbox(&u.name));
    python(
        inst.root(),
        "starttls.py",
        STARTTLS_SEND,
        &[
            &inst.smtp_port().to_string(),
            &cert.crt.display().to_string(),
            &rcpt,
        ],
    );
    inst.wait_log(&["status=sent (delivered to mailbox)"], 1);
    assert_eq!(read_mbox(&inst.mailbox(&u.name)).len(), 1);
}

#[test]
fn without_a_certificate_starttls_is_neither_offered_nor_accepted() {
    let inst = instance().smtpd(&[]).start();
    let mut w = Wire::open(&inst.smtp_addr());
    let ehlo = w.ehlo("client.example");
    assert!(!ehlo.keywords().iter().any(|k| k == "STARTTLS"), "{ehlo:?}");
    assert_reply(
        &w.cmd("STARTTLS"),
        "502 5.5.1 Error: command not implemented\r\n",
    );
    assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");
}

/// Send STARTTLS and a MAIL command in one write, then (if the server said 220) do the TLS
/// handshake on the same socket and send RCPT: it must find no transaction.
const INJECT: &str = r#"
import socket, ssl, sys
port, cafile, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sock = socket.create_connection(("127.0.0.1", port), timeout=30)
f = sock.makefile("rb", buffering=0)
def reply(stream):
    lines = []
    while True:
        line = b""
        while not line.endswith(b"\r\n"):
            c = stream.read(1) if hasattr(stream, "read") else stream.recv(1)
            if not c:
                return lines + ["EOF " + line.decode()]
            line += c
        lines.append(line.decode().rstrip("\r\n"))
        if line[3:4] != b"-":
            return lines
print("greeting", reply(f)[-1])
sock.sendall(b"EHLO client.example\r\n")
print("ehlo", reply(f)[-1])
sock.sendall(b"STARTTLS\r\nMAIL FROM:<evil@injected.example>\r\n")
r = reply(f)
print("starttls", r[-1])
if not r[-1].startswith("220 "):
    rest = sock.recv(1000)
    print("then", rest.decode() if rest else "EOF")
    sys.exit(0)
ctx = ssl.create_default_context(cafile=cafile)
tls = ctx.wrap_socket(sock, server_hostname="test.example")
print("tls", tls.version())
def cmd(line):
    tls.sendall(line.encode() + b"\r\n")
    out = reply(tls)
    print(line.split(":")[0], out[-1])
cmd("RCPT TO:<%s>" % rcpt)
cmd("DATA")
cmd("EHLO client.example")
cmd("MAIL FROM:<good@client.example>")
cmd("RCPT TO:<%s>" % rcpt)
cmd("QUIT")
"#;

#[test]
fn commands_pipelined_after_starttls_are_discarded() {
    let u = user("pt-smtp3");
    // Without the pipelining guard, so that the handshake happens and the discard itself
    // is what is proved.
    let (inst, cert) = tls_instance("may", &["smtpd_forbid_unauth_pipelining=no"]);
    let rcpt = format!("{}@test.example", u.name);
    let out = python(
        inst.root(),
        "inject.py",
        INJECT,
        &[
            &inst.smtp_port().to_string(),
            &cert.crt.display().to_string(),
            &rcpt,
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            "greeting 220 test.example ESMTP Postern",
            "ehlo 250 CHUNKING",
            "starttls 220 2.0.0 Ready to start TLS",
            "tls TLSv1.3",
            // The injected MAIL was never executed: there is no transaction.
            "RCPT TO 503 5.5.1 Error: need MAIL command",
            "DATA 503 5.5.1 Error: need RCPT command",
            "EHLO client.example 250 CHUNKING",
            "MAIL FROM 250 2.1.0 Ok",
            "RCPT TO 250 2.1.5 Ok",
            "QUIT 221 2.0.0 Bye",
        ],
        "{out}"
    );
    let label = client_label(&inst.log(), "127.0.0.1");
    inst.wait_log(
        &[&format!(
            "disconnect from {label} ehlo=2 starttls=1 mail=1 rcpt=1/2 data=0/1 quit=1 commands=6/8"
        )],
        1,
    );
    assert!(!inst.log().contains("evil"), "{}", inst.log());
}

#[test]
fn commands_pipelined_after_starttls_end_the_session_by_default() {
    let u = user("pt-smtp3");
    let (inst, cert) = tls_instance("may", &[]);
    let rcpt = format!("{}@test.example", u.name);
    let out = python(
        inst.root(),
        "inject.py",
        INJECT,
        &[
            &inst.smtp_port().to_string(),
            &cert.crt.display().to_string(),
            &rcpt,
        ],
    );
    // smtpd_forbid_unauth_pipelining = yes (Postern's default): STARTTLS must be the last
    // command of a group; the client is told so and disconnected, nothing is executed.
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec![
            "greeting 220 test.example ESMTP Postern",
            "ehlo 250 CHUNKING",
            "starttls 554 5.5.0 Error: SMTP protocol synchronization",
            "then EOF",
        ],
        "{out}"
    );
    let label = client_label(&inst.log(), "127.0.0.1");
    inst.wait_log(
        &[&format!(
            "improper command pipelining after STARTTLS from {label}: MAIL FROM:<evil@injected.example>"
        )],
        1,
    );
    inst.wait_log(
        &[&format!(
            "disconnect from {label} ehlo=1 starttls=0/1 commands=1/2"
        )],
        1,
    );
    assert!(inst.log_lines(&["client="]).is_empty());
}

const PEER_CERT: &str = r#"
import smtplib, ssl, sys
port = int(sys.argv[1])
ctx = ssl.create_default_context()
for ca in sys.argv[2:]:
    ctx.load_verify_locations(cafile=ca)
s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=30)
s.starttls(context=ctx)
c = s.sock.getpeercert()
cn = [v for rdn in c["subject"] for (k, v) in rdn if k == "commonName"][0]
print(int(c["serialNumber"], 16), cn)
s.quit()
"#;

#[test]
fn postfix_reload_loads_replaced_certificates() {
    let (inst, cert) = tls_instance("may", &[]);
    let scratch = tempfile::tempdir().expect("tempdir");
    let first = scratch.path().join("first.crt");
    std::fs::copy(&cert.crt, &first).expect("keep the first certificate");
    let second = make_cert(scratch.path(), "second", "second certificate", 2002);
    let trust = [
        inst.smtp_port().to_string(),
        first.display().to_string(),
        second.crt.display().to_string(),
    ];
    let trust: Vec<&str> = trust.iter().map(String::as_str).collect();
    assert_eq!(
        python(inst.root(), "peer.py", PEER_CERT, &trust).trim(),
        "1001 first certificate"
    );

    // Replace the files in place, as an admin renewing a certificate does.
    std::fs::copy(&second.crt, &cert.crt).expect("replace certificate");
    std::fs::copy(&second.key, &cert.key).expect("replace key");
    // Not before the reload: the running daemon keeps what it loaded.
    assert_eq!(
        python(inst.root(), "peer.py", PEER_CERT, &trust).trim(),
        "1001 first certificate"
    );
    let out = inst.run("postfix", &["reload"], b"");
    assert!(
        out.status.success(),
        "postfix reload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    inst.wait_log(&["reload -- version"], 1);
    assert_eq!(
        python(inst.root(), "peer.py", PEER_CERT, &trust).trim(),
        "2002 second certificate"
    );
}

#[test]
fn a_private_key_only_root_can_read_is_loaded_at_start_and_reload() {
    // Keys are kept mode 0600 (or 0640 root:ssl-cert); Postfix reads them as root before
    // smtpd drops its privileges, at start and for every new smtpd after a reload. Started
    // by an ordinary user, the key is that user's and the same holds.
    let mut inst = instance().smtpd(&["smtpd_tls_security_level=may"]).build();
    let cert = make_cert(inst.root(), "smtpd", "first certificate", 1001);
    std::fs::set_permissions(
        &cert.key,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod key");
    inst.add_main_cf(&format!("smtpd_tls_cert_file = {}", cert.crt.display()));
    inst.add_main_cf(&format!("smtpd_tls_key_file = {}", cert.key.display()));
    inst.start();
    let offered = |inst: &Instance| {
        let mut w = Wire::open(&inst.smtp_addr());
        let kw = w.ehlo("client.example").keywords();
        w.cmd("QUIT");
        kw.iter().any(|k| k == "STARTTLS")
    };
    assert!(
        offered(&inst),
        "STARTTLS offered after start\n{}",
        inst.log()
    );
    let out = inst.run("postfix", &["reload"], b"");
    assert!(out.status.success());
    inst.wait_log(&["reload -- version"], 1);
    assert!(
        offered(&inst),
        "STARTTLS offered after reload\n{}",
        inst.log()
    );
    assert!(
        inst.log_lines(&["cannot load private key"]).is_empty(),
        "{}",
        inst.log()
    );
}
