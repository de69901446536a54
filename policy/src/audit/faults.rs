//! An audit log whose writes fail on demand, for the tests of what a failed write leaves behind
//! (here and in the gateway, behind the `test-util` feature). The faults stand for what a real
//! disk does: a full one writes part of a line and then refuses the rest (`ENOSPC`), an fsync can
//! fail after the write went through, and the cut back to the last whole record can fail too.

use std::{
    fs::File,
    io::{self, Write},
    path::PathBuf,
    sync::{Arc, Mutex},
};

use super::{AuditError, AuditLog, AuditOptions, LogFile, OpenReport};

/// What the next writes do; shared between a test and the log it opened with
/// [`AuditLog::open_with_faults`].
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<Mutex<Plan>>);

#[derive(Debug, Default)]
struct Plan {
    /// Every write stores at most this many bytes of its line and then fails, until cleared: a
    /// disk that stays full.
    full: Option<usize>,
    /// The next write stores this many bytes of its line and then fails.
    short_write: Option<usize>,
    /// The next fsync fails (after its write went through).
    sync_fails: bool,
    /// This many of the next cuts (`set_len`) fail.
    truncate_fails: usize,
}

/// A [`File`] that obeys its [`Faults`].
struct FaultyFile {
    file: File,
    faults: Faults,
}

// === impl Faults ===

impl Faults {
    fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From now on every write stores at most `stored` bytes and fails; `None` frees the disk.
    pub fn set_full(&self, stored: Option<usize>) {
        self.plan().full = stored;
    }

    /// The next write stores `stored` bytes of its line (all of it when the line is shorter)
    /// and then fails.
    pub fn short_write(&self, stored: usize) {
        self.plan().short_write = Some(stored);
    }

    /// The next fsync fails.
    pub fn fail_sync(&self) {
        self.plan().sync_fails = true;
    }

    /// The next `times` cuts back to the last whole record fail.
    pub fn fail_truncate(&self, times: usize) {
        self.plan().truncate_fails = times;
    }

    /// No more faults, including those armed for writes that never came.
    pub fn clear(&self) {
        *self.plan() = Plan::default();
    }
}

fn no_space() -> io::Error {
    io::Error::from_raw_os_error(28) // ENOSPC
}

// === impl FaultyFile ===

impl Write for FaultyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    /// The whole line, or the part the plan allows followed by `ENOSPC`.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let stored = {
            let mut plan = self.faults.plan();
            plan.short_write.take().or(plan.full)
        };
        match stored {
            Some(stored) if stored < buf.len() => {
                self.file.write_all(&buf[..stored])?;
                Err(no_space())
            }
            _ => self.file.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl LogFile for FaultyFile {
    fn sync_data(&self) -> io::Result<()> {
        if std::mem::take(&mut self.faults.plan().sync_fails) {
            return Err(io::Error::other("injected fsync failure"));
        }
        self.file.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        {
            let mut plan = self.faults.plan();
            if plan.truncate_fails > 0 {
                plan.truncate_fails -= 1;
                return Err(io::Error::other("injected truncate failure"));
            }
        }
        self.file.set_len(len)
    }

    fn seek_end(&mut self) -> io::Result<u64> {
        LogFile::seek_end(&mut self.file)
    }
}

// === impl AuditLog ===

impl AuditLog {
    /// [`AuditLog::open`], writing through a file that obeys `faults`.
    pub fn open_with_faults(
        path: impl Into<PathBuf>,
        opts: AuditOptions,
        faults: &Faults,
    ) -> Result<(Self, OpenReport), AuditError> {
        let faults = faults.clone();
        Self::open_on(path.into(), opts, None, move |file| {
            Box::new(FaultyFile { file, faults })
        })
    }
}
