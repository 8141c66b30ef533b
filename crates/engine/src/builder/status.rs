//! What the user sees while a build runs (ninja's `Status`): on a terminal, a progress bar
//! drawn from the first moment that names the actions running and how long each has run;
//! otherwise one line per action run; warnings and errors above the bar, never through it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::action::Action;

/// The actions running now, by a sequence number, with their name, start and bytes moved.
type Running = Arc<Mutex<BTreeMap<usize, (String, Instant, u64)>>>;

/// How often the bar's list of running actions (and their times) is redrawn.
const TICK: Duration = Duration::from_millis(200);

/// Progress of one build.
pub struct Reporter {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    /// Actions ended, however.
    ended: AtomicUsize,
    /// Actions running, for the bar.
    running: Running,
    /// Numbers actions as they start running.
    next: AtomicUsize,
    /// Tells the thread that refreshes the bar's times to stop.
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Reporter {
    /// A reporter for `total` actions: a bar when `bar` (stderr is a terminal), lines
    /// otherwise.
    pub fn new(total: usize, bar: bool) -> Self {
        let running: Running = Arc::default();
        let bar = (bar && total > 0).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}")
            {
                bar.set_style(style);
            }
            // Drawn at once and redrawn steadily, so a build whose first action takes a
            // while still shows that it is working, and on what.
            bar.enable_steady_tick(TICK);
            bar.set_message("starting");
            bar
        });
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if let Some(bar) = &bar {
            // Refreshes the times of the running actions while the build runs.
            let (bar, running, stop) = (bar.clone(), Arc::clone(&running), Arc::clone(&stop));
            let _ = std::thread::Builder::new().name("progress".into()).spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    let running = running.lock().unwrap_or_else(|e| e.into_inner());
                    if !running.is_empty() {
                        bar.set_message(describe_running(&running, Instant::now()));
                    }
                }
            });
        }
        Reporter { bar, total, ended: AtomicUsize::new(0), running, next: AtomicUsize::new(0), stop }
    }

    /// An action is about to run (not a cache hit). With a bar it joins the list of running
    /// actions; without, a line numbered as Bazel numbers them, `[actions ended + 1/all
    /// actions]`. Returns a token for [`ended`](Self::ended).
    pub fn running(&self, action: &Action) -> usize {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let name = format!("{} {}", action.exec.mnemonic(), action.owner);
        match &self.bar {
            Some(bar) => {
                let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
                running.insert(token, (name, Instant::now(), 0));
                bar.set_message(describe_running(&running, Instant::now()));
            }
            None => {
                let what = action.outputs.first().map(|o| format!(" -> executor-out/{}", o.path)).unwrap_or_default();
                eprintln!("[{}/{}] {name}{what}", self.ended.load(Ordering::Relaxed) + 1, self.total);
            }
        }
        token
    }

    /// The action of `token` has moved `bytes` so far (see [`crate::action::Status::progress`]).
    pub fn progress(&self, token: usize, bytes: u64) {
        if self.bar.is_some() {
            if let Some(entry) = self.running.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&token) {
                entry.2 = bytes;
            }
        }
    }

    /// What one running action sees: its warnings and progress go to this reporter.
    pub fn for_action(&self, token: Option<usize>) -> ActionStatus<'_> {
        ActionStatus { reporter: self, token }
    }

    /// An action that [`running`](Self::running) announced stopped running (it is then
    /// recorded, and [`ended`](Self::ended)).
    pub fn stopped(&self, token: usize) {
        if self.bar.is_some() {
            self.running.lock().unwrap_or_else(|e| e.into_inner()).remove(&token);
        }
    }

    /// An action ended (ran, hit the cache, failed or was skipped); `token` is what
    /// [`running`](Self::running) returned, when the caller has not called
    /// [`stopped`](Self::stopped) with it.
    pub fn ended(&self, token: Option<usize>) {
        let ended = self.ended.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(token) = token {
                running.remove(&token);
            }
            bar.set_position(ended as u64);
            bar.set_message(describe_running(&running, Instant::now()));
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
        self.stop.store(true, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Reporter {
    /// A build that ends early (an error before its actions ran) stops the refresh and clears
    /// the bar too.
    fn drop(&mut self) {
        self.finish();
    }
}

/// The bar's message: the running actions, longest-running first, with their times, as many
/// as fit a line; `waiting` when none runs (cache hits, or inputs being hashed).
fn describe_running(running: &BTreeMap<usize, (String, Instant, u64)>, now: Instant) -> String {
    if running.is_empty() {
        return "waiting".to_owned();
    }
    let mut items: Vec<(&String, Duration, u64)> =
        running.values().map(|(name, start, bytes)| (name, now.saturating_duration_since(*start), *bytes)).collect();
    items.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    const SHOWN: usize = 3;
    let mut text: Vec<String> = items
        .iter()
        .take(SHOWN)
        .map(|(name, d, bytes)| match bytes {
            0 => format!("{name} {:.1}s", d.as_secs_f64()),
            _ => format!("{name} {:.1}s {}", d.as_secs_f64(), human_bytes(*bytes)),
        })
        .collect();
    if items.len() > SHOWN {
        text.push(format!("+{} more", items.len() - SHOWN));
    }
    text.join(", ")
}

/// `1.5 MB`, `820 kB`, `12 B`: decimal units, as download sizes are shown.
fn human_bytes(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.0} kB", bytes as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", bytes as f64 / 1e6),
        _ => format!("{:.2} GB", bytes as f64 / 1e9),
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

/// The [`crate::action::Status`] of one running action ([`Reporter::for_action`]).
pub struct ActionStatus<'a> {
    reporter: &'a Reporter,
    /// `None` for an action re-made as another's input: its progress is not shown.
    token: Option<usize>,
}

