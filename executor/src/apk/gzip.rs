//! Concatenated gzip **members**: an `.apk` or `APKINDEX.tar.gz` is several
//! gzip members back to back, and signatures and hashes cover the
//! *compressed* bytes of particular members. [`read_member`] decompresses one
//! member and reports its exact byte range; [`member_ranges`] splits a whole
//! buffer; [`multi_member_reader`] decompresses a run of members as one
//! stream (package data, where tar entries may cross member boundaries).

use std::io::{self, Read};
use std::ops::Range;

use flate2::bufread::{GzDecoder, MultiGzDecoder};

/// Magic bytes that start every gzip member (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A gzip member that could not be read. Offsets are byte offsets of the
/// member's start in the buffer.
#[derive(Debug, thiserror::Error)]
pub enum GzipError {
    #[error("not gzip data at byte {offset} (expected the bytes 1f 8b)")]
    NotGzip { offset: usize },
    #[error("gzip member at byte {offset} is truncated")]
    Truncated { offset: usize },
    #[error("gzip member at byte {offset} is corrupt: {source}")]
    Corrupt {
        offset: usize,
        #[source]
        source: io::Error,
    },
}

impl GzipError {
    fn from_io(offset: usize, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::UnexpectedEof {
            GzipError::Truncated { offset }
        } else {
            GzipError::Corrupt { offset, source }
        }
    }
}

/// One decompressed member: where it sits in the buffer and its content.
#[derive(Debug)]
pub struct Member {
    /// The compressed bytes, gzip header through trailer.
    pub range: Range<usize>,
    /// The decompressed content.
    pub content: Vec<u8>,
}

/// Decompresses the single gzip member starting at `offset` of `bytes`.
pub fn read_member(bytes: &[u8], offset: usize) -> Result<Member, GzipError> {
    let input = bytes.get(offset..).unwrap_or_default();
    if input.is_empty() {
        return Err(GzipError::Truncated { offset });
    }
    if !input.starts_with(&GZIP_MAGIC) {
        return Err(if input.len() < GZIP_MAGIC.len() && GZIP_MAGIC.starts_with(input) {
            GzipError::Truncated { offset }
        } else {
            GzipError::NotGzip { offset }
        });
    }
    // Members are usually compressed about 3:1; start with room for that.
    let mut content = Vec::with_capacity(input.len().saturating_mul(3));
    let mut decoder = GzDecoder::new(input);
    decoder.read_to_end(&mut content).map_err(|e| GzipError::from_io(offset, e))?;
    // The bufread decoder consumes exactly the member: header, deflate
    // stream and the 8-byte trailer.
    let rest = decoder.into_inner().len();
    let end = offset + (input.len() - rest);
    Ok(Member { range: offset..end, content })
}

/// The byte ranges of all members of `bytes`, in order. Decompresses
/// everything (to find where each deflate stream ends) without keeping it.
pub fn member_ranges(bytes: &[u8]) -> Result<Vec<Range<usize>>, GzipError> {
    let mut ranges = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let input = &bytes[offset..];
        if !input.starts_with(&GZIP_MAGIC) {
            return Err(GzipError::NotGzip { offset });
        }
        let mut decoder = GzDecoder::new(input);
        io::copy(&mut decoder, &mut io::sink()).map_err(|e| GzipError::from_io(offset, e))?;
        let end = offset + (input.len() - decoder.into_inner().len());
        ranges.push(offset..end);
        offset = end;
    }
    Ok(ranges)
}

/// A reader that decompresses `bytes` as consecutive gzip members, yielding
/// their contents as one stream.
pub fn multi_member_reader(bytes: &[u8]) -> MultiGzDecoder<&[u8]> {
    MultiGzDecoder::new(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/apk");

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data).expect("write to memory");
        enc.finish().expect("finish gzip")
    }

    #[test]
    fn splits_real_package_members() {
        let bytes = std::fs::read(format!("{FIXTURES}/alpine-packages/aarch64/alpine-baselayout-3.2.0-r23.apk"))
            .expect("fixture");
        // Boundaries cross-checked with Python's zlib.
        assert_eq!(member_ranges(&bytes).expect("valid members"), [0..666, 666..2229, 2229..11012]);
        let second = read_member(&bytes, 666).expect("control member");
        assert_eq!(second.range, 666..2229);
        // abuild writes a PAX header before `.PKGINFO`.
        assert!(second.content.starts_with(b"./PaxHeaders/.PKGINFO"));
    }

    #[test]
    fn reads_synthetic_members_and_streams_them() {
        let mut bytes = gzip(b"hello ");
        let first_end = bytes.len();
        bytes.extend(gzip(b"world"));
        let first = read_member(&bytes, 0).expect("first member");
        assert_eq!(first.range, 0..first_end);
        assert_eq!(first.content, b"hello ");
        let second = read_member(&bytes, first_end).expect("second member");
        assert_eq!(second.range, first_end..bytes.len());
        let mut all = String::new();
        multi_member_reader(&bytes).read_to_string(&mut all).expect("stream");
        assert_eq!(all, "hello world");
    }

    #[test]
    fn reports_bad_input() {
        let bytes = gzip(b"some content that is long enough to matter");
        assert!(matches!(read_member(b"PK\x03\x04", 0), Err(GzipError::NotGzip { offset: 0 })));
        for cut in [1, 5, 12, bytes.len() - 4, bytes.len() - 1] {
            let err = read_member(&bytes[..cut], 0).expect_err("truncated");
            assert!(matches!(err, GzipError::Truncated { offset: 0 }), "cut {cut}: {err}");
        }
        assert!(matches!(read_member(&bytes, bytes.len()), Err(GzipError::Truncated { .. })));
        let mut corrupt = bytes.clone();
        let last = corrupt.len() - 5; // inside the CRC-32 of the trailer
        corrupt[last] ^= 0xff;
        let err = read_member(&corrupt, 0).expect_err("corrupt");
        assert!(matches!(err, GzipError::Corrupt { offset: 0, .. }), "{err}");
        assert_eq!(GzipError::NotGzip { offset: 7 }.to_string(), "not gzip data at byte 7 (expected the bytes 1f 8b)");
        let mut trailing = bytes.clone();
        trailing.extend_from_slice(b"junk");
        assert!(matches!(
            member_ranges(&trailing),
            Err(GzipError::NotGzip { offset }) if offset == bytes.len()
        ));
    }
}
