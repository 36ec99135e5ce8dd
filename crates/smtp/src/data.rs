//! Reading message content after `DATA` (and collecting `BDAT` chunks), without I/O.
//!
//! This is where SMTP smuggling happens or doesn't, so the rules are strict and few:
//!
//! - The end of DATA is `<CR><LF>.<CR><LF>`: a line holding only `.`, ended by CRLF, after a
//!   line ended by CRLF (or right after the DATA command). Under
//!   [`BareNewline::Normalize`] (Postfix's `smtpd_forbid_bare_newline = normalize`) and
//!   [`BareNewline::Reject`] nothing else ends the data: `\n.\n`, `\n.\r\n`, `\r\n.\n`,
//!   `\r.\r`, `\r\n.\r` are message content. Only [`BareNewline::Allow`] (Postfix's `no`, for
//!   excluded clients) also takes a `.` line ended or preceded by a bare LF as the end.
//! - A bare LF ends a content line (it is recorded, so that `Reject` can refuse the message);
//!   a bare CR is content.
//! - Dot-stuffing is undone: a leading `.` on any other line is removed.
//! - Content is stored with LF line ends. Past `limit` bytes nothing more is stored, but the
//!   reader keeps looking for the end so that the session stays in step with the client.
//!
//! [`DataReader::feed`] takes whatever bytes arrived and says how many it used: the rest,
//! after the end of data, are the client's next (pipelined) commands. Memory is bounded by
//! `limit` whatever the input; nothing here panics.

/// `smtpd_forbid_bare_newline`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BareNewline {
    /// `normalize`: only CRLF.CRLF ends the data; bare LF is accepted as a line end.
    Normalize,
    /// `reject`: as normalize, and a message with a bare LF is refused.
    Reject,
    /// `no`: bare LF is a line end everywhere, also around the final dot.
    Allow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a line; `crlf`: the previous line ended with CRLF.
    LineStart { crlf: bool },
    /// Saw a `.` at the start of a line.
    Dot { crlf_before: bool },
    /// Saw `.` and CR at the start of a line.
    DotCr { crlf_before: bool },
    /// Inside a line.
    Mid,
    /// Inside a line, after a CR.
    MidCr,
    /// The end of data was seen.
    Done,
}

/// What the reader saw, once the end of data has been reached.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Content {
    /// The message, LF line ends, dot-stuffing undone; incomplete when `too_big`.
    pub bytes: Vec<u8>,
    /// Bytes of content seen (also past the limit).
    pub size: u64,
    pub too_big: bool,
    /// A bare LF (a line ended by LF without CR) was seen.
    pub bare_lf: bool,
}

#[derive(Debug)]
pub struct DataReader {
    policy: BareNewline,
    limit: u64,
    state: State,
    content: Content,
}