impl crate::action::Status for ActionStatus<'_> {
    fn warn(&self, message: &str) {
        crate::action::Status::warn(self.reporter, message);
    }

    fn progress(&self, bytes: u64) {
        if let Some(token) = self.token {
            self.reporter.progress(token, bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_names_the_longest_running_actions_with_their_times() {
        let now = Instant::now();
        let mut running = BTreeMap::new();
        assert_eq!(describe_running(&running, now), "waiting");
        let ago = |ms| now.checked_sub(Duration::from_millis(ms)).expect("a moment ago");
        running.insert(0, ("FetchApk //a:apks".to_owned(), ago(400), 0));
        running.insert(1, ("Layer //a:layer".to_owned(), ago(2100), 0));
        assert_eq!(describe_running(&running, now), "Layer //a:layer 2.1s, FetchApk //a:apks 0.4s");
        running.insert(2, ("OciImage //a:image".to_owned(), ago(100), 0));
        running.insert(3, ("OciLoad //a:tar".to_owned(), ago(50), 0));
        assert_eq!(
            describe_running(&running, now),
            "Layer //a:layer 2.1s, FetchApk //a:apks 0.4s, OciImage //a:image 0.1s, +1 more"
        );
        // Bytes moved, once an action reports them.
        running.get_mut(&0).expect("fetch").2 = 2_345_678;
        running.get_mut(&1).expect("layer").2 = 820_400;
        assert_eq!(
            describe_running(&running, now),
            "Layer //a:layer 2.1s 820 kB, FetchApk //a:apks 0.4s 2.3 MB, OciImage //a:image 0.1s, +1 more"
        );
    }

    #[test]
    fn an_actions_progress_reaches_its_entry_only() {
        // A bar (hidden: indicatif draws nothing when stderr is not a terminal).
        let reporter = Reporter::new(2, true);
        let token = 7;
        reporter.running.lock().expect("lock").insert(token, ("Fetch //a:b".to_owned(), Instant::now(), 0));
        crate::action::Status::progress(&reporter.for_action(Some(token)), 1234);
        crate::action::Status::progress(&reporter.for_action(None), 99);
        assert_eq!(reporter.running.lock().expect("lock")[&token].2, 1234);
        reporter.finish();
    }
}
