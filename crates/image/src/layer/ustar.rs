//! Encoding of one tar entry header: a POSIX USTAR header, preceded by a PAX extended
//! header only when a value does not fit USTAR.
//!
//! Written by hand rather than with `tar::Header` so that every byte is decided here: the
//! `tar` crate's builder adds GNU long-name entries and its own PAX header names, which we
//! do not want. The layout follows POSIX.1-2001 (`pax`), and the choices where POSIX leaves
//! freedom follow Go's `archive/tar` (what apko and crane write), so readers see familiar
//! output:
//! - numeric fields are zero-padded octal with a terminating NUL; a value too large for its
//!   field goes to a PAX record and the field holds zero;
//! - the checksum is six octal digits, NUL, space;
//! - a name longer than 100 bytes is split into `prefix` + `name` at the last `/` that
//!   makes both fit; if no split works, or the name is not ASCII, a PAX `path` record holds
//!   it and the `name` field holds an ASCII-only truncation;
//! - a PAX header is named `<dir>/PaxHeaders.0/<file>` (truncated to 100 bytes), has mode,
//!   owner and mtime zero, and its records are sorted by key;
//! - `uname`/`gname` stay all NUL unless given; device numbers are written for every entry.

use std::collections::BTreeMap;

/// Tar block size; headers and content are padded to it.
pub(crate) const BLOCK: usize = 512;

/// Type flags of the entries this writer produces.
pub(crate) mod flag {
    /// Regular file.
    pub const FILE: u8 = b'0';
    /// Hard link.
    pub const HARD_LINK: u8 = b'1';
    /// Symbolic link.
    pub const SYMLINK: u8 = b'2';
    /// Character device.
    pub const CHAR_DEVICE: u8 = b'3';
    /// Block device.
    pub const BLOCK_DEVICE: u8 = b'4';
    /// Directory.
    pub const DIRECTORY: u8 = b'5';
    /// Fifo.
    pub const FIFO: u8 = b'6';
    /// PAX extended header for the next entry.
    pub const PAX: u8 = b'x';
}

const NAME_LEN: usize = 100;
const PREFIX_LEN: usize = 155;
const ACCOUNT_LEN: usize = 32;
/// Largest value of an 8-byte numeric field (7 octal digits).
const MAX_OCTAL_7: u64 = 0o7777777;
/// Largest value of a 12-byte numeric field (11 octal digits).
const MAX_OCTAL_11: u64 = 0o77777777777;

/// Everything that goes into the header(s) of one entry.
#[derive(Debug)]
pub(crate) struct Header<'a> {
    /// Full name, with a trailing `/` for directories.
    pub name: &'a str,
    /// One of [`flag`].
    pub typeflag: u8,
    /// Mode bits (at most `0o7777`).
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Content size (zero for everything but regular files).
    pub size: u64,
    /// Modification time, already clamped.
    pub mtime: u64,
    /// Link target, empty for non-links.
    pub linkname: &'a str,
    /// Owner user name, empty when not given.
    pub uname: &'a str,
    /// Owner group name, empty when not given.
    pub gname: &'a str,
    /// Device major number (0 for non-devices).
    pub devmajor: u32,
    /// Device minor number (0 for non-devices).
    pub devminor: u32,
    /// Extended attributes, in name order.
    pub xattrs: &'a BTreeMap<String, Vec<u8>>,
}

