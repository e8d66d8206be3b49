//! A worker's stdout or stderr, read from a pipe and forwarded to the caller's own stream line
//! by line, each line whole and prefixed with the worker's pid, so that lines from several
//! workers never interleave mid-line. An allocation failure's report on stderr is remembered:
//! it tells an out-of-memory abort from any other.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// A line longer than this is forwarded in pieces.
const MAX_LINE: usize = 64 * 1024;
/// How Rust's default allocation-error handler starts its report, before it aborts.
const OOM_REPORT: &str = "memory allocation of ";

/// Which of the caller's streams a pipe goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

pub(crate) struct Forward {
    pipe: Option<std::fs::File>,
    stream: Stream,
    prefix: String,
    pending: Vec<u8>,
    oom: Option<String>,
}

impl Forward {
    /// Forwards `pipe` (made non-blocking here), or nothing when there is none.
    pub(crate) fn new(pipe: Option<OwnedFd>, stream: Stream, pid: u32) -> io::Result<Forward> {
        let pipe = match pipe {
            Some(fd) => {
                let flags = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL)?;
                let mut flags = nix::fcntl::OFlag::from_bits_retain(flags);
                flags.insert(nix::fcntl::OFlag::O_NONBLOCK);
                nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(flags))?;
                Some(std::fs::File::from(fd))
            }
            None => None,
        };
        Ok(Forward {
            pipe,
            stream,
            prefix: format!("[worker {pid}] "),
            pending: Vec::new(),
            oom: None,
        })
    }

    /// The pipe to poll, while it is open.
    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.pipe.as_ref().map(|p| p.as_fd())
    }

    /// Reads what the pipe holds and forwards every whole line. Closes the pipe at its end.
    pub(crate) fn pump(&mut self) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let Some(pipe) = self.pipe.as_mut() else {
                return;
            };
            match pipe.read(&mut buf) {
                Ok(0) => {
                    self.finish();
                    return;
                }
                Ok(n) => {
                    self.pending.extend_from_slice(&buf[..n]);
                    self.emit_lines();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.finish();
                    return;
                }
            }
        }
    }

    /// Forwards what is left, a partial last line included, and stops reading.
    pub(crate) fn finish(&mut self) {
        self.pipe = None;
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.emit(&rest);
        }
    }

    /// The last allocation failure reported on stderr.
    pub(crate) fn oom_report(&self) -> Option<&str> {
        self.oom.as_deref()
    }

    fn emit_lines(&mut self) {
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line = self.pending[start..start + nl].to_vec();
            self.emit(&line);
            start += nl + 1;
        }
        self.pending.drain(..start);
        while self.pending.len() >= MAX_LINE {
            let piece: Vec<u8> = self.pending.drain(..MAX_LINE).collect();
            self.emit(&piece);
        }
    }

    fn emit(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut out = Vec::with_capacity(self.prefix.len() + line.len() + 1);
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(line);
        out.push(b'\n');
        // One write per line, under the stream's lock: lines never interleave mid-line.
        crate::hooks::write_above(|| {
            let _ = match self.stream {
                Stream::Stdout => io::stdout().lock().write_all(&out),
                Stream::Stderr => io::stderr().lock().write_all(&out),
            };
        });
        if self.stream == Stream::Stderr && line.starts_with(OOM_REPORT.as_bytes()) {
            self.oom = Some(String::from_utf8_lossy(line).into_owned());
        }
    }
}
