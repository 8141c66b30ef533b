//! The image configuration: platform, `rootfs.diff_ids`, history and runtime defaults.

use std::collections::{BTreeMap, HashMap};

use oci_spec::image::{History, ImageConfiguration, Os, RootFs};

use crate::digest::Digest;
use crate::oci::error::OciError;
use crate::oci::index::oci_arch;
use crate::oci::json::JsonBlob;
use crate::oci::manifest::LayerDescriptor;
use crate::oci::time::rfc3339_utc;
use crate::platform::Arch;

/// `PATH` unless the user or the base image sets it (apko's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/sbin:/bin";
/// `SSL_CERT_FILE` unless the user or the base image sets it (apko's default).
pub const DEFAULT_SSL_CERT_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The environment every image gets, in this order, unless overridden.
const DEFAULT_ENV: [(&str, &str); 2] = [("PATH", DEFAULT_PATH), ("SSL_CERT_FILE", DEFAULT_SSL_CERT_FILE)];

/// What a user says about an image beyond its layers. An empty `Vec`/`String` means "not
/// set": the base image's value (if any) is kept and nothing is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSettings {
    /// The platform; the config's `architecture` and `variant` come from it.
    pub arch: Arch,
    /// `config.Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `config.Cmd`.
    pub cmd: Vec<String>,
    /// Environment variables, merged over the defaults and the base image's (see
    /// [`image_config`] for the order).
    pub env: BTreeMap<String, String>,
    /// `config.User`: `name`, `uid`, `uid:gid`, ...
    pub user: String,
    /// `config.WorkingDir`.
    pub workdir: String,
    /// `config.Labels`, merged over the base image's.
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations (not used by [`image_config`]; pass them to
    /// [`image_manifest`](crate::oci::image_manifest)).
    pub annotations: BTreeMap<String, String>,
    /// The build epoch, seconds since 1970 (`SOURCE_DATE_EPOCH`): the config's `created` and
    /// every history entry's.
    pub created: u64,
}

impl ImageSettings {
    /// Settings with nothing set, for `arch`, at epoch 0.
    pub fn new(arch: Arch) -> Self {
        ImageSettings {
            arch,
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            env: BTreeMap::new(),
            user: String::new(),
            workdir: String::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            created: 0,
        }
    }
}

/// One layer this build adds, as the config and the manifest need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// sha256 of the uncompressed tar: goes into `rootfs.diff_ids`.
    pub diff_id: Digest,
    /// sha256 of the compressed blob: goes into the manifest.
    pub digest: Digest,
    /// The compressed blob's length.
    pub size: u64,
    /// The history entry's `created_by` (omitted when empty), e.g. `executor apk: 12 packages`.
    pub created_by: String,
    /// The history entry's `comment`.
    pub comment: Option<String>,
}

impl LayerInfo {
    /// The manifest's descriptor of this (gzip) layer.
    pub fn descriptor(&self) -> LayerDescriptor {
        LayerDescriptor::gzip(self.digest, self.size)
    }
}

