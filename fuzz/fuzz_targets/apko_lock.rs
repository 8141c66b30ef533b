//! An apko lockfile (`lock --import-apko`): `apko::import`, the only public entry point;
//! the JSON types and the segment checks behind it (`apko::ApkoLock`, `parse_range`,
//! `check_segment`) are private. The input is written to a file and imported for the
//! `apk_fetch` target `//:base` of a scratch workspace whose repository is the melange
//! fixture repository that `shared/fixtures/apk/apko-lock/apko.lock.json` was made from
//! (or the in-tree test repository when the fixtures are absent), fetched over `file://`
//! (no network). Packages the input names are fetched, verified and checked against its
//! ranges and checksums.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use executor::fetch::{FetchOptions, UrlFetcher};
use executor::label::Label;
use executor::load::Loader;
use executor::store::Store;
use libfuzzer_sys::fuzz_target;

struct Setup {
    root: PathBuf,
    loader: Loader,
    fetcher: UrlFetcher,
    store: Store,
    label: Label,
}

static SETUP: LazyLock<Setup> = LazyLock::new(|| {
    let root = executor_fuzz::scratch_dir("apko_lock");
    let fixtures = executor_fuzz::repo_root().join("../shared/fixtures/apk/melange-rsa256");
    let (repo, key) = if fixtures.join("melange.rsa.pub").is_file() {
        (fixtures.clone(), fixtures.join("melange.rsa.pub"))
    } else {
        let root = executor_fuzz::repo_root();
        (root.join("third_party/apk-repository"), root.join("third_party/keys/executor-test-key.rsa.pub"))
    };
    let repo = repo.canonicalize().expect("repository directory");
    let key_name = key.file_name().and_then(|n| n.to_str()).expect("key file name").to_owned();
    std::fs::create_dir_all(root.join("keys")).expect("mkdir keys");
    std::fs::copy(&key, root.join("keys").join(&key_name)).expect("copy key");
    std::fs::write(
        root.join("WORKSPACE"),
        format!(
            "apk_repository(\n    name = \"repo\",\n    url = \"file://{}\",\n    keys = [\"//keys:{key_name}\"],\n)\n",
            repo.display()
        ),
    )
    .expect("write WORKSPACE");
    std::fs::write(
        root.join("BUILD"),
        "apk_fetch(name = \"base\", repository = \"repo\", packages = [\"replayout\"], archs = [\"x86_64\", \"aarch64\"])\n",
    )
    .expect("write BUILD");
    let loader =
        Loader::new(root.clone(), "WORKSPACE", executor::load::Limits::DEFAULT, executor::commands::registry())
            .expect("scratch workspace loads");
    let fetcher = UrlFetcher::new(root.clone(), FetchOptions::default());
    let store = Store::open(&root.join("cache")).expect("open store");
    let label = Label::parse_absolute("//:base").expect("label");
    Setup { root, loader, fetcher, store, label }
});

fuzz_target!(|data: &[u8]| {
    let setup = &*SETUP;
    let file = setup.root.join("apko.lock.json");
    std::fs::write(&file, data).expect("write input");
    let _ = std::fs::remove_file(setup.root.join("executor.lock"));
    let _ = executor::apko::import(&setup.loader, &setup.fetcher, &setup.store, &file, &setup.label);
});
