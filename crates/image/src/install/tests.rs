//! Tests of the installer: the real fixture packages, crafted tar streams for everything
//! hostile or unusual, accounts, extra files, the apk database and byte-for-byte
//! reproducibility.

use std::io::Read;
use std::path::Path;

use super::*;
use crate::apk::{PackageName, Version};
use crate::layer::{LayerOptions, LayerWriter};
use executor_testkit::apk::{write_package_unchecked, PackageFile, PackageSpec};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/apk/");

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn install_fixture(installer: &mut Installer, path: &str) -> Result<(), InstallError> {
    let bytes = fixture(path);
    let package = Package::read(&bytes, path).unwrap_or_else(|e| panic!("{e}"));
    installer.install(&VerifiedPackage::assume_verified(package), "https://example.test/repo")
}

fn path(s: &str) -> LayerPath {
    LayerPath::new(s).expect("valid test path")
}

/// Package metadata from `.PKGINFO` text.
fn meta(pkginfo: &str) -> PackageMeta {
    PackageMeta {
        info: PkgInfo::parse(pkginfo).unwrap_or_else(|e| panic!("{e:?}")),
        identity: None,
        file_size: None,
        repository: "test".to_owned(),
    }
}

/// A package `name` 1.0-r0 for x86_64 with its own origin.
fn simple(name: &str) -> PackageMeta {
    meta(&format!("pkgname = {name}\npkgver = 1.0-r0\narch = x86_64\norigin = {name}\n"))
}

/// Builds an uncompressed data tar by hand, so that anything (hostile names, PAX records,
/// devices) can go in.
#[derive(Default)]
struct Tar(Vec<u8>);

/// One entry for [`Tar::raw`].
struct Raw<'a> {
    name: &'a [u8],
    kind: tar::EntryType,
    link: &'a [u8],
    content: &'a [u8],
    mode: u32,
    uid: u64,
    gid: u64,
    device: (u32, u32),
    pax: Vec<(&'a str, Vec<u8>)>,
}

impl<'a> Raw<'a> {
    fn new(name: &'a str, kind: tar::EntryType) -> Self {
        let mode = match kind {
            tar::EntryType::Directory => 0o755,
            tar::EntryType::Symlink => 0o777,
            _ => 0o644,
        };
        Raw {
            name: name.as_bytes(),
            kind,
            link: b"",
            content: b"",
            mode,
            uid: 0,
            gid: 0,
            device: (0, 0),
            pax: Vec::new(),
        }
    }
}

impl Tar {
    fn raw(mut self, raw: Raw<'_>) -> Self {
        if !raw.pax.is_empty() {
            let mut body = Vec::new();
            for (key, value) in &raw.pax {
                // The length counts its own digits.
                let rest = key.len() + value.len() + 3;
                let mut len = rest + 1;
                while len != rest + len.to_string().len() {
                    len = rest + len.to_string().len();
                }
                body.extend_from_slice(format!("{len} {key}=").as_bytes());
                body.extend_from_slice(value);
                body.push(b'\n');
            }
            self.header(b"PaxHeader", tar::EntryType::XHeader, b"", body.len() as u64, 0o644, 0, 0, (0, 0));
            self.data(&body);
        }
        self.header(raw.name, raw.kind, raw.link, raw.content.len() as u64, raw.mode, raw.uid, raw.gid, raw.device);
        self.data(raw.content);
        self
    }

    #[allow(clippy::too_many_arguments)]
    fn header(
        &mut self,
        name: &[u8],
        kind: tar::EntryType,
        link: &[u8],
        size: u64,
        mode: u32,
        uid: u64,
        gid: u64,
        device: (u32, u32),
    ) {
        let mut header = tar::Header::new_ustar();
        let ustar = header.as_ustar_mut().expect("ustar");
        ustar.name[..name.len()].copy_from_slice(name);
        ustar.linkname[..link.len()].copy_from_slice(link);
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(mode);
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_mtime(1_700_000_000);
        header.set_device_major(device.0).expect("major");
        header.set_device_minor(device.1).expect("minor");
        header.set_cksum();
        self.0.extend_from_slice(header.as_bytes());
    }

    fn data(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
        let padding = (512 - bytes.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, padding));
    }

    fn dir(self, name: &str) -> Self {
        self.raw(Raw::new(name, tar::EntryType::Directory))
    }

    fn file(self, name: &str, content: &str) -> Self {
        let sha1 = hex::encode(Sha1::digest(content.as_bytes())).into_bytes();
        self.raw(Raw {
            content: content.as_bytes(),
            pax: vec![(CHECKSUM_SHA1, sha1)],
            ..Raw::new(name, tar::EntryType::Regular)
        })
    }

    fn symlink(self, name: &str, target: &str) -> Self {
        self.raw(Raw { link: target.as_bytes(), ..Raw::new(name, tar::EntryType::Symlink) })
    }

    fn hard_link(self, name: &str, target: &str) -> Self {
        self.raw(Raw { link: target.as_bytes(), ..Raw::new(name, tar::EntryType::Link) })
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&[0u8; 1024]);
        self.0
    }
}

fn install_tar(installer: &mut Installer, meta: PackageMeta, tar: Tar) -> Result<(), InstallError> {
    let bytes = tar.finish();
    installer.install_archive(meta, &mut tar::Archive::new(&bytes[..]))
}

/// The text of a regular file of the tree (taken out of it).
fn text_of(tree: &mut LayerTree, at: &str) -> String {
    let Some(Entry { kind: EntryKind::File(content), .. }) = tree.remove(&path(at)) else {
        panic!("`{at}` is not a regular file")
    };
    let mut text = String::new();
    content.open().expect("open").read_to_string(&mut text).expect("utf-8");
    text
}

/// `path kind mode uid:gid` lines of the tree, for compact assertions.
fn listing(tree: &LayerTree) -> Vec<String> {
    tree.iter()
        .map(|(p, e)| {
            let kind = match &e.kind {
                EntryKind::Symlink(t) => format!("-> {t}"),
                EntryKind::HardLink(t) => format!("=> {t}"),
                other => other.describe().to_owned(),
            };
            format!("{p} {kind} {:o} {}:{}", e.mode.bits(), e.uid, e.gid)
        })
        .collect()
}

/// The record of package `name` in the installed database.
fn db_record(db: &str, name: &str) -> String {
    db.split("\n\n")
        .find(|record| record.lines().any(|l| l == format!("P:{name}")))
        .unwrap_or_else(|| panic!("no record for {name} in\n{db}"))
        .trim_end()
        .to_owned()
        + "\n"
}

const MELANGE: &str = "melange-rsa256/x86_64/";

