//! Tests across the module: determinism, layouts on disk, building `FROM` a base layout.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::digest::Digest;
use crate::oci::{
    image_config, image_index, image_manifest, read_layout_image, write_image_layout, write_layout, BlobSource,
    ImageSettings, IndexEntry, JsonBlob, LayerInfo, OciError,
};
use crate::platform::Arch;

/// A fake layer: any bytes will do, the module never looks inside layers.
struct FakeLayer {
    bytes: Vec<u8>,
    info: LayerInfo,
}

fn fake_layer(text: &str) -> FakeLayer {
    let bytes = format!("layer {text}").into_bytes();
    let info = LayerInfo {
        diff_id: Digest::of(text.as_bytes()),
        digest: Digest::of(&bytes),
        size: bytes.len() as u64,
        created_by: format!("test {text}"),
        comment: None,
    };
    FakeLayer { bytes, info }
}

/// One platform's image: config and manifest over `layers`.
fn image(arch: Arch, layers: &[&FakeLayer], settings: &ImageSettings) -> (JsonBlob, JsonBlob) {
    let mut s = settings.clone();
    s.arch = arch;
    let infos: Vec<LayerInfo> = layers.iter().map(|l| l.info.clone()).collect();
    let config = image_config(None, &s, &infos).expect("config");
    let descriptors: Vec<_> = infos.iter().map(LayerInfo::descriptor).collect();
    let manifest = image_manifest(config.digest, config.size(), &descriptors, &s.annotations).expect("manifest");
    (config, manifest)
}

/// Builds a two-arch image (amd64, arm/v7) from `settings` and returns every blob and the
/// index.
fn two_arch(settings: &ImageSettings, layer: &FakeLayer) -> (JsonBlob, Vec<(Digest, Vec<u8>)>) {
    let mut blobs = vec![(layer.info.digest, layer.bytes.clone())];
    let mut entries = Vec::new();
    for arch in [Arch::Armv7, Arch::X86_64] {
        let (config, manifest) = image(arch, &[layer], settings);
        entries.push(IndexEntry { arch, digest: manifest.digest, size: manifest.size() });
        blobs.push((config.digest, config.bytes));
        blobs.push((manifest.digest, manifest.bytes));
    }
    let index = image_index(&entries, settings.created, &settings.annotations).expect("index");
    (index, blobs)
}

fn as_sources(blobs: &[(Digest, Vec<u8>)]) -> impl Iterator<Item = (Digest, BlobSource<'_>)> {
    blobs.iter().map(|(d, b)| (*d, BlobSource::Bytes(b)))
}

fn normalize(err: OciError, dir: &Path) -> String {
    err.to_string().replace(&dir.display().to_string(), "<dir>")
}

#[test]
fn same_inputs_same_bytes_whatever_the_insertion_order() {
    let keys: Vec<String> = (0..40).map(|i| format!("org.example.key{i:02}")).collect();
    let build = |order: &mut dyn Iterator<Item = &String>| {
        let mut s = ImageSettings::new(Arch::X86_64);
        s.created = 1_700_000_000;
        for k in order {
            s.labels.insert(k.clone(), format!("label {k}"));
            s.annotations.insert(k.clone(), format!("annotation {k}"));
            s.env.insert(k.replace('.', "_").to_uppercase(), k.clone());
        }
        two_arch(&s, &fake_layer("a"))
    };
    let (first, first_blobs) = build(&mut keys.iter());
    for _ in 0..5 {
        // Each build makes fresh `HashMap`s inside oci-spec, each with its own random order.
        let (again, again_blobs) = build(&mut keys.iter().rev());
        assert_eq!(again.text(), first.text());
        assert_eq!(again_blobs, first_blobs);
    }
}

