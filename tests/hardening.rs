//! Inputs a hostile user would try: sizes nobody checked, files that are not
//! files, folders that loop, gzip bombs, damaged checkpoints, prompts that
//! break the rules, two trainers on one run folder. Each test pins one such
//! input to a one-line error (or to the documented behaviour), no panic, no
//! abort, no hang.

use std::time::{Duration, Instant};

use crate::macros::{Dir, TestCommand};

/// A 五绝 as `poems.txt` lines, for corpora the tests build.
const WUJUE: &str = "登鸛雀樓:白日依山盡，黃河入海流。欲窮千里目，更上一層樓。\n";

// ---------------------------------------------------------------------------
// corpus readers

shiren_test!(
    corpus_refuses_a_device_before_reading_it,
    |_dir: Dir, mut cmd: TestCommand| {
        // read whole before any check, /dev/zero grew past 6 GB
        let e = cmd.args(["corpus", "stats", "--file", "/dev/zero"]).fails();
        assert!(e.contains("/dev/zero: not a regular file"), "{e}");
    }
);

shiren_test!(
    corpus_refuses_a_file_past_the_size_cap,
    |dir: Dir, mut cmd: TestCommand| {
        // sparse: 2 GiB + 1 byte that take no disk
        let p = dir.join("huge.txt");
        let f = std::fs::File::create(&p).unwrap();
        f.set_len((2u64 << 30) + 1).unwrap();
        let e = cmd.args(["corpus", "stats", "--file"]).arg(&p).fails();
        assert!(e.contains("huge.txt: larger than 2147483648 bytes"), "{e}");
    }
);

shiren_test!(
    corpus_folder_walk_skips_loops_devices_and_fifos,
    |dir: Dir, mut cmd: TestCommand| {
        let folder = dir.join("poems");
        dir.create("poems/a.txt", WUJUE);
        dir.create("outside/b.txt", WUJUE.replace("登鸛雀樓", "別處"));
        std::os::unix::fs::symlink(".", folder.join("self")).unwrap();
        std::os::unix::fs::symlink("..", folder.join("up")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", folder.join("zero.txt")).unwrap();
        std::os::unix::fs::symlink("a.txt", folder.join("again.txt")).unwrap();
        let fifo = folder.join("x.txt");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let c = cmd.args(["corpus", "stats", "--file"]).arg(&folder);
        let child = std::mem::replace(&mut c.cmd, std::process::Command::new("true"));
        std::thread::spawn(move || {
            let mut child = child;
            let _ = tx.send(child.output());
        });
        // a hang (the FIFO, the loops) fails here instead of blocking the suite
        let out = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("corpus stats hung on a FIFO or a symlink loop")
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        // a.txt once: not again through self/, again.txt or up/poems/
        let read: Vec<Vec<&str>> = stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|w| w.first() == Some(&"read"))
            .collect();
        assert_eq!(read, [["read", "1"]], "{stdout}");
        assert!(
            stderr.contains("skipped 5 entries"),
            "self, up, zero.txt, again.txt, x.txt: {stderr}"
        );
    }
);

shiren_test!(
    the_last_colon_splits_whatever_its_width,
    |dir: Dir, mut cmd: TestCommand| {
        // `题:有冒号：` used to split at the ASCII colon: ：and 有冒号 entered the
        // poem, and the 五绝 was counted as 其他
        let p = dir.create(
            "poems.txt",
            "题:有冒号：白日依山盡，黃河入海流。欲窮千里目，更上一層樓。\n\
             题：有冒号:兩箇黃鸝鳴翠柳，一行白鷺上青天。窗含西嶺千秋雪，門泊東吳萬里船。\n",
        );
        let out = cmd.args(["corpus", "stats", "--file"]).arg(&p).stdout();
        let count = |head: &str| {
            out.lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .find(|w| w.first() == Some(&head))
                .and_then(|w| w.get(1).map(|n| n.to_string()))
        };
        assert_eq!(count("五绝").as_deref(), Some("1"), "{out}");
        assert_eq!(count("七绝").as_deref(), Some("1"), "{out}");
        // 20 + 28 characters of verse, none of the titles'
        assert_eq!(count("han").as_deref(), Some("chars"), "{out}");
        assert!(out.contains("han chars         48"), "{out}");
    }
);