impl DataReader {
    /// `limit`: message_size_limit in bytes (0: no limit).
    pub fn new(policy: BareNewline, limit: u64) -> DataReader {
        DataReader {
            policy,
            limit,
            state: State::LineStart { crlf: true },
            content: Content::default(),
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn emit(&mut self, b: u8) {
        self.content.size += 1;
        if self.limit > 0 && self.content.size > self.limit {
            self.content.too_big = true;
            return;
        }
        self.content.bytes.push(b);
    }

    fn emit_all(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.emit(b);
        }
    }

    /// Emit a run of ordinary content bytes.
    fn emit_run(&mut self, bytes: &[u8]) {
        let before = self.content.size;
        self.content.size += bytes.len() as u64;
        if self.limit > 0 && self.content.size > self.limit {
            self.content.too_big = true;
            let room = self.limit.saturating_sub(before) as usize;
            self.content
                .bytes
                .extend_from_slice(&bytes[..room.min(bytes.len())]);
            return;
        }
        self.content.bytes.extend_from_slice(bytes);
    }

    /// A line ended by a bare LF.
    fn bare_lf(&mut self) {
        self.content.bare_lf = true;
        self.emit(b'\n');
        self.state = State::LineStart { crlf: false };
    }

    /// Process one byte inside a line.
    fn mid(&mut self, b: u8) {
        match b {
            b'\r' => self.state = State::MidCr,
            b'\n' => self.bare_lf(),
            _ => {
                self.emit(b);
                self.state = State::Mid;
            }
        }
    }

    /// Feed bytes; returns how many were used. When [`is_done`](Self::is_done) afterwards,
    /// the unused rest is what the client sent after the end of data.
    pub fn feed(&mut self, input: &[u8]) -> usize {
        let mut i = 0;
        while i < input.len() {
            // Fast path: inside a line, copy everything up to the next CR or LF at once.
            if self.state == State::Mid {
                let run = input[i..]
                    .iter()
                    .position(|&c| c == b'\r' || c == b'\n')
                    .unwrap_or(input.len() - i);
                if run > 0 {
                    self.emit_run(&input[i..i + run]);
                    i += run;
                    continue;
                }
            }
            let b = input[i];
            i += 1;
            // `i` now counts the byte being handled; early returns report it consumed.
            let i = i - 1;
            match self.state {
                State::Done => return i,
                State::LineStart { crlf } => match b {
                    b'.' => self.state = State::Dot { crlf_before: crlf },
                    _ => self.mid(b),
                },
                State::Dot { crlf_before } => match b {
                    b'\r' => self.state = State::DotCr { crlf_before },
                    b'\n' => {
                        if self.policy == BareNewline::Allow {
                            self.state = State::Done;
                            self.content.bare_lf = true;
                            return i + 1;
                        }
                        // `.` then a bare LF: a content line holding a dot.
                        self.emit(b'.');
                        self.bare_lf();
                    }
                    // A stuffed dot: drop it, keep the rest of the line.
                    _ => self.mid(b),
                },
                State::DotCr { crlf_before } => match b {
                    b'\n' => {
                        if crlf_before || self.policy == BareNewline::Allow {
                            self.state = State::Done;
                            return i + 1;
                        }
                        // `\n.\r\n`: not the end; a content line holding a dot.
                        self.emit_all(b".\n");
                        self.state = State::LineStart { crlf: true };
                    }
                    b'\r' => {
                        // `.` CR CR: stuffed-dot line starting with a bare CR.
                        self.emit(b'\r');
                        self.state = State::MidCr;
                    }
                    _ => {
                        self.emit(b'\r');
                        self.mid(b);
                    }
                },
                State::Mid => self.mid(b),
                State::MidCr => match b {
                    b'\n' => {
                        self.emit(b'\n');
                        self.state = State::LineStart { crlf: true };
                    }
                    b'\r' => self.emit(b'\r'),
                    _ => {
                        self.emit(b'\r');
                        self.mid(b);
                    }
                },
            }
        }
        input.len()
    }

    /// The content, once done (or whatever was read so far).
    pub fn finish(self) -> Content {
        self.content
    }
}

/// Collects the chunks of a BDAT transaction: exact byte counts, no dot-stuffing, content
/// kept as sent (cleanup normalizes line ends). Memory bounded by `limit`.
#[derive(Debug)]
pub struct ChunkCollector {
    limit: u64,
    content: Content,
}

impl ChunkCollector {
    pub fn new(limit: u64) -> ChunkCollector {
        ChunkCollector {
            limit,
            content: Content::default(),
        }
    }

    /// Add chunk bytes (a chunk may arrive in several pieces).
    pub fn add(&mut self, bytes: &[u8]) {
        let before = self.content.size;
        self.content.size += bytes.len() as u64;
        if self.limit > 0 && self.content.size > self.limit {
            self.content.too_big = true;
            let room = self.limit.saturating_sub(before) as usize;
            self.content
                .bytes
                .extend_from_slice(&bytes[..room.min(bytes.len())]);
            return;
        }
        let mut prev = self.content.bytes.last().copied();
        for &b in bytes {
            if b == b'\n' && prev != Some(b'\r') {
                self.content.bare_lf = true;
            }
            prev = Some(b);
        }
        self.content.bytes.extend_from_slice(bytes);
    }

