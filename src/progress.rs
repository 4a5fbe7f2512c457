//! How a training run reports as it goes, for both trainers (poems and
//! MNIST): an indicatif bar with lines above it on a terminal, plain lines on
//! stderr otherwise, nothing when quiet. Not here: what the lines say.

/// The indicatif bar on a terminal, plain log lines otherwise, nothing when quiet.
pub struct Log {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
}

impl Log {
    /// A bar of `total` steps standing at `at` (a resumed run starts part way).
    pub fn new(quiet: bool, total: u64, at: u64) -> Log {
        if quiet {
            return Log { bar: None, quiet };
        }
        let bar = indicatif::ProgressBar::new(total);
        if bar.is_hidden() {
            return Log { bar: None, quiet };
        }
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30.cyan/blue}] {pos}/{len} {msg} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_position(at);
        bar.reset_eta();
        Log {
            bar: Some(bar),
            quiet,
        }
    }

    /// A line above the bar, or on stderr.
    pub fn line(&self, s: &str) {
        match &self.bar {
            Some(bar) => bar.println(s),
            None if !self.quiet => eprintln!("{s}"),
            None => {}
        }
    }

    pub fn set_total(&self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// Moves the bar to step `pos` with `msg` beside it (no line without a bar).
    pub fn progress(&self, pos: u64, msg: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position(pos);
            bar.set_message(msg.to_string());
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
