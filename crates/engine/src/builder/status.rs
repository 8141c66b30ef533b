//! What the user sees while a build runs (ninja's `Status`): a progress bar on a terminal,
//! one line per action run otherwise, and warnings and errors that never garble either.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::action::Action;

/// Progress of one build.
pub struct Reporter {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    /// Actions ended, however.
    ended: AtomicUsize,
}

impl Reporter {
    /// A reporter for `total` actions: a bar when `bar` (stderr is a terminal), lines
    /// otherwise.
    pub fn new(total: usize, bar: bool) -> Self {
        let bar = (bar && total > 0).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}")
            {
                bar.set_style(style);
            }
            bar
        });
        Reporter { bar, total, ended: AtomicUsize::new(0) }
    }

    /// An action is about to run (not a cache hit): without a bar, a line numbered as Bazel
    /// numbers them, `[actions ended + 1/all actions]`, so the last line of a build whose
    /// other actions were cache hits still reads how far the build is.
    pub fn running(&self, action: &Action) {
        if self.bar.is_none() {
            let what = action.outputs.first().map(|o| format!(" -> executor-out/{}", o.path)).unwrap_or_default();
            eprintln!(
                "[{}/{}] {} {}{what}",
                self.ended.load(Ordering::Relaxed) + 1,
                self.total,
                action.exec.mnemonic(),
                action.owner
            );
        }
    }

    /// An action ended (ran, hit the cache, failed or was skipped).
    pub fn ended(&self, action: Option<&Action>) {
        let ended = self.ended.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            bar.set_position(ended as u64);
            if let Some(action) = action {
                bar.set_message(format!("{} {}", action.exec.mnemonic(), action.owner));
            }
        }
    }

    /// An action failed: shown at once above the bar (the summary lists it again).
    pub fn failed(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.println(format!("error: {message}"));
        }
    }

    /// A sink for other parts' warning lines (the remote cache's) that keeps the bar intact.
    pub fn line_sink(&self) -> impl Fn(&str) + Send + Sync + 'static {
        let bar = self.bar.clone();
        move |line: &str| match &bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Actions' warnings go above the progress bar, or to stderr as lines.
impl crate::action::Status for Reporter {
    fn warn(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("warning: {message}")),
            None => eprintln!("warning: {message}"),
        }
    }
}
