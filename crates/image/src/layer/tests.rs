//! End-to-end tests of the layer writer: trees in, bytes out, read back with the `tar`
//! crate, the system's `gzip` and `tar`, and [`list_layer`].

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::process::{Command, Stdio};

use flate2::read::GzDecoder;

use super::*;

fn path(s: &str) -> LayerPath {
    LayerPath::new(s).expect("valid test path")
}

fn file(bytes: &[u8]) -> Entry {
    Entry::file(Content::from_bytes(bytes))
}

fn tree(entries: Vec<(&str, Entry)>) -> LayerTree {
    let mut tree = LayerTree::new();
    for (p, e) in entries {
        tree.insert(path(p), e).expect("insert");
    }
    tree
}

fn write(tree: LayerTree, options: LayerOptions) -> (Vec<u8>, LayerDigests) {
    let mut out = Vec::new();
    let digests = LayerWriter::new(&mut out, options).expect("options").write_tree(tree).expect("write");
    (out, digests)
}

fn options(epoch: u64, jobs: usize) -> LayerOptions {
    LayerOptions { epoch, jobs, level: DEFAULT_LEVEL }
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut tar = Vec::new();
    GzDecoder::new(bytes).read_to_end(&mut tar).expect("valid gzip");
    tar
}

/// `(typeflag, name field)` of every header in a raw tar, PAX headers included.
fn raw_headers(tar: &[u8]) -> Vec<(char, String)> {
    let mut headers = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at..at + 512] != [0u8; 512] {
        let header = tar::Header::from_byte_slice(&tar[at..at + 512]);
        let name = String::from_utf8_lossy(&header.as_old().name).trim_end_matches('\0').to_owned();
        headers.push((char::from(header.as_old().linkflag[0]), name));
        let size = header.entry_size().expect("size");
        at += 512 + ustar::padded_len(size) as usize;
    }
    headers
}

/// Pseudo-random text: compressible, but not trivially. The bytes do not depend on how
/// the reader is called.
struct Text {
    state: u64,
    left: u64,
    /// The current word and how much of it was already read.
    word: &'static [u8],
}

impl Text {
    fn new(size: u64, seed: u64) -> Self {
        Text { state: seed | 1, left: size, word: b"" }
    }
}

impl Read for Text {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        const WORDS: [&[u8]; 8] = [b"alpine ", b"layer ", b"tar ", b"gzip ", b"sha256 ", b"musl ", b"x\n", b"0123 "];
        let mut n = 0;
        while n < buf.len() && self.left > 0 {
            if self.word.is_empty() {
                self.state ^= self.state << 13;
                self.state ^= self.state >> 7;
                self.state ^= self.state << 17;
                self.word = WORDS[(self.state % 8) as usize];
            }
            let take = self.word.len().min(buf.len() - n).min(self.left as usize);
            buf[n..n + take].copy_from_slice(&self.word[..take]);
            self.word = &self.word[take..];
            n += take;
            self.left -= take as u64;
        }
        Ok(n)
    }
}

fn text(size: u64, seed: u64) -> Content {
    Content::from_reader(size, Text::new(size, seed))
}

/// A small tree with one of everything.
fn sample() -> LayerTree {
    tree(vec![
        ("etc", Entry::directory().with_mtime(1_600_000_000)),
        (
            "etc/shadow",
            file(b"root:*::0:::::\n")
                .with_mode(Mode::new(0o640).expect("mode"))
                .with_owner(0, 42)
                .with_names("root", "shadow")
                .with_mtime(1_900_000_000),
        ),
        ("bin", Entry::symlink("usr/bin")),
        ("usr", Entry::directory()),
        ("usr/bin", Entry::directory()),
        ("usr/bin/busybox", file(b"#!busybox\n").with_mode(Mode::new(0o4755).expect("mode"))),
        ("usr/bin/sh", Entry::hard_link(path("usr/bin/busybox"))),
        ("dev", Entry::directory()),
        ("dev/null", Entry::char_device(1, 3)),
        ("dev/loop0", Entry::block_device(7, 0)),
        ("run", Entry::directory()),
        ("run/initctl", Entry::fifo()),
        ("tmp", Entry::directory().with_mode(Mode::new(0o1777).expect("mode"))),
    ])
}

