//! bounce: delivery status notifications (RFC 3464), as Postfix's bounce(8).
//!
//! A failure notice goes to the sender for every recipient that failed for good (and whose
//! DSN NOTIFY allows it); a delay warning when a message has waited `delay_warning_time`; a
//! success notice for NOTIFY=SUCCESS. Each is a `multipart/report; report-type=delivery-status`
//! message with Postfix's default template text, a `message/delivery-status` part, and the
//! original message (or only its headers, past `bounce_size_limit`, with RET=HDRS, and for
//! warnings and success notices). Notices have the null sender.
//!
//! A failed notice is not bounced again: when the failed mail had the null sender, the notice
//! goes to the postmaster (`2bounce_notice_recipient`) from `double_bounce_sender` if
//! `notify_classes` has `2bounce` or `bounce` (else it is dropped, as with Postfix's default),
//! and mail from that address that fails is discarded. The notice is queued through cleanup
//! before the caller records it as sent, so no notice is lost to a crash (one may be sent
//! twice).

use std::time::{SystemTime, UNIX_EPOCH};

use config::MainCf;
use queue::record::{Envelope, Outcome};
use queue::{notify as nf, Recipient};

use crate::cleanup::{mail_date, Origin, Submission};
use crate::runtime::{Runtime, Settings as All};
use crate::{info, warning};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeKind {
    Failure,
    Delay,
    Success,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub myhostname: String,
    pub myorigin: String,
    pub bounce_size_limit: usize,
    pub notify_classes: Vec<String>,
    pub double_bounce_recipient: String,
    pub bounce_notice_recipient: String,
    pub delay_notice_recipient: String,
    pub double_bounce_sender: String,
    pub maximal_queue_lifetime: std::time::Duration,
    pub delay_warning_time: std::time::Duration,
}

impl Settings {
    pub fn new(cfg: &MainCf) -> Settings {
        Settings {
            myhostname: cfg.str("myhostname"),
            myorigin: cfg.str("myorigin"),
            bounce_size_limit: cfg.size("bounce_size_limit") as usize,
            notify_classes: cfg.list("notify_classes"),
            double_bounce_recipient: cfg.str("2bounce_notice_recipient"),
            bounce_notice_recipient: cfg.str("bounce_notice_recipient"),
            delay_notice_recipient: cfg.str("delay_notice_recipient"),
            double_bounce_sender: cfg.str("double_bounce_sender"),
            maximal_queue_lifetime: cfg.time("maximal_queue_lifetime"),
            delay_warning_time: cfg.time("delay_warning_time"),
        }
    }

    fn double_bounce_address(&self) -> String {
        format!("{}@{}", self.double_bounce_sender, self.myorigin)
    }
}

fn wants(notify: u8, kind: NoticeKind) -> bool {
    if notify & nf::NEVER != 0 {
        return false;
    }
    match kind {
        NoticeKind::Failure => notify == 0 || notify & nf::FAILURE != 0,
        NoticeKind::Delay => notify == 0 || notify & nf::DELAY != 0,
        NoticeKind::Success => notify & nf::SUCCESS != 0,
    }
}

/// Who a notice is for. Postmaster notices have Postfix's `Postmaster-Subject:` and no
/// boilerplate text; a double bounce returns the whole message, other copies its headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Audience {
    Sender,
    DoubleBounce,
    PostmasterCopy,
}