#[test]
fn replayout_replaces_pretend_baselayout() {
    let mut installer = Installer::new(Arch::X86_64);
    for name in [
        "pretend-baselayout-1.0.0-r0",
        "replayout-1.0.0-r0",
        "custom-ca-certs-1-1.0.0-r0",
        "custom-ca-certs-2-1.0.0-r0",
    ] {
        install_fixture(&mut installer, &format!("{MELANGE}{name}.apk")).unwrap_or_else(|e| panic!("{e}"));
    }
    let (mut tree, summaries) = installer.finish().expect("finish");
    let files: Vec<(&str, Vec<&str>)> =
        summaries.iter().map(|s| (s.name.as_str(), s.files.iter().map(String::as_str).collect())).collect();
    assert_eq!(
        files,
        [
            // `etc/os-release` went to replayout, which replaces pretend-baselayout.
            ("pretend-baselayout", vec!["var/lib/db/sbom/pretend-baselayout-1.0.0-r0.spdx.json"]),
            ("replayout", vec!["etc/os-release", "var/lib/db/sbom/replayout-1.0.0-r0.spdx.json"]),
            (
                "custom-ca-certs-1",
                vec![
                    "usr/local/share/ca-certificates/cert-a.crt",
                    "usr/local/share/ca-certificates/cert-b.crt",
                    "var/lib/db/sbom/custom-ca-certs-1-1.0.0-r0.spdx.json"
                ]
            ),
            (
                "custom-ca-certs-2",
                vec![
                    "usr/local/share/ca-certificates/cert-c.crt",
                    "usr/local/share/ca-certificates/cert-d.crt",
                    "var/lib/db/sbom/custom-ca-certs-2-1.0.0-r0.spdx.json"
                ]
            ),
        ]
    );
    let replayout = &summaries[1];
    assert_eq!(replayout.repository, "https://example.test/repo");
    assert_eq!(replayout.identity.as_deref(), Some("Q11/HhSewwwOXgl0r0ffb0O0BRtYc="));
    assert_eq!((replayout.license.as_deref(), replayout.origin.as_deref()), (Some("MIT"), Some("replayout")));
    assert_eq!(replayout.url, None);
    // The package's owner and mode; the tree is what the layer writer gets.
    let os_release = tree.get(&path("etc/os-release")).expect("os-release");
    assert_eq!((os_release.uid, os_release.gid, os_release.mode.bits()), (501, 20, 0o644));
    let release = text_of(&mut tree, "etc/os-release");
    let mut expected = String::new();
    let bytes = fixture(&format!("{MELANGE}replayout-1.0.0-r0.apk"));
    let package = Package::read(&bytes, "replayout").expect("read");
    for entry in package.data_archive().entries().expect("entries") {
        let mut entry = entry.expect("entry");
        if entry.path_bytes().as_ref() == b"etc/os-release" {
            entry.read_to_string(&mut expected).expect("read");
        }
    }
    assert_eq!(release, expected);
}

/// A `.PKGINFO` with a single-valued key twice (real Wolfi packages carry two `license`
/// lines) installs, and the later value is recorded, as apk-tools records it.
#[test]
fn a_repeated_pkginfo_key_installs_with_the_later_value() {
    let mut installer = Installer::new(Arch::X86_64);
    let twice = meta("pkgname = twice\npkgver = 1.0-r0\narch = x86_64\nlicense = MIT\nlicense = GPL-2.0-only\n");
    install_tar(&mut installer, twice, Tar::default()).expect("install");
    let (mut tree, summaries) = installer.finish().expect("finish");
    assert_eq!(summaries[0].license.as_deref(), Some("GPL-2.0-only"));
    let db = text_of(&mut tree, INSTALLED_DB);
    assert!(db_record(&db, "twice").lines().any(|l| l == "L:GPL-2.0-only"), "{db}");
    assert!(!db.contains("L:MIT"), "{db}");
}

#[test]
fn installed_database_golden() {
    let mut installer = Installer::new(Arch::X86_64);
    install_fixture(&mut installer, &format!("{MELANGE}pretend-baselayout-1.0.0-r0.apk")).expect("install");
    install_fixture(&mut installer, &format!("{MELANGE}replayout-1.0.0-r0.apk")).expect("install");
    let (mut tree, _) = installer.finish().expect("finish");
    let db = text_of(&mut tree, INSTALLED_DB);
    assert_eq!(
        db,
        "C:Q1m6wB0UFePGN8Drz82pC8y2uAiu8=\nP:pretend-baselayout\nV:1.0.0-r0\nA:x86_64\nS:2930\nI:3476\n\
         T:replacement baselayout\nU:\nL:MIT\no:pretend-baselayout\nm:unknown\n\
         c:326e0ed687bdfeadac839dc9b25686e4442c9d04\n\
         F:etc\nF:var\nF:var/lib\nF:var/lib/db\nF:var/lib/db/sbom\n\
         R:pretend-baselayout-1.0.0-r0.spdx.json\nZ:Q15d+IKXrVK1o8pOAjbHFqnDfAwIY=\n\
         \n\
         C:Q11/HhSewwwOXgl0r0ffb0O0BRtYc=\nP:replayout\nV:1.0.0-r0\nA:x86_64\nS:2961\nI:3389\n\
         T:replacement baselayout\nU:\nL:MIT\no:replayout\nm:unknown\n\
         c:326e0ed687bdfeadac839dc9b25686e4442c9d04\nD:pretend-baselayout\nr:pretend-baselayout\n\
         F:etc\nR:os-release\na:501:20:644\nZ:Q1yl5Se7uKXMnEwtK04pYY2Mo75fg=\n\
         F:var\nF:var/lib\nF:var/lib/db\nF:var/lib/db/sbom\n\
         R:replayout-1.0.0-r0.spdx.json\nZ:Q16Wd3dW9vQjHcZKv7Wj5Jnmm3a20=\n\
         \n"
    );
}

/// replayout `replaces` pretend-baselayout: installed first, its `etc/os-release` stays when
/// pretend-baselayout comes second (apk-tools' rule; before, a conflict), and
/// pretend-baselayout does not own it.
#[test]
fn the_replacing_package_installed_first_keeps_its_file() {
    let mut installer = Installer::new(Arch::X86_64);
    install_fixture(&mut installer, &format!("{MELANGE}replayout-1.0.0-r0.apk")).expect("install");
    let release = |tree: &mut LayerTree| text_of(tree, "etc/os-release");
    install_fixture(&mut installer, &format!("{MELANGE}pretend-baselayout-1.0.0-r0.apk"))
        .expect("replaced, no conflict");
    let (mut tree, summaries) = installer.finish().expect("finish");
    let db = text_of(&mut tree, INSTALLED_DB);
    assert!(db_record(&db, "replayout").contains("R:os-release"), "{db}");
    assert!(!db_record(&db, "pretend-baselayout").contains("R:os-release"), "{db}");
    assert_eq!(summaries.len(), 2);
    // The file is replayout's, as when replayout comes second.
    let mut second = Installer::new(Arch::X86_64);
    install_fixture(&mut second, &format!("{MELANGE}pretend-baselayout-1.0.0-r0.apk")).expect("install");
    install_fixture(&mut second, &format!("{MELANGE}replayout-1.0.0-r0.apk")).expect("install");
    let (mut expected, _) = second.finish().expect("finish");
    assert_eq!(release(&mut tree), release(&mut expected));
}