#[test]
fn multi_arch_layout_has_every_blob_under_its_digest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("layout");
    let mut settings = ImageSettings::new(Arch::X86_64);
    settings.created = 0;
    let layer = fake_layer("a");
    let (index, blobs) = two_arch(&settings, &layer);
    // The layer comes from a file, everything else from memory; the layer is also given twice.
    let layer_file = tmp.path().join("layer.tar.gz");
    fs::write(&layer_file, &layer.bytes).expect("write layer");
    let sources = as_sources(&blobs[1..]).chain([
        (layer.info.digest, BlobSource::File(&layer_file)),
        (layer.info.digest, BlobSource::Bytes(&layer.bytes)),
    ]);
    write_layout(&dir, &index, sources, "latest").expect("writes");

    assert_eq!(fs::read_to_string(dir.join("oci-layout")).expect("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#);
    assert_eq!(
        fs::read_to_string(dir.join("index.json")).expect("index.json"),
        format!(
            concat!(
                r#"{{"manifests":[{{"annotations":{{"org.opencontainers.image.ref.name":"latest"}},"#,
                r#""digest":"{}","mediaType":"application/vnd.oci.image.index.v1+json","size":{}}}],"#,
                r#""mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}}"#
            ),
            index.digest,
            index.size()
        )
    );
    let mut expected: Vec<String> = blobs.iter().map(|(d, _)| d.hex()).chain([index.digest.hex()]).collect();
    expected.sort();
    let mut found = Vec::new();
    for entry in fs::read_dir(dir.join("blobs/sha256")).expect("blobs") {
        let entry = entry.expect("entry");
        let name = entry.file_name().into_string().expect("utf-8 name");
        let bytes = fs::read(entry.path()).expect("blob");
        assert_eq!(Digest::of(&bytes).hex(), name, "blob named by its digest");
        found.push(name);
    }
    found.sort();
    assert_eq!(found, expected, "exactly the blobs given, no temporary files");

    // Reading it back finds each platform's image.
    for arch in [Arch::X86_64, Arch::Armv7] {
        let image = read_layout_image(&dir, Some("latest"), arch).expect("reads");
        assert_eq!(image.config.architecture().to_string(), arch.oci_architecture());
        assert_eq!(image.layer_descriptors(), [layer.info.descriptor()]);
    }
    assert_eq!(
        normalize(read_layout_image(&dir, None, Arch::S390x).expect_err("no s390x"), &dir),
        format!(
            "image index `<dir>/blobs/sha256/{}` has no manifest for `linux/s390x` (it has: linux/amd64, linux/arm/v7)",
            index.digest.hex()
        )
    );
    assert_eq!(
        normalize(read_layout_image(&dir, Some("lates"), Arch::X86_64).expect_err("typo"), &dir),
        "layout `<dir>` has no image named `lates`, did you mean `latest`?"
    );
    assert_eq!(
        normalize(read_layout_image(&dir, Some("v2"), Arch::X86_64).expect_err("other"), &dir),
        "layout `<dir>` has no image named `v2` (it has: `latest`)"
    );
}

#[test]
fn blob_not_matching_its_digest_is_never_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("layout");
    let layer = fake_layer("a");
    let (index, blobs) = two_arch(&ImageSettings::new(Arch::X86_64), &layer);
    let wrong = tmp.path().join("wrong.tar.gz");
    fs::write(&wrong, b"not the layer").expect("write");
    let sources = as_sources(&blobs[1..]).chain([(layer.info.digest, BlobSource::File(&wrong))]);
    let err = write_layout(&dir, &index, sources, "latest").expect_err("mismatch");
    assert_eq!(
        normalize(err, tmp.path()),
        format!(
            "digest mismatch for `<dir>/wrong.tar.gz`: expected {}, got {}",
            layer.info.digest,
            Digest::of(b"not the layer")
        )
    );
    assert!(!dir.join("blobs/sha256").join(layer.info.digest.hex()).exists());
    assert!(!dir.join("index.json").exists());
    let leftovers: Vec<_> = fs::read_dir(dir.join("blobs/sha256"))
        .expect("blobs")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // Bytes in memory are checked too.
    let err =
        write_layout(&dir, &index, [(layer.info.digest, BlobSource::Bytes(b"nope"))], "latest").expect_err("mismatch");
    assert!(err.to_string().starts_with("digest mismatch for `"), "{err}");
}

#[test]
fn missing_blob_is_reported_before_index_json_is_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("layout");
    let layer = fake_layer("a");
    let (index, blobs) = two_arch(&ImageSettings::new(Arch::X86_64), &layer);
    // Leave the layer out.
    let err = write_layout(&dir, &index, as_sources(&blobs[1..]), "latest").expect_err("missing");
    let text = normalize(err, &dir);
    assert!(
        text.starts_with(&format!("blob {} referenced by image manifest sha256:", layer.info.digest))
            && text.ends_with(" is missing from layout `<dir>`"),
        "{text}"
    );
    assert!(!dir.join("index.json").exists());
}

#[test]
fn ref_names_are_validated() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (index, blobs) = two_arch(&ImageSettings::new(Arch::X86_64), &fake_layer("a"));
    for good in ["latest", "v1.2.3", "a--b", "registry.example.com:5000/team/app:v1", "x@y+z"] {
        write_layout(&tmp.path().join("ok"), &index, as_sources(&blobs), good).expect(good);
    }
    for bad in ["", "-x", "x-", "a//b", "a b", "a---b", "tag/", "ü"] {
        let err = write_layout(&tmp.path().join("bad"), &index, as_sources(&blobs), bad).expect_err(bad);
        assert_eq!(
            err.to_string(),
            format!(
                "invalid image ref name `{bad}`: use letters and digits separated by one of `-._:@+`, `--` or `/`, \
                 like `latest` or `v1.2`"
            )
        );
    }
}