shiren_test!(
    json_of_the_wrong_shape_says_so,
    |dir: Dir, mut cmd: TestCommand| {
        let p = dir.create("x.json", r#"[{"name": "王維", "desc": "诗人"}]"#);
        let e = cmd.args(["corpus", "stats", "--file"]).arg(&p).fails();
        assert!(e.contains("paragraphs") && !e.contains("--min-len"), "{e}");
    }
);

// ---------------------------------------------------------------------------
// sizes from flags and config files

/// `n` 五绝 over a small alphabet, as poems.txt.
fn poems_txt(n: usize) -> String {
    let alphabet: Vec<char> = "春花秋月夜山水风云雨江天".chars().collect();
    let mut out = String::new();
    for i in 0..n {
        out.push_str(&format!("题{i}:"));
        for l in 0..4 {
            for k in 0..5 {
                out.push(alphabet[(i * 7 + l * 3 + k * (1 + i % 3)) % alphabet.len()]);
            }
            out.push(if l % 2 == 0 { '，' } else { '。' });
        }
        out.push('\n');
    }
    out
}

const TINY: &[&str] = &[
    "train",
    "--file",
    "poems.txt",
    "--cell",
    "gru",
    "--layers",
    "1",
    "--hidden",
    "8",
    "--embed",
    "4",
    "--batch",
    "4",
    "--epochs",
    "1",
    "--eval-interval",
    "5",
    "--min-count",
    "1",
    "--threads",
    "1",
];

/// Runs `cmd` and insists it fails with one line within `secs` seconds.
fn fails_fast(cmd: &mut TestCommand, secs: u64) -> String {
    let t0 = Instant::now();
    let e = cmd.fails();
    assert!(
        t0.elapsed() < Duration::from_secs(secs),
        "took {:?}: {e}",
        t0.elapsed()
    );
    e
}

shiren_test!(
    oversized_model_flags_are_refused_before_allocating,
    |dir: Dir, _cmd: TestCommand| {
        dir.create("poems.txt", poems_txt(40));
        // aborted with `memory allocation of … bytes failed` (exit 134)
        for (flag, value, says) in [
            ("--hidden", "1000000", "hidden"),
            ("--layers", "100000000", "layers"),
            ("--max-len", "1000000000", "max_len"),
            ("--batch", "1000000000", "batch"),
        ] {
            let mut c = dir.command();
            let mut base: Vec<&str> = TINY.to_vec();
            if let Some(i) = base.iter().position(|a| *a == flag) {
                base.drain(i..i + 2);
            }
            c.args(base).args([flag, value, "--out", "r"]);
            let e = fails_fast(&mut c, 30);
            assert!(e.contains(says) && e.contains("at most"), "{flag}: {e}");
        }
    }
);

shiren_test!(
    thread_counts_past_four_per_core_are_refused,
    |_dir: Dir, mut cmd: TestCommand| {
        // spawned threads until the machine gave out
        let e = fails_fast(
            cmd.args(["--threads", "1000000000", "corpus", "stats", "--file", "x"]),
            10,
        );
        assert!(e.contains("--threads 1000000000 is more than"), "{e}");
    }
);

shiren_test!(
    eval_and_write_refuse_poem_counts_past_the_limit,
    |_dir: Dir, mut cmd: TestCommand| {
        // eval --samples 1000000000 aborted on a 68 GB allocation
        let e = fails_fast(cmd.args(["eval", "--samples", "1000000000"]), 10);
        assert!(e.contains("--samples") && e.contains("100000"), "{e}");
    }
);

// ---------------------------------------------------------------------------
// the run folder

shiren_test!(
    a_second_trainer_on_a_run_folder_is_refused_naming_the_first,
    |dir: Dir, mut cmd: TestCommand| {
        dir.create("poems.txt", poems_txt(40));
        std::fs::create_dir_all(dir.join("r")).unwrap();
        // this process holds the lock as a running trainer would
        let lock = shiren::limits::RunLock::take(&dir.join("r")).unwrap();
        let out = cmd.args(TINY).args(["--out", "r"]).output();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let e = stderr.lines().last().unwrap_or("");
        assert!(!out.status.success(), "{stderr}");
        assert!(
            e.starts_with("shiren: r: another shiren")
                && e.contains(&format!("(PID {})", std::process::id())),
            "{stderr}"
        );
        assert!(!dir.join("r/last").exists(), "the second run wrote");
        // a holder that is gone (killed, or finished) leaves it free
        drop(lock);
        dir.command().args(TINY).args(["--out", "r"]).stdout();
        assert!(dir.join("r/last/model.safetensors").is_file());
    }
);

shiren_test!(
    resume_says_where_it_resumes_and_when_nothing_is_left,
    |dir: Dir, mut cmd: TestCommand| {
        dir.create("poems.txt", poems_txt(40));
        cmd.args(TINY).args(["--out", "r"]).stdout();
        let out = dir
            .command()
            .args(["train", "--resume", "r", "--threads", "1"])
            .output();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains("resuming r/last at step")
                && stderr.contains("already finished")
                && stderr.contains("nothing left to do"),
            "{stderr}"
        );
    }
);

