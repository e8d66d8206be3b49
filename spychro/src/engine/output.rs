//! A worker's stdout or stderr, read from a pipe and forwarded to the caller's own stream line
//! by line, each line whole and prefixed with the worker's pid, so that lines from several
//! workers never interleave mid-line. An allocation failure's report on stderr is remembered:
//! it tells an out-of-memory abort from any other.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// A line longer than this is forwarded as it arrives (the prefix, then its bytes), rather
/// than held whole.
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
    /// A long line was started (its prefix written) and has not ended yet.
    in_line: bool,
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
            in_line: false,
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
            let mut rest = std::mem::take(&mut self.pending);
            // A last line without its newline gets one, so the next output starts a line.
            rest.push(b'\n');
            self.emit(&rest);
        } else if self.in_line {
            self.emit(b"\n");
        }
    }

    /// The last allocation failure reported on stderr.
    pub(crate) fn oom_report(&self) -> Option<&str> {
        self.oom.as_deref()
    }

    fn emit_lines(&mut self) {
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let end = start + nl + 1;
            let line = self.pending[start..end].to_vec();
            self.emit(&line);
            start = end;
        }
        self.pending.drain(..start);
        if self.pending.len() >= MAX_LINE {
            // A line longer than this goes out as it comes, its bytes unchanged: the prefix
            // once, then the rest of the line as it arrives.
            let piece = std::mem::take(&mut self.pending);
            self.emit(&piece);
        }
    }

    /// Writes `bytes` (a line with its newline, or a piece of a long line): the prefix first
    /// unless a long line is under way, in one write under the stream's lock, so that whole
    /// lines never interleave.
    fn emit(&mut self, bytes: &[u8]) {
        let complete = bytes.ends_with(b"\n");
        let mut out = Vec::with_capacity(self.prefix.len() + bytes.len() + 1);
        if !self.in_line {
            out.extend_from_slice(self.prefix.as_bytes());
        }
        out.extend_from_slice(bytes);
        super::hooks::write_above(|| {
            let _ = match self.stream {
                Stream::Stdout => io::stdout().lock().write_all(&out),
                Stream::Stderr => io::stderr().lock().write_all(&out),
            };
        });
        if self.stream == Stream::Stderr
            && !self.in_line
            && bytes.starts_with(OOM_REPORT.as_bytes())
        {
            let line = bytes.strip_suffix(b"\n").unwrap_or(bytes);
            self.oom = Some(String::from_utf8_lossy(line).into_owned());
        }
        self.in_line = !complete;
    }
}
