//! Writing about something: `write --title` with the shipped model (trained
//! with titles) and `write --keywords` in every form, with the small 平水韵
//! table of the co-writing tests laid into each test's data directory.

use crate::cowrite::{piped, poems_of as poems, stdout_of, with_table};
use crate::macros::{Dir, TestCommand};

shiren_test!(
    a_title_is_read_and_changes_the_poem,
    |dir: Dir, _cmd: TestCommand| {
        with_table(&dir);
        let write = |title: &str| {
            dir.command()
                .args(["write", "--form", "qijue", "--seed", "5"])
                .args(["--title", title])
                .stdout()
        };
        let (a, b) = (write("送别"), write("秋夜"));
        for out in [&a, &b] {
            let p = poems(out);
            assert_eq!(p.len(), 1, "{out}");
            assert_eq!(p[0].len(), 4, "{out}");
            assert!(p[0].iter().all(|l| l.chars().count() == 7), "{out}");
        }
        assert_ne!(a, b, "the same seed wrote the same poem for two titles");
        let e = dir.command().args(["write", "--title", "送,别"]).fails();
        assert!(e.contains("not a Han character"), "{e}");
    }
);

shiren_test!(
    keywords_appear_in_every_form_and_hold_strict_tones,
    |dir: Dir, _cmd: TestCommand| {
        with_table(&dir);
        for form in ["wujue", "qijue", "wulv", "qilv"] {
            for seed in ["1", "2"] {
                let out = dir
                    .command()
                    .args(["write", "--form", form, "--seed", seed, "-n", "3"])
                    .args([
                        "--title",
                        "秋夜",
                        "--keywords",
                        "明月,霜",
                        "--tones",
                        "strict",
                    ])
                    .stdout();
                let ps = poems(&out);
                assert_eq!(ps.len(), 3, "{out}");
                for p in ps {
                    let text = p.concat();
                    assert!(
                        text.contains("明月") && text.contains('霜'),
                        "{form}: {text}"
                    );
                }
            }
        }
    }
);

shiren_test!(
    keywords_that_cannot_be_placed_are_refused_with_one_line,
    |dir: Dir, _cmd: TestCommand| {
        with_table(&dir);
        let e = dir
            .command()
            .args(["write", "--keywords", "明,月,江,舟,霜"])
            .fails();
        assert!(e.contains("at most 4"), "{e}");
        let e = dir
            .command()
            .args(["write", "--form", "free", "--keywords", "明月"])
            .fails();
        assert!(e.contains("fixed lines"), "{e}");
        let e = dir
            .command()
            .args(["write", "--acrostic", "春秋"])
            .args(["--keywords", "明月,江,舟"])
            .fails();
        assert!(e.contains("each keyword takes a line"), "{e}");
    }
);

shiren_test!(
    the_prompt_keeps_a_title_and_keywords_for_the_next_poems,
    |dir: Dir, mut cmd: TestCommand| {
        with_table(&dir);
        let input =
            "seed 3\ntitle 送别\nkeywords 江,舟\n明月\nsettings\ntitle\nkeywords\nsettings\n";
        let out = piped(cmd.args(["write", "-i"]), input);
        let text = stdout_of(&out);
        assert_eq!(out.status.code(), Some(0), "{text}");
        let poem: String = text
            .lines()
            .skip_while(|l| !l.starts_with("明月"))
            .take(4)
            .collect();
        assert_eq!(
            poem.chars().filter(|c| !"，。".contains(*c)).count(),
            28,
            "{text}"
        );
        assert!(poem.contains('江') && poem.contains('舟'), "{text}");
        assert!(text.contains("title 送别, keywords 江,舟"), "{text}");
        assert!(text.contains("title none, keywords none"), "{text}");
    }
);