/// A conflict (no `replaces`, another origin) fails the package, and what it had written
/// before the conflicting path is taken back.
#[test]
fn conflict_without_replaces_is_an_error_and_leaves_nothing() {
    let mut installer = Installer::new(Arch::X86_64);
    install_tar(&mut installer, simple("a"), Tar::default().dir("etc").file("etc/x", "a")).expect("a");
    let b = Tar::default().dir("srv").file("srv/b-only", "b").dir("etc").file("etc/x", "b");
    let error = install_tar(&mut installer, simple("b"), b).expect_err("conflict");
    assert_eq!(
        error.to_string(),
        "package `b-1.0-r0`: `etc/x` is also installed by `a-1.0-r0`, with different content; `b-1.0-r0` \
         does not replace `a-1.0-r0` and has a different origin: remove one of them, or make the later one \
         declare `replaces = a`"
    );
    let (mut tree, summaries) = installer.finish().expect("finish");
    assert_eq!(summaries.len(), 1);
    // The entries b had written before the conflict were taken back.
    assert!(!tree.contains(&path("srv/b-only")));
    assert!(!text_of(&mut tree, INSTALLED_DB).contains("P:b"));
}

#[test]
fn alpine_baselayout_golden() {
    let mut installer = Installer::new(Arch::Aarch64);
    install_fixture(&mut installer, "alpine-packages/aarch64/alpine-baselayout-3.2.0-r23.apk").expect("install");
    let (mut tree, _) = installer.finish().expect("finish");
    let list = listing(&tree);
    // 83 data entries, the apk files (arch, repositories, world, installed, triggers,
    // scripts.tar, lock), the base
    // directories the package does not ship (`etc/apk/keys`, `usr/lib/apk`, `usr/lib/apk/db`,
    // `usr/lib/apk/exec`, `var/cache/apk`) and the `lib/apk` link.
    assert_eq!(list.len(), 83 + 7 + 5 + 1, "{list:#?}");
    for line in [
        "etc/crontabs/root regular file 600 0:0",
        "root directory 700 0:0",
        "tmp directory 1777 0:0",
        "var/empty directory 555 0:0",
        "var/run -> /run 777 0:0",
        "var/spool/cron/crontabs -> /etc/crontabs 777 0:0",
        "sbin/mkmntdirs regular file 755 0:0",
        "usr/lib/apk/db directory 755 0:0",
        "usr/lib/apk/exec directory 755 0:0",
        "var/cache/apk directory 755 0:0",
        "lib/apk -> ../usr/lib/apk 777 0:0",
        "usr/lib/apk/db/lock regular file 600 0:0",
        "usr/lib/apk/db/triggers regular file 644 0:0",
        "usr/lib/apk/db/scripts.tar regular file 644 0:0",
    ] {
        assert!(list.iter().any(|l| l == line), "missing `{line}` in {list:#?}");
    }
    // Same layout and checksums as apk-tools writes for 3.2.0-r22 (go-apk's testdata), e.g.
    // `Z:Q11/SNZz/8cK2dSKK+cJpVrZIuF4Q=` is sha1("/run") for the `var/run` symlink.
    let db = text_of(&mut tree, INSTALLED_DB);
    let expected = "C:Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=\nP:alpine-baselayout\nV:3.2.0-r23\nA:aarch64\nS:11012\n\
        I:339968\nT:Alpine base dir structure and init scripts\n\
        U:https://git.alpinelinux.org/cgit/aports/tree/main/alpine-baselayout\nL:GPL-2.0-only\n\
        o:alpine-baselayout\nm:Natanael Copa <ncopa@alpinelinux.org>\nt:1662926906\n\
        c:348653a9ba0701e8e968b3344e72313a9ef334e4\n\
        D:alpine-baselayout-data=3.2.0-r23 /bin/sh so:libc.musl-aarch64.so.1\np:cmd:mkmntdirs=3.2.0-r23\n\
        F:dev\nF:dev/pts\nF:dev/shm\nF:etc\nR:motd\nZ:Q1XmduVVNURHQ27TvYp1Lr5TMtFcA=\nF:etc/apk\nF:etc/conf.d\n\
        F:etc/crontabs\nR:root\na:0:0:600\nZ:Q1vfk1apUWI4yLJGhhNRd0kJixfvY=\nF:etc/init.d\nF:etc/modprobe.d\n\
        R:aliases.conf\nZ:Q1WUbh6TBYNVK7e4Y+uUvLs/7viqk=\nR:blacklist.conf\nZ:Q14TdgFHkTdt3uQC+NBtrntOnm9n4=\n\
        R:i386.conf\nZ:Q1pnay/njn6ol9cCssL7KiZZ8etlc=\nR:kms.conf\nZ:Q1ynbLn3GYDpvajba/ldp1niayeog=\n\
        F:etc/modules-load.d\nF:etc/network\nF:etc/network/if-down.d\nF:etc/network/if-post-down.d\n\
        F:etc/network/if-pre-up.d\nF:etc/network/if-up.d\nF:etc/opt\nF:etc/periodic\nF:etc/periodic/15min\n\
        F:etc/periodic/daily\nF:etc/periodic/hourly\nF:etc/periodic/monthly\nF:etc/periodic/weekly\n\
        F:etc/profile.d\nR:README\nZ:Q135OWsCzzvnB2fmFx62kbqm1Ax1k=\nR:color_prompt.sh.disabled\n\
        Z:Q11XM9mde1Z29tWMGaOkeovD/m4uU=\nR:locale.sh\nZ:Q1S8j+WW71mWxfVy8ythqU7HUVoBw=\nF:etc/sysctl.d\n\
        F:home\nF:lib\nF:lib/firmware\nF:lib/mdev\nF:lib/modules-load.d\nF:lib/sysctl.d\nR:00-alpine.conf\n\
        Z:Q1HpElzW1xEgmKfERtTy7oommnq6c=\nF:media\nF:media/cdrom\nF:media/floppy\nF:media/usb\nF:mnt\nF:opt\n\
        F:proc\nF:root\nM:0:0:700\nF:run\nF:sbin\nR:mkmntdirs\na:0:0:755\nZ:Q1Yz4VxhO2EVju3t6SmUoDtmTSK+U=\n\
        F:srv\nF:sys\nF:tmp\nM:0:0:1777\nF:usr\nF:usr/lib\nF:usr/lib/modules-load.d\nF:usr/local\n\
        F:usr/local/bin\nF:usr/local/lib\nF:usr/local/share\nF:usr/sbin\nF:usr/share\nF:usr/share/man\n\
        F:usr/share/misc\nF:var\nR:run\na:0:0:777\nZ:Q11/SNZz/8cK2dSKK+cJpVrZIuF4Q=\nF:var/cache\n\
        F:var/cache/misc\nF:var/empty\nM:0:0:555\nF:var/lib\nF:var/lib/misc\nF:var/local\nF:var/lock\n\
        F:var/lock/subsys\nF:var/log\nF:var/mail\nF:var/opt\nF:var/spool\nR:mail\na:0:0:777\n\
        Z:Q1dzbdazYZA2nTzSIG3YyNw7d4Juc=\nF:var/spool/cron\nR:crontabs\na:0:0:777\n\
        Z:Q1OFZt+ZMp7j0Gny0rqSKuWJyqYmA=\nF:var/tmp\nM:0:0:1777\n\n";
    assert_eq!(db, expected);
}

