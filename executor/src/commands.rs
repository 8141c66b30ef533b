//! The commands: glue between the command line, the engine and the image rule set. `build`
//! and `query` have their own modules; `lock`, `push` and `verify` call the rule set's
//! (`executor_rules::lock`, `executor_rules::release`).

mod build;
mod query;
mod sign;

use build::{build, lock_workspace, BuildArgs};
use query::query;

use std::fs;
use std::path::{Path, PathBuf};

use crate::builder::{stderr_is_terminal, BuildOptions};
use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::fetch::{FetchOptions, UrlFetcher};
use crate::label::{Label, TargetPattern};
use crate::load::{Limits, Loader};
use crate::remote_cache::RemoteCacheConfig;
use crate::store::{Store, StoreError};
use crate::workspace::{find_root, OUT_DIR};
use executor_rules::release;

/// The rule sets this binary builds with: the engine's built-ins and the image rules.
pub fn registry() -> crate::rules::Registry {
    crate::rules::Registry::new(&[&executor_rules::IMAGE_RULES])
}

/// Runs one command.
pub fn run(cli: Cli) -> Result<(), Error> {
    let settings = cli.settings();
    let cwd = std::env::current_dir().map_err(|e| Error::Usage(format!("cannot read the current directory: {e}")))?;
    let fetch_options = FetchOptions {
        read_timeout: std::time::Duration::from_secs(settings.fetch_timeout.max(1)),
        connect_timeout: std::time::Duration::from_secs(settings.fetch_timeout.clamp(1, 10)),
        retries: settings.fetch_retries,
        deadline: std::time::Duration::from_secs(settings.fetch_deadline.max(1)),
        ..FetchOptions::default()
    };
    let remote = &settings.remote;
    let remote_config = match &remote.remote_cache {
        Some(url) => Some(RemoteCacheConfig {
            url: url.clone(),
            keys: remote.remote_cache_key.clone(),
            signing_key: remote.remote_cache_signing_key.clone(),
            trust_server: remote.remote_cache_trust,
        }),
        None if !remote.remote_cache_key.is_empty() || remote.remote_cache_signing_key.is_some() || remote.remote_cache_trust => {
            return Err(Error::Usage(
                "`--remote-cache-key`, `--remote-cache-signing-key` and `--remote-cache-trust` need `--remote-cache URL`"
                    .into(),
            ))
        }
        None => None,
    };
    let limits = settings.starlark_limits()?;
    match cli.command {
        Command::Docs => {
            print!("{}", registry().markdown());
            Ok(())
        }
        Command::Version => {
            println!("executor {}", crate::action::EXECUTOR_VERSION);
            Ok(())
        }
        Command::Keygen { output_prefix } => sign::keygen(&output_prefix),
        Command::Clean { verify: true, .. } => {
            let dir = cache_dir(settings.cache_dir.as_deref(), &cwd)?;
            let report = Store::verify_all(&dir)?;
            eprintln!(
                "checked {} blobs and {} action results in {}: removed {} corrupt blobs and {} action results",
                report.blobs,
                report.entries,
                dir.display(),
                report.blobs_removed,
                report.entries_removed
            );
            Ok(())
        }
        Command::Clean { cache, .. } => {
            let (root, _) = find_root(&cwd, settings.workspace.as_deref())?;
            let out = root.join(OUT_DIR);
            if out.exists() {
                let _lock = lock_workspace(&out)?;
                remove_dir(&out)?;
            }
            eprintln!("removed {OUT_DIR}/");
            if cache {
                let dir = cache_dir(settings.cache_dir.as_deref(), &cwd)?;
                Store::wipe(&dir)?;
                eprintln!("emptied the cache at {}", dir.display());
            }
            Ok(())
        }
        Command::Query { expression, output, .. } => {
            let loader = load(&cwd, settings.workspace.as_deref(), limits)?;
            query(&loader, &cwd, &expression, output)
        }
        Command::Lock { dry_run: true, output, .. } => {
            let loader = load(&cwd, settings.workspace.as_deref(), limits)?;
            let store = Store::open(&cache_dir(settings.cache_dir.as_deref(), &cwd)?)?;
            let fetcher = UrlFetcher::new(loader.workspace.root.clone(), fetch_options);
            let resolutions = executor_rules::lock::dry_run(&loader, &fetcher, &store)?;
            print_resolutions(&resolutions, output);
            eprintln!(
                "resolved {} target{}; nothing fetched, {} not written (dry run)",
                resolutions.len(),
                if resolutions.len() == 1 { "" } else { "s" },
                executor_rules::lockfile::LOCKFILE
            );
            Ok(())
        }
        Command::Lock { check, import_apko, target, .. } => {
            let loader = load(&cwd, settings.workspace.as_deref(), limits)?;
            if check {
                executor_rules::lock::check(&loader)?;
            }
            let store = Store::open(&cache_dir(settings.cache_dir.as_deref(), &cwd)?)?;
            let fetcher = UrlFetcher::new(loader.workspace.root.clone(), fetch_options);
            if check {
                // Every pin against its package's bytes (from the cache, else fetched).
                executor_rules::lock::check_pins(&loader, &fetcher, &store)?;
                eprintln!("{} is up to date", executor_rules::lockfile::LOCKFILE);
                return Ok(());
            }
            let report = match (import_apko, target) {
                (Some(file), Some(target)) => {
                    let label = parse_label(&loader, &cwd, &target)?;
                    executor_rules::apko::import(&loader, &fetcher, &store, &cwd.join(file), &label)?
                }
                _ => executor_rules::lock::lock(&loader, &fetcher, &store)?,
            };
            let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
            eprintln!(
                "locked {} for {} ({} fetched); {} {}",
                plural(report.packages, "package"),
                plural(report.targets, "target"),
                report.fetched,
                executor_rules::lockfile::LOCKFILE,
                if report.changed { "written" } else { "unchanged" }
            );
            Ok(())
        }
        Command::Push {
            target,
            repository,
            tags,
            insecure,
            locked,
            mount_from,
            chunk_size,
            sign,
            platforms,
            stamp,
            ..
        } => {
            let stamp = build::stamp_annotations(&stamp, &cwd, settings.workspace.as_deref())?;
            let platforms = parse_platforms(&platforms)?;
            // Everything about the destination, and the key, is checked before anything is
            // built.
            let (reference, creds) = release::push_destination(&repository, tags)?;
            let signer = sign.as_deref().map(sign::load_key).transpose()?;
            let mut push_options = release::push_options(&fetch_options, insecure);
            if let Some(from) = mount_from {
                let from = from.strip_prefix(&format!("{}/", reference.host)).unwrap_or(&from).to_owned();
                crate::registry::reference::check_repository(&from)
                    .map_err(|reason| Error::Usage(format!("--mount-from `{from}`: {reason}")))?;
                push_options.mount_from = Some(from);
            }
            if let Some(size) = chunk_size {
                if size == 0 {
                    return Err(Error::Usage("`--chunk-size` must be at least 1 byte".into()));
                }
                push_options.chunk_threshold = size;
                push_options.chunk_size = size;
            }
            let options = BuildOptions {
                jobs: default_jobs(),
                keep_going: false,
                progress_bar: stderr_is_terminal(),
                remote_cache: remote_config.clone(),
            };
            // stdout carries the pushed reference only, so `D=$(executor push …)` gets it.
            let args = BuildArgs {
                list_outputs: false,
                platforms,
                stamp,
                ..BuildArgs::new(&cwd, settings.workspace.as_deref(), settings.cache_dir.as_deref(), locked, limits)
            };
            let built = build(args, &[target], options, fetch_options)?;
            let image = release::built_image(&built.requested, &built.provided, &built.out_root, "push", "pushed")?;
            release::push(
                &image,
                &reference,
                creds,
                push_options,
                signer.as_ref().map(|k| k as &dyn executor_image::sign::Signer),
                &built.root,
            )
        }
        Command::Build { patterns, jobs, keep_going, locked, platforms, stamp, .. } => {
            let stamp = build::stamp_annotations(&stamp, &cwd, settings.workspace.as_deref())?;
            let platforms = parse_platforms(&platforms)?;
            let jobs = match jobs {
                Some(0) => return Err(Error::Usage("`--jobs` must be at least 1".into())),
                Some(j) => j,
                None => default_jobs(),
            };
            let options =
                BuildOptions { jobs, keep_going, progress_bar: stderr_is_terminal(), remote_cache: remote_config };
            let args = BuildArgs {
                platforms,
                stamp,
                ..BuildArgs::new(&cwd, settings.workspace.as_deref(), settings.cache_dir.as_deref(), locked, limits)
            };
            build(args, &patterns, options, fetch_options).map(|_| ())
        }
        Command::Verify { target, expected, insecure, key, .. } => verify(
            &cwd,
            settings.workspace.as_deref(),
            remote.remote_cache.is_some(),
            &target,
            &expected,
            key.as_deref(),
            insecure,
            fetch_options,
            limits,
        ),
    }
}