#[test]
fn single_arch_layout_and_building_from_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let base_dir = tmp.path().join("base");
    let base_layer = fake_layer("base");
    let mut base_settings = ImageSettings::new(Arch::Aarch64);
    base_settings.entrypoint = vec!["/base".to_owned()];
    base_settings.env.insert("HOME".to_owned(), "/root".to_owned());
    let (config, manifest) = image(Arch::Aarch64, &[&base_layer], &base_settings);
    let blobs = [
        (config.digest, BlobSource::Bytes(&config.bytes)),
        (base_layer.info.digest, BlobSource::Bytes(&base_layer.bytes)),
    ];
    write_image_layout(&base_dir, &manifest, Arch::Aarch64, blobs, "base").expect("writes");
    assert_eq!(
        fs::read_to_string(base_dir.join("index.json")).expect("index.json"),
        format!(
            concat!(
                r#"{{"manifests":[{{"annotations":{{"org.opencontainers.image.ref.name":"base"}},"#,
                r#""digest":"{}","mediaType":"application/vnd.oci.image.manifest.v1+json","#,
                r#""platform":{{"architecture":"arm64","os":"linux"}},"size":{}}}],"#,
                r#""mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}}"#
            ),
            manifest.digest,
            manifest.size()
        )
    );

    // A single-manifest layout read for another arch names the config's platform.
    let err = read_layout_image(&base_dir, None, Arch::X86_64).expect_err("arm64 only");
    assert_eq!(
        normalize(err, &base_dir),
        format!("image config `<dir>/blobs/sha256/{}` is for `linux/arm64`, not `linux/amd64`", config.digest.hex())
    );

    // FROM base: base layers first, its env and entrypoint inherited.
    let base = read_layout_image(&base_dir, None, Arch::Aarch64).expect("reads");
    assert_eq!(base.manifest_digest, manifest.digest);
    let ours = fake_layer("ours");
    let mut s = ImageSettings::new(Arch::Aarch64);
    s.cmd = vec!["--flag".to_owned()];
    let config = image_config(Some(&base.config), &s, std::slice::from_ref(&ours.info)).expect("config");
    let mut layers = base.layer_descriptors();
    layers.push(ours.info.descriptor());
    let manifest = image_manifest(config.digest, config.size(), &layers, &BTreeMap::new()).expect("manifest");
    let index = image_index(
        &[IndexEntry { arch: Arch::Aarch64, digest: manifest.digest, size: manifest.size() }],
        0,
        &BTreeMap::new(),
    )
    .expect("index");
    let out = tmp.path().join("out");
    let blobs = base.layer_blobs().chain([
        (ours.info.digest, BlobSource::Bytes(&ours.bytes)),
        (config.digest, BlobSource::Bytes(&config.bytes)),
        (manifest.digest, BlobSource::Bytes(&manifest.bytes)),
    ]);
    write_layout(&out, &index, blobs, "app").expect("writes");

    let image = read_layout_image(&out, Some("app"), Arch::Aarch64).expect("reads");
    assert_eq!(image.layer_descriptors(), layers);
    assert_eq!(
        image.config.rootfs().diff_ids().clone(),
        [base_layer.info.diff_id.to_string(), ours.info.diff_id.to_string()]
    );
    let c = image.config.config().clone().expect("config");
    assert_eq!(c.entrypoint().clone().expect("entrypoint"), ["/base"]);
    assert_eq!(c.cmd().clone().expect("cmd"), ["--flag"]);
    assert!(c.env().clone().expect("env").contains(&"HOME=/root".to_owned()));
    assert_eq!(image.config.history().as_ref().map(Vec::len), Some(2));
}

#[test]
fn reading_rejects_tampered_blobs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("layout");
    let layer = fake_layer("a");
    let (index, blobs) = two_arch(&ImageSettings::new(Arch::X86_64), &layer);
    write_layout(&dir, &index, as_sources(&blobs), "latest").expect("writes");
    // Same length, different bytes.
    let path = dir.join("blobs/sha256").join(index.digest.hex());
    let mut bytes = fs::read(&path).expect("read");
    bytes[0] = b' ';
    fs::write(&path, &bytes).expect("write");
    assert_eq!(
        normalize(read_layout_image(&dir, None, Arch::X86_64).expect_err("tampered"), &dir),
        format!(
            "digest mismatch for `<dir>/blobs/sha256/{}`: expected {}, got {}",
            index.digest.hex(),
            index.digest,
            Digest::of(&bytes)
        )
    );
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"2.0.0"}"#).expect("write");
    assert_eq!(
        normalize(read_layout_image(&dir, None, Arch::X86_64).expect_err("version"), &dir),
        "unsupported image layout version `2.0.0` in `<dir>/oci-layout`: expected `1.0.0`"
    );
}