#[test]
fn listing_of_a_sample_layer_is_exact() {
    let (out, _) = write(sample(), options(1_700_000_000, 1));
    let listing = list_layer(&out[..]).expect("list");
    assert_eq!(
        listing,
        "\
l0777 0:0 0 0 bin -> usr/bin -
d0755 0:0 0 0 dev/ -
b0660 0:0 7,0 0 dev/loop0 -
c0666 0:0 1,3 0 dev/null -
d0755 0:0 0 1600000000 etc/ -
-0640 0:42 15 1700000000 etc/shadow 2a2448922f97bed042b31076dbcf2140221048b3de1adc821eb8e86f8cfb39b0
d0755 0:0 0 0 run/ -
p0644 0:0 0 0 run/initctl -
d1777 0:0 0 0 tmp/ -
d0755 0:0 0 0 usr/ -
d0755 0:0 0 0 usr/bin/ -
-4755 0:0 10 0 usr/bin/busybox d9e447c3d03412ad1c79d33f9b8beada0df6471caaf5d0cb237ac0868108cce9
h4755 0:0 0 0 usr/bin/sh -> usr/bin/busybox -
"
    );
}

#[test]
fn digests_are_pinned() {
    // A change here changes every image digest: only accept it for a deliberate format
    // change or a flate2/zlib-rs upgrade (Cargo.lock pins both), and say so in the commit.
    let (out, digests) = write(sample(), options(1_700_000_000, 1));
    assert_eq!(digests.size, out.len() as u64);
    assert_eq!(digests.diff_id.to_string(), "sha256:74da2e941cfcf2acd7b831ab6f529bd79561d692dea1fe7d962be731134b49f5");
    assert_eq!(digests.digest.to_string(), "sha256:f13c3649b5cfcd490433878f4be1eeaaca1f9a14e31c85ab05968a86e11b6a92");
}

#[test]
fn digests_match_the_bytes() {
    let (out, digests) = write(sample(), options(1_700_000_000, 1));
    let tar = gunzip(&out);
    assert_eq!(digests.diff_id, Digest::of(&tar));
    assert_eq!(digests.digest, Digest::of(&out));
    assert_eq!(digests.size, out.len() as u64);
    assert_eq!(digests.uncompressed_size, tar.len() as u64);
    assert_eq!(tar.len() % 512, 0);
    assert_eq!(&tar[tar.len() - 1024..], &[0u8; 1024][..], "two zero blocks");
}

#[test]
fn entries_are_written_parents_first_in_component_order() {
    let names = ["a-b", "a/b/c", "a", "a/b", "a.b", "ab", "a/b-c", "a/b/c/d", "B", "a/b c"];
    let mut entries = Vec::new();
    for name in names {
        let entry = if ["a", "a/b", "a/b/c"].contains(&name) { Entry::directory() } else { file(b"") };
        entries.push((name, entry));
    }
    let (out, _) = write(tree(entries), LayerOptions::default());
    let order: Vec<String> = raw_headers(&gunzip(&out)).into_iter().map(|(_, name)| name).collect();
    assert_eq!(order, ["B", "a/", "a/b/", "a/b/c/", "a/b/c/d", "a/b c", "a/b-c", "a-b", "a.b", "ab"]);
}

#[test]
fn pax_headers_only_where_needed() {
    let long_name = format!("usr/{}", "n".repeat(120));
    let long_target = "t".repeat(150);
    let entries = vec![
        ("plain", file(b"x")),
        ("dir", Entry::directory()),
        (long_name.as_str(), file(b"x")),
        ("link", Entry::symlink(long_target.as_str())),
        ("big-uid", file(b"").with_owner(3_000_000, 0)),
        ("caps", file(b"").with_xattr("security.capability", [1u8, 2, 0, 255])),
        ("café", file(b"")),
        ("named", file(b"").with_names("nonroot", "nonroot")),
    ];
    let (out, _) = write(tree(entries), LayerOptions::default());
    let headers = raw_headers(&gunzip(&out));
    let pax_for: Vec<&str> =
        headers.windows(2).filter(|pair| pair[0].0 == 'x').map(|pair| pair[1].1.as_str()).collect();
    assert_eq!(pax_for, ["big-uid", "caf", "caps", "link", &long_name[..100]], "headers: {headers:?}");
    assert_eq!(headers.iter().filter(|(flag, _)| *flag == 'L' || *flag == 'K').count(), 0);
    assert_eq!(headers.len(), 8 + 5);
}