#[test]
fn wrong_arch_is_refused() {
    let mut installer = Installer::new(Arch::X86_64);
    let error = install_fixture(&mut installer, "alpine-packages/aarch64/alpine-baselayout-3.2.0-r23.apk")
        .expect_err("aarch64 package");
    assert_eq!(
        error.to_string(),
        "package `alpine-baselayout-3.2.0-r23` is built for `aarch64`, but the image is `x86_64`: \
         lock the packages for `x86_64`"
    );
}

#[test]
fn hostile_paths_are_refused_and_never_written() {
    let wrong_sha1 = "0000000000000000000000000000000000000000".as_bytes().to_vec();
    let cases: Vec<(Tar, &str)> = vec![
        (
            Tar::default().file("../etc/passwd", "x"),
            "refusing `../etc/passwd`: `..` components would leave the image root",
        ),
        (
            Tar::default().file("/etc/passwd", "x"),
            "refusing `/etc/passwd`: absolute paths are not allowed in package data",
        ),
        (
            Tar::default().dir("usr").file("usr/../../x", "x"),
            "refusing `usr/../../x`: `..` components would leave the image root",
        ),
        (
            Tar::default().dir("usr").dir("usr/bin").symlink("usr/bin/x", "../../../etc/shadow"),
            "refusing `usr/bin/x`: its target `../../../etc/shadow` leads outside the image root",
        ),
        (
            Tar::default().symlink("up", "/..").file("up/etc/passwd", "x"),
            "refusing `up/etc/passwd`: it goes through symlink `up` -> `/..`, which leads outside the image root",
        ),
        (
            Tar::default().symlink("a", "b").symlink("b", "a").file("a/x", "x"),
            "refusing `a/x`: too many levels of symlinks at `a`",
        ),
        (
            Tar::default().hard_link("a", "missing"),
            "refusing `a`: it is a hard link to `missing`, which is not in the image",
        ),
        (
            Tar::default().hard_link("a", "../etc/shadow"),
            "refusing `a`: hard link target `../etc/shadow`: `..` components would leave the image root",
        ),
        (
            Tar::default().dir("d").hard_link("a", "d"),
            "refusing `a`: it is a hard link to `d`, which is a directory; hard links must point to regular files",
        ),
        (
            Tar::default().raw(Raw { name: b"caf\xe9", ..Raw::new("", tar::EntryType::Regular) }),
            "refusing `caf\\xe9`: it is not UTF-8",
        ),
        (
            Tar::default().raw(Raw {
                content: b"hello",
                pax: vec![(CHECKSUM_SHA1, wrong_sha1)],
                ..Raw::new("etc/motd", tar::EntryType::Regular)
            }),
            "`etc/motd` has sha1 aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d, but the package records \
             0000000000000000000000000000000000000000: the package is corrupt or was built wrongly",
        ),
    ];
    let mut installer = Installer::new(Arch::X86_64);
    for (tar, text) in cases {
        // Every case starts with harmless entries, which must be taken back too.
        let tar = Tar::default().dir("harmless").file("harmless/file", "ok").raw_all(tar);
        let error = install_tar(&mut installer, simple("evil"), tar).expect_err(text);
        assert_eq!(error.to_string(), format!("package `evil-1.0-r0`: {text}"));
    }
    let (tree, summaries) = installer.finish().expect("finish");
    assert!(summaries.is_empty());
    // Nothing of the refused packages remains, and with no package installed there is no
    // apk database either.
    let paths: Vec<String> = tree.iter().map(|(p, _)| p.to_string()).collect();
    assert_eq!(paths, Vec::<String>::new());
}

impl Tar {
    /// Appends the entries of `other` (without its end-of-archive blocks).
    fn raw_all(mut self, other: Tar) -> Tar {
        self.0.extend(other.0);
        self
    }
}

#[test]
fn hostile_apk_from_the_package_writer() {
    let mut spec =
        PackageSpec::new(PackageName::new("evil").expect("name"), Version::parse("1.0-r0").expect("version"), "x86_64");
    spec.files = vec![PackageFile::dir("etc"), PackageFile::file("../../etc/cron.d/x", "* * * * * root boom\n")];
    let bytes = write_package_unchecked(&spec, None).expect("write");
    let package = Package::read(&bytes, "evil-1.0-r0.apk").expect("read");
    let mut installer = Installer::new(Arch::X86_64);
    let error = installer.install(&VerifiedPackage::assume_verified(package), "test").expect_err("hostile");
    assert_eq!(
        error.to_string(),
        "package `evil-1.0-r0`: refusing `../../etc/cron.d/x`: `..` components would leave the image root"
    );
}

#[test]
fn symlinked_parents_resolve_inside_the_root() {
    let mut installer = Installer::new(Arch::X86_64);
    let base = Tar::default().dir("usr").dir("usr/lib").symlink("lib", "usr/lib");
    install_tar(&mut installer, simple("base"), base).expect("base");
    let lib = Tar::default().dir("lib").file("lib/libfoo.so.1", "ELF").hard_link("lib/libfoo.so", "lib/libfoo.so.1");
    install_tar(&mut installer, simple("libfoo"), lib).expect("libfoo");
    let (mut tree, _) = installer.finish().expect("finish");
    let list = listing(&tree);
    for line in [
        "lib -> usr/lib 777 0:0",
        "usr/lib/libfoo.so => usr/lib/libfoo.so.1 644 0:0",
        "usr/lib/libfoo.so.1 regular file 644 0:0",
    ] {
        assert!(list.iter().any(|l| l == line), "missing `{line}` in {list:#?}");
    }
    let db = text_of(&mut tree, INSTALLED_DB);
    let sha1 = database::q1(&Sha1::digest(b"ELF").into());
    assert_eq!(
        db_record(&db, "libfoo"),
        format!("P:libfoo\nV:1.0-r0\nA:x86_64\nS:0\nI:0\nT:\nU:\nL:\no:libfoo\nF:lib\nR:libfoo.so\nZ:{sha1}\nR:libfoo.so.1\nZ:{sha1}\n")
    );
    assert_eq!(
        db_record(&db, "base"),
        format!(
            "P:base\nV:1.0-r0\nA:x86_64\nS:0\nI:0\nT:\nU:\nL:\no:base\nF:\nR:lib\na:0:0:777\nZ:{}\nF:usr\nF:usr/lib\n",
            database::q1(&Sha1::digest(b"usr/lib").into())
        )
    );
}