/// `executor verify`: rebuilds `target` with `--locked` in a fresh cache and output
/// directory (removed afterwards), without any remote cache, and compares its digest with
/// `expected`.
#[allow(clippy::too_many_arguments)]
fn verify(
    cwd: &Path,
    workspace: Option<&Path>,
    remote_given: bool,
    target: &str,
    expected: &str,
    key: Option<&Path>,
    insecure: bool,
    fetch_options: FetchOptions,
    limits: Limits,
) -> Result<(), Error> {
    // The key and where the signatures are, checked before anything is built.
    let signatures = key.map(|key| release::signature_check(key, expected)).transpose()?;
    let expected_digest = release::expected_digest(expected, insecure, &fetch_options)?;
    if remote_given {
        eprintln!("note: `verify` ignores --remote-cache: a release check rebuilds everything itself");
    }
    let scratch = Scratch::new()?;
    let options = BuildOptions {
        jobs: default_jobs(),
        keep_going: false,
        progress_bar: stderr_is_terminal(),
        remote_cache: None,
    };
    let (cache, out) = (scratch.0.join("cache"), scratch.0.join("out"));
    let args = BuildArgs {
        out_dir: Some(&out),
        list_outputs: false,
        ..BuildArgs::new(cwd, workspace, Some(&cache), true, limits)
    };
    let built = build(args, &[target.to_owned()], options, fetch_options.clone())?;
    let image = release::built_image(&built.requested, &built.provided, &built.out_root, "verify", "verified")?;
    release::check_rebuilt(&image, &expected_digest)?;
    match signatures {
        Some(check) => release::check_signatures(&image, &check, insecure, &fetch_options, &built.root),
        None => Ok(()),
    }
}

