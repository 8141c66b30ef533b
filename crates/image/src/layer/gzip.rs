//! [`GzipSink`]: gzip compression on several threads whose output bytes do not depend on
//! the number of threads, hashing the uncompressed and the compressed stream on the way.
//!
//! The uncompressed stream is cut into fixed blocks of [`BLOCK_SIZE`] bytes. Each block is
//! compressed on its own as raw deflate, a fresh compressor per block (no dictionary from
//! the previous block: flate2's pure-Rust backend cannot prime one, and at 1 MiB blocks
//! the loss is well under 1%). Every block but the last ends with a sync flush (an empty
//! stored block, byte aligned), the last one with a final block, so the concatenation is one
//! valid deflate stream. It is wrapped in a single gzip member whose CRC-32 is combined from
//! the per-block CRCs. Since each block's bytes depend only on its input, the level and the
//! deflate implementation, the output is the same for 1 or 64 threads. This is pigz's
//! `--independent` scheme.
//!
//! Memory is bounded: at most `2 × jobs` blocks are in flight (each ~1 MiB in, ~1 MiB out),
//! and compressed blocks are written out in order as soon as the oldest is done.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::layer::error::LayerError;
use crate::layer::path::LayerPath;
use crate::layer::LayerDigests;

/// Size of the uncompressed blocks that are compressed independently. Part of the output
/// format: changing it changes every layer digest.
pub const BLOCK_SIZE: usize = 1 << 20;

/// The gzip header's OS byte: 255, "unknown", as Go's `compress/gzip` (apko, crane) and
/// flate2 write, so that the header does not depend on the host.
pub const GZIP_OS_UNKNOWN: u8 = 255;

/// The result of compressing one block.
struct Deflated {
    bytes: Vec<u8>,
    /// CRC-32 of the block's uncompressed bytes (with their length).
    crc: Crc,
}

/// A block handed to the compressor, oldest first.
enum InFlight {
    /// Compressed on the calling thread (`jobs == 1`).
    Done(Result<Deflated, LayerError>),
    /// Being compressed by a worker, which answers once.
    Running(Receiver<Result<Deflated, LayerError>>),
}

/// Streams uncompressed bytes in, writes one gzip member out.
pub(crate) struct GzipSink<W: Write> {
    /// Where the compressed bytes go.
    out: W,
    /// Deflate level, 0..=9.
    level: u32,
    /// Compression threads wanted; 1 compresses on the calling thread.
    jobs: usize,
    /// The compression threads, started when the first block fills up (so a layer of one
    /// block never starts threads); always `None` when `jobs == 1`.
    workers: Option<rayon::ThreadPool>,
    /// Blocks handed out and not yet written, in stream order.
    in_flight: VecDeque<InFlight>,
    /// The block being filled: `BLOCK_SIZE` long (until the last block is submitted), of
    /// which `filled` bytes are data.
    block: Vec<u8>,
    /// Bytes of `block` that hold data.
    filled: usize,
    /// sha256 of every uncompressed byte submitted so far.
    diff_id: Sha256,
    /// Uncompressed bytes submitted so far.
    uncompressed_size: u64,
    /// CRC-32 of the uncompressed bytes of the blocks written out so far.
    crc: Crc,
    /// sha256 of every compressed byte written so far.
    digest: Sha256,
    /// Compressed bytes written so far.
    size: u64,
}