#[test]
fn devices_fifos_xattrs_and_pax_records() {
    let sha1 = hex::encode(Sha1::digest(b"#!/bin/sh\n")).into_bytes();
    let tar = Tar::default()
        .dir("dev")
        .raw(Raw { mode: 0o666, device: (1, 3), ..Raw::new("dev/null", tar::EntryType::Char) })
        .raw(Raw { mode: 0o660, device: (8, 0), gid: 6, ..Raw::new("dev/sda", tar::EntryType::Block) })
        .raw(Raw::new("dev/initctl", tar::EntryType::Fifo))
        .dir("usr")
        .dir("usr/bin")
        .raw(Raw {
            content: b"#!/bin/sh\n",
            mode: 0o4755,
            pax: vec![
                (CHECKSUM_SHA1, sha1),
                ("SCHILY.xattr.security.capability", vec![1, 0, 0, 2]),
                ("uid", b"1000".to_vec()),
                ("APK-TOOLS.checksum.MD5", b"whatever".to_vec()),
            ],
            ..Raw::new("usr/bin/ping", tar::EntryType::Regular)
        });
    let mut installer = Installer::new(Arch::X86_64);
    install_tar(&mut installer, simple("devices"), tar).expect("install");
    // An `a:` line carries the hash of the capability xattr (computed independently, with
    // Python's hashlib, from apk-tools' `apk_fileinfo_hash_xattr_array`).
    let (mut tree, _) = installer.finish().expect("finish");
    let ping = tree.get(&path("usr/bin/ping")).expect("ping");
    assert_eq!(ping.xattrs.keys().collect::<Vec<_>>(), ["security.capability"]);
    assert_eq!((ping.uid, ping.mode.bits(), ping.mtime), (1000, 0o4755, 1_700_000_000));
    let list = listing(&tree);
    for line in ["dev/null character device 666 0:0", "dev/sda block device 660 0:6", "dev/initctl fifo 644 0:0"] {
        assert!(list.iter().any(|l| l == line), "missing `{line}` in {list:#?}");
    }
    let db = text_of(&mut tree, INSTALLED_DB);
    assert_eq!(
        db_record(&db, "devices"),
        format!(
            "P:devices\nV:1.0-r0\nA:x86_64\nS:0\nI:0\nT:\nU:\nL:\no:devices\nF:dev\nR:initctl\nR:null\na:0:0:666\nR:sda\na:0:6:660\n\
             F:usr\nF:usr/bin\nR:ping\na:1000:0:4755:Q1I5+wkQQUBvmlLQsGDN5Z8Gcf0wo=\nZ:{}\n",
            database::q1(&Sha1::digest(b"#!/bin/sh\n").into())
        )
    );
}

#[test]
fn an_entry_with_xattrs_gets_an_acl_line_with_their_hash() {
    let tar = Tar::default().dir("usr").raw(Raw {
        content: b"x",
        mode: 0o644,
        pax: vec![("SCHILY.xattr.user.b", b"2".to_vec()), ("SCHILY.xattr.security.capability", vec![1, 0, 0, 2])],
        ..Raw::new("usr/x", tar::EntryType::Regular)
    });
    let mut installer = Installer::new(Arch::X86_64);
    install_tar(&mut installer, simple("caps"), tar).expect("install");
    let (mut tree, _) = installer.finish().expect("finish");
    let db = text_of(&mut tree, INSTALLED_DB);
    // Default owner and mode, but xattrs: the line is written, the hash over both, by name.
    assert!(db_record(&db, "caps").contains("F:usr\nR:x\na:0:0:644:Q1PAdPwiY/3P736kAQVQ6l8/eYCT8=\nZ:"), "{db}");
}

#[test]
fn base_directories_and_the_lib_apk_link() {
    let mut installer = Installer::new(Arch::X86_64);
    // The package ships `tmp` with its own mode: it stays; the others are created.
    install_tar(
        &mut installer,
        simple("base"),
        Tar::default().raw(Raw { mode: 0o755, ..Raw::new("tmp", tar::EntryType::Directory) }),
    )
    .expect("install");
    let (tree, _) = installer.finish().expect("finish");
    let list = listing(&tree);
    for line in [
        "tmp directory 755 0:0",
        "proc directory 555 0:0",
        "dev directory 755 0:0",
        "opt directory 755 0:0",
        "etc/apk/keys directory 755 0:0",
        "usr/lib/apk/exec directory 755 0:0",
        "var/cache/misc directory 755 0:0",
        "lib directory 755 0:0",
        "lib/apk -> ../usr/lib/apk 777 0:0",
    ] {
        assert!(list.iter().any(|l| l == line), "missing `{line}` in {list:#?}");
    }

    // Without a package, `/tmp` is `1777`; a merged `/usr` (`lib -> usr/lib`) needs no link.
    let mut installer = Installer::new(Arch::X86_64);
    let merged = Tar::default().dir("usr").dir("usr/lib").symlink("lib", "usr/lib");
    install_tar(&mut installer, simple("merged"), merged).expect("install");
    let (tree, _) = installer.finish().expect("finish");
    let list = listing(&tree);
    assert!(list.iter().any(|l| l == "tmp directory 1777 0:0"), "{list:#?}");
    assert!(list.iter().any(|l| l == "usr/lib/apk/db directory 755 0:0"), "{list:#?}");
    assert!(!list.iter().any(|l| l.starts_with("lib/")), "{list:#?}");

    // A layer of files alone gets neither: they are its base image's.
    let mut installer = Installer::new(Arch::X86_64);
    installer.add_file("/app", Content::from_bytes(b"x".to_vec()), 0o755, 0, 0).expect("add");
    let (tree, _) = installer.finish().expect("finish");
    assert_eq!(listing(&tree), ["app regular file 755 0:0"]);
}

