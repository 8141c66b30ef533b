//! Writes a large synthetic layer and reports throughput, for tuning `layer`.
//!
//! ```text
//! cargo run --release --example layer_bench -- [--size-mib 1024] [--jobs N] \
//!     [--out /tmp/layer_bench.tar.gz] [--compare-gzip]
//! /usr/bin/time -v target/release/examples/layer_bench --jobs 2   # peak RSS
//! ```
//!
//! The tree has 64 directories of files from 700 bytes to 8 MiB, cut from one 8 MiB corpus
//! of pseudo-random words (about 2:1 with gzip -6, like binaries). The corpus is the only
//! content held in memory; the layer itself is streamed. `--compare-gzip` then decompresses
//! the layer to a plain tar next to `--out`, checks its sha256 against the diff_id, and
//! times the system's single-threaded `gzip -6` on it.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Instant;

use executor::layer::{Content, Entry, LayerOptions, LayerPath, LayerTree, LayerWriter};
use sha2::{Digest as _, Sha256};

/// 8 MiB of pseudo-random words from a fixed random vocabulary of 4096 words: much
/// larger than deflate's 32 KiB window, so files cut from it compress like text, not like
/// a repeated pattern.
fn corpus() -> Arc<[u8]> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let vocabulary: Vec<Vec<u8>> = (0..4096)
        .map(|_| {
            let len = 2 + (next(&mut state) % 9) as usize;
            (0..len).map(|_| b'a' + (next(&mut state) % 26) as u8).collect()
        })
        .collect();
    let mut text = Vec::with_capacity(CORPUS + 32);
    while text.len() < CORPUS {
        let r = next(&mut state);
        text.extend_from_slice(&vocabulary[(r % 4096) as usize]);
        match (r >> 32) % 16 {
            0 => text.push(b'\n'),
            1 => text.extend_from_slice(format!(" {} ", (r >> 40) % 100_000).as_bytes()),
            _ => text.push(b' '),
        }
    }
    text.truncate(CORPUS);
    text.into()
}

const CORPUS: usize = 8 << 20;

fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// `left` bytes of the corpus, starting at a seed-dependent offset and wrapping around.
struct Words {
    corpus: Arc<[u8]>,
    at: usize,
    left: u64,
}

impl Read for Words {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = usize::try_from(self.left).map_or(buf.len(), |left| left.min(buf.len()));
        let take = want.min(self.corpus.len() - self.at);
        buf[..take].copy_from_slice(&self.corpus[self.at..self.at + take]);
        self.at = (self.at + take) % self.corpus.len();
        self.left -= take as u64;
        Ok(take)
    }
}

struct Args {
    size_mib: u64,
    jobs: usize,
    out: String,
    compare_gzip: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        size_mib: 1024,
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        out: "/tmp/layer_bench.tar.gz".to_owned(),
        compare_gzip: false,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().ok_or(format!("`{flag}` needs a value"));
        match flag.as_str() {
            "--size-mib" => args.size_mib = value()?.parse().map_err(|e| format!("`--size-mib`: {e}"))?,
            "--jobs" => args.jobs = value()?.parse().map_err(|e| format!("`--jobs`: {e}"))?,
            "--out" => args.out = value()?,
            "--compare-gzip" => args.compare_gzip = true,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

/// A tree of about `size` content bytes.
fn synthetic_tree(size: u64) -> Result<LayerTree, Box<dyn std::error::Error>> {
    const SIZES: [u64; 8] = [4 << 10, 16 << 10, 64 << 10, 200 << 10, 1 << 20, 3 << 20, 8 << 20, 700];
    let corpus = corpus();
    let mut tree = LayerTree::new();
    let mut total = 0;
    let mut i: u64 = 0;
    while total < size {
        let dir = LayerPath::new(format!("usr/share/d{:02}", i % 64))?;
        if !tree.contains(&dir) {
            tree.insert(dir.clone(), Entry::directory())?;
        }
        let file_size = SIZES[(i % 8) as usize].min(size - total);
        let path = dir.join(&format!("file-{i:05}.txt"))?;
        let words = Words {
            corpus: Arc::clone(&corpus),
            at: (i.wrapping_mul(0x9e37_79b9) % CORPUS as u64) as usize,
            left: file_size,
        };
        let content = Content::from_reader(file_size, words);
        tree.insert(path, Entry::file(content).with_mtime(1_700_000_000 + i))?;
        total += file_size;
        i += 1;
    }
    Ok(tree)
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mb_per_s(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / 1e6 / seconds
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let tree = synthetic_tree(args.size_mib << 20)?;
    let entries = tree.len();
    let out = BufWriter::with_capacity(1 << 20, File::create(&args.out)?);
    let options = LayerOptions { epoch: 1_700_000_000, jobs: args.jobs, level: 6 };
    let start = Instant::now();
    let digests = LayerWriter::new(out, options)?.write_tree(tree)?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "layer: {entries} entries, {} MiB tar -> {} MiB gz (ratio {:.2}) in {seconds:.2} s \
         with jobs={}: {:.1} MB/s of tar",
        digests.uncompressed_size >> 20,
        digests.size >> 20,
        digests.uncompressed_size as f64 / digests.size as f64,
        args.jobs,
        mb_per_s(digests.uncompressed_size, seconds),
    );
    println!("diff_id {}\ndigest  {}", digests.diff_id, digests.digest);
    if let Some(kib) = peak_rss_kib() {
        println!("peak RSS (VmHWM) {} MiB", kib >> 10);
    }

    if args.compare_gzip {
        let tar_path = format!("{}.tar", args.out.trim_end_matches(".tar.gz"));
        let mut tar = BufWriter::with_capacity(1 << 20, File::create(&tar_path)?);
        let mut gz = flate2::read::GzDecoder::new(io::BufReader::new(File::open(&args.out)?));
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = gz.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            tar.write_all(&buf[..n])?;
        }
        tar.flush()?;
        let diff_id = format!("sha256:{}", hex::encode(hasher.finalize()));
        println!(
            "decompressed with flate2: diff_id {}",
            if diff_id == digests.diff_id.to_string() { "matches" } else { "DIFFERS" }
        );
        let start = Instant::now();
        let mut gzip = Command::new("gzip").args(["-6", "-n", "-c", &tar_path]).stdout(Stdio::piped()).spawn()?;
        let mut gzip_size = 0u64;
        if let Some(mut stdout) = gzip.stdout.take() {
            loop {
                let n = stdout.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                gzip_size += n as u64;
            }
        }
        let status = gzip.wait()?;
        let gzip_seconds = start.elapsed().as_secs_f64();
        if !status.success() {
            return Err("`gzip -6` failed".into());
        }
        println!(
            "gzip -6 (one core) on the same tar: {gzip_seconds:.2} s: {:.1} MB/s, {} MiB \
             (layer size vs gzip: {:+.2}%)",
            mb_per_s(digests.uncompressed_size, gzip_seconds),
            gzip_size >> 20,
            (digests.size as f64 / gzip_size as f64 - 1.0) * 100.0,
        );
        std::fs::remove_file(&tar_path)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("layer_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
