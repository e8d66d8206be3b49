//! What waits to be sent to one worker, in order: frames built here, and the items of batches,
//! which are shared with the batch kept in flight instead of being copied, and written
//! together with their headers in one gathered write.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::sync::Arc;

/// Segments written in one call at most.
const GATHER: usize = 16;

/// Bytes queued for a non-blocking socket.
#[derive(Default)]
pub(crate) struct Outbox {
    segments: VecDeque<Segment>,
    /// Bytes of the front segment already sent.
    sent: usize,
    /// Frames appended after the last segment, not yet made one.
    tail: Vec<u8>,
}

enum Segment {
    Owned(Vec<u8>),
    Shared(Arc<Vec<u8>>),
}

impl Segment {
    fn bytes(&self) -> &[u8] {
        match self {
            Segment::Owned(v) => v,
            Segment::Shared(v) => v,
        }
    }
}

impl Outbox {
    /// Room to append whole frames, sent after everything queued before.
    pub(crate) fn bytes(&mut self) -> &mut Vec<u8> {
        &mut self.tail
    }

    /// Queues bytes shared with their owner, sent after everything queued before.
    pub(crate) fn share(&mut self, bytes: Arc<Vec<u8>>) {
        self.seal();
        if !bytes.is_empty() {
            self.segments.push_back(Segment::Shared(bytes));
        }
    }

    /// Makes the appended frames a segment.
    fn seal(&mut self) {
        if !self.tail.is_empty() {
            self.segments
                .push_back(Segment::Owned(std::mem::take(&mut self.tail)));
        }
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.segments.is_empty() && self.tail.is_empty()
    }

    /// Writes what `w` takes without blocking.
    pub(crate) fn send(&mut self, mut w: impl Write) -> io::Result<()> {
        self.seal();
        while !self.segments.is_empty() {
            let mut slices = [IoSlice::new(&[]); GATHER];
            let mut n = 0;
            for (k, s) in self.segments.iter().take(GATHER).enumerate() {
                let bytes = s.bytes();
                slices[k] = IoSlice::new(if k == 0 { &bytes[self.sent..] } else { bytes });
                n = k + 1;
            }
            match w.write_vectored(&slices[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => self.advance(written),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Drops the first `n` bytes.
    fn advance(&mut self, mut n: usize) {
        while let Some(front) = self.segments.front() {
            let left = front.bytes().len() - self.sent;
            if n < left {
                self.sent += n;
                return;
            }
            n -= left;
            self.sent = 0;
            self.segments.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes at most `limit` bytes per write, and only `writes` writes.
    struct Trickle {
        got: Vec<u8>,
        limit: usize,
        writes: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            if self.writes == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.writes -= 1;
            let mut took = 0;
            for b in bufs {
                let n = b.len().min(self.limit - took);
                self.got.extend_from_slice(&b[..n]);
                took += n;
            }
            Ok(took)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn sends_everything_in_order_across_partial_writes() {
        let mut out = Outbox::default();
        out.bytes().extend_from_slice(b"ab");
        out.bytes().extend_from_slice(b"c");
        out.share(Arc::new(b"defgh".to_vec()));
        out.share(Arc::new(Vec::new()));
        out.bytes().extend_from_slice(b"ij");
        out.share(Arc::new(b"k".to_vec()));
        let mut w = Trickle {
            got: Vec::new(),
            limit: 3,
            writes: 2,
        };
        out.send(&mut w).unwrap();
        assert_eq!(w.got, b"abcdef");
        assert!(!out.is_empty());
        w.writes = 10;
        out.send(&mut w).unwrap();
        assert_eq!(w.got, b"abcdefghijk");
        assert!(out.is_empty());
    }
}
