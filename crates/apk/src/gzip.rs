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
    #[error(
        "gzip member at byte {offset} inflates to more than {limit} bytes: refusing it (a decompression \
         bomb?); raise the limit with {setting} if it is genuine"
    )]
    TooLarge { offset: usize, limit: u64, setting: &'static str },
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

/// How much one member may inflate to, and the setting that raises it (for the error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub bytes: u64,
    pub setting: &'static str,
}

/// Reads a limit from the environment variable `var` (bytes), else `default`.
fn limit_from_env(var: &'static str, default: u64) -> Limit {
    let bytes = std::env::var(var).ok().and_then(|v| v.trim().parse::<u64>().ok()).filter(|&b| b > 0);
    Limit { bytes: bytes.unwrap_or(default), setting: var }
}

/// A package's signature and control members: `.SIGN.*`, `.PKGINFO` and install scripts,
/// a few KiB in real packages. Default 16 MiB; `EXECUTOR_MAX_CONTROL_BYTES` raises it.
pub fn control_limit() -> Limit {
    limit_from_env("EXECUTOR_MAX_CONTROL_BYTES", 16 << 20)
}

/// An index's members (`APKINDEX` and `DESCRIPTION`, all members together): a few MiB for
/// Alpine and Wolfi. Default 128 MiB; `EXECUTOR_MAX_INDEX_BYTES` raises it.
pub fn index_limit() -> Limit {
    limit_from_env("EXECUTOR_MAX_INDEX_BYTES", 128 << 20)
}

/// A signature member (`.SIGN.*` entries of a few hundred bytes each). 1 MiB; not adjustable:
/// no real signature member comes near it.
pub const SIGNATURE_LIMIT: Limit = Limit { bytes: 1 << 20, setting: "nothing (signature members are small)" };

/// The limit for the member at `offset`: [`SIGNATURE_LIMIT`] when its first tar entry is a
/// `.SIGN.*` file (a peek at the first 512 inflated bytes), else `otherwise`. So a signature
/// member cannot use the larger budget of a control or index member.
pub fn limit_for(bytes: &[u8], offset: usize, otherwise: Limit) -> Limit {
    let input = bytes.get(offset..).unwrap_or_default();
    let mut header = Vec::with_capacity(512);
    let _ = GzDecoder::new(input).take(512).read_to_end(&mut header);
    let name = header.get(..100).unwrap_or(&header);
    let name = name.split(|&b| b == 0).next().unwrap_or_default();
    if name.starts_with(b".SIGN.") {
        SIGNATURE_LIMIT
    } else {
        otherwise
    }
}

/// Decompresses the single gzip member starting at `offset` of `bytes`, refusing it as soon
/// as it inflates past `limit` (memory never grows beyond the limit).
pub fn read_member(bytes: &[u8], offset: usize, limit: Limit) -> Result<Member, GzipError> {
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
    // Members are usually compressed about 3:1; start with room for that (the input runs to
    // the end of the file, so cap the guess).
    let guess = input.len().saturating_mul(3).min(1 << 20).min(usize::try_from(limit.bytes).unwrap_or(usize::MAX));
    let mut content = Vec::with_capacity(guess);
    let mut decoder = GzDecoder::new(input).take(limit.bytes.saturating_add(1));
    decoder.read_to_end(&mut content).map_err(|e| GzipError::from_io(offset, e))?;
    if content.len() as u64 > limit.bytes {
        return Err(GzipError::TooLarge { offset, limit: limit.bytes, setting: limit.setting });
    }
    // The bufread decoder consumes exactly the member: header, deflate
    // stream and the 8-byte trailer.
    let rest = decoder.into_inner().into_inner().len();
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

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/apk");

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
        let second = read_member(&bytes, 666, control_limit()).expect("control member");
        assert_eq!(second.range, 666..2229);
        // abuild writes a PAX header before `.PKGINFO`.
        assert!(second.content.starts_with(b"./PaxHeaders/.PKGINFO"));
    }

    #[test]
    fn a_member_that_inflates_past_its_limit_is_refused_before_memory_grows() {
        // 64 MiB of zeros compress to about 64 KiB.
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 1 << 20);
        let limit = Limit { bytes: 1 << 20, setting: "EXECUTOR_MAX_CONTROL_BYTES" };
        let err = read_member(&bomb, 0, limit).expect_err("bomb");
        assert_eq!(
            err.to_string(),
            "gzip member at byte 0 inflates to more than 1048576 bytes: refusing it (a decompression bomb?); \
             raise the limit with EXECUTOR_MAX_CONTROL_BYTES if it is genuine"
        );
        // At the limit exactly, it reads.
        let exact = gzip(&vec![0u8; 1 << 20]);
        assert_eq!(read_member(&exact, 0, limit).expect("at the limit").content.len(), 1 << 20);
    }

    #[test]
    fn reads_synthetic_members_and_streams_them() {
        let mut bytes = gzip(b"hello ");
        let first_end = bytes.len();
        bytes.extend(gzip(b"world"));
        let first = read_member(&bytes, 0, control_limit()).expect("first member");
        assert_eq!(first.range, 0..first_end);
        assert_eq!(first.content, b"hello ");
        let second = read_member(&bytes, first_end, control_limit()).expect("second member");
        assert_eq!(second.range, first_end..bytes.len());
        let mut all = String::new();
        multi_member_reader(&bytes).read_to_string(&mut all).expect("stream");
        assert_eq!(all, "hello world");
    }

    #[test]
    fn reports_bad_input() {
        let bytes = gzip(b"some content that is long enough to matter");
        assert!(matches!(read_member(b"PK\x03\x04", 0, control_limit()), Err(GzipError::NotGzip { offset: 0 })));
        for cut in [1, 5, 12, bytes.len() - 4, bytes.len() - 1] {
            let err = read_member(&bytes[..cut], 0, control_limit()).expect_err("truncated");
            assert!(matches!(err, GzipError::Truncated { offset: 0 }), "cut {cut}: {err}");
        }
        assert!(matches!(read_member(&bytes, bytes.len(), control_limit()), Err(GzipError::Truncated { .. })));
        let mut corrupt = bytes.clone();
        let last = corrupt.len() - 5; // inside the CRC-32 of the trailer
        corrupt[last] ^= 0xff;
        let err = read_member(&corrupt, 0, control_limit()).expect_err("corrupt");
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