    pub fn size(&self) -> u64 {
        self.content.size
    }

    pub fn too_big(&self) -> bool {
        self.content.too_big
    }

    pub fn finish(self) -> Content {
        self.content
    }
}

/// Fuzz entry point: the reader never panics, stays within its limit, and `feed` reports a
/// consumed count within the input.
pub fn fuzz_data(data: &[u8]) {
    for policy in [
        BareNewline::Normalize,
        BareNewline::Reject,
        BareNewline::Allow,
    ] {
        let mut r = DataReader::new(policy, 4096);
        let mut used_total = 0;
        for chunk in data.chunks(7) {
            let used = r.feed(chunk);
            assert!(used <= chunk.len());
            used_total += used;
            if r.is_done() {
                break;
            }
        }
        assert!(used_total <= data.len());
        let c = r.finish();
        assert!(c.bytes.len() <= 4096);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(policy: BareNewline, input: &[u8]) -> (Option<usize>, Content) {
        let mut r = DataReader::new(policy, 0);
        let used = r.feed(input);
        let done = r.is_done().then_some(used);
        (done, r.finish())
    }

    #[test]
    fn standard_end_and_unstuffing() {
        let data: &[u8] = b"Subject: x\r\n\r\n..leading dot\r\n.\r\n";
        let mut input = data.to_vec();
        input.extend_from_slice(b"MAIL FROM:<a@b>\r\n");
        let (done, c) = read(BareNewline::Normalize, &input);
        assert_eq!(done, Some(data.len()));
        assert_eq!(c.bytes, b"Subject: x\n\n.leading dot\n");
        assert!(!c.bare_lf);
        let (done, c) = read(BareNewline::Normalize, b".\r\n");
        assert_eq!(done, Some(3));
        assert!(c.bytes.is_empty());
    }

    /// The published smuggling sequences: under normalize (and reject) none of them ends the
    /// data, so what follows is content of the same message, never a second message.
    #[test]
    fn smuggling_sequences_do_not_end_data() {
        let smuggled: &[&[u8]] = &[
            b"\n.\n",
            b"\n.\r\n",
            b"\r\n.\n",
            b"\r.\r",
            b"\r\n.\r",
            b"\r\n.\r\r\n",
            b"\r.\r\n",
            b"\n.\r",
        ];
        for seq in smuggled {
            for policy in [BareNewline::Normalize, BareNewline::Reject] {
                let mut input = b"Subject: a\r\n\r\nbody".to_vec();
                input.extend_from_slice(seq);
                input.extend_from_slice(
                    b"MAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\nDATA\r\nsmuggled\r\n",
                );
                let (done, c) = read(policy, &input);
                assert_eq!(done, None, "{seq:?} ended the data under {policy:?}");
                assert!(
                    memchr_contains(&c.bytes, b"MAIL FROM:<evil@x>"),
                    "{seq:?}: the smuggled commands must stay content"
                );
                // The real end still works afterwards.
                let mut r = DataReader::new(policy, 0);
                r.feed(&input);
                let used = r.feed(b"\r\n.\r\nQUIT\r\n");
                assert!(r.is_done(), "{seq:?}");
                assert_eq!(used, 5);
            }
        }
    }

    fn memchr_contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn allow_takes_bare_lf_ends() {
        assert_eq!(read(BareNewline::Allow, b"a\n.\nX").0, Some(4));
        assert_eq!(read(BareNewline::Allow, b"a\n.\r\nX").0, Some(5));
        assert_eq!(read(BareNewline::Allow, b"a\r\n.\nX").0, Some(5));
        assert_eq!(read(BareNewline::Allow, b"a\r.\rX").0, None);
    }

    #[test]
    fn bare_lf_and_cr_are_recorded_and_kept() {
        let (done, c) = read(BareNewline::Reject, b"a\nb\rc\r\n.\r\n");
        assert_eq!(done, Some(10));
        assert!(c.bare_lf);
        assert_eq!(c.bytes, b"a\nb\rc\n");
    }

    #[test]
    fn byte_by_byte_equals_all_at_once() {
        let input = b"x\r\n..y\r\n.z\n\r\n.\r\nrest";
        let (done, whole) = read(BareNewline::Normalize, input);
        let mut r = DataReader::new(BareNewline::Normalize, 0);
        let mut used = 0;
        for b in input.iter() {
            used += r.feed(std::slice::from_ref(b));
            if r.is_done() {
                break;
            }
        }
        assert_eq!(Some(used), done);
        assert_eq!(r.finish(), whole);
    }

    #[test]
    fn size_limit_stops_storing_but_finds_the_end() {
        let mut r = DataReader::new(BareNewline::Normalize, 10);
        r.feed(&vec![b'a'; 100_000]);
        let used = r.feed(b"\r\n.\r\nQUIT\r\n");
        assert!(r.is_done());
        assert_eq!(used, 5);
        let c = r.finish();
        assert!(c.too_big);
        assert_eq!(c.bytes.len(), 10);
        assert_eq!(c.size, 100_001);
    }

    #[test]
    fn chunks() {
        let mut c = ChunkCollector::new(0);
        c.add(b"Subject: x\r\n\r\nline\n");
        c.add(b"more\r\n");
        let c = c.finish();
        assert!(c.bare_lf);
        assert_eq!(c.size, 25);
        let mut c = ChunkCollector::new(5);
        c.add(b"abcdefgh");
        assert!(c.too_big());
        assert_eq!(c.finish().bytes, b"abcde");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            fuzz_data(&data);
        }

        /// Content without CR or a line holding only a dot, sent with CRLF, dot-stuffed,
        /// comes back exactly.
        #[test]
        fn round_trip(lines in proptest::collection::vec("[^\r\n]{0,20}", 0..20)) {
            let mut wire = Vec::new();
            let mut want = Vec::new();
            for l in &lines {
                if l.starts_with('.') {
                    wire.push(b'.');
                }
                wire.extend_from_slice(l.as_bytes());
                wire.extend_from_slice(b"\r\n");
                want.extend_from_slice(l.as_bytes());
                want.push(b'\n');
            }
            wire.extend_from_slice(b".\r\n");
            let mut r = DataReader::new(BareNewline::Normalize, 0);
            let used = r.feed(&wire);
            proptest::prop_assert!(r.is_done());
            proptest::prop_assert_eq!(used, wire.len());
            proptest::prop_assert_eq!(r.finish().bytes, want);
        }

        /// Where the network splits the input never changes the outcome: fed in two pieces
        /// or a byte at a time, the reader stops at the same place with the same content.
        #[test]
        fn split_points_do_not_matter(
            data in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b'.', b'\r', b'\n', b'x']), 0..200),
            cut in 0usize..200,
            limit in 0u64..64,
        ) {
            let policy = BareNewline::Normalize;
            let mut whole = DataReader::new(policy, limit);
            let used_whole = whole.feed(&data);
            let cut = cut.min(data.len());
            let mut two = DataReader::new(policy, limit);
            let mut used_two = two.feed(&data[..cut]);
            if !two.is_done() {
                used_two = cut + two.feed(&data[cut..]);
            }
            let mut bytes = DataReader::new(policy, limit);
            let mut used_bytes = data.len();
            for (i, b) in data.iter().enumerate() {
                if bytes.feed(std::slice::from_ref(b)) == 0 || bytes.is_done() {
                    used_bytes = i + 1;
                    break;
                }
            }
            proptest::prop_assert_eq!(used_whole, used_two);
            proptest::prop_assert_eq!(used_whole, used_bytes);
            let (w, t, b) = (whole.finish(), two.finish(), bytes.finish());
            proptest::prop_assert_eq!(&w.bytes, &t.bytes);
            proptest::prop_assert_eq!(&w.bytes, &b.bytes);
            proptest::prop_assert_eq!(w.size, t.size);
            proptest::prop_assert_eq!(w.too_big, b.too_big);
        }
    }
}
