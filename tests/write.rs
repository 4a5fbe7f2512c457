//! `shiren write` through the built binary: each bad input gets one clear
//! error line, and the missing shipped model names the command that makes it.
//! (Form, rhyme, tone and determinism tests on generated poems run in
//! `src/write.rs` against toy models.)

use crate::macros::{Dir, TestCommand};

shiren_test!(
    missing_shipped_model_names_the_training_command,
    |_dir: Dir, mut cmd: TestCommand| {
        let err = cmd.args(["write", "--form", "qijue"]).fails();
        contains_all!(err, "no model at models/tang-small", "shiren train");
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
