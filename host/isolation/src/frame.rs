//! Length-prefixed frames: `u32 BE length || tag || body`, the length counting the tag and the
//! body. Both sides refuse a frame over the limit before reading it, and a stream that ends
//! inside a frame is an error, never a short frame.

use std::io::{self, Read, Write};

/// The largest frame either side sends or accepts (64 MiB).
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// One frame: its tag and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What the frame carries.
    pub tag: u8,
    /// Its encoding.
    pub body: Vec<u8>,
}

/// Writes one frame.
///
/// # Errors
/// The stream's error; `InvalidInput` for a body over [`MAX_FRAME`].
pub fn write_frame(stream: &mut impl Write, tag: u8, body: &[u8]) -> io::Result<()> {
    let len = body
        .len()
        .checked_add(1)
        .filter(|n| *n <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame over the limit"))?;
    let mut out = Vec::with_capacity(4 + len);
    out.extend_from_slice(&u32::try_from(len).expect("under MAX_FRAME").to_be_bytes());
    out.push(tag);
    out.extend_from_slice(body);
    stream.write_all(&out)?;
    stream.flush()
}

/// Reads one frame; `Ok(None)` when the stream ends cleanly before a frame starts.
///
/// # Errors
/// The stream's error; `UnexpectedEof` inside a frame; `InvalidData` for an empty frame or one
/// over [`MAX_FRAME`].
pub fn read_frame(stream: &mut impl Read) -> io::Result<Option<Frame>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match stream.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame length {len} is outside 1..={MAX_FRAME}"),
        ));
    }
    let mut tag = [0u8; 1];
    stream.read_exact(&mut tag)?;
    let mut body = vec![0u8; len - 1];
    stream.read_exact(&mut body)?;
    Ok(Some(Frame { tag: tag[0], body }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn frames_round_trip_and_bad_ones_are_refused() {
        let mut buf = Vec::new();
        write_frame(&mut buf, 7, b"hello").unwrap();
        write_frame(&mut buf, 8, b"").unwrap();
        let mut r = buf.as_slice();
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some(Frame {
                tag: 7,
                body: b"hello".to_vec()
            })
        );
        assert_eq!(read_frame(&mut r).unwrap().unwrap().tag, 8);
        assert_eq!(read_frame(&mut r).unwrap(), None);

        // Cut inside the length or the body.
        for end in 1..buf.len() - 5 {
            let mut r = &buf[..end];
            assert!(read_frame(&mut r).is_err(), "cut at {end}");
        }
        // Empty and oversized lengths are refused before any body is read.
        for len in [0u32, MAX_FRAME as u32 + 1, u32::MAX] {
            let bytes = len.to_be_bytes();
            assert_eq!(
                read_frame(&mut bytes.as_slice()).unwrap_err().kind(),
                io::ErrorKind::InvalidData
            );
        }
    }
}
