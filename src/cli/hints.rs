//! The library's errors speak of values ("skip bad lines", "a lower learning
//! rate"); this adds the flags that do it on the command line, in one place,
//! so that the library never has to know its front end.

use crate::cache::CacheError;
use crate::corpus::CorpusError;
use crate::prosody::tunes::TuneError;
use crate::train::{Diverged, RunExists};

/// `err`, with the flags to use appended in parentheses when it is one the
/// command line can do something about; other errors pass unchanged.
pub fn with_flags(err: anyhow::Error) -> anyhow::Error {
    let hint = if let Some(d) = err.downcast_ref::<Diverged>() {
        format!("--resume {} with a lower --lr, or --clip", d.kept)
    } else if let Some(r) = err.downcast_ref::<RunExists>() {
        format!("--resume {}, or another --out", r.last)
    } else if let Some(c) = err.downcast_ref::<CorpusError>() {
        match c {
            CorpusError::NotFound { .. } => "--file PATH, or --corpus NAME".into(),
            CorpusError::BadLine { .. } => "--skip-bad".into(),
            CorpusError::AllDropped { .. } => "--min-len, --max-len".into(),
            _ => return err,
        }
    } else if let Some(CacheError::NoDataDir) = err.downcast_ref::<CacheError>() {
        "--data-dir DIR".into()
    } else if let Some(TuneError::UnknownVariant { forms, .. }) = err.downcast_ref::<TuneError>() {
        format!("--variant 1 to {forms}")
    } else {
        return err;
    };
    anyhow::anyhow!("{err:#} ({hint})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_errors_get_the_flags_to_use() {
        let exists = RunExists {
            out: "runs/a".into(),
            last: "runs/a/last".into(),
        };
        let msg = with_flags(exists.into()).to_string();
        assert!(msg.contains("already holds a run"), "{msg}");
        assert!(
            msg.ends_with("(--resume runs/a/last, or another --out)"),
            "{msg}"
        );
        let diverged = Diverged {
            step: 7,
            epoch: 0,
            what: "loss",
            value: f64::NAN,
            lr: 0.5,
            kept: "runs/a/last".into(),
        };
        let msg = with_flags(diverged.into()).to_string();
        assert!(msg.starts_with("training diverged at step 7"), "{msg}");
        assert!(
            msg.contains("--resume runs/a/last with a lower --lr"),
            "{msg}"
        );
        // under context, as `load` adds it
        let bad = CorpusError::BadLine {
            path: "poems.txt".into(),
            line: 5,
        };
        let msg = with_flags(anyhow::Error::from(bad).context("loading the corpus")).to_string();
        assert!(msg.starts_with("loading the corpus: poems.txt:5:"), "{msg}");
        assert!(msg.ends_with("(--skip-bad)"), "{msg}");
        let variant = TuneError::UnknownVariant {
            name: "浣溪沙".into(),
            variant: 9,
            forms: 1,
        };
        let msg = with_flags(variant.into()).to_string();
        assert!(
            msg.ends_with("no form 9 (pick 1 to 1) (--variant 1 to 1)"),
            "{msg}"
        );
        let other = with_flags(anyhow::anyhow!("something else").context("while writing"));
        assert_eq!(format!("{other:#}"), "while writing: something else");
    }
}