impl<W: Write> GzipSink<W> {
    /// Writes the gzip header to `out`. With `jobs > 1`, blocks are compressed on that many
    /// threads besides the calling one, which builds the stream, hashes and writes.
    pub(crate) fn new(out: W, level: u32, jobs: usize) -> Result<Self, LayerError> {
        let mut sink = GzipSink {
            out,
            level,
            jobs: jobs.max(1),
            workers: None,
            in_flight: VecDeque::new(),
            block: vec![0; BLOCK_SIZE],
            filled: 0,
            diff_id: Sha256::new(),
            uncompressed_size: 0,
            crc: Crc::new(),
            digest: Sha256::new(),
            size: 0,
        };
        // Magic, deflate, no flags, mtime 0, extra flags as gzip sets them, OS unknown.
        let xfl = match level {
            9 => 2,
            0 | 1 => 4,
            _ => 0,
        };
        sink.emit(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, GZIP_OS_UNKNOWN])?;
        Ok(sink)
    }

    /// Appends uncompressed bytes.
    pub(crate) fn write(&mut self, mut bytes: &[u8]) -> Result<(), LayerError> {
        while !bytes.is_empty() {
            if self.filled == BLOCK_SIZE {
                // Only now is it known that this full block is not the last one.
                self.submit(false)?;
            }
            let take = bytes.len().min(BLOCK_SIZE - self.filled);
            self.block[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
            self.filled += take;
            bytes = &bytes[take..];
        }
        Ok(())
    }

    /// Appends exactly `declared` bytes read from `reader`, the content of `path`; fails if
    /// the reader ends early or has more.
    pub(crate) fn copy_content(
        &mut self,
        path: &LayerPath,
        reader: &mut dyn Read,
        declared: u64,
    ) -> Result<(), LayerError> {
        let read_error = |source| LayerError::ReadContent { path: path.clone(), source };
        let mut copied: u64 = 0;
        while copied < declared {
            if self.filled == BLOCK_SIZE {
                self.submit(false)?;
            }
            let room = BLOCK_SIZE - self.filled;
            let want = usize::try_from(declared - copied).map_or(room, |left| left.min(room));
            let read = match reader.read(&mut self.block[self.filled..self.filled + want]) {
                Ok(0) => return Err(LayerError::ContentTooShort { path: path.clone(), declared, actual: copied }),
                Ok(read) => read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(e)),
            };
            self.filled += read;
            copied += read as u64;
        }
        let mut probe = [0u8; 1];
        loop {
            match reader.read(&mut probe) {
                Ok(0) => return Ok(()),
                Ok(_) => return Err(LayerError::ContentTooLong { path: path.clone(), declared }),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(e)),
            }
        }
    }

    /// Compresses the last block, writes everything still in flight and the gzip trailer,
    /// flushes the output, and returns the digests.
    pub(crate) fn finish(mut self) -> Result<LayerDigests, LayerError> {
        self.submit(true)?;
        while !self.in_flight.is_empty() {
            self.emit_oldest()?;
        }
        let crc = self.crc.sum();
        // ISIZE is the uncompressed size modulo 2^32 (RFC 1952).
        let isize = (self.uncompressed_size & 0xffff_ffff) as u32;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&crc.to_le_bytes());
        trailer[4..].copy_from_slice(&isize.to_le_bytes());
        self.emit(&trailer)?;
        self.out.flush().map_err(LayerError::Write)?;
        Ok(LayerDigests {
            diff_id: Digest::from_bytes(self.diff_id.finalize().into()),
            digest: Digest::from_bytes(self.digest.finalize().into()),
            size: self.size,
            uncompressed_size: self.uncompressed_size,
        })
    }

    /// Hands the current block to the compressor and writes out blocks beyond the limit.
    fn submit(&mut self, last: bool) -> Result<(), LayerError> {
        let fresh = if last { Vec::new() } else { vec![0; BLOCK_SIZE] };
        let mut data = std::mem::replace(&mut self.block, fresh);
        data.truncate(self.filled);
        self.filled = 0;
        self.diff_id.update(&data);
        self.uncompressed_size += data.len() as u64;
        if self.workers.is_none() && self.jobs > 1 && !last {
            self.workers = Some(start_workers(self.jobs)?);
        }
        let level = self.level;
        match &self.workers {
            None => self.in_flight.push_back(InFlight::Done(deflate(&data, level, last))),
            Some(pool) => {
                let (answer, result) = sync_channel(1);
                pool.spawn(move || {
                    // The receiver is gone only if the sink already failed; nothing to do.
                    let _ = answer.send(deflate(&data, level, last));
                });
                self.in_flight.push_back(InFlight::Running(result));
            }
        }
        let max_in_flight = if self.workers.is_some() { 2 * self.jobs } else { 0 };
        while self.in_flight.len() > max_in_flight {
            self.emit_oldest()?;
        }
        Ok(())
    }

    /// Waits for the oldest block in flight and writes it out.
    fn emit_oldest(&mut self) -> Result<(), LayerError> {
        let deflated = match self.in_flight.pop_front() {
            None => return Ok(()),
            Some(InFlight::Done(result)) => result?,
            Some(InFlight::Running(result)) => result.recv().map_err(|_| LayerError::WorkerLost)??,
        };
        self.crc.combine(&deflated.crc);
        self.emit(&deflated.bytes)
    }

    /// Writes compressed bytes out and hashes them.
    fn emit(&mut self, bytes: &[u8]) -> Result<(), LayerError> {
        self.out.write_all(bytes).map_err(LayerError::Write)?;
        self.digest.update(bytes);
        self.size += bytes.len() as u64;
        Ok(())
    }
}

/// A pool of `jobs` compression threads.
fn start_workers(jobs: usize) -> Result<rayon::ThreadPool, LayerError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("layer-gzip-{i}"))
        // A panicking worker drops its sender; the sink reports `WorkerLost` instead of
        // rayon aborting the process.
        .panic_handler(|_| {})
        .build()
        .map_err(|e| LayerError::ThreadPool { jobs, reason: e.to_string() })
}