/// Builds the image config for `settings.arch` with `layers` on top of `base` (if any).
///
/// - `created`, and each new history entry's `created`, is the build epoch (RFC 3339).
/// - `os` is `linux`; `architecture`/`variant` come from [`Arch`]. A base config must be
///   for the same platform. Its `author` is dropped (this is a new image); everything else
///   it has (`os.version`, `ExposedPorts`, `Volumes`, `StopSignal`, ...) is kept.
/// - `rootfs.diff_ids` and `history`: the base image's, then one per entry of `layers`.
/// - `Env`, as `KEY=value`, in this order: the base image's entries in their order, then
///   the defaults ([`DEFAULT_PATH`], [`DEFAULT_SSL_CERT_FILE`]) it lacks, then the user's
///   keys that are new, sorted. A user key that already exists is replaced in place.
/// - `Entrypoint`, `Cmd`, `User`, `WorkingDir` replace the base's when set. As in a
///   Dockerfile, setting `Entrypoint` without `Cmd` clears the base's `Cmd` (it held
///   arguments for the base's entrypoint).
/// - `Labels`: the base's, overridden and extended by the user's; omitted when empty.
pub fn image_config(
    base: Option<&ImageConfiguration>,
    settings: &ImageSettings,
    layers: &[LayerInfo],
) -> Result<JsonBlob, OciError> {
    let created = rfc3339_utc(settings.created)?;
    let arch = settings.arch;
    if let Some(base) = base {
        check_platform(base, arch, "base image config")?;
    }
    let mut image = base.cloned().unwrap_or_default();
    image.set_created(Some(created.clone()));
    image.set_author(None);
    image.set_os(Os::Linux);
    image.set_architecture(oci_arch(arch));
    image.set_variant(arch.oci_variant().map(str::to_owned));

    let mut config = image.config().clone().unwrap_or_default();
    config.set_env(Some(merge_env(config.env().as_deref().unwrap_or_default(), &settings.env)?));
    if !settings.entrypoint.is_empty() {
        config.set_entrypoint(Some(settings.entrypoint.clone()));
        if settings.cmd.is_empty() {
            config.set_cmd(None);
        }
    }
    if !settings.cmd.is_empty() {
        config.set_cmd(Some(settings.cmd.clone()));
    }
    if !settings.user.is_empty() {
        config.set_user(Some(settings.user.clone()));
    }
    if !settings.workdir.is_empty() {
        config.set_working_dir(Some(settings.workdir.clone()));
    }
    let mut labels: HashMap<String, String> = config.labels().clone().unwrap_or_default();
    labels.extend(settings.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    config.set_labels(if labels.is_empty() { None } else { Some(labels) });
    image.set_config(Some(config));

    let mut diff_ids: Vec<String> = base.map(|b| b.rootfs().diff_ids().clone()).unwrap_or_default();
    diff_ids.extend(layers.iter().map(|l| l.diff_id.to_string()));
    let mut rootfs = RootFs::default();
    rootfs.set_typ("layers".to_owned());
    rootfs.set_diff_ids(diff_ids);
    image.set_rootfs(rootfs);

    let mut history: Vec<History> = base.and_then(|b| b.history().clone()).unwrap_or_default();
    for l in layers {
        let mut h = History::default();
        h.set_created(Some(created.clone()));
        h.set_created_by(if l.created_by.is_empty() { None } else { Some(l.created_by.clone()) });
        h.set_comment(l.comment.clone());
        history.push(h);
    }
    image.set_history(if history.is_empty() { None } else { Some(history) });

    JsonBlob::of(&image).map_err(OciError::serialize("image config"))
}

/// Fails unless `image` is `linux` on `arch` (for arm64, a `v8` variant or none).
pub fn check_platform(image: &ImageConfiguration, arch: Arch, what: &str) -> Result<(), OciError> {
    let variant = image.variant().as_deref();
    let variant_ok = variant == arch.oci_variant() || (arch == Arch::Aarch64 && variant == Some("v8"));
    if *image.os() == Os::Linux && image.architecture().to_string() == arch.oci_architecture() && variant_ok {
        return Ok(());
    }
    let mut found = format!("{}/{}", image.os(), image.architecture());
    if let Some(v) = variant {
        found = format!("{found}/{v}");
    }
    Err(OciError::WrongPlatform { what: what.to_owned(), expected: arch.oci_platform(), found })
}

/// `base` (`KEY=value` entries), then missing defaults, then new user keys sorted; user
/// values replace existing ones in place.
fn merge_env(base: &[String], user: &BTreeMap<String, String>) -> Result<Vec<String>, OciError> {
    for key in user.keys() {
        let reason = if key.is_empty() {
            Some("it is empty")
        } else if key.contains('=') {
            Some("it contains `=`")
        } else if key.contains('\0') {
            Some("it contains a NUL byte")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(OciError::InvalidEnv { key: key.clone(), reason });
        }
    }
    let key_of = |entry: &str| entry.split_once('=').map_or(entry, |(k, _)| k).to_owned();
    let mut entries: Vec<(String, String)> = base.iter().map(|e| (key_of(e), e.clone())).collect();
    for (key, value) in DEFAULT_ENV {
        if !entries.iter().any(|(k, _)| k == key) {
            entries.push((key.to_owned(), format!("{key}={value}")));
        }
    }
    for (key, value) in user {
        let entry = format!("{key}={value}");
        match entries.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = entry,
            None => entries.push((key.clone(), entry)),
        }
    }
    Ok(entries.into_iter().map(|(_, e)| e).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(n: u8) -> LayerInfo {
        LayerInfo {
            diff_id: Digest::from_bytes([n; 32]),
            digest: Digest::from_bytes([n + 1; 32]),
            size: 100,
            created_by: format!("layer {n}"),
            comment: None,
        }
    }

    fn parse(blob: &JsonBlob) -> ImageConfiguration {
        serde_json::from_slice(&blob.bytes).expect("parses")
    }

    #[test]
    fn config_golden() {
        let mut s = ImageSettings::new(Arch::Armv7);
        s.entrypoint = vec!["/usr/bin/app".to_owned()];
        s.cmd = vec!["--serve".to_owned()];
        s.env.insert("ZED".to_owned(), "1".to_owned());
        s.env.insert("APP_MODE".to_owned(), "prod".to_owned());
        s.user = "65532:65532".to_owned();
        s.workdir = "/home/nonroot".to_owned();
        s.labels.insert("org.opencontainers.image.title".to_owned(), "app".to_owned());
        s.labels.insert("a".to_owned(), "b".to_owned());
        s.created = 0;
        let mut l = layer(0x11);
        l.comment = Some("3 packages".to_owned());
        let blob = image_config(None, &s, &[l]).expect("builds");
        let diff = "11".repeat(32);
        assert_eq!(
            blob.text(),
            format!(
                concat!(
                    r#"{{"architecture":"arm","config":{{"Cmd":["--serve"],"Entrypoint":["/usr/bin/app"],"#,
                    r#""Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/sbin:/bin","#,
                    r#""SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt","APP_MODE=prod","ZED=1"],"#,
                    r#""Labels":{{"a":"b","org.opencontainers.image.title":"app"}},"User":"65532:65532","#,
                    r#""WorkingDir":"/home/nonroot"}},"created":"1970-01-01T00:00:00Z","#,
                    r#""history":[{{"comment":"3 packages","created":"1970-01-01T00:00:00Z","created_by":"layer 17"}}],"#,
                    r#""os":"linux","rootfs":{{"diff_ids":["sha256:{diff}"],"type":"layers"}},"variant":"v7"}}"#
                ),
                diff = diff
            )
        );
    }

    #[test]
    fn minimal_config_omits_unset_fields() {
        let blob = image_config(None, &ImageSettings::new(Arch::X86_64), &[]).expect("builds");
        assert_eq!(
            blob.text(),
            concat!(
                r#"{"architecture":"amd64","config":{"Env":["#,
                r#""PATH=/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/sbin:/bin","#,
                r#""SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"]},"#,
                r#""created":"1970-01-01T00:00:00Z","os":"linux","rootfs":{"diff_ids":[],"type":"layers"}}"#
            )
        );
    }

    #[test]
    fn platform_for_all_archs() {
        for arch in Arch::ALL {
            let config = parse(&image_config(None, &ImageSettings::new(arch), &[]).expect("builds"));
            assert_eq!(*config.os(), Os::Linux);
            assert_eq!(config.architecture().to_string(), arch.oci_architecture(), "{arch}");
            assert_eq!(config.variant().as_deref(), arch.oci_variant(), "{arch}");
            check_platform(&config, arch, "config").expect("same platform");
        }
    }

    #[test]
    fn user_env_overrides_defaults_in_place() {
        let mut s = ImageSettings::new(Arch::X86_64);
        s.env.insert("PATH".to_owned(), "/bin".to_owned());
        s.env.insert("A".to_owned(), "x=y".to_owned());
        let config = parse(&image_config(None, &s, &[]).expect("builds"));
        let env = config.config().as_ref().and_then(|c| c.env().clone()).expect("env");
        assert_eq!(env, ["PATH=/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "A=x=y"]);
    }

    #[test]
    fn invalid_env_keys_are_rejected() {
        for (key, text) in [
            ("", "invalid environment variable name ``: it is empty"),
            ("A=B", "invalid environment variable name `A=B`: it contains `=`"),
        ] {
            let mut s = ImageSettings::new(Arch::X86_64);
            s.env.insert(key.to_owned(), "v".to_owned());
            assert_eq!(image_config(None, &s, &[]).expect_err(key).to_string(), text);
        }
    }

    fn base_config() -> ImageConfiguration {
        let json = r#"{
            "created": "2020-01-01T00:00:00Z", "author": "someone", "architecture": "arm64", "variant": "v8",
            "os": "linux",
            "config": {"Env": ["HOME=/root", "PATH=/opt/bin:/bin"], "Entrypoint": ["/base"], "Cmd": ["--base"],
                       "User": "root", "WorkingDir": "/srv", "Labels": {"base": "1", "shared": "base"},
                       "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGTERM"},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:0000000000000000000000000000000000000000000000000000000000000000"]},
            "history": [{"created": "2020-01-01T00:00:00Z", "created_by": "base"}]
        }"#;
        serde_json::from_str(json).expect("valid base")
    }

    #[test]
    fn base_image_inheritance() {
        let base = base_config();
        let mut s = ImageSettings::new(Arch::Aarch64);
        s.env.insert("PATH".to_owned(), "/usr/bin".to_owned());
        s.env.insert("LANG".to_owned(), "C.UTF-8".to_owned());
        s.labels.insert("shared".to_owned(), "ours".to_owned());
        s.created = 1_700_000_000;

        // Nothing else set: the base's entrypoint, cmd, user, workdir stay.
        let config = parse(&image_config(Some(&base), &s, &[layer(1)]).expect("builds"));
        let c = config.config().clone().expect("config");
        assert_eq!(
            c.env().clone().expect("env"),
            ["HOME=/root", "PATH=/usr/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "LANG=C.UTF-8"]
        );
        assert_eq!(c.entrypoint().clone().expect("entrypoint"), ["/base"]);
        assert_eq!(c.cmd().clone().expect("cmd"), ["--base"]);
        assert_eq!(c.user().as_deref(), Some("root"));
        assert_eq!(c.working_dir().as_deref(), Some("/srv"));
        assert_eq!(c.exposed_ports().clone().expect("ports"), ["80/tcp"]);
        assert_eq!(c.stop_signal().as_deref(), Some("SIGTERM"));
        let labels: BTreeMap<_, _> = c.labels().clone().expect("labels").into_iter().collect();
        assert_eq!(format!("{labels:?}"), r#"{"base": "1", "shared": "ours"}"#);
        assert_eq!(config.created().as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(config.author(), &None);
        assert_eq!(config.variant(), &None, "arm64 is written without a variant");
        assert_eq!(
            config.rootfs().diff_ids().clone(),
            [format!("sha256:{}", "00".repeat(32)), format!("sha256:{}", "01".repeat(32))]
        );
        let history = config.history().clone().expect("history");
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].created_by().as_deref(), Some("base"));
        assert_eq!(history[1].created_by().as_deref(), Some("layer 1"));
        assert_eq!(history[1].created().as_deref(), Some("2023-11-14T22:13:20Z"));

        // Entrypoint set without cmd: the base's cmd goes; user and workdir replaced.
        s.entrypoint = vec!["/app".to_owned()];
        s.user = "65532".to_owned();
        s.workdir = "/".to_owned();
        let c = parse(&image_config(Some(&base), &s, &[]).expect("builds")).config().clone().expect("config");
        assert_eq!(c.entrypoint().clone().expect("entrypoint"), ["/app"]);
        assert_eq!(c.cmd(), &None);
        assert_eq!(c.user().as_deref(), Some("65532"));
        assert_eq!(c.working_dir().as_deref(), Some("/"));

        // Cmd alone replaces the cmd and keeps the entrypoint.
        s.entrypoint.clear();
        s.cmd = vec!["--other".to_owned()];
        let c = parse(&image_config(Some(&base), &s, &[]).expect("builds")).config().clone().expect("config");
        assert_eq!(c.entrypoint().clone().expect("entrypoint"), ["/base"]);
        assert_eq!(c.cmd().clone().expect("cmd"), ["--other"]);
    }

    #[test]
    fn base_for_another_platform_is_rejected() {
        let base = base_config();
        assert_eq!(
            image_config(Some(&base), &ImageSettings::new(Arch::X86_64), &[]).expect_err("arm64 base").to_string(),
            "base image config is for `linux/arm64/v8`, not `linux/amd64`"
        );
    }
}