#[test]
fn conflict_rules() {
    let same = || Tar::default().dir("etc").file("etc/x", "same");
    let other = || Tar::default().dir("etc").file("etc/x", "other");
    let origin = |name: &str, origin: &str| {
        meta(&format!("pkgname = {name}\npkgver = 1.0-r0\narch = x86_64\norigin = {origin}\n"))
    };

    // Identical entries: fine, the first package keeps the path.
    let mut installer = Installer::new(Arch::X86_64);
    install_tar(&mut installer, simple("a"), same()).expect("a");
    install_tar(&mut installer, simple("b"), same()).expect("identical");
    let (_, summaries) = installer.finish().expect("finish");
    assert_eq!((summaries[0].files.len(), summaries[1].files.len()), (1, 0));

    // Same origin: the later one wins.
    let mut installer = Installer::new(Arch::X86_64);
    install_tar(&mut installer, origin("a", "src"), same()).expect("a");
    install_tar(&mut installer, origin("b", "src"), other()).expect("same origin");
    let (mut tree, summaries) = installer.finish().expect("finish");
    assert_eq!((summaries[0].files.len(), summaries[1].files.len()), (0, 1));
    assert_eq!(text_of(&mut tree, "etc/x"), "other");

    // A version-constrained `replaces` that does not match does not help.
    let mut installer = Installer::new(Arch::X86_64);
    install_tar(&mut installer, simple("a"), same()).expect("a");
    let b = meta("pkgname = b\npkgver = 1.0-r0\nreplaces = a<1.0\n");
    let error = install_tar(&mut installer, b, other()).expect_err("conflict");
    assert!(error.to_string().contains("`b-1.0-r0` does not replace `a-1.0-r0`"), "{error}");

    let cases: Vec<(Tar, &str)> = vec![
        (Tar::default().dir("etc").symlink("etc/x", "y"), "as a regular file, not a symlink"),
        (
            Tar::default().dir("etc").raw(Raw {
                content: b"same",
                mode: 0o755,
                ..Raw::new("etc/x", tar::EntryType::Regular)
            }),
            "with mode 0644, not 0755",
        ),
        (
            Tar::default().dir("etc").raw(Raw {
                content: b"same",
                uid: 1,
                ..Raw::new("etc/x", tar::EntryType::Regular)
            }),
            "with owner 0:0, not 1:0",
        ),
    ];
    for (tar, difference) in cases {
        let mut installer = Installer::new(Arch::X86_64);
        install_tar(&mut installer, simple("a"), same()).expect("a");
        let error = install_tar(&mut installer, simple("b"), tar).expect_err(difference);
        assert_eq!(
            error.to_string(),
            format!(
                "package `b-1.0-r0`: `etc/x` is also installed by `a-1.0-r0`, {difference}; `b-1.0-r0` \
                 does not replace `a-1.0-r0` and has a different origin: remove one of them, or make \
                 the later one declare `replaces = a`"
            )
        );
    }

    // `replaces` works in both install orders: the replacing package's file stays when it
    // came first, and the replaced package then does not own the path.
    let replacing = || meta("pkgname = a\npkgver = 1.0-r0\nreplaces = b\n");
    let mut installer = Installer::new(Arch::X86_64);
    install_tar(&mut installer, replacing(), same()).expect("a");
    install_tar(&mut installer, simple("b"), other()).expect("b is replaced by a, installed first");
    let (mut tree, summaries) = installer.finish().expect("finish");
    assert_eq!((summaries[0].files.len(), summaries[1].files.len()), (1, 0));
    assert_eq!(text_of(&mut tree, "etc/x"), "same");
    let mut installer = Installer::new(Arch::X86_64);
    install_tar(&mut installer, simple("b"), other()).expect("b");
    install_tar(&mut installer, replacing(), same()).expect("a replaces b, installed second");
    let (mut tree, summaries) = installer.finish().expect("finish");
    assert_eq!((summaries[0].files.len(), summaries[1].files.len()), (0, 1));
    assert_eq!(text_of(&mut tree, "etc/x"), "same");

    // Two packages that replace each other: the higher `replaces_priority` wins, in either
    // order; on a tie, the later one takes the path, as apk-tools does.
    let low = || meta("pkgname = low\npkgver = 1.0-r0\nreplaces = high\nreplaces_priority = 10\n");
    let high = || meta("pkgname = high\npkgver = 1.0-r0\nreplaces = low\nreplaces_priority = 20\n");
    for high_first in [true, false] {
        let mut installer = Installer::new(Arch::X86_64);
        let (first, second) =
            if high_first { ((high(), other()), (low(), same())) } else { ((low(), same()), (high(), other())) };
        install_tar(&mut installer, first.0, first.1).expect("first");
        install_tar(&mut installer, second.0, second.1).expect("second");
        let (mut tree, _) = installer.finish().expect("finish");
        assert_eq!(text_of(&mut tree, "etc/x"), "other", "high wins, high first: {high_first}");
    }
    let tie =
        |name: &str, other_name: &str| meta(&format!("pkgname = {name}\npkgver = 1.0-r0\nreplaces = {other_name}\n"));
    let mut installer = Installer::new(Arch::X86_64);
    install_tar(&mut installer, tie("c", "d"), same()).expect("c");
    install_tar(&mut installer, tie("d", "c"), other()).expect("d");
    let (mut tree, _) = installer.finish().expect("finish");
    assert_eq!(text_of(&mut tree, "etc/x"), "other", "on a tie the later one wins");

    // One package listing a path twice.
    let mut installer = Installer::new(Arch::X86_64);
    let error = install_tar(&mut installer, simple("a"), same().file("etc/x", "again")).expect_err("twice");
    assert_eq!(error.to_string(), "package `a-1.0-r0`: `etc/x` appears twice in its data, with different content");

    // Shared directories keep the first package's metadata; each record has its own `M:`.
    let mut installer = Installer::new(Arch::X86_64);
    install_tar(&mut installer, simple("a"), Tar::default().dir("srv")).expect("a");
    install_tar(
        &mut installer,
        simple("b"),
        Tar::default().raw(Raw { mode: 0o700, ..Raw::new("srv/", tar::EntryType::Directory) }),
    )
    .expect("shared dir");
    let (mut tree, _) = installer.finish().expect("finish");
    assert_eq!(tree.get(&path("srv")).expect("srv").mode.bits(), 0o755);
    let db = text_of(&mut tree, INSTALLED_DB);
    assert!(db_record(&db, "b").ends_with("F:srv\nM:0:0:700\n"), "{db}");
}

fn passwd_package() -> Tar {
    Tar::default()
        .dir("etc")
        .file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n")
        .file("etc/group", "root:x:0:root\nnogroup:x:65533:\n")
}