#[test]
fn round_trip_through_the_tar_crate() {
    let long_target = format!("/{}", "deep/".repeat(40));
    let mut t = sample();
    t.insert(path("long"), Entry::symlink(long_target.as_str())).expect("insert");
    t.insert(
        path("ping"),
        file(b"ELF")
            .with_xattr("security.capability", [1u8, 0, 0, 2, 0x20, 0, 0, 0])
            .with_xattr("user.z", "last")
            .with_owner(3_000_000, 2_500_000)
            .with_names("a-user-name-that-is-longer-than-32", "g"),
    )
    .expect("insert");
    let (out, _) = write(t, options(1_700_000_000, 1));
    let mut archive = tar::Archive::new(GzDecoder::new(&out[..]));
    let mut seen = BTreeMap::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let header = entry.header().clone();
        let link = entry.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned());
        let mut pax = BTreeMap::new();
        if let Some(records) = entry.pax_extensions().expect("pax") {
            for record in records {
                let record = record.expect("record");
                pax.insert(record.key().expect("key").to_owned(), record.value_bytes().to_vec());
            }
        }
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("content");
        seen.insert(name, (header, link, pax, content));
    }
    let (h, link, _, _) = &seen["usr/bin/sh"];
    assert_eq!(h.entry_type(), tar::EntryType::Link);
    assert_eq!(link.as_deref(), Some("usr/bin/busybox"));
    assert_eq!(h.mode().expect("mode"), 0o4755);
    let (h, _, _, content) = &seen["usr/bin/busybox"];
    assert_eq!(h.entry_type(), tar::EntryType::Regular);
    assert_eq!(content, b"#!busybox\n");
    let (h, link, _, _) = &seen["bin"];
    assert_eq!(h.entry_type(), tar::EntryType::Symlink);
    assert_eq!(link.as_deref(), Some("usr/bin"));
    let (_, link, pax, _) = &seen["long"];
    assert_eq!(link.as_deref(), Some(long_target.as_str()));
    assert_eq!(pax.keys().collect::<Vec<_>>(), ["linkpath"]);
    let (h, _, _, _) = &seen["dev/null"];
    assert_eq!(h.entry_type(), tar::EntryType::Char);
    assert_eq!(h.device_major().expect("major"), Some(1));
    assert_eq!(h.device_minor().expect("minor"), Some(3));
    let (h, _, _, _) = &seen["dev/loop0"];
    assert_eq!(h.entry_type(), tar::EntryType::Block);
    assert_eq!(h.device_major().expect("major"), Some(7));
    assert_eq!(seen["run/initctl"].0.entry_type(), tar::EntryType::Fifo);
    let (h, _, _, _) = &seen["etc/shadow"];
    assert_eq!(h.username().expect("utf-8"), Some("root"));
    assert_eq!(h.groupname().expect("utf-8"), Some("shadow"));
    assert_eq!(seen["tmp/"].0.username().expect("utf-8"), Some(""));
    let (h, _, pax, content) = &seen["ping"];
    assert_eq!(content, b"ELF");
    // Too big for the octal field: the reader takes them from the PAX records.
    assert_eq!(h.uid().expect("uid"), 3_000_000);
    assert_eq!(h.gid().expect("gid"), 2_500_000);
    assert_eq!(
        pax,
        &BTreeMap::from([
            ("SCHILY.xattr.security.capability".to_owned(), vec![1, 0, 0, 2, 0x20, 0, 0, 0]),
            ("SCHILY.xattr.user.z".to_owned(), b"last".to_vec()),
            ("gid".to_owned(), b"2500000".to_vec()),
            ("uname".to_owned(), b"a-user-name-that-is-longer-than-32".to_vec()),
            ("uid".to_owned(), b"3000000".to_vec()),
        ])
    );
}

#[test]
fn mtimes_are_clamped_to_the_epoch() {
    let entries = || {
        tree(vec![
            ("old", file(b"").with_mtime(100)),
            ("new", file(b"").with_mtime(u64::MAX)),
            ("now", file(b"").with_mtime(5000)),
        ])
    };
    let mtimes = |epoch| -> Vec<String> {
        let (out, _) = write(entries(), options(epoch, 1));
        list_layer(&out[..])
            .expect("list")
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                format!("{} {}", fields[4], fields[3])
            })
            .collect()
    };
    assert_eq!(mtimes(5000), ["new 5000", "now 5000", "old 100"]);
    assert_eq!(mtimes(0), ["new 0", "now 0", "old 0"]);
    // Beyond the 11 octal digits of the header, a PAX `mtime` record carries it.
    let far = 0o77777777777 + 1;
    assert_eq!(mtimes(far), [format!("new {far}"), "now 5000".into(), "old 100".into()]);
}

