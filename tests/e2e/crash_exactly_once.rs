//! A daemon killed with SIGKILL at any moment and restarted delivers every message that
//! `sendmail` accepted (exit 0), and delivers it exactly once (docs/architecture.md: maildrop
//! and incoming commits, delivery intents checked against the mailbox after a crash). Each
//! message carries a unique token; after the restart the mbox, read by Python's `mailbox`, has
//! every accepted token exactly once. The kill lands at a point that varies from run to run
//! (after a pseudo-random number of log events; the seed is printed): once during a burst of
//! 500 submissions from several concurrent submitters, and twice while a backlog is being
//! delivered.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::common::*;

/// A small pseudo-random generator, seeded from the clock (the seed is printed so a failing
/// run can be understood).
struct Rng(u64);

impl Rng {
    fn from_clock(what: &str) -> Rng {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
        println!("{what}: seed {seed}");
        Rng(seed)
    }
    fn below(&mut self, lo: usize, hi: usize) -> usize {
        // splitmix64: well mixed even for neighbouring seeds.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        lo + (z % (hi - lo) as u64) as usize
    }
}

/// A kill during an mbox delivery leaves its dotlock file behind, as a killed Postfix local(8)
/// does; the next delivery removes it once it is older than `stale_lock_time` (500s by
/// default, a few seconds here).
fn crash_instance() -> testkit::Builder {
    instance().main_cf("stale_lock_time = 2s")
}

fn message(token: &str) -> String {
    format!("Subject: crash test {token}\n\nunique {token} end\n")
}

/// Run `sendmail` for each token, as a separate program would (not through the instance, which
/// the test kills and restarts meanwhile); returns (token, accepted) pairs.
fn submit(bin: &Path, config: &Path, to: &str, tokens: Vec<String>) -> Vec<(String, bool)> {
    tokens
        .into_iter()
        .map(|t| {
            let mut cmd = Command::new(bin);
            cmd.args(["sendmail", "-f", "crash@test.example", to])
                .env("MAIL_CONFIG", config);
            let out = testkit::run_with_input(cmd, message(&t).as_bytes());
            (t, out.status.success())
        })
        .collect()
}

/// How many times each token occurs in the mbox, read with Python's `mailbox.mbox`.
fn token_counts(inst: &Instance, user: &str) -> (usize, HashMap<String, usize>) {
    let msgs = read_mbox(&inst.mailbox(user));
    let mut counts = HashMap::new();
    for m in &msgs {
        let token = m
            .header("Subject")
            .and_then(|s| s.strip_prefix("crash test "))
            .unwrap_or_else(|| panic!("unexpected message in the mbox: {m:?}"))
            .to_string();
        assert_eq!(
            m.body,
            format!("unique {token} end\n"),
            "message {token} is intact"
        );
        *counts.entry(token).or_insert(0) += 1;
    }
    (msgs.len(), counts)
}

fn assert_exactly_once(inst: &Instance, user: &str, results: &[(String, bool)]) {
    let (total, counts) = token_counts(inst, user);
    let mut missing = Vec::new();
    let mut doubled = Vec::new();
    for (t, accepted) in results {
        let n = counts.get(t).copied().unwrap_or(0);
        if *accepted && n == 0 {
            missing.push(t.clone());
        }
        if n > 1 {
            doubled.push(format!("{t} x{n}"));
        }
    }
    assert!(
        missing.is_empty(),
        "accepted but never delivered: {missing:?}\n{}",
        inst.log()
    );
    assert!(doubled.is_empty(), "delivered more than once: {doubled:?}");
    let known: std::collections::HashSet<&String> = results.iter().map(|(t, _)| t).collect();
    assert!(
        counts.keys().all(|t| known.contains(t)),
        "unknown tokens delivered"
    );
    assert!(
        total <= results.len(),
        "{total} messages for {} submissions",
        results.len()
    );
}

#[test]
fn kill9_during_a_burst_of_submissions_loses_and_duplicates_nothing() {
    let alice = user("pt-crash");
    let mut inst = crash_instance().start();
    let mut rng = Rng::from_clock("burst");
    const SUBMITTERS: usize = 4;
    const PER: usize = 125;
    // Kill after a varied number of pickups: early, in the middle or late in the burst.
    let kill_after = rng.below(10, 400);
    println!("killing the daemon after {kill_after} pickups");

    let (bin, config) = (inst.bin().to_path_buf(), inst.config_dir());
    let results: Vec<(String, bool)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..SUBMITTERS)
            .map(|s| {
                let (bin, config, to) = (&bin, &config, alice.name.clone());
                scope.spawn(move || {
                    submit(
                        bin,
                        config,
                        &to,
                        (0..PER).map(|i| format!("b{s}x{i}")).collect(),
                    )
                })
            })
            .collect();
        inst.wait_log(&[": uid=", "from=<crash@test.example>"], kill_after);
        inst.kill9();
        let picked_up = inst.log_lines(&[": uid="]).len();
        println!("killed after {picked_up} pickups");
        inst.start();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("submitter"))
            .collect()
    });
    assert_eq!(results.len(), SUBMITTERS * PER);
    // sendmail does not need the daemon: every submission is accepted, killed daemon or not.
    let refused: Vec<&String> = results
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(t, _)| t)
        .collect();
    assert!(refused.is_empty(), "sendmail failed for {refused:?}");
    inst.wait_queue_empty();
    assert_exactly_once(&inst, &alice.name, &results);
}

#[test]
fn kill9_while_delivering_a_backlog_loses_and_duplicates_nothing() {
    let alice = user("pt-crash");
    // Queue a backlog with the daemon down, then let it deliver and kill it twice mid-way.
    let mut inst = crash_instance().start();
    inst.stop();
    const N: usize = 300;
    let (bin, config) = (inst.bin().to_path_buf(), inst.config_dir());
    let results: Vec<(String, bool)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|s| {
                let (bin, config, to) = (&bin, &config, alice.name.clone());
                scope.spawn(move || {
                    submit(
                        bin,
                        config,
                        &to,
                        (0..N / 3).map(|i| format!("d{s}x{i}")).collect(),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("submitter"))
            .collect()
    });
    assert!(
        results.iter().all(|(_, ok)| *ok),
        "sendmail works with the daemon down"
    );
    assert_eq!(
        inst.queue_ids("maildrop").len(),
        N,
        "the backlog waits in maildrop/"
    );

    let mut rng = Rng::from_clock("backlog");
    let first = rng.below(1, N / 2);
    let second = rng.below(first + 1, N - 10);
    for kill_after in [first, second] {
        inst.start();
        println!("killing the daemon after {kill_after} deliveries");
        inst.wait_log(&["status=sent (delivered to mailbox)"], kill_after);
        inst.kill9();
    }
    inst.start();
    inst.wait_queue_empty();
    assert_exactly_once(&inst, &alice.name, &results);
    let (total, _) = token_counts(&inst, &alice.name);
    assert_eq!(total, N);
}
