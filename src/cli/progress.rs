//! Progress on long runs: a bar on stderr, only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A progress bar that draws nothing unless stderr is a terminal.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar of `total` steps labelled `what`.
    pub fn new(total: u64, what: &str) -> Progress {
        if !std::io::stderr().is_terminal() || total < 10_000 {
            return Progress(None);
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} ({per_sec}, eta {eta})")
        {
            bar.set_style(style);
        }
        bar.set_message(what.to_string());
        Progress(Some(bar))
    }

    /// A spinner for a run of unknown length, showing two counters.
    pub fn spinner(what: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(what.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Progress(Some(bar))
    }

    /// Spinner: objects scanned and written so far.
    pub fn set(&self, scanned: u64, written: u64) {
        if let Some(b) = &self.0 {
            b.set_message(format!("scanned {scanned}, rewritten {written}"));
        }
    }

    /// Print a line on stdout without tearing the bar.
    pub fn println(&self, line: &str) {
        use std::io::Write;
        let print = || {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
        };
        match &self.0 {
            Some(b) => b.suspend(print),
            None => print(),
        }
    }

    /// Advance by `n`.
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }

    /// Remove the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}