#[test]
fn bytes_do_not_depend_on_jobs_or_run() {
    let big = || {
        let mut t = sample();
        for i in 0..4u64 {
            t.insert(path(&format!("data/{i}")), Entry::file(text(900_000 + i * 77, i))).expect("insert");
        }
        t
    };
    let (one, first) = write(big(), options(1_700_000_000, 1));
    assert!(!one.is_empty());
    let (again, second) = write(big(), options(1_700_000_000, 1));
    let (four, fourth) = write(big(), options(1_700_000_000, 4));
    let (two, _) = write(big(), options(1_700_000_000, 2));
    assert_eq!(one, again);
    assert_eq!(one, four);
    assert_eq!(one, two);
    assert_eq!(first, second);
    assert_eq!(first, fourth);
    assert!(first.uncompressed_size > 3 * BLOCK_SIZE as u64, "several blocks");
}

#[test]
fn multi_block_layer_decompresses_correctly() {
    let sizes = [3 * BLOCK_SIZE as u64 + 4321, 1, 0, BLOCK_SIZE as u64];
    let mut t = LayerTree::new();
    for (i, size) in sizes.into_iter().enumerate() {
        t.insert(path(&format!("f{i}")), Entry::file(text(size, 99 + i as u64))).expect("insert");
    }
    let (out, digests) = write(t, options(0, 3));
    assert!(digests.uncompressed_size > 4 * BLOCK_SIZE as u64);
    let mut archive = tar::Archive::new(GzDecoder::new(&out[..]));
    for (i, entry) in archive.entries().expect("entries").enumerate() {
        let mut entry = entry.expect("entry");
        let mut got = Vec::new();
        entry.read_to_end(&mut got).expect("content");
        let mut want = Vec::new();
        Text::new(sizes[i], 99 + i as u64).read_to_end(&mut want).expect("text");
        assert_eq!(got.len(), want.len(), "f{i}");
        assert!(got == want, "content of f{i}");
    }
    assert_eq!(Digest::of(&gunzip(&out)), digests.diff_id);
}