#[test]
fn accounts_are_appended_to_the_shipped_files() {
    let mut installer = Installer::new(Arch::X86_64);
    install_tar(&mut installer, simple("baselayout"), passwd_package()).expect("install");
    installer.add_group("nonroot", 65532, &[]).expect("group");
    installer.add_user("nonroot", 65532, 65532, "", "/home/nonroot", "/sbin/nologin").expect("user");
    // The same account again is a no-op; so is one the package ships.
    installer.add_user("nonroot", 65532, 65532, "", "/home/nonroot", "/sbin/nologin").expect("again");
    installer.add_group("nogroup", 65533, &[]).expect("shipped");
    installer.add_group("app", 1000, &["nonroot", "root"]).expect("members");

    assert!(installer.has_user("nonroot") && installer.has_user("nobody"));
    assert!(!installer.has_user("ghost") && !installer.has_user("65532"));
    assert_eq!(installer.lookup_user("nonroot"), Some((65532, 65532)));
    assert_eq!(installer.lookup_user("65534"), Some((65534, 65534)));
    assert_eq!(installer.lookup_user("ghost"), None);

    let errors = [
        (
            installer.add_user("nonroot", 1000, 1000, "", "/home/nonroot", "/sbin/nologin"),
            "cannot add user `nonroot` (1000:1000): `/etc/passwd` already has \
             `nonroot:x:65532:65532::/home/nonroot:/sbin/nologin`",
        ),
        (
            installer.add_user("toor", 0, 0, "", "/root", "/bin/sh"),
            "cannot add user `toor` (0:0): `/etc/passwd` already has `root:x:0:0:root:/root:/bin/sh`",
        ),
        (installer.add_group("root", 5, &[]), "cannot add group `root` (5): `/etc/group` already has `root:x:0:root`"),
        (
            installer.add_user("a:b", 7, 7, "", "/", "/bin/sh"),
            "invalid name `a:b` for user `a:b`: names must be non-empty, without `:`, `,` or whitespace",
        ),
        (
            installer.add_user("app", 7, 7, "", "home/app", "/bin/sh"),
            "invalid home `home/app` for user `app`: it must be an absolute path",
        ),
        (
            installer.add_user("app", 7, 7, "", "/../app", "/bin/sh"),
            "accounts: refusing `/../app`: `..` components would leave the image root",
        ),
    ];
    for (result, text) in errors {
        assert_eq!(result.expect_err(text).to_string(), text);
    }

    let (mut tree, _) = installer.finish().expect("finish");
    let list = listing(&tree);
    for line in ["home directory 755 0:0", "home/nonroot directory 700 65532:65532"] {
        assert!(list.iter().any(|l| l == line), "missing `{line}` in {list:#?}");
    }
    // The package keeps `etc/passwd` in its record, with the shipped checksum.
    let db = text_of(&mut tree, INSTALLED_DB);
    let shipped = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n";
    assert!(db.contains(&format!("R:passwd\nZ:{}\n", database::q1(&Sha1::digest(shipped.as_bytes()).into()))), "{db}");
    assert_eq!(
        text_of(&mut tree, "etc/passwd"),
        format!("{shipped}nonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n")
    );
    let group = text_of(&mut tree, "etc/group");
    assert_eq!(group, "root:x:0:root\nnogroup:x:65533:\nnonroot:x:65532:\napp:x:1000:nonroot,root\n");
}

#[test]
fn accounts_without_shipped_files_create_them() {
    let mut installer = Installer::new(Arch::X86_64);
    installer.add_group("nonroot", 65532, &[]).expect("group");
    installer.add_user("nonroot", 65532, 65532, "", "/home/nonroot", "/sbin/nologin").expect("user");
    let (mut tree, _) = installer.finish().expect("finish");
    let list = listing(&tree);
    for line in ["etc/passwd regular file 644 0:0", "etc/group regular file 644 0:0"] {
        assert!(list.iter().any(|l| l == line), "missing `{line}` in {list:#?}");
    }
    assert_eq!(text_of(&mut tree, "etc/passwd"), "nonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n");
    assert_eq!(text_of(&mut tree, "etc/group"), "nonroot:x:65532:\n");
}

#[test]
fn accounts_clashing_with_a_later_package_fail_at_finish() {
    let mut installer = Installer::new(Arch::X86_64);
    installer.add_user("nobody", 99, 99, "", "/", "/sbin/nologin").expect("user");
    install_tar(&mut installer, simple("baselayout"), passwd_package()).expect("install");
    assert_eq!(
        installer.finish().expect_err("clash").to_string(),
        "cannot add user `nobody` (99:99): `/etc/passwd` already has \
         `nobody:x:65534:65534:nobody:/:/sbin/nologin`"
    );
}

#[test]
fn extra_files_win_over_packages() {
    let mut installer = Installer::new(Arch::X86_64);
    install_tar(
        &mut installer,
        simple("a"),
        Tar::default().dir("etc").file("etc/app.conf", "package").file("etc/keep", "k"),
    )
    .expect("a");
    installer.add_file("/etc/app.conf", Content::from_bytes("mine"), 0o600, 1000, 1000).expect("override");
    installer.add_file("/opt/app/bin/app", Content::from_bytes("ELF"), 0o755, 0, 0).expect("new file");
    installer.add_dir("/var/lib/app", 0o700, 1000, 1000).expect("dir");
    installer.add_symlink("/usr/bin/app", "/opt/app/bin/app").expect("symlink");
    // A later package does not overwrite the caller's file.
    install_tar(
        &mut installer,
        simple("b"),
        Tar::default().dir("opt").dir("opt/app").dir("opt/app/bin").file("opt/app/bin/app", "pkg"),
    )
    .expect("b");

    let errors = [
        (
            installer.add_file("../x", Content::from_bytes(""), 0o644, 0, 0),
            "extra files: refusing `../x`: `..` components would leave the image root",
        ),
        (
            installer.add_symlink("/usr/bin/evil", "../../../x"),
            "extra files: refusing `/usr/bin/evil`: its target `../../../x` leads outside the image root",
        ),
        (installer.add_dir("/", 0o755, 0, 0), "extra files: refusing `/`: it names the image root itself"),
        (
            installer.add_file("/etc/app.conf/x", Content::from_bytes(""), 0o644, 0, 0),
            "extra files: cannot add `etc/app.conf/x`: its parent `etc/app.conf` is not a directory",
        ),
        (
            installer.add_file("/x", Content::from_bytes(""), 0o10644, 0, 0),
            "extra files: invalid mode `0o10644`: only permission, setuid, setgid and sticky bits (at most \
             `0o7777`) are allowed; the file type is given by the entry kind",
        ),
    ];
    for (result, text) in errors {
        assert_eq!(result.expect_err(text).to_string(), text);
    }

    let (mut tree, summaries) = installer.finish().expect("finish");
    // The package no longer owns what the caller replaced.
    assert_eq!(summaries[0].files, ["etc/keep"]);
    assert!(summaries[1].files.is_empty());
    let list = listing(&tree);
    for line in [
        "etc/app.conf regular file 600 1000:1000",
        "opt/app/bin/app regular file 755 0:0",
        "var/lib/app directory 700 1000:1000",
        "usr/bin/app -> /opt/app/bin/app 777 0:0",
    ] {
        assert!(list.iter().any(|l| l == line), "missing `{line}` in {list:#?}");
    }
    assert_eq!(text_of(&mut tree, "etc/app.conf"), "mine");
    assert_eq!(text_of(&mut tree, "opt/app/bin/app"), "ELF");
}