/// Compresses one block as raw deflate: ending in a sync flush, or in the final block when
/// `last`. The bytes depend only on `data`, `level`, `last` and the flate2 backend.
fn deflate(data: &[u8], level: u32, last: bool) -> Result<Deflated, LayerError> {
    let mut crc = Crc::new();
    crc.update(data);
    let mut compress = Compress::new(Compression::new(level), false);
    // Enough for incompressible input (stored blocks cost 5 bytes per 64 KiB) in one go.
    let mut bytes = Vec::with_capacity(data.len() + data.len() / 64 + 1024);
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    loop {
        // `total_in` never exceeds `data.len()`, which fits a usize.
        let consumed = (compress.total_in() as usize).min(data.len());
        if bytes.len() == bytes.capacity() {
            bytes.reserve(64 * 1024);
        }
        let status = compress
            .compress_vec(&data[consumed..], &mut bytes, flush)
            .map_err(|e| LayerError::Compress(e.to_string()))?;
        let all_in = compress.total_in() == data.len() as u64;
        let flushed = if last {
            status == Status::StreamEnd
        } else {
            // A sync flush is complete once a call consumed everything and left room.
            bytes.len() < bytes.capacity()
        };
        if all_in && flushed {
            return Ok(Deflated { bytes, crc });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;

    fn path() -> LayerPath {
        LayerPath::new("f").expect("valid path")
    }

    /// Compressible but not trivial: pseudo-random words.
    fn text(len: usize, seed: u64) -> Vec<u8> {
        let words = ["alpine", "layer", "tar", "gzip", "sha256", "musl", "busybox", "\n"];
        let mut state = seed | 1;
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.extend_from_slice(words[(state % 8) as usize].as_bytes());
            out.push(b' ');
        }
        out.truncate(len);
        out
    }

    fn gzip(data: &[u8], jobs: usize, level: u32) -> (Vec<u8>, LayerDigests) {
        let mut out = Vec::new();
        let mut sink = GzipSink::new(&mut out, level, jobs).expect("sink");
        // Feed in odd pieces, through both entry points.
        let (head, tail) = data.split_at(data.len() / 3);
        for piece in head.chunks(7919) {
            sink.write(piece).expect("write");
        }
        sink.copy_content(&path(), &mut &tail[..], tail.len() as u64).expect("copy");
        let digests = sink.finish().expect("finish");
        (out, digests)
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(bytes).read_to_end(&mut out).expect("valid gzip");
        out
    }

    #[test]
    fn output_does_not_depend_on_jobs_and_round_trips() {
        for len in [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 1, 3 * BLOCK_SIZE + 12345] {
            let data = text(len, len as u64);
            let (one, digests) = gzip(&data, 1, 6);
            for jobs in [2, 3, 4] {
                assert_eq!(gzip(&data, jobs, 6).0, one, "len {len} jobs {jobs}");
            }
            assert_eq!(gunzip(&one), data, "len {len}");
            assert_eq!(digests.size, one.len() as u64);
            assert_eq!(digests.uncompressed_size, len as u64);
            assert_eq!(digests.digest, Digest::of(&one));
            assert_eq!(digests.diff_id, Digest::of(&data));
        }
    }

    #[test]
    fn header_and_trailer_are_fixed() {
        let data = text(5000, 7);
        let (out, _) = gzip(&data, 1, 6);
        assert_eq!(&out[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        let trailer = &out[out.len() - 8..];
        let mut crc = Crc::new();
        crc.update(&data);
        assert_eq!(trailer[..4], crc.sum().to_le_bytes());
        assert_eq!(trailer[4..], 5000u32.to_le_bytes());
        assert_eq!(gzip(&data, 1, 9).0[8], 2);
        assert_eq!(gzip(&data, 1, 1).0[8], 4);
    }

    #[test]
    fn every_level_round_trips() {
        let data = text(BLOCK_SIZE + 999, 3);
        for level in 0..=9 {
            assert_eq!(gunzip(&gzip(&data, 2, level).0), data, "level {level}");
        }
    }

    #[test]
    fn content_size_is_enforced() {
        let mut sink = GzipSink::new(Vec::new(), 6, 1).expect("sink");
        let error = sink.copy_content(&path(), &mut &b"abc"[..], 5).expect_err("short");
        assert_eq!(error.to_string(), "content of `f` ended after 3 bytes, but 5 bytes were declared");
        let error = sink.copy_content(&path(), &mut &b"abcdef"[..], 5).expect_err("long");
        assert_eq!(error.to_string(), "content of `f` is longer than the declared 5 bytes");
    }

    #[test]
    fn write_errors_are_reported() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let error = GzipSink::new(Broken, 6, 2).err().expect("header write fails");
        assert_eq!(error.to_string(), "cannot write layer: disk full");
    }
}
