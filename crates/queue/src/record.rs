//! The queue file format, version 1 (specified in docs/queue-format.md).
//!
//! A file is a magic line, envelope records, one content record, an end record carrying the
//! CRC-32 of everything before it, then zero or more status records appended later, each with
//! its own CRC. The part up to the end record is written once and never changed; per-recipient
//! outcomes only ever append. A reader trusts nothing without the end record: a file that stops
//! before it, or whose CRC does not match, is corrupt. A status record that is cut short at the
//! very end of the file is a torn append (a crash mid-write) and is ignored; a bad status record
//! anywhere else makes the file corrupt.
//!
//! Decoding never panics and never allocates more than the input's size.

use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::crc::{crc32, Crc32};

/// First eight bytes of every queue file: name, format version 1, newline.
pub const MAGIC: &[u8; 8] = b"PSTRNQ\x01\n";

/// Record type bytes.
pub mod rec {
    pub const ARRIVAL: u8 = b'T';
    pub const SENDER: u8 = b'S';
    pub const FULL_NAME: u8 = b'F';
    pub const ATTR: u8 = b'A';
    pub const RCPT: u8 = b'R';
    pub const CONTENT: u8 = b'M';
    pub const END: u8 = b'E';
    // Status records (after END).
    pub const DONE: u8 = b'D';
    pub const BOUNCED: u8 = b'B';
    pub const DEFERRED: u8 = b'd';
    pub const INTENT: u8 = b'I';
    pub const NOTIFIED: u8 = b'N';
    pub const WARNED: u8 = b'W';
}

/// DSN NOTIFY bits (RFC 3461). Zero means "not specified" (Postfix then acts as DELAY,FAILURE).
pub mod notify {
    pub const NEVER: u8 = 1;
    pub const SUCCESS: u8 = 2;
    pub const FAILURE: u8 = 4;
    pub const DELAY: u8 = 8;
}

/// NOTIFY bits are stored as one hexadecimal digit.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Upper bound on any single envelope record, and on the number of recipients, so that a
/// hand-edited length field cannot make a reader allocate wildly.
pub const MAX_ENVELOPE_RECORD: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// Address in external form (`user@domain`), after rewriting.
    pub address: String,
    /// Address as originally received, before any rewriting or aliasing (`orig_to=` in logs).
    pub orig: String,
    /// DSN NOTIFY bits, see [`notify`].
    pub notify: u8,
    /// DSN ORCPT parameter as received (`rfc822;user@example.com`), or empty.
    pub orcpt: String,
}

