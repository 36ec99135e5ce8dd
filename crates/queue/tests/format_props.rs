//! Property tests for the queue file format: any envelope and content round-trip; any prefix
//! of a file is rejected or, past the end record, decodes to a prefix of its status records;
//! arbitrary bytes never panic the decoder.

use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use queue::record::{decode, encode, encode_status, Envelope, Recipient, Status};

fn recipient() -> impl Strategy<Value = Recipient> {
    (
        "[^\u{0}]{0,40}",
        "[^\u{0}]{0,40}",
        0u8..16,
        "[^\u{0}]{0,20}",
    )
        .prop_map(|(address, orig, notify, orcpt)| Recipient {
            address,
            orig,
            notify,
            orcpt,
        })
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (
        0u64..4_000_000_000,
        0u32..1_000_000_000,
        "[^\u{0}]{0,60}",
        proptest::option::of(".{0,30}"),
        proptest::collection::vec(("[a-z_]{1,12}", ".{0,30}"), 0..4),
        proptest::collection::vec(recipient(), 0..6),
    )
        .prop_map(|(s, n, sender, full_name, attrs, recipients)| Envelope {
            arrival: UNIX_EPOCH + Duration::new(s, n),
            sender,
            full_name,
            attrs,
            recipients,
        })
}

fn status(nrcpt: u32) -> impl Strategy<Value = Status> {
    let r = 0..nrcpt.max(1);
    prop_oneof![
        r.clone().prop_map(|rcpt| Status::Done { rcpt }),
        r.clone().prop_map(|rcpt| Status::Intent { rcpt }),
        r.clone().prop_map(|rcpt| Status::Notified { rcpt }),
        Just(Status::Warned),
        (
            r.clone(),
            "[^\u{0}]{0,30}",
            "[^\u{0}]{0,8}",
            "[^\u{0}]{0,20}",
            "[^\u{0}]{0,60}"
        )
            .prop_map(|(rcpt, address, dsn, relay, reason)| Status::Deferred {
                rcpt,
                address,
                dsn,
                relay,
                reason
            }),
        (
            r,
            "[^\u{0}]{0,30}",
            "[^\u{0}]{0,8}",
            "[^\u{0}]{0,20}",
            "[^\u{0}]{0,60}"
        )
            .prop_map(|(rcpt, address, dsn, relay, reason)| Status::Bounced {
                rcpt,
                address,
                dsn,
                relay,
                reason
            }),
    ]
}

fn file() -> impl Strategy<Value = (Envelope, Vec<u8>, Vec<Status>)> {
    (envelope(), proptest::collection::vec(any::<u8>(), 0..300)).prop_flat_map(|(env, body)| {
        let n = env.recipients.len() as u32;
        let statuses = if n == 0 {
            Just(Vec::new()).boxed()
        } else {
            proptest::collection::vec(status(n), 0..8).boxed()
        };
        (Just(env), Just(body), statuses)
    })
}

proptest! {
    #[test]
    fn round_trip((env, body, statuses) in file()) {
        let mut bytes = encode(&env, &body);
        for s in &statuses {
            bytes.extend(encode_status(s));
        }
        let d = decode(&bytes).unwrap();
        prop_assert_eq!(&d.envelope, &env);
        prop_assert_eq!(&bytes[d.content.clone()], &body[..]);
        prop_assert_eq!(&d.statuses, &statuses);
        prop_assert_eq!(d.valid_len, bytes.len());
    }

    #[test]
    fn prefixes_never_lie((env, body, statuses) in file(), cut in any::<prop::sample::Index>()) {
        let head = encode(&env, &body);
        let mut bytes = head.clone();
        for s in &statuses {
            bytes.extend(encode_status(s));
        }
        let cut = cut.index(bytes.len() + 1);
        match decode(&bytes[..cut]) {
            Ok(d) => {
                prop_assert!(cut >= head.len());
                prop_assert_eq!(&d.envelope, &env);
                prop_assert!(d.statuses.len() <= statuses.len());
                prop_assert_eq!(&d.statuses[..], &statuses[..d.statuses.len()]);
            }
            Err(_) => prop_assert!(cut < head.len()),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
        let mut with_magic = queue::record::MAGIC.to_vec();
        with_magic.extend(&bytes);
        let _ = decode(&with_magic);
    }
}
