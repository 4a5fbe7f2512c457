//! `shiren write` through the built binary: each bad input gets one clear
//! error line, and the missing shipped model names the command that makes it.
//! (Form, rhyme, tone and determinism tests on generated poems run in
//! `src/write.rs` against toy models.)

use crate::macros::{Dir, TestCommand};

shiren_test!(
    shipped_model_writes_a_seeded_acrostic,
    |_dir: Dir, mut cmd: TestCommand| {
        // The model in models/tang-small is found from any folder; no lexicon is
        // needed without rhyme and tones, so this runs offline.
        let args = [
            "write",
            "--acrostic",
            "春夏秋冬",
            "--no-rhyme",
            "--seed",
            "3",
        ];
        let out = cmd.args(args).stdout();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        for (line, head) in lines.iter().zip("春夏秋冬".chars()) {
            assert!(
                line.starts_with(head),
                "line {line:?} should start with {head}"
            );
            // Seven characters and the closing punctuation, nothing else.
            assert_eq!(line.chars().count(), 8, "{line:?}");
            assert!(
                !line.contains(' ') && !line.contains('\u{FFFD}'),
                "{line:?}"
            );
        }
        let again = Dir::new().command().args(args).stdout();
        eqnice!(out, again);
    }
);

shiren_test!(
    #[ignore = "needs the real 平水韵 lexicon (fetched)"]
    shipped_model_writes_strict_regulated_verse,
    |dir: Dir, _cmd: TestCommand| {
        let out = dir
            .command_real_data()
            .args([
                "write", "--form", "wulv", "--tones", "strict", "--count", "3", "--seed", "9",
            ])
            .stdout();
        let poems: Vec<&str> = out.split("\n\n").collect();
        assert_eq!(poems.len(), 3, "{out}");
        for p in poems {
            let lines: Vec<&str> = p.lines().collect();
            assert_eq!(lines.len(), 8, "{p}");
            for (i, l) in lines.iter().enumerate() {
                assert_eq!(l.chars().count(), 6, "{l:?}");
                let end = if i % 2 == 0 { '，' } else { '。' };
                assert!(l.ends_with(end), "{l:?}");
            }
        }
    }
);

shiren_test!(
    missing_model_dir_is_named,
    |dir: Dir, mut cmd: TestCommand| {
        let err = cmd.args(["write", "--model", "nowhere"]).fails();
        contains_all!(err, "no model at nowhere", "--model");
        drop(dir);
    }
);

shiren_test!(
    empty_and_bad_values_are_refused_before_any_work,
    |_dir: Dir, mut cmd: TestCommand| {
        let err = cmd.args(["write", "--begin", " "]).fails();
        contains_all!(err, "--begin is empty");
    }
);

shiren_test!(
    acrostic_empty_is_refused,
    |_dir: Dir, mut cmd: TestCommand| {
        let err = cmd.args(["write", "--acrostic", ""]).fails();
        contains_all!(err, "--acrostic is empty");
    }
);

shiren_test!(count_zero_is_refused, |_dir: Dir, mut cmd: TestCommand| {
    let err = cmd.args(["write", "--count", "0"]).fails();
    contains_all!(err, "--count must be at least 1");
});

shiren_test!(
    unknown_form_and_tone_mode_are_usage_errors,
    |_dir: Dir, mut cmd: TestCommand| {
        let out = cmd.args(["write", "--form", "sonnet"]).output();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        contains_all!(stderr, "unknown form `sonnet`", "wujue");
    }
);