impl Recipient {
    pub fn new(address: impl Into<String>) -> Recipient {
        let address = address.into();
        Recipient {
            orig: address.clone(),
            address,
            notify: 0,
            orcpt: String::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub arrival: SystemTime,
    /// Envelope sender in external form; empty for the null sender `<>`.
    pub sender: String,
    pub full_name: Option<String>,
    /// Named attributes (`name=value`): origin, DSN ENVID/RET, flags for cleanup.
    pub attrs: Vec<(String, String)>,
    pub recipients: Vec<Recipient>,
}

impl Envelope {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A per-recipient outcome, appended after the end record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Delivered (or otherwise finished without a failure notice).
    Done { rcpt: u32 },
    /// Failed for good; a failure notice is owed until `Notified`. `address` is the final
    /// recipient that failed (an alias member may differ from the queued recipient).
    Bounced {
        rcpt: u32,
        address: String,
        dsn: String,
        relay: String,
        reason: String,
    },
    /// Failed for now; the latest one is the reason `mailq` shows.
    Deferred {
        rcpt: u32,
        address: String,
        dsn: String,
        relay: String,
        reason: String,
    },
    /// A mailbox delivery to this recipient is about to start (see docs/architecture.md).
    Intent { rcpt: u32 },
    /// The delivery status notification this recipient was owed has been queued.
    Notified { rcpt: u32 },
    /// A "delayed mail" warning was queued for this message.
    Warned,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("not a queue file (bad magic)")]
    BadMagic,
    #[error("file ends before the end record (truncated at byte {0})")]
    Truncated(usize),
    #[error("bad record length at byte {0}")]
    BadLength(usize),
    #[error("unknown record type {0:?} at byte {1}")]
    UnknownRecord(char, usize),
    #[error("checksum mismatch in the {0}")]
    Checksum(&'static str),
    #[error("malformed {0} record")]
    Malformed(&'static str),
    #[error("missing {0} record")]
    Missing(&'static str),
    #[error("recipient index {0} out of range")]
    BadRecipient(u32),
}

/// Everything a reader learns from a queue file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub envelope: Envelope,
    /// Byte range of the message content (RFC 5322 text, LF line ends) within the file.
    pub content: Range<usize>,
    /// Status records in file order.
    pub statuses: Vec<Status>,
    /// Length of the valid file: everything after this is a torn append to cut off.
    pub valid_len: usize,
}

fn put(out: &mut Vec<u8>, ty: u8, payload: &[u8]) {
    out.push(ty);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
}

fn time_bytes(t: SystemTime) -> [u8; 12] {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut b = [0u8; 12];
    b[..8].copy_from_slice(&d.as_secs().to_le_bytes());
    b[8..].copy_from_slice(&d.subsec_nanos().to_le_bytes());
    b
}

fn join0(fields: &[&str]) -> Vec<u8> {
    let mut v = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            v.push(0);
        }
        v.extend_from_slice(f.as_bytes());
    }
    v
}

/// Encode the immutable part of a queue file (magic through end record).
pub fn encode(env: &Envelope, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 256);
    out.extend_from_slice(MAGIC);
    put(&mut out, rec::ARRIVAL, &time_bytes(env.arrival));
    put(&mut out, rec::SENDER, env.sender.as_bytes());
    if let Some(name) = &env.full_name {
        put(&mut out, rec::FULL_NAME, name.as_bytes());
    }
    for (name, value) in &env.attrs {
        put(&mut out, rec::ATTR, format!("{name}={value}").as_bytes());
    }
    for r in &env.recipients {
        let mut p = join0(&[&r.address, &r.orig]);
        p.push(0);
        p.push(HEX[usize::from(r.notify & 0x0F)]);
        p.push(0);
        p.extend_from_slice(r.orcpt.as_bytes());
        put(&mut out, rec::RCPT, &p);
    }
    put(&mut out, rec::CONTENT, content);
    let crc = crc32(&out);
    put(&mut out, rec::END, &crc.to_le_bytes());
    out
}

/// Encode one status record for appending.
pub fn encode_status(status: &Status) -> Vec<u8> {
    let (ty, payload) = match status {
        Status::Done { rcpt } => (rec::DONE, rcpt.to_le_bytes().to_vec()),
        Status::Intent { rcpt } => (rec::INTENT, rcpt.to_le_bytes().to_vec()),
        Status::Notified { rcpt } => (rec::NOTIFIED, rcpt.to_le_bytes().to_vec()),
        Status::Warned => (rec::WARNED, Vec::new()),
        Status::Bounced {
            rcpt,
            address,
            dsn,
            relay,
            reason,
        }
        | Status::Deferred {
            rcpt,
            address,
            dsn,
            relay,
            reason,
        } => {
            let ty = if matches!(status, Status::Bounced { .. }) {
                rec::BOUNCED
            } else {
                rec::DEFERRED
            };
            let mut p = rcpt.to_le_bytes().to_vec();
            p.extend_from_slice(&join0(&[address, dsn, relay, reason]));
            (ty, p)
        }
    };
    let mut out = Vec::with_capacity(payload.len() + 9);
    put(&mut out, ty, &payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Next record: (type, payload range, offset of its type byte). None at end of buffer.
    fn next(&mut self) -> Result<Option<(u8, Range<usize>, usize)>, FormatError> {
        let start = self.pos;
        if start == self.buf.len() {
            return Ok(None);
        }
        if self.buf.len() - start < 5 {
            return Err(FormatError::Truncated(start));
        }
        let ty = self.buf[start];
        let mut len = [0u8; 4];
        len.copy_from_slice(&self.buf[start + 1..start + 5]);
        let len = u32::from_le_bytes(len) as usize;
        let body = start + 5;
        if len > self.buf.len() - body {
            return Err(FormatError::Truncated(start));
        }
        self.pos = body + len;
        Ok(Some((ty, body..body + len, start)))
    }
}

fn text(bytes: &[u8], what: &'static str) -> Result<String, FormatError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| FormatError::Malformed(what))
}

fn u32_prefix<'a>(p: &'a [u8], what: &'static str) -> Result<(u32, &'a [u8]), FormatError> {
    if p.len() < 4 {
        return Err(FormatError::Malformed(what));
    }
    let mut n = [0u8; 4];
    n.copy_from_slice(&p[..4]);
    Ok((u32::from_le_bytes(n), &p[4..]))
}

