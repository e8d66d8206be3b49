//! Framing: `[u32 LE body length][u8 tag][body]`, with a hard maximum checked before any
//! allocation, and a bounds-checked cursor for reading bodies. Decoding never panics.

use std::io::{self, Read};

use crate::error::WireError;

/// The largest frame body either side accepts (1 GiB). A claimed length above it is refused
/// before anything is allocated; a claimed length below it is read as the bytes arrive, so a
/// truncated stream never makes us allocate what it claims.
pub(crate) const MAX_FRAME: usize = 1 << 30;

/// The bytes before a frame's body: length (4) and tag (1).
pub(crate) const HEADER: usize = 5;

/// Starts a frame in `buf`: reserves the header and returns where it starts.
pub(crate) fn begin_frame(buf: &mut Vec<u8>, tag: u8) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0, 0, 0, 0, tag]);
    start
}

/// Ends the frame started at `start`: patches its length, or removes it and fails when the
/// body is above [`MAX_FRAME`].
pub(crate) fn end_frame(buf: &mut Vec<u8>, start: usize) -> Result<(), WireError> {
    let body = buf.len() - start - HEADER;
    if body > MAX_FRAME {
        buf.truncate(start);
        return Err(WireError::TooLarge {
            claimed: body,
            max: MAX_FRAME,
        });
    }
    buf[start..start + 4].copy_from_slice(&(body as u32).to_le_bytes());
    Ok(())
}

/// Looks for one whole frame at the start of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, or `(tag, body range, frame length)`.
pub(crate) fn parse_frame(
    buf: &[u8],
) -> Result<Option<(u8, std::ops::Range<usize>, usize)>, WireError> {
    if buf.len() < HEADER {
        return Ok(None);
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_FRAME {
        return Err(WireError::TooLarge {
            claimed: len,
            max: MAX_FRAME,
        });
    }
    let total = HEADER + len;
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some((buf[4], HEADER..total, total)))
}

/// Whether `buf` starts with a whole frame (so reading it will not wait).
pub(crate) fn holds_whole_frame(buf: &[u8]) -> bool {
    matches!(parse_frame(buf), Ok(Some(_)))
}

/// Reads one frame from a blocking stream into `body` (cleared first).
///
/// Returns `Ok(None)` on a clean end of stream between frames.
pub(crate) fn read_frame(r: &mut impl Read, body: &mut Vec<u8>) -> Result<Option<u8>, WireError> {
    let mut header = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(WireError::Truncated { got, want: HEADER }),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len > MAX_FRAME {
        return Err(WireError::TooLarge {
            claimed: len,
            max: MAX_FRAME,
        });
    }
    body.clear();
    // Grows with the bytes that arrive, never to the claimed size up front.
    let n = r.take(len as u64).read_to_end(body)?;
    if n < len {
        return Err(WireError::Truncated {
            got: HEADER + n,
            want: HEADER + len,
        });
    }
    Ok(Some(header[4]))
}

/// A receive buffer for a non-blocking socket: bytes arrive at the end, whole frames are taken
/// from the front. The buffer stays initialised; only `start..end` holds data.
#[derive(Default)]
pub(crate) struct FrameBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// The room a [`FrameBuf`] starts with; one read takes at most what is free of it.
const RX_START: usize = 256 * 1024;
/// Below this much free room the buffer moves a partial frame to the front, or grows.
const RX_ROOM: usize = 64 * 1024;

impl FrameBuf {
    /// Reads what the socket has, up to the free room; returns `Ok(false)` at end of stream.
    ///
    /// One read per call: what is left in the socket is read after the frames here are
    /// handled (the poll says so again), so the buffer grows only for a frame larger than
    /// it, as that frame's bytes arrive.
    pub(crate) fn fill(&mut self, r: &mut impl Read) -> io::Result<bool> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 && self.buf.len() - self.end < RX_ROOM {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.is_empty() {
            // Zeroed by the allocator (fresh pages from the kernel, touched only as bytes
            // arrive), not written: most links never use more than a page or two of it.
            self.buf = vec![0; RX_START];
        } else if self.buf.len() - self.end < RX_ROOM {
            // Grows (and zeroes) only new room, once.
            let len = self.buf.len() * 2;
            self.buf.resize(len, 0);
        }
        loop {
            match r.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => return Ok(true),
                    io::ErrorKind::Interrupted => {}
                    _ => return Err(e),
                },
            }
        }
    }

    /// Reads everything the socket holds now, until it would block or ends.
    pub(crate) fn fill_all(&mut self, r: &mut impl Read) -> io::Result<()> {
        loop {
            let before = self.end;
            if !self.fill(r)? || self.end == before {
                return Ok(());
            }
        }
    }

    /// Takes the next whole frame: `(tag, body)`.
    pub(crate) fn next_frame(&mut self) -> Result<Option<(u8, &[u8])>, WireError> {
        match parse_frame(&self.buf[self.start..self.end])? {
            None => Ok(None),
            Some((tag, body, total)) => {
                let base = self.start;
                self.start += total;
                Ok(Some((tag, &self.buf[base + body.start..base + body.end])))
            }
        }
    }
}