#[test]
fn apk_configuration_files() {
    let mut installer = Installer::new(Arch::Aarch64);
    installer.set_world(["zlib", "busybox", "zlib", "ca-certificates-bundle"]);
    installer.set_repositories(["https://dl-cdn.alpinelinux.org/alpine/v3.17/main", "@local /repo"]);
    installer
        .add_key("alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub", "-----BEGIN PUBLIC KEY-----\n")
        .expect("key");
    assert_eq!(
        installer.add_key("../evil.pub", "x").expect_err("bad name").to_string(),
        "invalid key name `../evil.pub`: it must be a file name such as \
         `alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub`"
    );
    let (mut tree, summaries) = installer.finish().expect("finish");
    assert!(summaries.is_empty());
    assert_eq!(text_of(&mut tree, "etc/apk/world"), "busybox\nca-certificates-bundle\nzlib\n");
    assert_eq!(text_of(&mut tree, "etc/apk/arch"), "aarch64\n");
    assert_eq!(
        text_of(&mut tree, "etc/apk/repositories"),
        "https://dl-cdn.alpinelinux.org/alpine/v3.17/main\n@local /repo\n"
    );
    assert_eq!(
        text_of(&mut tree, "etc/apk/keys/alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub"),
        "-----BEGIN PUBLIC KEY-----\n"
    );
    assert_eq!(text_of(&mut tree, INSTALLED_DB), "");
}

/// A whole root: fixture packages, accounts, extra files and the apk files.
fn build_root() -> LayerTree {
    let mut installer = Installer::new(Arch::X86_64);
    for name in [
        "pretend-baselayout-1.0.0-r0",
        "replayout-1.0.0-r0",
        "custom-ca-certs-1-1.0.0-r0",
        "custom-ca-certs-2-1.0.0-r0",
    ] {
        install_fixture(&mut installer, &format!("{MELANGE}{name}.apk")).unwrap_or_else(|e| panic!("{e}"));
    }
    install_tar(&mut installer, simple("baselayout"), passwd_package()).expect("passwd");
    installer.add_group("nonroot", 65532, &[]).expect("group");
    installer.add_user("nonroot", 65532, 65532, "", "/home/nonroot", "/sbin/nologin").expect("user");
    installer.add_file("/etc/motd", Content::from_bytes("hi\n"), 0o644, 0, 0).expect("file");
    installer.set_world(["replayout", "custom-ca-certs-1", "custom-ca-certs-2", "baselayout"]);
    installer.set_repositories(["https://example.test/repo"]);
    installer.finish().expect("finish").0
}

#[test]
fn writing_the_root_twice_gives_the_same_bytes() {
    let write = |jobs| {
        let mut out = Vec::new();
        let options = LayerOptions { epoch: 1_700_000_000, jobs, ..LayerOptions::default() };
        let digests = LayerWriter::new(&mut out, options).expect("writer").write_tree(build_root()).expect("write");
        (out, digests)
    };
    let (first, first_digests) = write(1);
    let (second, second_digests) = write(2);
    assert_eq!(first_digests, second_digests);
    assert!(first == second, "layers differ");
}

#[test]
fn large_contents_are_spooled_and_read_back_unchanged() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let big: String = (0..40_000).map(|i| format!("{i}\n")).collect();
    assert!(big.len() as u64 > spool::IN_MEMORY_MAX);
    let package = || Tar::default().dir("usr").file("usr/big.txt", &big).file("usr/small.txt", "small\n");
    let mut installer = Installer::with_spool_dir(Arch::X86_64, scratch.path());
    // A failed install spools too, and leaves nothing of itself in the tree.
    let conflicting = Tar::default().dir("usr").file("usr/big.txt", &big).file("usr/big.txt", "other\n");
    install_tar(&mut installer, simple("broken"), conflicting).expect_err("duplicate path");
    install_tar(&mut installer, simple("big"), package()).expect("install");
    // Identical content from another package is no conflict: the sha1 was taken while spooling.
    install_tar(&mut installer, simple("again"), package()).expect("identical files");
    let (mut tree, _) = installer.finish().expect("finish");
    // The spool file was unlinked as soon as it was created.
    assert_eq!(std::fs::read_dir(scratch.path()).expect("list").count(), 0);
    assert_eq!(text_of(&mut tree, "usr/big.txt"), big);
    assert_eq!(text_of(&mut tree, "usr/small.txt"), "small\n");
}

/// The `P:`/`V:` pairs of every record of an installed database, in order.
fn db_packages(db: &str) -> Vec<(String, String)> {
    db.split("\n\n")
        .filter(|record| !record.trim().is_empty())
        .map(|record| {
            let field = |key: &str| {
                let found: Vec<&str> = record.lines().filter_map(|l| l.strip_prefix(key)).collect();
                assert_eq!(found.len(), 1, "record has {} `{key}` lines:\n{record}", found.len());
                found[0].to_owned()
            };
            (field("P:"), field("V:"))
        })
        .collect()
}

#[test]
fn a_path_with_a_line_break_cannot_forge_a_database_record() {
    let forged = "usr/share/x\n\nC:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nP:openssl\nV:3.9.9-r0";
    let mut installer = Installer::new(Arch::X86_64);
    let evil = Tar::default().dir("usr").dir("usr/share").file(forged, "x");
    let error = install_tar(&mut installer, simple("evil"), evil).expect_err("refused");
    assert_eq!(
        error.to_string(),
        "package `evil-1.0-r0`: refusing `usr/share/x\\n\\nC:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\\nP:openssl\\nV:3.9.9-r0`: \
         invalid layer path `usr/share/x\\n\\nC:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\\nP:openssl\\nV:3.9.9-r0`: \
         it contains a control character (a line break, a tab, an escape...)"
    );
    // Nothing of the refused package stays; the database lists exactly what was installed.
    install_tar(&mut installer, simple("good"), Tar::default().dir("usr").file("usr/good", "ok")).expect("good");
    let (mut tree, summaries) = installer.finish().expect("finish");
    let db = text_of(&mut tree, INSTALLED_DB);
    assert_eq!(db_packages(&db), [("good".to_owned(), "1.0-r0".to_owned())]);
    assert_eq!(summaries.len(), 1);
}

#[test]
fn the_database_writer_refuses_a_field_with_a_line_break() {
    // `.PKGINFO` is line-based, so its values cannot hold a `\n`; a `\r` can.
    let mut installer = Installer::new(Arch::X86_64);
    let meta = meta("pkgname = crlf\npkgver = 1.0-r0\narch = x86_64\npkgdesc = a\rP:openssl\n");
    install_tar(&mut installer, meta, Tar::default().dir("usr")).expect("installs");
    let error = installer.finish().expect_err("refused");
    assert_eq!(
        error.to_string(),
        "package `crlf-1.0-r0`: its `T:` field `a\\rP:openssl` contains a line break, which would forge records \
         in the apk database that scanners read; fix the package"
    );
}

#[test]
fn extra_files_and_accounts_with_control_characters_are_refused() {
    let mut installer = Installer::new(Arch::X86_64);
    let error =
        installer.add_file("/etc/x\nP:openssl", Content::from_bytes(b"x".to_vec()), 0o644, 0, 0).expect_err("refused");
    assert!(error.to_string().contains("control character"), "{error}");
    let error = installer.add_user("evil\nroot", 1, 1, "evil", "/home/evil", "/bin/sh").expect_err("refused");
    assert!(error.to_string().contains("evil\\nroot"), "{error}");
}
