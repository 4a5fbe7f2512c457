//! `shiren corpus`: each reader, each cleaning rule and each bad input, run
//! through the built binary on the tiny corpora of `hay.rs`; and one ignored
//! test on the real chinese-poetry collection.

use std::collections::HashMap;

use crate::hay;
use crate::macros::{Dir, TestCommand};

/// The numbers of a `corpus stats` report: `read`, `kept`, each rule's drops
/// under its name, and each form's kept count under `form:<name>`.
fn stats_numbers(out: &str) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for line in out.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["read", n] | ["kept", n] => {
                m.insert(w[0].to_string(), n.parse().unwrap());
            }
            ["dropped", n, rule, ..] => {
                m.insert(rule.to_string(), n.parse().unwrap());
            }
            [form, n, _, _] if form.chars().count() == 2 && n.parse::<usize>().is_ok() => {
                m.insert(format!("form:{form}"), n.parse().unwrap());
            }
            _ => {}
        }
    }
    m
}

fn tang_dir(dir: &Dir, folder: &str) -> std::path::PathBuf {
    dir.create(&format!("{folder}/poet.tang.0.json"), hay::TANG_JSON);
    dir.create(
        &format!("{folder}/error/poet.tang.0.json"),
        hay::TANG_ERRORS,
    );
    dir.create(
        &format!("{folder}/authors.tang.json"),
        r#"[{"name": "王維", "desc": "…"}]"#,
    );
    dir.join(folder)
}

shiren_test!(
    json_folder_applies_every_rule,
    |dir: Dir, mut cmd: TestCommand| {
        let folder = tang_dir(&dir, "quantangshi");
        let out = cmd
            .args(["corpus", "stats", "--file"])
            .arg(&folder)
            .stdout();
        let n = stats_numbers(&out);
        assert_eq!(n["read"], 9, "{out}");
        assert_eq!(n["kept"], 4, "{out}");
        for (rule, count) in [
            ("error-list", 1),
            ("duplicate", 1),
            ("lost-chars", 1),
            ("notes", 1),
            ("too-short", 1),
            ("too-long", 0),
            ("bad-line", 0),
        ] {
            assert_eq!(n[rule], count, "{rule}\n{out}");
        }
        for form in ["五绝", "七绝", "五律", "七律"] {
            assert_eq!(n[&format!("form:{form}")], 1, "{form}\n{out}");
        }
    }
);

shiren_test!(
    github_layout_folder_is_read_the_same,
    |dir: Dir, mut cmd: TestCommand| {
        let folder = tang_dir(&dir, "全唐诗");
        let n = stats_numbers(
            &cmd.args(["corpus", "stats", "--file"])
                .arg(&folder)
                .stdout(),
        );
        assert_eq!((n["read"], n["kept"]), (9, 4));
    }
);

shiren_test!(max_len_is_a_flag, |dir: Dir, mut cmd: TestCommand| {
    let folder = tang_dir(&dir, "q");
    let out = cmd
        .args(["corpus", "stats", "--max-len", "40", "--file"])
        .arg(&folder)
        .stdout();
    let n = stats_numbers(&out);
    // 五律 (48) and 七律 (64) are now too long.
    assert_eq!((n["too-long"], n["kept"]), (2, 2), "{out}");
});

shiren_test!(
    simplified_by_default_traditional_on_request,
    |dir: Dir, cmd: TestCommand| {
        let folder = tang_dir(&dir, "q");
        let run = |script: &str| {
            let mut c = dir.command();
            c.args([
                "corpus", "stats", "--top", "500", "--script", script, "--file",
            ])
            .arg(&folder)
            .stdout()
        };
        drop(cmd);
        let simplified = run("simplified");
        let traditional = run("traditional");
        // 黃 (traditional) becomes 黄, 鸝 becomes 鹂.
        assert!(
            simplified.contains("黄") && !simplified.contains("黃"),
            "{simplified}"
        );
        assert!(
            simplified.contains("鹂") && !simplified.contains("鸝"),
            "{simplified}"
        );
        assert!(
            traditional.contains("黃") && traditional.contains("鸝"),
            "{traditional}"
        );
    }
);

shiren_test!(
    poems_txt_with_bom_crlf_and_colons_in_titles,
    |dir: Dir, mut cmd: TestCommand| {
        let body = format!("\u{feff}{}", hay::POEMS_TXT.replace('\n', "\r\n"));
        let p = dir.create("poems.txt", body);
        let out = cmd.args(["corpus", "stats", "--file"]).arg(&p).stdout();
        let n = stats_numbers(&out);
        assert_eq!((n["read"], n["kept"]), (4, 4), "{out}");
        // The title with a colon kept its poem: one 五绝 more than without it.
        assert_eq!(n["form:五绝"], 3, "{out}");
        assert_eq!(n["form:七绝"], 1, "{out}");
    }
);