fn split0(p: &[u8], n: usize, what: &'static str) -> Result<Vec<String>, FormatError> {
    let parts: Vec<&[u8]> = p.splitn(n, |&b| b == 0).collect();
    if parts.len() != n {
        return Err(FormatError::Malformed(what));
    }
    parts.into_iter().map(|s| text(s, what)).collect()
}

fn decode_status(ty: u8, p: &[u8], at: usize) -> Result<Status, FormatError> {
    Ok(match ty {
        rec::DONE | rec::INTENT | rec::NOTIFIED => {
            let (rcpt, rest) = u32_prefix(p, "status")?;
            if !rest.is_empty() {
                return Err(FormatError::Malformed("status"));
            }
            match ty {
                rec::DONE => Status::Done { rcpt },
                rec::INTENT => Status::Intent { rcpt },
                _ => Status::Notified { rcpt },
            }
        }
        rec::WARNED if p.is_empty() => Status::Warned,
        rec::BOUNCED | rec::DEFERRED => {
            let (rcpt, rest) = u32_prefix(p, "status")?;
            let mut f = split0(rest, 4, "status")?.into_iter();
            let mut next = || f.next().unwrap_or_default();
            let (address, dsn, relay, reason) = (next(), next(), next(), next());
            if ty == rec::BOUNCED {
                Status::Bounced {
                    rcpt,
                    address,
                    dsn,
                    relay,
                    reason,
                }
            } else {
                Status::Deferred {
                    rcpt,
                    address,
                    dsn,
                    relay,
                    reason,
                }
            }
        }
        other => return Err(FormatError::UnknownRecord(other as char, at)),
    })
}

