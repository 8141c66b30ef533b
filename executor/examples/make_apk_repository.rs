//! Regenerates the in-tree APK repository from its sources. From the
//! repository root:
//!
//! ```sh
//! cargo run -p executor --example make_apk_repository -- \
//!     third_party/apk-sources third_party/apk-repository third_party/keys/executor-test-key.rsa
//! ```
//!
//! Arguments: the sources directory (holding `packages.toml`), the output
//! directory (cleared first; it must be empty or previously generated) and
//! the private signing key (named after its `.pub` file). The output is
//! deterministic and committed; the unit tests of `executor_testkit::apk`
//! regenerate it and fail when the committed bytes differ. See
//! `third_party/apk-sources/README.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use executor_testkit::apk::{make_repository, RepositoryFile, SigningKey};
use sha2::{Digest as _, Sha256};

const USAGE: &str = "usage: make_apk_repository <sources dir> <output dir> <private key (.rsa)>";

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [sources, out, key] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = SigningKey::read_file(key).and_then(|key| make_repository(sources, out, &key));
    let files = match result {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // One line per file; symlinks cost no content.
    let mut unique = std::collections::BTreeMap::new();
    for (path, file) in &files {
        match file {
            RepositoryFile::Bytes(bytes) => {
                let digest = hex::encode(Sha256::digest(bytes));
                println!("{:>8}  sha256:{digest}  {path}", bytes.len());
                unique.insert(digest, bytes.len());
            }
            RepositoryFile::Symlink(target) => println!("{:>8}  {:>71}  {path} -> {target}", "", "symlink"),
        }
    }
    println!(
        "wrote {} files to `{}`: {} bytes of unique content",
        files.len(),
        out.display(),
        unique.values().sum::<usize>()
    );
    ExitCode::SUCCESS
}
