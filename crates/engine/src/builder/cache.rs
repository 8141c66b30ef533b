//! The action-cache chain: every place an action's outputs may already be, behind one
//! interface, asked in order of cost and trust:
//! 1. the local action cache (key -> output records, blobs in the store);
//! 2. content pinned by digest that the store already holds (a package fetched by another
//!    target or workspace), accepted only after the action's own complete check;
//! 3. the same content on the remote cache's `/cas/`, fetched by digest, then checked;
//! 4. the remote cache's action results (`/ac/`), when they are trusted (signed by a given
//!    key, or `--remote-cache-trust`), their blobs verified into the store.
//!
//! A tier's answer counts only if the outputs can be placed (the caller's `place`, which
//! materializes them); one that cannot (a blob turned out corrupt and was evicted) is
//! forgotten and the next tier is asked.

use crate::action::{Action, OutputKind, Status};
use crate::digest::Digest;
use crate::remote_cache::RemoteCache;
use crate::store::{ActionResult, OutputRecord, Store};

/// Where a cached answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The local store.
    Local,
    /// The remote cache.
    Remote,
}

/// The chain of action caches of one build.
pub struct CacheChain<'a> {
    /// The local store and action cache.
    pub store: &'a Store,
    /// The remote cache, if any.
    pub remote: Option<&'a RemoteCache>,
}

/// Places an answer's outputs; false if a blob was missing or corrupt. `fresh`: the blobs
/// were hashed moments ago.
pub type Place<'p> = dyn FnMut(&[OutputRecord], bool) -> Result<bool, String> + 'p;

impl CacheChain<'_> {
    /// The outputs of `action` (whose key is `key`) if some tier has them and they could be
    /// placed.
    pub fn lookup(
        &self,
        key: &Digest,
        action: &Action,
        status: &dyn Status,
        place: &mut Place<'_>,
    ) -> Result<Option<(Vec<OutputRecord>, Tier)>, String> {
        // 1. The local action cache.
        if let Some(result) = self.store.get_action(key) {
            if result.outputs.len() == action.outputs.len()
                && self.outputs_present(&result)
                && place(&result.outputs, false)?
            {
                return Ok(Some((result.outputs, Tier::Local)));
            }
            // Missing or corrupt outputs: forget the entry.
            self.store.remove_action(key);
        }
        // 2. Content pinned by digest that the store already holds need not be fetched again.
        if let Some(records) = self.pinned_in_store(action, status) {
            self.record(key, &records)?;
            if place(&records, true)? {
                return Ok(Some((records, Tier::Local)));
            }
        }
        let Some(remote) = self.remote else { return Ok(None) };
        // 3. Content pinned by digest may be on the remote cache: blobs are named by their
        // digest, and the action's own complete check decides, so this needs no trust in the
        // server's action results.
        if let Some(pinned) = action.exec.pinned_outputs() {
            let mut fetched = true;
            for (digest, size) in &pinned {
                if !self.store.has_blob(digest, *size) {
                    fetched &=
                        remote.get_blob_into_store(digest, Some(*size), self.store).map_err(|e| e.to_string())?;
                }
            }
            if fetched {
                if let Some(records) = self.pinned_in_store(action, status) {
                    self.record(key, &records)?;
                    if place(&records, true)? {
                        return Ok(Some((records, Tier::Remote)));
                    }
                }
            }
        }
        // 4. The remote cache's result, when its results are trusted. Its blobs are
        // downloaded and verified into the store before the entry is recorded locally.
        let kinds: Vec<OutputKind> = action.outputs.iter().map(|o| o.kind).collect();
        if let Some(result) = remote.fetch_action(key, &kinds, self.store) {
            self.record(key, &result.outputs)?;
            if place(&result.outputs, false)? {
                return Ok(Some((result.outputs, Tier::Remote)));
            }
            // A local blob it relied on was corrupt (and is now evicted).
            self.store.remove_action(key);
        }
        Ok(None)
    }

    /// Records an action's outputs (committed to the store) under its key, locally.
    pub fn record(&self, key: &Digest, outputs: &[OutputRecord]) -> Result<(), String> {
        self.store.put_action(key, &ActionResult { outputs: outputs.to_vec() }).map_err(|e| e.to_string())
    }

    /// Offers the result of an action that ran to the remote cache. Best effort: a failing
    /// upload is a warning (once) and never fails the action.
    pub fn share(&self, key: &Digest, outputs: &[OutputRecord]) {
        if let Some(remote) = self.remote {
            remote.upload_action(key, &ActionResult { outputs: outputs.to_vec() }, self.store);
        }
    }

    /// Forgets a local result (its outputs turned out missing or corrupt).
    pub fn forget(&self, key: &Digest) {
        self.store.remove_action(key);
    }

    /// The records of an action's pinned outputs if every one is in the store and passes the
    /// action's own complete check ([`crate::action::ActionExec::verify_pinned`]): bytes that
    /// merely have the pinned sha256 and size (say, a source file of another target) are not
    /// enough.
    fn pinned_in_store(&self, action: &Action, status: &dyn Status) -> Option<Vec<OutputRecord>> {
        let pinned = action.exec.pinned_outputs()?;
        if pinned.len() != action.outputs.len() {
            return None;
        }
        let mut records = Vec::with_capacity(pinned.len());
        let mut paths = Vec::with_capacity(pinned.len());
        for ((digest, size), spec) in pinned.iter().zip(&action.outputs) {
            let OutputKind::File { executable } = spec.kind else { return None };
            if !self.store.has_blob(digest, *size) {
                return None;
            }
            paths.push(self.store.blob_path(digest));
            records.push(OutputRecord::File { digest: *digest, size: *size, executable });
        }
        // A failed check means the bytes are not what the action would produce: run it.
        action.exec.verify_pinned(&paths, self.store, status).ok()?;
        Some(records)
    }

    fn outputs_present(&self, result: &ActionResult) -> bool {
        result.outputs.iter().all(|o| match o {
            OutputRecord::File { digest, size, .. } => self.store.has_blob(digest, *size),
            OutputRecord::Dir { digest } => self.store.blob_path(digest).is_file(),
        })
    }
}