/// Decode a whole queue file held in memory.
pub fn decode(buf: &[u8]) -> Result<Decoded, FormatError> {
    if buf.len() < MAGIC.len() || &buf[..MAGIC.len()] != MAGIC {
        return Err(FormatError::BadMagic);
    }
    let mut r = Reader {
        buf,
        pos: MAGIC.len(),
    };
    let mut arrival = None;
    let mut sender = None;
    let mut full_name = None;
    let mut attrs = Vec::new();
    let mut recipients = Vec::new();
    let mut content = None;
    let mut crc = Crc32::default();
    crc.update(MAGIC);
    loop {
        let Some((ty, p, at)) = r.next()? else {
            return Err(FormatError::Truncated(buf.len()));
        };
        if ty == rec::END {
            if p.len() != 4 {
                return Err(FormatError::BadLength(at));
            }
            let mut want = [0u8; 4];
            want.copy_from_slice(&buf[p.clone()]);
            crc.update(&buf[MAGIC.len()..at]);
            if crc.finish() != u32::from_le_bytes(want) {
                return Err(FormatError::Checksum("message"));
            }
            break;
        }
        let payload = &buf[p.clone()];
        if ty != rec::CONTENT && payload.len() > MAX_ENVELOPE_RECORD {
            return Err(FormatError::BadLength(at));
        }
        match ty {
            rec::ARRIVAL => {
                if payload.len() != 12 {
                    return Err(FormatError::Malformed("arrival time"));
                }
                let mut s = [0u8; 8];
                let mut n = [0u8; 4];
                s.copy_from_slice(&payload[..8]);
                n.copy_from_slice(&payload[8..]);
                let nanos = u32::from_le_bytes(n);
                if nanos >= 1_000_000_000 {
                    return Err(FormatError::Malformed("arrival time"));
                }
                let d = Duration::new(u64::from_le_bytes(s), nanos);
                arrival = Some(
                    UNIX_EPOCH
                        .checked_add(d)
                        .ok_or(FormatError::Malformed("arrival time"))?,
                );
            }
            rec::SENDER => sender = Some(text(payload, "sender")?),
            rec::FULL_NAME => full_name = Some(text(payload, "full name")?),
            rec::ATTR => {
                let s = text(payload, "attribute")?;
                let (n, v) = s
                    .split_once('=')
                    .ok_or(FormatError::Malformed("attribute"))?;
                attrs.push((n.to_string(), v.to_string()));
            }
            rec::RCPT => {
                let parts: Vec<&[u8]> = payload.splitn(4, |&b| b == 0).collect();
                if parts.len() != 4 || parts[2].len() != 1 {
                    return Err(FormatError::Malformed("recipient"));
                }
                recipients.push(Recipient {
                    address: text(parts[0], "recipient")?,
                    orig: text(parts[1], "recipient")?,
                    notify: HEX
                        .iter()
                        .position(|&h| h == parts[2][0])
                        .ok_or(FormatError::Malformed("recipient"))?
                        as u8,
                    orcpt: text(parts[3], "recipient")?,
                });
            }
            rec::CONTENT => {
                if content.is_some() {
                    return Err(FormatError::Malformed("content"));
                }
                content = Some(p);
            }
            other => return Err(FormatError::UnknownRecord(other as char, at)),
        }
    }
    let envelope = Envelope {
        arrival: arrival.ok_or(FormatError::Missing("arrival time"))?,
        sender: sender.ok_or(FormatError::Missing("sender"))?,
        full_name,
        attrs,
        recipients,
    };
    let content = content.ok_or(FormatError::Missing("content"))?;

    let mut statuses = Vec::new();
    let mut valid_len = r.pos;
    loop {
        let record_start = r.pos;
        let (ty, p, at) = match r.next() {
            Ok(Some(x)) => x,
            Ok(None) => break,
            Err(_) => break, // torn append at the very end
        };
        if buf.len() - r.pos < 4 {
            break; // torn: the CRC did not make it
        }
        let mut want = [0u8; 4];
        want.copy_from_slice(&buf[r.pos..r.pos + 4]);
        r.pos += 4;
        if crc32(&buf[record_start..p.end]) != u32::from_le_bytes(want) {
            if r.pos == buf.len() {
                break; // torn last record
            }
            return Err(FormatError::Checksum("status records"));
        }
        let status = decode_status(ty, &buf[p], at)?;
        let rcpt = match &status {
            Status::Done { rcpt }
            | Status::Intent { rcpt }
            | Status::Notified { rcpt }
            | Status::Bounced { rcpt, .. }
            | Status::Deferred { rcpt, .. } => Some(*rcpt),
            Status::Warned => None,
        };
        if let Some(rcpt) = rcpt {
            if rcpt as usize >= envelope.recipients.len() {
                return Err(FormatError::BadRecipient(rcpt));
            }
        }
        statuses.push(status);
        valid_len = r.pos;
    }
    Ok(Decoded {
        envelope,
        content,
        statuses,
        valid_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope {
            arrival: UNIX_EPOCH + Duration::new(1_795_000_000, 42),
            sender: "alice@example.com".into(),
            full_name: Some("Alice Example".into()),
            attrs: vec![("log_ident".into(), "x=y".into())],
            recipients: vec![
                Recipient::new("bob@example.com"),
                Recipient {
                    address: "carol@example.com".into(),
                    orig: "c@example.com".into(),
                    notify: notify::SUCCESS | notify::FAILURE,
                    orcpt: "rfc822;c@example.com".into(),
                },
            ],
        }
    }

    #[test]
    fn round_trip_with_statuses() {
        let env = sample();
        let content = b"Subject: hi\n\nbody\n";
        let mut file = encode(&env, content);
        let statuses = vec![
            Status::Intent { rcpt: 0 },
            Status::Done { rcpt: 0 },
            Status::Deferred {
                rcpt: 1,
                address: "carol@example.com".into(),
                dsn: "4.2.0".into(),
                relay: "local".into(),
                reason: "mailbox busy".into(),
            },
            Status::Bounced {
                rcpt: 1,
                address: "carol@example.com".into(),
                dsn: "5.1.1".into(),
                relay: "none".into(),
                reason: "unknown user: \"carol\"".into(),
            },
            Status::Notified { rcpt: 1 },
            Status::Warned,
        ];
        for s in &statuses {
            file.extend(encode_status(s));
        }
        let d = decode(&file).unwrap();
        assert_eq!(d.envelope, env);
        assert_eq!(&file[d.content.clone()], content);
        assert_eq!(d.statuses, statuses);
        assert_eq!(d.valid_len, file.len());
    }

    #[test]
    fn every_truncation_of_the_body_is_rejected() {
        let file = encode(&sample(), b"x\n");
        for cut in 0..file.len() {
            assert!(decode(&file[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn torn_status_tail_is_ignored() {
        let mut file = encode(&sample(), b"x\n");
        let base = file.len();
        let rec = encode_status(&Status::Done { rcpt: 1 });
        file.extend(&rec);
        for cut in base..file.len() {
            let d = decode(&file[..cut]).unwrap();
            assert!(d.statuses.is_empty());
            assert_eq!(d.valid_len, base);
        }
    }

    #[test]
    fn flipped_byte_is_detected() {
        let file = encode(&sample(), b"hello\n");
        for i in MAGIC.len()..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x20;
            assert!(decode(&bad).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn corrupt_status_in_the_middle_is_an_error() {
        let mut file = encode(&sample(), b"x\n");
        let mut first = encode_status(&Status::Done { rcpt: 0 });
        first[6] ^= 1;
        file.extend(first);
        file.extend(encode_status(&Status::Done { rcpt: 1 }));
        assert_eq!(decode(&file), Err(FormatError::Checksum("status records")));
    }

    #[test]
    fn status_for_missing_recipient_is_an_error() {
        let mut file = encode(&sample(), b"x\n");
        file.extend(encode_status(&Status::Done { rcpt: 7 }));
        assert_eq!(decode(&file), Err(FormatError::BadRecipient(7)));
    }
}

/// One failure or deferral as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Outcome {
    pub address: String,
    pub dsn: String,
    pub relay: String,
    pub reason: String,
}

/// What the status records say about one recipient.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RecipientState {
    /// Finished: delivered, or failed for good.
    pub is_final: bool,
    pub delivered: bool,
    /// Failures whose notice has not been queued yet.
    pub bounces_owed: Vec<Outcome>,
    /// Delivered with NOTIFY=SUCCESS and the success notice not queued yet.
    pub success_owed: bool,
    /// The latest deferral, while not final.
    pub deferred: Option<Outcome>,
    /// A mailbox delivery started and nothing was recorded after it (a crash in between).
    pub intent: bool,
}

/// Replay the status records of a decoded file into one state per recipient.
pub fn replay(d: &Decoded) -> Vec<RecipientState> {
    let mut states = vec![RecipientState::default(); d.envelope.recipients.len()];
    for s in &d.statuses {
        let idx = match s {
            Status::Done { rcpt }
            | Status::Intent { rcpt }
            | Status::Notified { rcpt }
            | Status::Bounced { rcpt, .. }
            | Status::Deferred { rcpt, .. } => *rcpt as usize,
            Status::Warned => continue,
        };
        let Some(st) = states.get_mut(idx) else {
            continue;
        };
        match s {
            Status::Done { .. } => {
                st.is_final = true;
                st.delivered = true;
                st.deferred = None;
                st.intent = false;
                st.success_owed = d.envelope.recipients[idx].notify & notify::SUCCESS != 0;
            }
            Status::Bounced {
                address,
                dsn,
                relay,
                reason,
                ..
            } => {
                st.is_final = true;
                st.deferred = None;
                st.intent = false;
                st.bounces_owed.push(Outcome {
                    address: address.clone(),
                    dsn: dsn.clone(),
                    relay: relay.clone(),
                    reason: reason.clone(),
                });
            }
            Status::Deferred {
                address,
                dsn,
                relay,
                reason,
                ..
            } => {
                st.intent = false;
                if !st.is_final {
                    st.deferred = Some(Outcome {
                        address: address.clone(),
                        dsn: dsn.clone(),
                        relay: relay.clone(),
                        reason: reason.clone(),
                    });
                }
            }
            Status::Intent { .. } => st.intent = !st.is_final,
            Status::Notified { .. } => {
                st.bounces_owed.clear();
                st.success_owed = false;
            }
            Status::Warned => {}
        }
    }
    states
}

/// Has a delay warning already been queued for this message?
pub fn warned(d: &Decoded) -> bool {
    d.statuses.iter().any(|s| matches!(s, Status::Warned))
}

#[cfg(test)]
mod replay_tests {
    use super::*;

    #[test]
    fn states_follow_the_records() {
        let env = Envelope {
            arrival: UNIX_EPOCH,
            sender: "s@x".into(),
            full_name: None,
            attrs: vec![],
            recipients: vec![
                Recipient::new("a@x"),
                Recipient::new("b@x"),
                Recipient {
                    notify: notify::SUCCESS,
                    ..Recipient::new("c@x")
                },
                Recipient::new("d@x"),
            ],
        };
        let mut bytes = encode(&env, b"");
        let defer = |rcpt| Status::Deferred {
            rcpt,
            address: "x".into(),
            dsn: "4.0.0".into(),
            relay: "local".into(),
            reason: "later".into(),
        };
        for s in [
            defer(0),
            Status::Intent { rcpt: 0 },
            Status::Bounced {
                rcpt: 1,
                address: "member@x".into(),
                dsn: "5.1.1".into(),
                relay: "local".into(),
                reason: "unknown".into(),
            },
            Status::Intent { rcpt: 2 },
            Status::Done { rcpt: 2 },
            defer(3),
        ] {
            bytes.extend(encode_status(&s));
        }
        let d = decode(&bytes).unwrap();
        let st = replay(&d);
        assert!(st[0].intent && !st[0].is_final && st[0].deferred.is_some());
        assert!(st[1].is_final && st[1].bounces_owed.len() == 1);
        assert!(st[2].delivered && st[2].success_owed && !st[2].intent);
        assert!(!st[3].is_final && st[3].deferred.is_some());

        bytes.extend(encode_status(&Status::Notified { rcpt: 1 }));
        bytes.extend(encode_status(&Status::Notified { rcpt: 2 }));
        let st = replay(&decode(&bytes).unwrap());
        assert!(st[1].bounces_owed.is_empty() && st[1].is_final);
        assert!(!st[2].success_owed);
    }
}
