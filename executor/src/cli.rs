//! Command-line definitions (clap) and the dispatch to [`crate::commands`].

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::Error;
use crate::load::Limits;

/// A hermetic, Bazel-like build tool for reproducible distroless container images.
#[derive(Debug, Parser)]
#[command(name = "executor", version)]
pub struct Cli {
    /// The workspace root (default: the nearest ancestor directory with a `WORKSPACE` file).
    #[arg(long, global = true, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// The content store and action cache (default: `$EXECUTOR_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/executor`, else `~/.cache/executor`).
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Seconds without progress before a download or a registry request fails (per attempt).
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 30)]
    pub fetch_timeout: u64,
    /// Further attempts after a download or a registry request fails with a 5xx, a 429, a
    /// timeout or a broken connection.
    #[arg(long, global = true, value_name = "N", default_value_t = 3)]
    pub fetch_retries: u32,
    /// Seconds one download attempt may take in all, however steadily bytes arrive.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 600)]
    pub fetch_deadline: u64,
    /// A Bazel-protocol HTTP remote cache (`http://HOST[:PORT][/PREFIX]`): `build` looks up
    /// actions there after a local cache miss and uploads the results of actions it runs.
    /// A server that is down or slow is ignored, with one warning.
    #[arg(long, global = true, value_name = "URL")]
    pub remote_cache: Option<String>,
    /// Use the remote cache's action results signed by this Ed25519 public key (PEM);
    /// repeatable. Without a key or `--remote-cache-trust`, only blobs named by a digest the
    /// build knows (lockfile pins) are taken from the remote cache.
    #[arg(long, global = true, value_name = "PUB")]
    pub remote_cache_key: Vec<PathBuf>,
    /// Sign the action results uploaded to the remote cache with this Ed25519 private key
    /// (PEM, PKCS#8: `openssl genpkey -algorithm ed25519`).
    #[arg(long, global = true, value_name = "KEY")]
    pub remote_cache_signing_key: Option<PathBuf>,
    /// Use any action result the remote cache serves, signed or not: whoever can write to
    /// the server can then choose the bytes of outputs.
    #[arg(long, global = true)]
    pub remote_cache_trust: bool,
    /// Steps (loop iterations and function calls) evaluating one Starlark file may take.
    #[arg(long, global = true, value_name = "N", default_value_t = Limits::DEFAULT.max_steps)]
    pub starlark_max_steps: u64,
    /// Memory in MiB evaluating one Starlark file may use.
    #[arg(long, global = true, value_name = "MIB", default_value_t = Limits::DEFAULT.max_memory >> 20)]
    pub starlark_max_memory: u64,
    /// Seconds evaluating one Starlark file may take.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = Limits::DEFAULT.timeout.as_secs())]
    pub starlark_timeout: u64,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
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
        /// Use plain HTTP for a registry that is not on loopback (loopback always is).
        #[arg(long)]
        insecure: bool,
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
    },
    /// List targets: `PATTERN`, or `deps(PATTERN)` for their transitive dependencies.
    Query {
        /// A target pattern or `deps(PATTERN)`.
        #[arg(value_name = "EXPRESSION")]
        expression: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = QueryOutput::LabelKind)]
        output: QueryOutput,
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
    },
    /// Print the version.
    Version,
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

impl Cli {
    /// The `--starlark-*` limits, each at least 1.
    pub fn starlark_limits(&self) -> Result<Limits, Error> {
        for (flag, value) in [
            ("--starlark-max-steps", self.starlark_max_steps),
            ("--starlark-max-memory", self.starlark_max_memory),
            ("--starlark-timeout", self.starlark_timeout),
        ] {
            if value == 0 {
                return Err(Error::Usage(format!("`{flag}` must be at least 1")));
            }
        }
        Ok(Limits {
            max_steps: self.starlark_max_steps,
            max_memory: self.starlark_max_memory.saturating_mul(1 << 20),
            timeout: std::time::Duration::from_secs(self.starlark_timeout),
        })
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), Error> {
    crate::commands::run(cli)
}
