//! Group commit for directory `fsync`s.
//!
//! Many messages committed at about the same time each need their directory entry made durable.
//! A `DirSync` lets them share one `fsync` of the directory: a caller that arrives while a sync
//! is running waits for the next one, which covers every rename made before it started. No
//! caller returns before an `fsync` that began after its own rename has completed.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

#[derive(Default)]
struct State {
    /// Tickets handed out so far.
    requested: u64,
    /// Every ticket up to this one is durable.
    completed: u64,
    syncing: bool,
}

#[derive(Debug)]
pub struct DirSync {
    dir: PathBuf,
    state: Mutex<State>,
    done: Condvar,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.completed, self.requested)
    }
}

impl DirSync {
    pub fn new(dir: impl Into<PathBuf>) -> DirSync {
        DirSync {
            dir: dir.into(),
            state: Mutex::new(State::default()),
            done: Condvar::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Make every directory change made before this call durable.
    pub fn sync(&self) -> io::Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.requested += 1;
        let ticket = st.requested;
        loop {
            if st.completed >= ticket {
                return Ok(());
            }
            if !st.syncing {
                st.syncing = true;
                let target = st.requested;
                drop(st);
                let result = File::open(&self.dir).and_then(|d| d.sync_all());
                st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                st.syncing = false;
                if result.is_ok() {
                    st.completed = st.completed.max(target);
                }
                self.done.notify_all();
                result.map_err(|e| {
                    io::Error::new(e.kind(), format!("fsync {}: {e}", self.dir.display()))
                })?;
                continue;
            }
            st = self.done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn many_threads_all_return() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(DirSync::new(dir.path()));
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        s.sync().unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let st = s.state.lock().unwrap();
        assert_eq!(st.completed, st.requested);
    }

    #[test]
    fn missing_directory_is_an_error() {
        let s = DirSync::new("/nonexistent/postern-test-dir");
        assert!(s.sync().is_err());
    }
}