shiren_test!(
    a_run_folder_without_a_checkpoint_yet_says_so,
    |dir: Dir, mut cmd: TestCommand| {
        // what a run killed before its first evaluation leaves
        dir.create("r/config.json", r#"{"lr": 0.01, "hidden": 8}"#);
        dir.create("r/metrics.csv", "step,train_loss\n");
        let e = cmd.args(["train", "--resume", "r"]).fails();
        assert!(
            e.contains("no checkpoint yet") && !e.contains("(none)"),
            "{e}"
        );
        // eval names the file that is really missing
        dir.create("m/model.safetensors", "x");
        let e = dir.command().args(["eval", "--model", "m"]).fails();
        assert!(e.contains("config.json missing"), "{e}");
    }
);

// ---------------------------------------------------------------------------
// shiren write

shiren_test!(
    write_count_streams_poems_as_they_are_written,
    |_dir: Dir, cmd: TestCommand| {
        use std::io::BufRead;
        // held 3.2 GB and printed nothing until the 100000th poem was written
        let mut cmd = cmd;
        let mut child = cmd
            .args([
                "write",
                "--count",
                "100000",
                "--form",
                "wujue",
                "--no-rhyme",
            ])
            .args(["--seed", "1", "--threads", "1"])
            .cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut first = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut first);
            let _ = tx.send(first);
        });
        let first = rx.recv_timeout(Duration::from_secs(60));
        child.kill().unwrap();
        child.wait().unwrap();
        let first = first.expect("no poem within 60 s of starting 100000");
        assert_eq!(first.trim_end().chars().count(), 6, "{first:?}");
    }
);

shiren_test!(
    streamed_json_is_the_document_it_was,
    |_dir: Dir, mut cmd: TestCommand| {
        let out = cmd
            .args(["write", "--count", "3", "--form", "wujue", "--no-rhyme"])
            .args(["--seed", "5", "--json"])
            .stdout();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["seed"], 5);
        assert_eq!(v["poems"].as_array().unwrap().len(), 3);
        // the pretty layout serde_json gave the whole document
        assert!(
            out.starts_with("{\n  \"seed\": 5,\n  \"poems\": [\n    {\n      \"text\": ")
                && out.ends_with("\n    }\n  ]\n}\n"),
            "{out}"
        );
    }
);

shiren_test!(
    control_characters_from_the_input_are_escaped_in_errors,
    |_dir: Dir, mut cmd: TestCommand| {
        // a raw ESC reached the terminal
        let e = cmd.args(["write", "--model", "\x1b[2Jnowhere"]).fails();
        assert!(!e.contains('\x1b') && e.contains("\\u{1b}[2J"), "{e:?}");
        let out = Dir::new()
            .command()
            .args(["write", "--form", "\x1b[31mx"])
            .output();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains('\x1b') && stderr.contains("--form"),
            "{stderr:?}"
        );
    }
);