/// The header block(s) of `header`: a PAX header and its padded records if needed, then the
/// USTAR header. Always a multiple of [`BLOCK`] bytes.
pub(crate) fn encode(header: &Header<'_>) -> Vec<u8> {
    let mut pax: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut block = [0u8; BLOCK];

    match split_name(header.name) {
        Some((prefix, name)) => {
            put_str(&mut block[345..345 + PREFIX_LEN], prefix);
            put_str(&mut block[..NAME_LEN], name);
        }
        None => {
            pax.insert("path".to_owned(), header.name.as_bytes().to_vec());
            let fallback = ascii_truncated(header.name, NAME_LEN, header.typeflag);
            block[..fallback.len()].copy_from_slice(&fallback);
        }
    }
    put_octal(&mut block[100..108], u64::from(header.mode));
    for (range, key, value) in [(108..116, "uid", header.uid), (116..124, "gid", header.gid)] {
        let value = u64::from(value);
        if value > MAX_OCTAL_7 {
            pax.insert(key.to_owned(), value.to_string().into_bytes());
            put_octal(&mut block[range], 0);
        } else {
            put_octal(&mut block[range], value);
        }
    }
    for (range, key, value) in [(124..136, "size", header.size), (136..148, "mtime", header.mtime)] {
        if value > MAX_OCTAL_11 {
            pax.insert(key.to_owned(), value.to_string().into_bytes());
            put_octal(&mut block[range], 0);
        } else {
            put_octal(&mut block[range], value);
        }
    }
    block[156] = header.typeflag;
    if fits(header.linkname, NAME_LEN) {
        put_str(&mut block[157..257], header.linkname);
    } else {
        pax.insert("linkpath".to_owned(), header.linkname.as_bytes().to_vec());
        let fallback = ascii_truncated(header.linkname, NAME_LEN, flag::SYMLINK);
        block[157..157 + fallback.len()].copy_from_slice(&fallback);
    }
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    for (start, key, value) in [(265, "uname", header.uname), (297, "gname", header.gname)] {
        let field = &mut block[start..start + ACCOUNT_LEN];
        if fits(value, ACCOUNT_LEN) {
            put_str(field, value);
        } else {
            pax.insert(key.to_owned(), value.as_bytes().to_vec());
            let fallback = ascii_truncated(value, ACCOUNT_LEN, flag::FILE);
            field[..fallback.len()].copy_from_slice(&fallback);
        }
    }
    // Validated by `LayerTree::insert` to fit 7 octal digits.
    put_octal(&mut block[329..337], u64::from(header.devmajor));
    put_octal(&mut block[337..345], u64::from(header.devminor));
    for (name, value) in header.xattrs {
        pax.insert(format!("SCHILY.xattr.{name}"), value.clone());
    }
    set_checksum(&mut block);

    if pax.is_empty() {
        return block.to_vec();
    }
    let records = pax_records(&pax);
    let mut pax_block = [0u8; BLOCK];
    let pax_name = ascii_truncated(&pax_header_name(header.name), NAME_LEN, flag::PAX);
    pax_block[..pax_name.len()].copy_from_slice(&pax_name);
    put_octal(&mut pax_block[100..108], 0);
    put_octal(&mut pax_block[108..116], 0);
    put_octal(&mut pax_block[116..124], 0);
    put_octal(&mut pax_block[124..136], records.len() as u64);
    put_octal(&mut pax_block[136..148], 0);
    pax_block[156] = flag::PAX;
    pax_block[257..263].copy_from_slice(b"ustar\0");
    pax_block[263..265].copy_from_slice(b"00");
    put_octal(&mut pax_block[329..337], 0);
    put_octal(&mut pax_block[337..345], 0);
    set_checksum(&mut pax_block);

    let mut out = Vec::with_capacity(2 * BLOCK + padded_len(records.len() as u64) as usize);
    out.extend_from_slice(&pax_block);
    out.extend_from_slice(&records);
    out.resize(BLOCK + padded_len(records.len() as u64) as usize, 0);
    out.extend_from_slice(&block);
    out
}

/// `len` rounded up to a whole number of blocks.
pub(crate) fn padded_len(len: u64) -> u64 {
    len.div_ceil(BLOCK as u64) * BLOCK as u64
}

/// Whether `s` can go verbatim into a field of `len` bytes (a full field needs no NUL).
fn fits(s: &str, len: usize) -> bool {
    s.len() <= len && s.is_ascii()
}

/// Where a USTAR header puts `name`: `(prefix, name)`, or `None` if it needs a PAX record.
/// Like Go's `splitUSTARPath`, splits at the last `/` that leaves a prefix of at most 155
/// bytes; the name part must be non-empty and at most 100 bytes.
fn split_name(name: &str) -> Option<(&str, &str)> {
    if !name.is_ascii() {
        return None;
    }
    if name.len() <= NAME_LEN {
        return Some(("", name));
    }
    let mut end = name.len().min(PREFIX_LEN + 1);
    if end == name.len() && name.ends_with('/') {
        end -= 1;
    }
    let slash = name[..end].rfind('/')?;
    let (prefix, rest) = (&name[..slash], &name[slash + 1..]);
    if slash == 0 || rest.is_empty() || rest.len() > NAME_LEN || prefix.len() > PREFIX_LEN {
        return None;
    }
    Some((prefix, rest))
}

/// The ASCII bytes of `s`, cut to `len`. When that cut leaves a trailing `/` on something
/// that is not a directory, the slashes are dropped, so that old readers that look only at
/// the USTAR field do not take a file for a directory (as Go does).
fn ascii_truncated(s: &str, len: usize, typeflag: u8) -> Vec<u8> {
    let mut bytes: Vec<u8> = s.bytes().filter(u8::is_ascii).take(len).collect();
    if typeflag != flag::DIRECTORY {
        while bytes.last() == Some(&b'/') {
            bytes.pop();
        }
    }
    bytes
}