shiren_test!(
    plain_text_records_are_blank_line_separated,
    |dir: Dir, mut cmd: TestCommand| {
        let p = dir.create("mine.txt", hay::TEXT);
        let out = cmd.args(["corpus", "stats", "--file"]).arg(&p).stdout();
        let n = stats_numbers(&out);
        assert_eq!((n["read"], n["kept"]), (3, 3), "{out}");
        assert_eq!((n["form:五绝"], n["form:其他"]), (2, 1), "{out}");
    }
);

shiren_test!(format_can_be_forced, |dir: Dir, mut cmd: TestCommand| {
    // Detected as poems.txt this is 4 records; forced as text it is one.
    let p = dir.create("poems.dat", hay::POEMS_TXT);
    let out = cmd
        .args([
            "corpus",
            "stats",
            "--format",
            "text",
            "--max-len",
            "1000",
            "--file",
        ])
        .arg(&p)
        .stdout();
    assert_eq!(stats_numbers(&out)["read"], 1, "{out}");
});

shiren_test!(
    a_folder_of_own_files_is_read_recursively,
    |dir: Dir, mut cmd: TestCommand| {
        dir.create("mine/a.txt", hay::TEXT);
        dir.create("mine/more/b.txt", hay::POEMS_TXT);
        let out = cmd.args(["corpus", "stats", "--file", "mine"]).stdout();
        let n = stats_numbers(&out);
        assert_eq!(n["read"], 7, "{out}");
        // 床前明月光… is in both files.
        assert_eq!(n["duplicate"], 1, "{out}");
    }
);

shiren_test!(
    vocab_is_saved_and_checked,
    |dir: Dir, mut cmd: TestCommand| {
        let p = dir.create("poems.txt", hay::POEMS_TXT);
        let out = cmd
            .args(["corpus", "vocab", "--save", "vocab.json", "--file"])
            .arg(&p)
            .stdout();
        assert!(out.contains("vocabulary"), "{out}");
        let check = dir
            .command()
            .args(["corpus", "vocab", "--check", "vocab.json"])
            .stdout();
        assert!(check.contains("4 reserved"), "{check}");
    }
);

// ---- bad input: one line naming the file, non-zero exit, no panic ----

shiren_test!(missing_path, |_dir: Dir, mut cmd: TestCommand| {
    let err = cmd
        .args(["corpus", "stats", "--file", "nowhere/poems.txt"])
        .fails();
    contains_all!(err, "nowhere/poems.txt", "no such file");
});

shiren_test!(
    json_that_does_not_parse,
    |dir: Dir, mut cmd: TestCommand| {
        let p = dir.create(
            "broken.json",
            "[\n  {\"title\": \"t\",\n   \"paragraphs\": [\"一二三四五\" \"x\"]}\n]",
        );
        let err = cmd.args(["corpus", "stats", "--file"]).arg(&p).fails();
        contains_all!(err, "broken.json:3:", "not valid JSON");
    }
);

shiren_test!(file_that_is_not_utf8, |dir: Dir, mut cmd: TestCommand| {
    // "静夜思:" in UTF-8 (10 bytes), then 床前 in GBK.
    let mut bytes = "静夜思:".as_bytes().to_vec();
    bytes.extend_from_slice(&[0xB4, 0xB2, 0xC7, 0xB0]);
    let p = dir.create("gbk.txt", bytes);
    let err = cmd.args(["corpus", "stats", "--file"]).arg(&p).fails();
    contains_all!(err, "gbk.txt", "not UTF-8 at byte 10", "iconv");
});

shiren_test!(empty_file, |dir: Dir, mut cmd: TestCommand| {
    let p = dir.create("empty.txt", "\n\n");
    let err = cmd.args(["corpus", "stats", "--file"]).arg(&p).fails();
    contains_all!(err, "empty.txt", "no records read");
});

shiren_test!(
    cleaning_that_empties_the_corpus_names_the_rules,
    |dir: Dir, mut cmd: TestCommand| {
        let p = dir.create(
            "short.txt",
            "一:春已归\n二:花落\n三:冰□已鏤津，綬吐芽猶嫩。\n",
        );
        let err = cmd.args(["corpus", "stats", "--file"]).arg(&p).fails();
        contains_all!(
            err,
            "short.txt",
            "cleaning left no poems",
            "read 3",
            "too-short 2",
            "lost-chars 1"
        );
    }
);