shiren_test!(
    an_acrostic_that_does_not_fit_the_form_asked_for_is_refused,
    |_dir: Dir, mut cmd: TestCommand| {
        // wrote a 4-line "五律", an 8-line "五绝", a 3-line "七绝"
        for (acrostic, form, says) in [
            (
                "春夏秋冬",
                "wulv",
                "has 4 characters but a 五律 has 8 lines",
            ),
            (
                "春夏秋冬春夏秋冬",
                "wujue",
                "has 8 characters but a 五绝 has 4 lines",
            ),
            ("春夏秋", "qijue", "has 3 characters but a 七绝 has 4 lines"),
        ] {
            let e = Dir::new()
                .command()
                .args(["write", "--acrostic", acrostic, "--form", form])
                .fails();
            assert!(e.contains(says), "{e}");
        }
        // without --form the line count follows the acrostic, as documented
        let out = cmd
            .args(["write", "--acrostic", "春夏秋", "--no-rhyme", "--seed", "1"])
            .stdout();
        assert_eq!(out.lines().count(), 3, "{out}");
    }
);

shiren_test!(
    a_begin_that_would_make_an_empty_line_is_refused,
    |_dir: Dir, mut cmd: TestCommand| {
        // printed three empty lines and exited 0
        let e = cmd.args(["write", "--begin", "。。。"]).fails();
        assert!(e.contains("would end an empty line"), "{e}");
        for begin in ["春。。", "春，。"] {
            let e = Dir::new()
                .command()
                .args(["write", "--begin", begin])
                .fails();
            assert!(
                e.contains("character 3 would end an empty line"),
                "{begin}: {e}"
            );
        }
        // every line of a free poem has characters
        let out = Dir::new()
            .command()
            .args(["write", "--begin", "春，", "--count", "20", "--seed", "2"])
            .stdout();
        for line in out.lines().filter(|l| !l.is_empty()) {
            assert!(
                line.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{line:?}\n{out}"
            );
        }
    }
);

// ---------------------------------------------------------------------------
// the split

#[test]
fn the_split_does_not_move_when_the_corpus_is_reordered_or_grows() {
    use shiren::corpus::convert::Script;
    use shiren::corpus::Poem;
    use shiren::train::Data;
    let poem = |i: usize| Poem {
        title: String::new(),
        author: String::new(),
        text: format!("第{i}首春风，白日依山尽。"),
        source: String::new(),
    };
    let valid_of = |poems: &[Poem]| {
        let d = Data::from_poems(
            poems,
            None,
            1,
            200,
            false,
            false,
            false,
            String::new(),
            Script::Simplified,
        );
        let mut v: Vec<String> = d.valid.iter().map(|ids| d.vocab.decode(ids)).collect();
        v.sort();
        v
    };
    let base: Vec<Poem> = (0..600).map(poem).collect();
    let before = valid_of(&base);
    assert!(before.len() > 10, "{}", before.len());
    let mut grown: Vec<Poem> = (0..900).map(poem).collect();
    shiren::rng::Rng::new(7).shuffle(&mut grown);
    let after = valid_of(&grown);
    // each poem of the first corpus is validation in both or in neither
    let first: std::collections::HashSet<String> = base.iter().map(|p| p.text.clone()).collect();
    let after_first: Vec<String> = after.into_iter().filter(|t| first.contains(t)).collect();
    assert_eq!(before, after_first);
}

// ---------------------------------------------------------------------------
// scripts

#[test]
fn the_browser_test_runs_the_binary_where_cargo_builds_it() {
    // it ran target/debug/shiren even with CARGO_TARGET_DIR set elsewhere
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/browser_test.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("BROWSER_TEST_PRINT_BIN", "1")
        .env("CARGO_TARGET_DIR", "/tmp/shiren-elsewhere")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "/tmp/shiren-elsewhere/debug/shiren");
}