/// Queue the notices owed for `items` (recipient index, outcome). Ok means every notice that
/// should exist is in the queue (or was rightly discarded).
pub fn notify(
    rt: &Runtime,
    s: &All,
    id: &str,
    env: &Envelope,
    content: &[u8],
    items: &[(usize, Outcome)],
    kind: NoticeKind,
) -> Result<(), String> {
    let b = &s.bounce;
    let double_bounce = b.double_bounce_address();
    let wanted = |class: &str| b.notify_classes.iter().any(|c| c == class);
    // As Postfix's bounce(8): a failed notice from the double-bounce address is dropped; failed
    // null-sender mail goes to the postmaster only when notify_classes has 2bounce (or bounce),
    // whatever its NOTIFY says; anything else goes to the sender as NOTIFY allows.
    let postmaster = env.sender.is_empty();
    if env.sender.eq_ignore_ascii_case(&double_bounce) {
        if kind == NoticeKind::Failure {
            warning!(
                "bounce",
                "{id}: undeliverable postmaster notification discarded"
            );
        }
        return Ok(());
    }
    if postmaster && (kind != NoticeKind::Failure || !(wanted("2bounce") || wanted("bounce"))) {
        return Ok(());
    }
    let items: Vec<&(usize, Outcome)> = items
        .iter()
        .filter(|(i, _)| {
            env.recipients
                .get(*i)
                .is_some_and(|r| postmaster || wants(r.notify, kind))
        })
        .collect();
    if items.is_empty() {
        return Ok(());
    }
    let (to, from, audience) = if postmaster {
        (
            b.double_bounce_recipient.clone(),
            double_bounce.clone(),
            Audience::DoubleBounce,
        )
    } else {
        (env.sender.clone(), String::new(), Audience::Sender)
    };
    let text = compose(s, id, env, content, &items, kind, &to, audience);
    let new_id = submit(rt, s, &from, &to, text)?;
    let what = match (kind, postmaster) {
        (NoticeKind::Failure, false) => "sender non-delivery notification",
        (NoticeKind::Failure, true) => "postmaster non-delivery notification",
        (NoticeKind::Delay, _) => "sender delay notification",
        (NoticeKind::Success, _) => "sender delivery status notification",
    };
    info!("bounce", "{id}: {what}: {new_id}");
    if kind == NoticeKind::Failure && !postmaster && wanted("bounce") {
        let copy = compose(
            s,
            id,
            env,
            content,
            &items,
            kind,
            &b.bounce_notice_recipient,
            Audience::PostmasterCopy,
        );
        let pm = submit(rt, s, &double_bounce, &b.bounce_notice_recipient, copy)?;
        info!("bounce", "{id}: postmaster non-delivery notification: {pm}");
    }
    if kind == NoticeKind::Delay && wanted("delay") {
        let copy = compose(
            s,
            id,
            env,
            content,
            &items,
            kind,
            &b.delay_notice_recipient,
            Audience::PostmasterCopy,
        );
        submit(rt, s, &double_bounce, &b.delay_notice_recipient, copy)?;
    }
    Ok(())
}

fn submit(rt: &Runtime, s: &All, from: &str, to: &str, content: Vec<u8>) -> Result<String, String> {
    let mut r = Recipient::new(to);
    r.notify = nf::NEVER;
    let sub = Submission {
        id: None,
        arrival: SystemTime::now(),
        sender: from.to_string(),
        full_name: None,
        recipients: vec![r],
        attrs: Vec::new(),
        content,
        origin: Origin::Bounce,
        extract_recipients: false,
    };
    let done = s.cleanup.submit(sub).map_err(|e| e.to_string())?;
    rt.incoming(&done.id);
    Ok(done.id)
}

fn headers_only(content: &[u8]) -> &[u8] {
    let p = smtp::header::parse(content);
    &content[..p.body_offset.min(content.len())]
}

/// A duration in hours or days as the templates print it: Postfix's bounce_template.c divides
/// in integers (`$delay_warning_time_hours` is 0 for 30 minutes).
fn units(d: std::time::Duration, unit: f64) -> String {
    format!("{}", (d.as_secs_f64() / unit).floor() as u64)
}