/// Prints `lock --dry-run`'s resolutions on stdout.
fn print_resolutions(resolutions: &[executor_rules::lock::Resolution], output: crate::cli::LockOutput) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match output {
        crate::cli::LockOutput::Json => {
            let text = serde_json::to_string_pretty(resolutions).unwrap_or_default();
            let _ = writeln!(out, "{text}");
        }
        crate::cli::LockOutput::Text => {
            for r in resolutions {
                let _ = writeln!(out, "{} (repository {}, {})", r.label, r.repository, r.url);
                for (arch, packages) in &r.archs {
                    let list: Vec<String> = packages.iter().map(|p| format!("{} {}", p.name, p.version)).collect();
                    let _ = writeln!(out, "  {arch}: {}", list.join(", "));
                }
            }
        }
    }
}

/// `--platforms`, as OCI platforms; `None` when not given.
fn parse_platforms(platforms: &[String]) -> Result<Option<Vec<String>>, Error> {
    if platforms.is_empty() {
        return Ok(None);
    }
    let mut oci = Vec::new();
    for p in platforms {
        let arch = crate::platform::Arch::parse(p.trim()).map_err(|e| Error::Usage(format!("--platforms: {e}")))?;
        oci.push(arch.oci_platform());
    }
    Ok(Some(oci))
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// A private directory under the system's temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, Error> {
        let base = std::env::temp_dir();
        for attempt in 0..100u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let dir = base.join(format!("executor-verify-{}-{nanos:x}-{attempt}", std::process::id()));
            match fs::create_dir(&dir) {
                Ok(()) => return Ok(Scratch(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(source) => {
                    return Err(Error::Store(StoreError::Io(executor_base::io::PathError::new(
                        "cannot create",
                        dir,
                        source,
                    ))))
                }
            }
        }
        Err(Error::Usage(format!("cannot create a fresh directory under {}", base.display())))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn load(cwd: &Path, workspace: Option<&Path>, limits: Limits) -> Result<Loader, Error> {
    let (root, file) = find_root(cwd, workspace)?;
    Ok(Loader::new(root, file, limits, registry())?)
}

/// Parses one label given on the command line (relative to the current package).
fn parse_label(loader: &Loader, cwd: &Path, text: &str) -> Result<Label, Error> {
    match parse_patterns(loader, cwd, &[text.to_owned()])?.pop() {
        Some(TargetPattern::Target(label)) => Ok(label),
        _ => Err(Error::Usage(format!("`{text}` must name one target, not a pattern"))),
    }
}

fn parse_patterns(loader: &Loader, cwd: &Path, texts: &[String]) -> Result<Vec<TargetPattern>, Error> {
    let cwd = std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_owned());
    let base = loader.workspace.package_of_dir(&cwd);
    texts.iter().map(|t| TargetPattern::parse(t, &base).map_err(Error::from)).collect()
}

/// The cache directory: the flag, `$EXECUTOR_CACHE_DIR`, `$XDG_CACHE_HOME/executor`, or
/// `~/.cache/executor`.
fn cache_dir(flag: Option<&Path>, cwd: &Path) -> Result<PathBuf, Error> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let dir = flag
        .map(Path::to_owned)
        .or_else(|| env("EXECUTOR_CACHE_DIR"))
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("executor")))
        .or_else(|| env("HOME").map(|d| d.join(".cache/executor")))
        .ok_or_else(|| Error::Usage("cannot choose a cache directory: set `HOME` or pass `--cache-dir DIR`".into()))?;
    Ok(cwd.join(dir))
}

fn remove_dir(dir: &Path) -> Result<(), Error> {
    fs::remove_dir_all(dir).map_err(|source| {
        Error::Store(StoreError::Io(executor_base::io::PathError::new("cannot remove", dir.to_owned(), source)))
    })
}