/// A bounds-checked reader over a frame body.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Cursor { buf, what }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Short { what: self.what });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, WireError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.bytes(8)?);
        Ok(u64::from_le_bytes(a))
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        let start = begin_frame(&mut buf, tag);
        buf.extend_from_slice(body);
        end_frame(&mut buf, start).unwrap();
        buf
    }

    #[test]
    fn round_trip_blocking_and_buffered() {
        let mut stream = frame(7, b"hello");
        stream.extend(frame(8, b""));
        let mut r = &stream[..];
        let mut body = Vec::new();
        assert_eq!(read_frame(&mut r, &mut body).unwrap(), Some(7));
        assert_eq!(body, b"hello");
        assert_eq!(read_frame(&mut r, &mut body).unwrap(), Some(8));
        assert!(body.is_empty());
        assert_eq!(read_frame(&mut r, &mut body).unwrap(), None);

        let mut fb = FrameBuf::default();
        assert!(fb.fill(&mut &stream[..]).unwrap());
        let (tag, body) = fb.next_frame().unwrap().unwrap();
        assert_eq!((tag, body), (7, &b"hello"[..]));
        assert_eq!(fb.next_frame().unwrap().unwrap().0, 8);
        assert!(fb.next_frame().unwrap().is_none());
    }

    #[test]
    fn huge_claim_is_refused_without_allocating() {
        let mut stream = (u32::MAX).to_le_bytes().to_vec();
        stream.push(1);
        let mut body = Vec::new();
        let err = read_frame(&mut &stream[..], &mut body).unwrap_err();
        assert!(matches!(err, WireError::TooLarge { .. }), "{err}");
        assert_eq!(body.capacity(), 0);
        assert!(matches!(
            parse_frame(&stream),
            Err(WireError::TooLarge { .. })
        ));
    }

    #[test]
    fn truncated_claim_allocates_only_what_arrived() {
        // Claims 512 MiB, sends 3 bytes.
        let mut stream = ((512u32) << 20).to_le_bytes().to_vec();
        stream.extend_from_slice(&[1, 9, 9, 9]);
        let mut body = Vec::new();
        let err = read_frame(&mut &stream[..], &mut body).unwrap_err();
        assert!(matches!(err, WireError::Truncated { .. }), "{err}");
        assert!(body.capacity() < 1 << 20);
        let err = read_frame(&mut &stream[..3], &mut body).unwrap_err();
        assert!(matches!(err, WireError::Truncated { got: 3, .. }), "{err}");
    }

    #[test]
    fn cursor_never_reads_past_the_end() {
        let mut c = Cursor::new(&[1, 0, 0, 0, 42], "test");
        assert_eq!(c.u32().unwrap(), 1);
        assert_eq!(c.bytes(1).unwrap(), &[42]);
        assert_eq!(c.remaining(), 0);
        assert!(c.u8().is_err());
        let mut c = Cursor::new(&[200, 0, 0], "test");
        assert!(matches!(c.u32(), Err(WireError::Short { .. })));
    }

    /// Random bytes, fed to both decoders: an error or a frame, never a panic.
    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if next() % 2 == 0 && bytes.len() >= 4 {
                // A plausible small length, so the body paths run too.
                bytes[..4].copy_from_slice(&((next() % 80) as u32).to_le_bytes());
            }
            let mut body = Vec::new();
            let mut r = &bytes[..];
            while let Ok(Some(_)) = read_frame(&mut r, &mut body) {}
            let mut fb = FrameBuf::default();
            let _ = fb.fill(&mut &bytes[..]);
            while let Ok(Some((tag, body))) = fb.next_frame() {
                let _ = super::super::message::decode_any(tag, body);
            }
        }
    }
}