#[allow(clippy::too_many_arguments)]
fn compose(
    s: &All,
    id: &str,
    env: &Envelope,
    content: &[u8],
    items: &[&(usize, Outcome)],
    kind: NoticeKind,
    to: &str,
    audience: Audience,
) -> Vec<u8> {
    let b = &s.bounce;
    let now = SystemTime::now();
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let boundary = format!("{id}.{secs}/{}", b.myhostname);
    let to_postmaster = audience != Audience::Sender;
    let subject = match kind {
        NoticeKind::Failure if to_postmaster => "Postmaster Copy: Undelivered Mail",
        NoticeKind::Failure => "Undelivered Mail Returned to Sender",
        NoticeKind::Delay if to_postmaster => "Postmaster Warning: Delayed Mail",
        NoticeKind::Delay => "Delayed Mail (still being retried)",
        NoticeKind::Success => "Successful Mail Delivery Report",
    };
    let mut m = String::new();
    m.push_str(&format!("Date: {}\n", mail_date(now)));
    m.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{}>\n",
        b.myhostname
    ));
    m.push_str(&format!("Subject: {subject}\n"));
    m.push_str(&format!("To: {to}\n"));
    m.push_str("Auto-Submitted: auto-replied\n");
    m.push_str("MIME-Version: 1.0\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"{boundary}\"\n"
    ));
    m.push_str("Content-Transfer-Encoding: 8bit\n");
    m.push('\n');
    m.push_str("This is a MIME-encapsulated message.\n\n");
    m.push_str(&format!("--{boundary}\n"));
    m.push_str("Content-Description: Notification\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n");
    match kind {
        _ if to_postmaster => {}
        NoticeKind::Failure => m.push_str(&format!(
            "This is the mail system at host {}.\n\n\
             I'm sorry to have to inform you that your message could not\n\
             be delivered to one or more recipients. It's attached below.\n\n\
             For further assistance, please send mail to postmaster.\n\n\
             If you do so, please include this problem report. You can\n\
             delete your own text from the attached returned message.\n\n\
             \x20                  The mail system\n\n",
            b.myhostname
        )),
        NoticeKind::Delay => m.push_str(&format!(
            "This is the mail system at host {}.\n\n\
             ####################################################################\n\
             # THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n\
             ####################################################################\n\n\
             Your message could not be delivered for more than {} hour(s).\n\
             It will be retried until it is {} day(s) old.\n\n\
             For further assistance, please send mail to postmaster.\n\n\
             If you do so, please include this problem report. You can\n\
             delete your own text from the attached returned message.\n\n\
             \x20                  The mail system\n\n",
            b.myhostname,
            units(b.delay_warning_time, 3600.0),
            units(b.maximal_queue_lifetime, 86400.0),
        )),
        NoticeKind::Success => m.push_str(&format!(
            "This is the mail system at host {}.\n\n\
             Your message was successfully delivered to the destination(s)\n\
             listed below. If the message was delivered to mailbox you will\n\
             receive no further notifications. Otherwise you may still receive\n\
             notifications of mail delivery errors from other systems.\n\n\
             \x20                  The mail system\n\n",
            b.myhostname
        )),
    }
    for (i, o) in items {
        let r = &env.recipients[*i];
        let addr = if o.address.is_empty() {
            &r.address
        } else {
            &o.address
        };
        let expanded = if !r.orig.is_empty() && !r.orig.eq_ignore_ascii_case(addr) {
            format!(" (expanded from <{}>)", r.orig)
        } else {
            String::new()
        };
        let text = match kind {
            NoticeKind::Success => format!(
                "delivery via {}: {}",
                if o.relay.is_empty() {
                    "local"
                } else {
                    &o.relay
                },
                o.reason
            ),
            _ => o.reason.clone(),
        };
        m.push_str(&format!("<{addr}>{expanded}: {text}\n"));
    }
    m.push('\n');
    m.push_str(&format!("--{boundary}\n"));
    m.push_str("Content-Description: Delivery report\nContent-Type: message/delivery-status\n\n");
    m.push_str(&format!("Reporting-MTA: dns; {}\n", b.myhostname));
    m.push_str(&format!("X-Postfix-Queue-ID: {id}\n"));
    m.push_str(&format!("X-Postfix-Sender: rfc822; {}\n", env.sender));
    if let Some(envid) = env.attr("dsn_envid") {
        m.push_str(&format!("Original-Envelope-Id: {envid}\n"));
    }
    m.push_str(&format!("Arrival-Date: {}\n", mail_date(env.arrival)));
    for (i, o) in items {
        let r = &env.recipients[*i];
        let addr = if o.address.is_empty() {
            &r.address
        } else {
            &o.address
        };
        m.push('\n');
        m.push_str(&format!("Final-Recipient: rfc822; {addr}\n"));
        if !r.orcpt.is_empty() {
            m.push_str(&format!("Original-Recipient: {}\n", r.orcpt));
        } else if !r.orig.is_empty() {
            let orig = s.cleanup.rewriter.rewrite(&r.orig);
            m.push_str(&format!("Original-Recipient: rfc822;{orig}\n"));
        }
        let (action, status) = match kind {
            NoticeKind::Failure => ("failed", if o.dsn.is_empty() { "5.0.0" } else { &o.dsn }),
            NoticeKind::Delay => ("delayed", if o.dsn.is_empty() { "4.0.0" } else { &o.dsn }),
            NoticeKind::Success => ("delivered", "2.0.0"),
        };
        m.push_str(&format!("Action: {action}\nStatus: {status}\n"));
        if !o.relay.is_empty() && o.relay != "local" && o.relay != "none" {
            m.push_str(&format!("Remote-MTA: dns; {}\n", o.relay));
        }
        if kind != NoticeKind::Success {
            m.push_str(&format!("Diagnostic-Code: X-Postfix; {}\n", o.reason));
        }
        if kind == NoticeKind::Delay {
            let until = env.arrival + b.maximal_queue_lifetime;
            m.push_str(&format!("Will-Retry-Until: {}\n", mail_date(until)));
        }
    }
    m.push('\n');
    m.push_str(&format!("--{boundary}\n"));
    let full = kind == NoticeKind::Failure
        && match audience {
            Audience::Sender => env
                .attr("dsn_ret")
                .is_none_or(|r| !r.eq_ignore_ascii_case("HDRS")),
            Audience::DoubleBounce => true,
            Audience::PostmasterCopy => false,
        }
        && (b.bounce_size_limit == 0 || content.len() <= b.bounce_size_limit);
    let mut out = m.into_bytes();
    if full {
        out.extend_from_slice(
            b"Content-Description: Undelivered Message\nContent-Type: message/rfc822\nContent-Transfer-Encoding: 8bit\n\n",
        );
        out.extend_from_slice(format!("Return-Path: <{}>\n", env.sender).as_bytes());
        out.extend_from_slice(content);
    } else {
        let what = match kind {
            NoticeKind::Success => "Delivered Message Headers",
            _ => "Undelivered Message Headers",
        };
        out.extend_from_slice(format!("Content-Description: {what}\nContent-Type: text/rfc822-headers\nContent-Transfer-Encoding: 8bit\n\n").as_bytes());
        out.extend_from_slice(format!("Return-Path: <{}>\n", env.sender).as_bytes());
        out.extend_from_slice(headers_only(content));
    }
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(format!("\n--{boundary}--\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_bits() {
        assert!(wants(0, NoticeKind::Failure));
        assert!(wants(0, NoticeKind::Delay));
        assert!(!wants(0, NoticeKind::Success));
        assert!(!wants(nf::NEVER, NoticeKind::Failure));
        assert!(wants(nf::SUCCESS, NoticeKind::Success));
        assert!(!wants(nf::SUCCESS, NoticeKind::Failure));
    }

    #[test]
    fn unit_text() {
        assert_eq!(units(std::time::Duration::from_secs(4 * 3600), 3600.0), "4");
        assert_eq!(units(std::time::Duration::from_secs(1800), 3600.0), "0");
        assert_eq!(units(std::time::Duration::from_secs(5400), 3600.0), "1");
        assert_eq!(
            units(std::time::Duration::from_secs(5 * 86400), 86400.0),
            "5"
        );
    }
}
