//! Command-line definitions (clap) and the dispatch to [`crate::commands`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::Error;
use crate::load::Limits;

/// A hermetic, Bazel-like build tool for reproducible distroless container images.
///
/// Options go after the command they apply to (`executor build --cache-dir DIR //...`); given
/// before the command they apply to it too (`executor --cache-dir DIR build //...`).
#[derive(Debug, Parser)]
#[command(name = "executor", version)]
pub struct Cli {
    /// Options given before the command.
    #[command(flatten)]
    pub workspace: WorkspaceFlags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub cache: CacheFlags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub fetch: FetchFlags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub remote: RemoteFlags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub starlark: StarlarkFlags,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `--workspace`.
#[derive(Debug, Clone, Default, Args)]
pub struct WorkspaceFlags {
    /// The workspace root (default: the nearest ancestor directory with a `WORKSPACE` file).
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
}

/// `--cache-dir`.
#[derive(Debug, Clone, Default, Args)]
pub struct CacheFlags {
    /// The content store and action cache (default: `$EXECUTOR_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/executor`, else `~/.cache/executor`).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// How downloads and registry requests behave.
#[derive(Debug, Clone, Default, Args)]
pub struct FetchFlags {
    /// Seconds without progress before a download or a registry request fails, per attempt
    /// (default 30).
    #[arg(long, value_name = "SECONDS")]
    pub fetch_timeout: Option<u64>,
    /// Further attempts after a download or a registry request fails with a 5xx, a 429, a
    /// timeout or a broken connection (default 3).
    #[arg(long, value_name = "N")]
    pub fetch_retries: Option<u32>,
    /// Seconds one download attempt may take in all, however steadily bytes arrive (default
    /// 600).
    #[arg(long, value_name = "SECONDS")]
    pub fetch_deadline: Option<u64>,
}

/// The remote cache.
#[derive(Debug, Clone, Default, Args)]
pub struct RemoteFlags {
    /// A Bazel-protocol HTTP remote cache (`http://HOST[:PORT][/PREFIX]`): `build` looks up
    /// actions there after a local cache miss and uploads the results of actions it runs.
    /// A server that is down or slow is ignored, with one warning.
    #[arg(long, value_name = "URL")]
    pub remote_cache: Option<String>,
    /// Use the remote cache's action results signed by this Ed25519 public key (PEM);
    /// repeatable. Without a key or `--remote-cache-trust`, only blobs named by a digest the
    /// build knows (lockfile pins) are taken from the remote cache.
    #[arg(long, value_name = "PUB")]
    pub remote_cache_key: Vec<PathBuf>,
    /// Sign the action results uploaded to the remote cache with this Ed25519 private key
    /// (PEM, PKCS#8: `openssl genpkey -algorithm ed25519`).
    #[arg(long, value_name = "KEY")]
    pub remote_cache_signing_key: Option<PathBuf>,
    /// Use any action result the remote cache serves, signed or not: whoever can write to
    /// the server can then choose the bytes of outputs.
    #[arg(long)]
    pub remote_cache_trust: bool,
}

/// Limits of Starlark evaluation, per file.
#[derive(Debug, Clone, Default, Args)]
pub struct StarlarkFlags {
    /// Steps (loop iterations and function calls) evaluating one Starlark file may take
    /// (default 10000000).
    #[arg(long, value_name = "N")]
    pub starlark_max_steps: Option<u64>,
    /// Memory in MiB evaluating one Starlark file may use (default 512).
    #[arg(long, value_name = "MIB")]
    pub starlark_max_memory: Option<u64>,
    /// Seconds evaluating one Starlark file may take (default 60).
    #[arg(long, value_name = "SECONDS")]
    pub starlark_timeout: Option<u64>,
}

/// The options of a command, those given after it winning over those given before it.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `--workspace`.
    pub workspace: Option<PathBuf>,
    /// `--cache-dir`.
    pub cache_dir: Option<PathBuf>,
    /// `--fetch-timeout`.
    pub fetch_timeout: u64,
    /// `--fetch-retries`.
    pub fetch_retries: u32,
    /// `--fetch-deadline`.
    pub fetch_deadline: u64,
    /// `--remote-cache` and its trust flags.
    pub remote: RemoteFlags,
    /// `--starlark-*`.
    pub starlark: StarlarkFlags,
}

/// Stamping images with where and when they were built (opt-in: it makes outputs depend on
/// the checkout's state and the environment).
#[derive(Debug, Clone, Default, Args)]
pub struct StampFlags {
    /// Annotate images and indexes with `org.opencontainers.image.revision` and `.source`
    /// (from `--workspace-status-command`) and `.created` (from `SOURCE_DATE_EPOCH`);
    /// unstamped builds keep their cache.
    #[arg(long)]
    pub stamp: bool,
    /// A program run in the workspace root for `--stamp` that prints `KEY VALUE` lines, as
    /// Bazel's: `STABLE_GIT_COMMIT` (or `STABLE_GIT_SHA`, `BUILD_SCM_REVISION`) is the
    /// revision, `STABLE_SOURCE_URL` (or `BUILD_SCM_REMOTE`) the source.
    #[arg(long, value_name = "PROGRAM", requires = "stamp")]
    pub workspace_status_command: Option<PathBuf>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the reference of every rule and WORKSPACE function (Markdown, as docs/rules.md).
    Docs,
    /// Build targets and print each one's outputs and digests.
    Build {
        /// Targets: `//pkg:name`, `//pkg`, `:name`, `//pkg:all`, `//pkg/...`, `//...`.
        #[arg(required = true, value_name = "PATTERN")]
        patterns: Vec<String>,
        /// Actions to run at once (default: the number of cores).
        #[arg(short, long, value_name = "N")]
        jobs: Option<usize>,
        /// Keep building independent targets after a failure.
        #[arg(short, long)]
        keep_going: bool,
        /// Before building, check that the lockfile pins exactly what every `apk_fetch` target
        /// of the workspace asks for, as `lock --check` does (a build always refuses the targets
        /// it builds when their pins are stale; this also covers the others, for CI).
        #[arg(long)]
        locked: bool,
        /// Build only these platforms of multi-platform targets, comma-separated
        /// (`linux/amd64,linux/arm64`; APK names such as `x86_64` work too): an index holds
        /// only them, and nothing is fetched or built for the others.
        #[arg(long, value_name = "PLATFORMS", value_delimiter = ',')]
        platforms: Vec<String>,
        #[command(flatten)]
        stamp: StampFlags,
        #[command(flatten)]
        workspace: WorkspaceFlags,
        #[command(flatten)]
        cache: CacheFlags,
        #[command(flatten)]
        fetch: FetchFlags,
        #[command(flatten)]
        remote: RemoteFlags,
        #[command(flatten)]
        starlark: StarlarkFlags,
    },
    /// Build an image or index target and push it to an OCI registry; prints the pushed
    /// digest, which equals the local one.
    Push {
        /// The `oci_index` or `oci_image` target.
        #[arg(value_name = "TARGET")]
        target: String,
        /// Where to push: `HOST[:PORT]/REPOSITORY[:TAG]`.
        #[arg(long, value_name = "HOST/REPO")]
        repository: String,
        /// A tag to push (repeatable; default: the tag of the repository argument, else the
        /// layout's own tag).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Use plain HTTP for a registry that is not on loopback (loopback always is).
        #[arg(long)]
        insecure: bool,
        /// Before building, check the whole lockfile as `lock --check` does (see `build --locked`).
        #[arg(long)]
        locked: bool,
        /// A repository on the same registry that may hold the blobs already (an earlier push
        /// of this image or its base): the registry links them instead of receiving them again.
        #[arg(long, value_name = "REPO")]
        mount_from: Option<String>,
        /// Upload blobs larger than BYTES in chunks of BYTES (default: chunks of 8 MiB above
        /// 16 MiB), for registries or proxies that limit the size of a request.
        #[arg(long, value_name = "BYTES")]
        chunk_size: Option<u64>,
        /// Sign what is pushed with this private key (cosign's `cosign.key`, password from
        /// COSIGN_PASSWORD or the terminal; or a PKCS#8 P-256 PEM), as `cosign sign
        /// --recursive` does: the image and each platform manifest, in both formats `cosign
        /// verify` reads.
        #[arg(long, value_name = "KEY")]
        sign: Option<std::path::PathBuf>,
        /// Push only these platforms of a multi-platform target, comma-separated, as `build
        /// --platforms` builds them: the pushed index holds only them.
        #[arg(long, value_name = "PLATFORMS", value_delimiter = ',')]
        platforms: Vec<String>,
        #[command(flatten)]
        stamp: StampFlags,
        #[command(flatten)]
        workspace: WorkspaceFlags,
        #[command(flatten)]
        cache: CacheFlags,
        #[command(flatten)]
        fetch: FetchFlags,
        #[command(flatten)]
        remote: RemoteFlags,
        #[command(flatten)]
        starlark: StarlarkFlags,
    },
    /// Check a release: rebuild TARGET from the lockfile in a fresh, empty cache (never a
    /// remote one) and fail unless its digest is the expected one.
    Verify {
        /// The `oci_index` or `oci_image` target the release was built from.
        #[arg(value_name = "TARGET")]
        target: String,
        /// What the release should be: `sha256:<hex>`, `HOST/REPO@sha256:<hex>`, or
        /// `HOST/REPO:TAG` (the digest the registry serves for the tag now).
        #[arg(long = "digest", value_name = "DIGEST|REFERENCE")]
        expected: String,
        /// Also check the registry's cosign signatures of the release (the index and each
        /// platform manifest) against this public key (`cosign.pub`); needs `--digest` to name
        /// the registry (`HOST/REPO@sha256:<hex>` or `HOST/REPO:TAG`).
        #[arg(long, value_name = "PUB")]
        key: Option<PathBuf>,
        /// Use plain HTTP for a registry that is not on loopback (loopback always is).
        #[arg(long)]
        insecure: bool,
        #[command(flatten)]
        workspace: WorkspaceFlags,
        #[command(flatten)]
        fetch: FetchFlags,
        #[command(flatten)]
        starlark: StarlarkFlags,
    },
    /// Resolve every `apk_fetch` target against the repositories' indexes and write
    /// `executor.lock`, the only input `executor build` trusts for packages.
    Lock {
        /// Only check, without reading any index, that the lockfile is up to date.
        #[arg(long, conflicts_with = "import_apko")]
        check: bool,
        /// Import an apko lockfile (`apko.lock.json`, v1) as the pins of `--target`.
        #[arg(long, value_name = "FILE", requires = "target")]
        import_apko: Option<PathBuf>,
        /// The `apk_fetch` target that `--import-apko` pins.
        #[arg(long, value_name = "LABEL", requires = "import_apko")]
        target: Option<String>,
        /// Resolve every `apk_fetch` target against the verified indexes and print what each
        /// resolves to per arch, without fetching a package or writing `executor.lock`.
        #[arg(long, conflicts_with_all = ["check", "import_apko"])]
        dry_run: bool,
        /// How `--dry-run` prints the resolution.
        #[arg(long, value_enum, default_value_t = LockOutput::Text, requires = "dry_run")]
        output: LockOutput,
        #[command(flatten)]
        workspace: WorkspaceFlags,
        #[command(flatten)]
        cache: CacheFlags,
        #[command(flatten)]
        fetch: FetchFlags,
        #[command(flatten)]
        starlark: StarlarkFlags,
    },
    /// List targets: a pattern, or `deps(E)`, `rdeps(UNIVERSE, E)`, `kind(REGEX, E)`,
    /// `somepath(FROM, TO)`, `allpaths(FROM, TO)` as in Bazel's query, nested.
    Query {
        /// A target pattern or a query function of target patterns.
        #[arg(value_name = "EXPRESSION")]
        expression: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = QueryOutput::LabelKind)]
        output: QueryOutput,
        #[command(flatten)]
        workspace: WorkspaceFlags,
        #[command(flatten)]
        starlark: StarlarkFlags,
    },
    /// Remove `executor-out/`; with `--cache`, also empty the content store and action cache.
    Clean {
        /// Also empty the cache directory.
        #[arg(long)]
        cache: bool,
        /// Instead of removing anything good: re-hash every blob of the cache and drop the
        /// corrupt ones, with the action results that name them (`executor-out/` is kept).
        #[arg(long, conflicts_with = "cache")]
        verify: bool,
        #[command(flatten)]
        workspace: WorkspaceFlags,
        #[command(flatten)]
        cache_flags: CacheFlags,
    },
    /// Write a signing key pair cosign accepts: `<prefix>.key` (encrypted with
    /// COSIGN_PASSWORD, or a password asked twice on the terminal) and `<prefix>.pub`.
    Keygen {
        /// Where to write the pair.
        #[arg(long, value_name = "PREFIX", default_value = "cosign")]
        output_prefix: String,
    },
    /// Print the version.
    Version,
}