shiren_test!(
    poems_txt_line_without_colon,
    |dir: Dir, mut cmd: TestCommand| {
        let body = format!("{}没有冒号的一行\n", hay::POEMS_TXT);
        let p = dir.create("poems.txt", body);
        let err = cmd
            .args(["corpus", "stats", "--format", "poems-txt", "--file"])
            .arg(&p)
            .fails();
        contains_all!(err, "poems.txt:5:", "no ':'", "--skip-bad");
        // With --skip-bad the line is counted and skipped.
        let out = dir
            .command()
            .args([
                "corpus",
                "stats",
                "--skip-bad",
                "--format",
                "poems-txt",
                "--file",
            ])
            .arg(&p)
            .stdout();
        let n = stats_numbers(&out);
        assert_eq!((n["read"], n["bad-line"], n["kept"]), (5, 1, 4), "{out}");
        // With -v the skipped line is named.
        let out = dir
            .command()
            .args([
                "-v",
                "corpus",
                "stats",
                "--skip-bad",
                "--format",
                "poems-txt",
                "--file",
            ])
            .arg(&p)
            .stdout();
        assert!(
            out.contains("e.g. ") && out.contains("poems.txt:5"),
            "{out}"
        );
    }
);

shiren_test!(
    vocab_file_that_does_not_parse,
    |dir: Dir, mut cmd: TestCommand| {
        dir.create("vocab.json", "{\"format\": \"shiren-vocab\",");
        let err = cmd
            .args(["corpus", "vocab", "--check", "vocab.json"])
            .fails();
        contains_all!(err, "vocab.json", "not valid JSON at line 1");
    }
);

shiren_test!(fetch_without_npm, |dir: Dir, mut cmd: TestCommand| {
    let empty = dir.join("no-tools");
    std::fs::create_dir(&empty).unwrap();
    let err = cmd.env("PATH", &empty).args(["corpus", "fetch"]).fails();
    contains_all!(err, "npm is not installed", "install Node.js");
    assert!(!dir.data_dir().join("chinese-poetry-2.0.1").exists());
});

shiren_test!(
    #[cfg(unix)]
    fetch_with_a_tarball_that_fails_its_hash,
    |dir: Dir, mut cmd: TestCommand| {
        use std::os::unix::fs::PermissionsExt;
        // A stand-in npm that "packs" a tarball with the wrong bytes.
        let bin = dir.join("bin");
        let npm = dir.create(
            "bin/npm",
            "#!/bin/sh\necho not-the-package > chinese-poetry-2.0.1.tgz\necho chinese-poetry-2.0.1.tgz\n",
        );
        std::fs::set_permissions(&npm, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = cmd.env("PATH", &bin).args(["corpus", "fetch"]).fails();
        contains_all!(
            err,
            "chinese-poetry-2.0.1.tgz",
            "sha512 integrity mismatch",
            "fetch again"
        );
        // Nothing half-made is left in the cache.
        let left: Vec<_> = std::fs::read_dir(dir.data_dir())
            .unwrap()
            .flatten()
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
);

// ---- the real corpus ----

/// `corpus fetch` then `corpus stats --corpus tang` on the real chinese-poetry
/// collection, in the user's data directory ($SHIREN_DATA or ~/.cache/shiren),
/// so the 85 MB fetch happens once.
#[test]
#[ignore = "needs the real corpus (fetched)"]
fn real_tang_corpus() {
    let dir = Dir::new();
    let real = |args: &[&str]| dir.command_real_data().args(args).stdout();
    real(&["corpus", "fetch"]);
    let out = real(&["corpus", "stats", "--corpus", "tang", "--top", "3000"]);
    let n = stats_numbers(&out);
    assert_eq!(n["read"], 57_607, "{out}");
    let kept = n["kept"] as f64;
    assert!((47_000.0..51_000.0).contains(&kept), "{out}");
    // The collection's own form shares (of all records read), as published.
    let shares: HashMap<&str, f64> = out
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() == 4 && w[3].ends_with('%')).then(|| {
                let form = ["五绝", "七绝", "五律", "七律", "其他"]
                    .into_iter()
                    .find(|f| *f == w[0])?;
                Some((form, w[3].trim_end_matches('%').parse().ok()?))
            })?
        })
        .collect();
    for (form, expected) in [
        ("五绝", 6.9),
        ("七绝", 18.3),
        ("五律", 25.2),
        ("七律", 13.9),
    ] {
        let got = shares[form];
        assert!(
            (got - expected).abs() < 0.5,
            "{form}: {got}% vs {expected}%\n{out}"
        );
    }
    assert!(n["duplicate"] > 500, "{out}");
    let padding: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("padding"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|p| p.trim_end_matches('%').parse().ok())
        .unwrap();
    assert!(
        padding < 5.0,
        "bucketed batches pad a few percent at most: {padding}%"
    );
    assert!(
        out.contains("莺") && !out.contains("鶯"),
        "simplified by default"
    );
    let trad = real(&[
        "corpus",
        "stats",
        "--corpus",
        "tang",
        "--top",
        "3000",
        "--script",
        "traditional",
    ]);
    assert!(
        trad.contains("鶯") && !trad.contains("莺"),
        "traditional on request"
    );
}
