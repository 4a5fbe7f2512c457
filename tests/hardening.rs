//! Inputs a hostile user would try: sizes nobody checked, files that are not
//! files, folders that loop, gzip bombs, damaged checkpoints, prompts that
//! break the rules, two trainers on one run folder. Each test pins one such
//! input to a one-line error (or to the documented behaviour), no panic, no
//! abort, no hang.

use std::time::{Duration, Instant};

use crate::hay;
use crate::macros::{Dir, TestCommand};

/// A 五绝 as `poems.txt` lines, for corpora the tests build.
const WUJUE: &str = "登鸛雀樓:白日依山盡，黃河入海流。欲窮千里目，更上一層樓。\n";

// ---------------------------------------------------------------------------
// corpus readers

shiren_test!(
    corpus_refuses_a_device_before_reading_it,
    |_dir: Dir, mut cmd: TestCommand| {
        // read whole before any check, /dev/zero grew past 6 GB
        let e = cmd
            .args(["corpus", "stats", "--file", "/dev/zero"])
            .fails();
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
        let mut c = cmd.args(["corpus", "stats", "--file"]).arg(&folder);
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