/// `executor lock --dry-run --output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LockOutput {
    /// A target per paragraph: `//label (repository NAME, URL)`, then `  ARCH: name version, ...`.
    Text,
    /// A JSON array of targets with `label`, `repository`, `url` and `archs` (arch to packages
    /// with `name` and `version`, in install order).
    Json,
}

/// `executor query --output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueryOutput {
    /// One label per line.
    Label,
    /// `<rule kind> rule <label>` (or `source file <label>`) per line. Bazel's spelling,
    /// `label_kind`, works too.
    #[value(alias = "label_kind")]
    LabelKind,
    /// A JSON array of targets with kind, location, attributes and direct deps.
    Json,
}

/// The option groups a command takes (`None`: it takes none of that group).
type FlagGroups<'a> = (
    Option<&'a WorkspaceFlags>,
    Option<&'a CacheFlags>,
    Option<&'a FetchFlags>,
    Option<&'a RemoteFlags>,
    Option<&'a StarlarkFlags>,
);

impl Cli {
    /// The options of the command: those given after it, else those given before it, else
    /// the defaults.
    pub fn settings(&self) -> Settings {
        let none = (None, None, None, None, None);
        let (workspace, cache, fetch, remote, starlark): FlagGroups<'_> = match &self.command {
            Command::Build { workspace, cache, fetch, remote, starlark, .. }
            | Command::Push { workspace, cache, fetch, remote, starlark, .. } => {
                (Some(workspace), Some(cache), Some(fetch), Some(remote), Some(starlark))
            }
            Command::Verify { workspace, fetch, starlark, .. } => {
                (Some(workspace), None, Some(fetch), None, Some(starlark))
            }
            Command::Lock { workspace, cache, fetch, starlark, .. } => {
                (Some(workspace), Some(cache), Some(fetch), None, Some(starlark))
            }
            Command::Query { workspace, starlark, .. } => (Some(workspace), None, None, None, Some(starlark)),
            Command::Clean { workspace, cache_flags, .. } => (Some(workspace), Some(cache_flags), None, None, None),
            Command::Docs | Command::Version | Command::Keygen { .. } => none,
        };
        let pick = |after: Option<u64>, before: Option<u64>| after.or(before);
        let remote = match remote {
            Some(r)
                if r.remote_cache.is_some()
                    || !r.remote_cache_key.is_empty()
                    || r.remote_cache_signing_key.is_some()
                    || r.remote_cache_trust =>
            {
                RemoteFlags {
                    remote_cache: r.remote_cache.clone().or_else(|| self.remote.remote_cache.clone()),
                    remote_cache_key: if r.remote_cache_key.is_empty() {
                        self.remote.remote_cache_key.clone()
                    } else {
                        r.remote_cache_key.clone()
                    },
                    remote_cache_signing_key: r
                        .remote_cache_signing_key
                        .clone()
                        .or_else(|| self.remote.remote_cache_signing_key.clone()),
                    remote_cache_trust: r.remote_cache_trust || self.remote.remote_cache_trust,
                }
            }
            _ => self.remote.clone(),
        };
        Settings {
            workspace: workspace.and_then(|w| w.workspace.clone()).or_else(|| self.workspace.workspace.clone()),
            cache_dir: cache.and_then(|c| c.cache_dir.clone()).or_else(|| self.cache.cache_dir.clone()),
            fetch_timeout: pick(fetch.and_then(|f| f.fetch_timeout), self.fetch.fetch_timeout).unwrap_or(30),
            fetch_retries: fetch.and_then(|f| f.fetch_retries).or(self.fetch.fetch_retries).unwrap_or(3),
            fetch_deadline: pick(fetch.and_then(|f| f.fetch_deadline), self.fetch.fetch_deadline).unwrap_or(600),
            remote,
            starlark: StarlarkFlags {
                starlark_max_steps: pick(starlark.and_then(|s| s.starlark_max_steps), self.starlark.starlark_max_steps),
                starlark_max_memory: pick(
                    starlark.and_then(|s| s.starlark_max_memory),
                    self.starlark.starlark_max_memory,
                ),
                starlark_timeout: pick(starlark.and_then(|s| s.starlark_timeout), self.starlark.starlark_timeout),
            },
        }
    }
}

impl Settings {
    /// The `--starlark-*` limits, each at least 1.
    pub fn starlark_limits(&self) -> Result<Limits, Error> {
        let d = Limits::DEFAULT;
        let steps = self.starlark.starlark_max_steps.unwrap_or(d.max_steps);
        let memory = self.starlark.starlark_max_memory.unwrap_or(d.max_memory >> 20);
        let timeout = self.starlark.starlark_timeout.unwrap_or(d.timeout.as_secs());
        for (flag, value) in
            [("--starlark-max-steps", steps), ("--starlark-max-memory", memory), ("--starlark-timeout", timeout)]
        {
            if value == 0 {
                return Err(Error::Usage(format!("`{flag}` must be at least 1")));
            }
        }
        Ok(Limits {
            max_steps: steps,
            max_memory: memory.saturating_mul(1 << 20),
            timeout: std::time::Duration::from_secs(timeout),
        })
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), Error> {
    crate::commands::run(cli)
}
