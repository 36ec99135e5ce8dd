//! The queue listing behind `mailq` / `postqueue -p` and `postqueue -j` (Postfix's showq).
//!
//! Walks `active incoming deferred hold maildrop`, reads each queue file, and lists the
//! recipients that are not yet finished with their latest deferral reason. Layout, byte for
//! byte as Postfix 3.7 prints it with long queue IDs (`-Queue ID-` column 17 wide, status `*`
//! active, `!` on hold, reasons right-aligned to column 78, `-- N Kbytes in M Requests.`).
//! A file that cannot be read is skipped: the listing never fails for one bad file.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use queue::{Queue, QueueName};

#[derive(Debug)]
pub struct Entry {
    pub queue: QueueName,
    pub id: String,
    pub arrival: SystemTime,
    pub size: u64,
    pub sender: String,
    /// (address, latest deferral reason)
    pub recipients: Vec<(String, Option<String>)>,
}

const ORDER: [QueueName; 5] = [
    QueueName::Active,
    QueueName::Incoming,
    QueueName::Deferred,
    QueueName::Hold,
    QueueName::Maildrop,
];

/// Read every queue entry.
pub fn collect(queue: &Queue) -> Vec<Entry> {
    let mut out = Vec::new();
    for q in ORDER {
        let mut ids = queue.list(q).unwrap_or_default();
        ids.sort();
        for id in ids {
            let Ok((qf, _)) = queue::read(&queue.file(q, &id)) else {
                continue;
            };
            let d = &qf.decoded;
            let states = queue::replay(d);
            let recipients = d
                .envelope
                .recipients
                .iter()
                .zip(states)
                .filter(|(_, st)| !st.is_final)
                // Postfix shows the reason without trailing white space ("Command output:
                // temp problem here " is logged, "...temp problem here)" listed).
                .map(|(r, st)| {
                    (
                        r.address.clone(),
                        st.deferred.map(|o| o.reason.trim_end().to_string()),
                    )
                })
                .collect();
            out.push(Entry {
                queue: q,
                id,
                arrival: d.envelope.arrival,
                size: d.content.len() as u64,
                sender: d.envelope.sender.clone(),
                recipients,
            });
        }
    }
    out
}

fn sender_text(s: &str) -> &str {
    if s.is_empty() {
        "MAILER-DAEMON"
    } else {
        s
    }
}

fn ctime(t: SystemTime) -> String {
    let ts = jiff::Timestamp::try_from(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%a %b %e %H:%M:%S")
        .to_string()
}

/// `mailq` layout.
pub fn print_sendmail_style(entries: &[Entry], out: &mut dyn Write) -> io::Result<()> {
    if entries.is_empty() {
        return writeln!(out, "Mail queue is empty");
    }
    writeln!(
        out,
        "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------"
    )?;
    let mut total = 0u64;
    for e in entries {
        total += e.size;
        let status = match e.queue {
            QueueName::Active => "*",
            QueueName::Hold => "!",
            _ => "",
        };
        writeln!(
            out,
            "{:<17}{:>9} {} {}",
            format!("{}{status}", e.id),
            e.size,
            ctime(e.arrival),
            sender_text(&e.sender)
        )?;
        let mut last_reason: Option<&str> = None;
        for (addr, reason) in &e.recipients {
            if let Some(r) = reason.as_deref() {
                if last_reason != Some(r) {
                    writeln!(out, "{:>78}", format!("({r})"))?;
                }
            }
            last_reason = reason.as_deref();
            writeln!(out, "{:47}{addr}", "")?;
        }
        writeln!(out)?;
    }
    let n = entries.len();
    writeln!(
        out,
        "-- {} Kbytes in {n} Request{}.",
        total / 1024,
        if n == 1 { "" } else { "s" }
    )
}

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// `postqueue -j`: one JSON object per line, Postfix's member names.
pub fn print_json(entries: &[Entry], out: &mut dyn Write) -> io::Result<()> {
    for e in entries {
        let arrival = e
            .arrival
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let rcpts: Vec<String> = e
            .recipients
            .iter()
            .map(|(a, r)| match r {
                Some(r) => format!(
                    "{{\"address\": {}, \"delay_reason\": {}}}",
                    json_str(a),
                    json_str(r)
                ),
                None => format!("{{\"address\": {}}}", json_str(a)),
            })
            .collect();
        writeln!(
            out,
            "{{\"queue_name\": {}, \"queue_id\": {}, \"arrival_time\": {arrival}, \"message_size\": {}, \"forced_expire\": false, \"sender\": {}, \"recipients\": [{}]}}",
            json_str(e.queue.as_str()),
            json_str(&e.id),
            e.size,
            json_str(sender_text(&e.sender)),
            rcpts.join(", ")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_postfix() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_795_631_752);
        let e = vec![
            Entry {
                queue: QueueName::Active,
                id: "4jZSzr574mz1SS5M".into(),
                arrival: t,
                size: 262,
                sender: "sender@ref.example".into(),
                recipients: vec![("slowme@ref.example".into(), None)],
            },
            Entry {
                queue: QueueName::Deferred,
                id: "4jZSzr4M0Xz1SRxv".into(),
                arrival: t,
                size: 272,
                sender: "".into(),
                recipients: vec![
                    (
                        "someone@example.com".into(),
                        Some("connect to 127.0.0.1[127.0.0.1]:2599: Connection refused".into()),
                    ),
                    (
                        "other@example.net".into(),
                        Some("connect to 127.0.0.1[127.0.0.1]:2599: Connection refused".into()),
                    ),
                ],
            },
        ];
        let mut out = Vec::new();
        print_sendmail_style(&e, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------"
        );
        assert!(
            lines[1].starts_with("4jZSzr574mz1SS5M*      262 "),
            "{}",
            lines[1]
        );
        assert!(lines[1].ends_with(" sender@ref.example"));
        assert_eq!(lines[2], format!("{:47}slowme@ref.example", ""));
        assert!(
            lines[4].starts_with("4jZSzr4M0Xz1SRxv       272 ")
                && lines[4].ends_with(" MAILER-DAEMON")
        );
        assert_eq!(
            lines[5],
            "                    (connect to 127.0.0.1[127.0.0.1]:2599: Connection refused)"
        );
        assert_eq!(lines[6].trim(), "someone@example.com");
        assert_eq!(lines[7].trim(), "other@example.net");
        assert_eq!(lines[9], "-- 0 Kbytes in 2 Requests.");

        let mut out = Vec::new();
        print_json(&e[1..], &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"queue_name\": \"deferred\", \"queue_id\": \"4jZSzr4M0Xz1SRxv\", \"arrival_time\": 1795631752, \"message_size\": 272, \"forced_expire\": false, \"sender\": \"MAILER-DAEMON\", \"recipients\": [{\"address\": \"someone@example.com\", \"delay_reason\": \"connect to 127.0.0.1[127.0.0.1]:2599: Connection refused\"}, {\"address\": \"other@example.net\", \"delay_reason\": \"connect to 127.0.0.1[127.0.0.1]:2599: Connection refused\"}]}\n"
        );
    }
}