/// `<dir>/PaxHeaders.0/<file>` for the entry `name`.
fn pax_header_name(name: &str) -> String {
    let name = name.trim_end_matches('/');
    match name.rfind('/') {
        Some(slash) => format!("{}/PaxHeaders.0/{}", &name[..slash], &name[slash + 1..]),
        None => format!("PaxHeaders.0/{name}"),
    }
}

/// PAX records `"<len> <key>=<value>\n"`, where `<len>` counts the whole record including
/// its own digits, in key order.
fn pax_records(records: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let rest = 1 + key.len() + 1 + value.len() + 1;
        let mut len = rest + rest.to_string().len();
        if len.to_string().len() + rest != len {
            len = rest + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// Copies `s` into `field`; the rest stays NUL.
fn put_str(field: &mut [u8], s: &str) {
    field[..s.len()].copy_from_slice(s.as_bytes());
}

/// Zero-padded octal of `value` in all but the last byte of `field`, then NUL. The caller
/// guarantees that `value` fits.
fn put_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

/// Fills the checksum field: the byte sum of the header with the field read as spaces.
fn set_checksum(block: &mut [u8; BLOCK]) {
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_XATTRS: &BTreeMap<String, Vec<u8>> = &BTreeMap::new();

    fn header(name: &str) -> Header<'_> {
        Header {
            name,
            typeflag: flag::FILE,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            linkname: "",
            uname: "",
            gname: "",
            devmajor: 0,
            devminor: 0,
            xattrs: NO_XATTRS,
        }
    }

    /// The PAX records of an encoded entry, or `None` when it has no PAX header.
    fn pax_of(bytes: &[u8]) -> Option<String> {
        if bytes[156] != flag::PAX {
            assert_eq!(bytes.len(), BLOCK, "no PAX header means one block");
            return None;
        }
        let size =
            usize::from_str_radix(std::str::from_utf8(&bytes[124..135]).expect("ascii size"), 8).expect("octal size");
        Some(String::from_utf8_lossy(&bytes[BLOCK..BLOCK + size]).into_owned())
    }

    fn field(bytes: &[u8], range: std::ops::Range<usize>) -> String {
        let raw = &bytes[range];
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        String::from_utf8_lossy(&raw[..end]).into_owned()
    }

    #[test]
    fn plain_header_is_exact() {
        let mut h = header("etc/hosts");
        h.size = 10;
        h.mtime = 1_700_000_000;
        h.uid = 1000;
        h.gid = 100;
        let bytes = encode(&h);
        assert_eq!(bytes.len(), BLOCK);
        assert_eq!(field(&bytes, 0..100), "etc/hosts");
        assert_eq!(&bytes[100..108], b"0000644\0");
        assert_eq!(&bytes[108..116], b"0001750\0");
        assert_eq!(&bytes[116..124], b"0000144\0");
        assert_eq!(&bytes[124..136], b"00000000012\0");
        assert_eq!(&bytes[136..148], b"14524770400\0");
        assert_eq!(bytes[156], b'0');
        assert_eq!(&bytes[257..265], b"ustar\x0000");
        assert_eq!(&bytes[265..329], &[0u8; 64][..], "names empty unless given");
        assert_eq!(&bytes[329..345], b"0000000\x000000000\0");
        // Checksum: six octal digits, NUL, space, and it adds up.
        assert_eq!(&bytes[154..156], b"\0 ");
        let stored = u32::from_str_radix(&field(&bytes, 148..154), 8).expect("octal");
        let sum: u32 =
            bytes.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) }).sum();
        assert_eq!(stored, sum);
        // The tar crate agrees.
        let parsed = tar::Header::from_byte_slice(&bytes);
        assert_eq!(parsed.cksum().expect("cksum"), sum);
        assert_eq!(parsed.path().expect("path").to_str(), Some("etc/hosts"));
    }

    #[test]
    fn pax_only_where_needed() {
        let long_dir = "d".repeat(120);
        let long_file = "f".repeat(101);
        let long_path = format!("{long_dir}/{long_file}");
        let exactly_100 = "x".repeat(100);
        let splittable = format!("{}/{}", "p".repeat(150), "n".repeat(100));
        let unsplittable = format!("{}/{}", "p".repeat(156), "n".repeat(10));
        let long_link = "l".repeat(101);
        let xattrs = BTreeMap::from([
            ("security.capability".to_owned(), vec![1, 0, 0, 2]),
            ("user.note".to_owned(), b"hi".to_vec()),
        ]);

        struct Case<'a> {
            what: &'a str,
            edit: Box<dyn Fn(&mut Header<'a>) + 'a>,
            pax: Option<&'a str>,
        }
        let cases = vec![
            Case { what: "short path", edit: Box::new(|_| {}), pax: None },
            Case { what: "exactly 100 bytes", edit: Box::new(|h| h.name = &exactly_100), pax: None },
            Case { what: "prefix split", edit: Box::new(|h| h.name = &splittable), pax: None },
            Case { what: "max octal uid", edit: Box::new(|h| h.uid = 0o7777777), pax: None },
            Case { what: "name too long to split", edit: Box::new(|h| h.name = &long_path), pax: Some("path") },
            Case { what: "prefix too long", edit: Box::new(|h| h.name = &unsplittable), pax: Some("path") },
            Case {
                what: "non-ascii name",
                edit: Box::new(|h| h.name = "usr/share/zoneinfo/Amérique"),
                pax: Some("path"),
            },
            Case {
                what: "long link",
                edit: Box::new(|h| {
                    h.typeflag = flag::SYMLINK;
                    h.linkname = &long_link;
                }),
                pax: Some("linkpath"),
            },
            Case {
                what: "big uid and gid",
                edit: Box::new(|h| {
                    h.uid = 3_000_000;
                    h.gid = 2_097_152;
                }),
                pax: Some("gid uid"),
            },
            Case { what: "huge size", edit: Box::new(|h| h.size = 1 << 34), pax: Some("size") },
            Case {
                what: "long uname",
                edit: Box::new(|h| h.uname = "a-very-long-user-name-over-32-bytes"),
                pax: Some("uname"),
            },
            Case {
                what: "xattrs",
                edit: Box::new(|h| h.xattrs = &xattrs),
                pax: Some("SCHILY.xattr.security.capability SCHILY.xattr.user.note"),
            },
        ];
        for case in cases {
            let mut h = header("etc/hosts");
            (case.edit)(&mut h);
            let bytes = encode(&h);
            let keys = pax_of(&bytes).map(|records| {
                records
                    .lines()
                    .map(|line| {
                        let (_, kv) = line.split_once(' ').expect("record length");
                        kv.split_once('=').expect("record key").0.to_owned()
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            });
            assert_eq!(keys.as_deref(), case.pax, "{}", case.what);
        }
    }

    #[test]
    fn prefix_split_follows_go() {
        let name = format!("{}/{}/{}", "a".repeat(60), "b".repeat(60), "c".repeat(50));
        let bytes = encode(&header(&name));
        assert_eq!(field(&bytes, 345..500), format!("{}/{}", "a".repeat(60), "b".repeat(60)));
        assert_eq!(field(&bytes, 0..100), "c".repeat(50));
        // A directory whose last component is long keeps its trailing slash in `name`.
        let dir = format!("{}/{}/", "a".repeat(100), "b".repeat(99));
        let mut h = header(&dir);
        h.typeflag = flag::DIRECTORY;
        let bytes = encode(&h);
        assert_eq!(field(&bytes, 345..500), "a".repeat(100));
        assert_eq!(field(&bytes, 0..100), format!("{}/", "b".repeat(99)));
    }

    #[test]
    fn pax_records_and_fallback_names() {
        let name = format!("{}/Amérique/{}", "z".repeat(40), "f".repeat(80));
        let bytes = encode(&header(&name));
        let records = pax_of(&bytes).expect("pax");
        let record = format!("path={name}\n");
        let len = record.len() + 4; // "NNN " with a three-digit length
        assert_eq!(records, format!("{len} {record}"));
        // PAX header name, then the entry with an ASCII-only truncated name.
        assert_eq!(field(&bytes, 0..100), format!("{}/Amrique/PaxHeaders.0/{}", "z".repeat(40), "f".repeat(80))[..100]);
        assert_eq!(&bytes[100..108], b"0000000\0");
        let main = &bytes[2 * BLOCK..];
        assert_eq!(main.len(), BLOCK);
        assert_eq!(field(main, 0..100), format!("{}/Amrique/{}", "z".repeat(40), "f".repeat(80))[..100]);
    }

    #[test]
    fn record_length_counts_its_own_digits() {
        // " k=" + 94 + "\n" is 98 bytes: 2 digits make 100, which needs 3 digits: 101.
        let records = BTreeMap::from([("k".to_owned(), vec![b'v'; 94])]);
        let out = pax_records(&records);
        assert_eq!(out.len(), 101);
        assert!(out.starts_with(b"101 k="));
        let records = BTreeMap::from([("uid".to_owned(), b"3000000".to_vec())]);
        assert_eq!(pax_records(&records), b"15 uid=3000000\n");
    }

    #[test]
    fn padding() {
        assert_eq!(padded_len(0), 0);
        assert_eq!(padded_len(1), 512);
        assert_eq!(padded_len(512), 512);
        assert_eq!(padded_len(513), 1024);
    }
}