/// Runs `program args` with `input` on stdin; returns stdout, panicking on failure.
fn run(program: &str, args: &[&str], input: &[u8]) -> String {
    let mut child = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("wait");
    feeder.join().expect("feeder").expect("write stdin");
    assert!(
        output.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn system_gzip_and_tar_accept_the_output() {
    let mut t = sample();
    t.insert(path("data"), Entry::file(text(2 * BLOCK_SIZE as u64 + 5, 5))).expect("insert");
    t.insert(path(&format!("x/{}", "long-".repeat(40))), file(b"long")).expect("insert");
    let (out, _) = write(t, options(1_700_000_000, 2));
    run("gzip", &["-t"], &out);
    let listing = run("tar", &["-tvzf", "-", "--numeric-owner"], &out);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 15, "{listing}");
    assert!(lines[0].starts_with("lrwxrwxrwx 0/0"), "{listing}");
    assert!(lines[0].ends_with("bin -> usr/bin"), "{listing}");
    let null = lines.iter().find(|l| l.ends_with(" dev/null")).expect("dev/null");
    assert!(null.starts_with("crw-rw-rw- 0/0 "), "{listing}");
    assert!(null.contains(" 1,3 "), "{listing}");
    assert!(listing.contains("-rw-r----- 0/42"), "{listing}");
    assert!(listing.contains("usr/bin/sh link to usr/bin/busybox"), "{listing}");
    assert!(listing.contains(&format!("x/{}", "long-".repeat(40))), "{listing}");
    assert!(listing.contains("drwxrwxrwt"), "{listing}");
    let gunzipped = run("gzip", &["-dc"], &out);
    assert_eq!(gunzipped.len() as u64 % 512, 0);
}

#[test]
fn content_errors_name_the_file() {
    let cases = [
        (Content::from_reader(10, &b"short"[..]), "content of `f` ended after 5 bytes, but 10 bytes were declared"),
        (Content::from_reader(2, &b"longer"[..]), "content of `f` is longer than the declared 2 bytes"),
        (
            Content::from_fn(1, || -> io::Result<io::Empty> { Err(io::Error::new(io::ErrorKind::NotFound, "gone")) }),
            "cannot read content of `f`: gone",
        ),
    ];
    for (content, text) in cases {
        let error = LayerWriter::new(Vec::new(), LayerOptions::default())
            .expect("options")
            .write_tree(tree(vec![("f", Entry::file(content))]))
            .expect_err(text);
        assert_eq!(error.to_string(), text);
    }
}

#[test]
fn options_are_validated() {
    let cases = [
        (LayerOptions { jobs: 0, ..LayerOptions::default() }, "invalid layer option `jobs`: must be at least 1"),
        (
            LayerOptions { level: 10, ..LayerOptions::default() },
            "invalid layer option `level`: 10 is not a deflate level; use 0 to 9",
        ),
    ];
    for (options, text) in cases {
        let error = LayerWriter::new(Vec::new(), options).expect_err(text);
        assert_eq!(error.to_string(), text);
    }
}

#[test]
fn empty_tree_is_a_valid_layer() {
    let (out, digests) = write(LayerTree::new(), LayerOptions::default());
    assert_eq!(gunzip(&out), vec![0u8; 1024]);
    assert_eq!(digests.uncompressed_size, 1024);
    assert_eq!(list_layer(&out[..]).expect("list"), "");
}

#[test]
fn from_file_content_is_read_at_write_time() {
    let dir = std::env::temp_dir().join(format!("layer-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let on_disk = dir.join("hello");
    std::fs::write(&on_disk, b"hello\n").expect("write");
    let content = Content::from_file(&on_disk).expect("stat");
    let (out, _) = write(tree(vec![("hello", Entry::file(content))]), LayerOptions::default());
    std::fs::remove_dir_all(&dir).expect("cleanup");
    assert_eq!(
        list_layer(&out[..]).expect("list"),
        "-0644 0:0 6 0 hello 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\n"
    );
}

#[test]
fn types_cross_threads() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync + 'static>() {}
    send::<LayerTree>();
    send::<LayerWriter<std::fs::File>>();
    send_sync::<LayerError>();
    send_sync::<LayerDigests>();
}

#[test]
fn a_split_tree_puts_each_entry_once_and_every_directory_on_top() {
    let dir = |mode: u32, mtime: u64| Entry::directory().with_mode(Mode::new(mode).expect("mode")).with_mtime(mtime);
    let whole = tree(vec![
        ("usr", dir(0o755, 5)),
        ("usr/lib", dir(0o755, 6)),
        ("usr/lib/liba.so", file(b"a")),
        ("usr/lib/liba.link", Entry::hard_link(path("usr/lib/liba.so"))),
        ("usr/share", dir(0o755, 7)),
        ("usr/share/b", file(b"b")),
        ("etc", dir(0o755, 8)),
        ("etc/passwd", file(b"root")),
        ("tmp", dir(0o1777, 9)),
    ]);
    // liba.so is package 0's, b package 1's; the hard link belongs to nobody but follows
    // its file; /tmp is package 1's directory.
    let owners = BTreeMap::from([(path("usr/lib/liba.so"), 0), (path("usr/share/b"), 1), (path("tmp"), 1)]);
    let parts = whole.split(&owners, 2);
    let listing = |t: &LayerTree| -> Vec<(String, u32, u64)> {
        t.iter().map(|(p, e)| (p.as_str().to_owned(), e.mode.bits(), e.mtime)).collect()
    };
    assert_eq!(parts.len(), 3);
    assert_eq!(
        listing(&parts[0]),
        [
            ("usr".into(), 0o755, 0),
            ("usr/lib".into(), 0o755, 0),
            ("usr/lib/liba.link".into(), 0o644, 0),
            ("usr/lib/liba.so".into(), 0o644, 0)
        ]
    );
    assert_eq!(
        listing(&parts[1]),
        [
            ("tmp".into(), 0o1777, 0),
            ("usr".into(), 0o755, 0),
            ("usr/share".into(), 0o755, 0),
            ("usr/share/b".into(), 0o644, 0)
        ]
    );
    // The top: every directory as it is in the whole tree, and what no package owns.
    assert_eq!(
        listing(&parts[2]),
        [
            ("etc".into(), 0o755, 8),
            ("etc/passwd".into(), 0o644, 0),
            ("tmp".into(), 0o1777, 9),
            ("usr".into(), 0o755, 5),
            ("usr/lib".into(), 0o755, 6),
            ("usr/share".into(), 0o755, 7),
        ]
    );
    // Each part writes on its own (the hard link's file is in its part).
    for part in parts {
        write(part, options(10, 1));
    }
}
