//! `shiren tunes` and `shiren write --tune` on the real Song ci (ignored:
//! they need the fetched corpus and 平水韵 package; CI runs them with
//! --include-ignored). Derivation, the check, and tune-constrained writing on
//! made-up ci run in `src/prosody/tunes.rs` and `src/write.rs`.

use crate::macros::{Dir, TestCommand};

shiren_test!(
    #[ignore = "needs the real corpus (fetched)"]
    tunes_lists_and_shows_huanxisha,
    |dir: Dir, _cmd: TestCommand| {
        let list = dir
            .command_real_data()
            .args(["tunes", "--top", "3"])
            .stdout();
        let rows: Vec<&str> = list.lines().skip(2).collect();
        assert_eq!(rows.len(), 3, "{list}");
        assert!(
            rows[0].contains("浣溪沙") && rows[0].contains("平韵"),
            "{list}"
        );
        let one = dir.command_real_data().args(["tunes", "浣溪沙"]).stdout();
        // Lines 1, 2, 3, 5, 6 rhyme level; line 4 is ◐●◐○○●● as the 词谱 has it.
        assert!(one.contains("体 1 (正体): lines of 7 7 7 7 7 7"), "{one}");
        assert!(one.contains("\n◐●◐○○●●，\n"), "{one}");
        assert_eq!(one.matches("韵(平)").count(), 5, "{one}");
    }
);

shiren_test!(
    #[ignore = "needs the real corpus (fetched)"]
    unknown_tunes_and_variants_get_one_line_with_close_names,
    |dir: Dir, _cmd: TestCommand| {
        let e = dir.command_real_data().args(["tunes", "浣纱溪"]).fails();
        assert!(
            e.contains("unknown tune `浣纱溪`") && e.contains("浣溪沙"),
            "{e}"
        );
        let e = dir
            .command_real_data()
            .args(["write", "--tune", "浣溪沙", "--variant", "9"])
            .fails();
        assert!(
            e.contains("no form 9") && e.contains("(--variant 1 to"),
            "{e}"
        );
        let e = dir
            .command_real_data()
            .args(["write", "--tune", "xyz"])
            .fails();
        assert!(
            e.contains("unknown tune `xyz`") && e.contains("common tunes"),
            "{e}"
        );
    }
);

shiren_test!(
    #[ignore = "needs the real corpus (fetched)"]
    written_ci_have_their_tunes_shape_and_rhyme_marks,
    |dir: Dir, _cmd: TestCommand| {
        for (tune, lens) in [
            ("如梦令", vec![6, 6, 5, 6, 2, 2, 6]),
            ("浣溪沙", vec![7; 6]),
        ] {
            let out = dir
                .command_real_data()
                .args([
                    "write", "--tune", tune, "--tones", "strict", "--seed", "1", "--json",
                ])
                .stdout();
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            let lines = v["poems"][0]["lines"].as_array().unwrap();
            let got: Vec<usize> = lines
                .iter()
                .map(|l| l["chars"].as_array().unwrap().len())
                .collect();
            assert_eq!(got, lens, "{out}");
            assert_eq!(v["poems"][0]["tones"], "strict", "{out}");
            assert!(
                v["poems"][0]["rhyme_group"]
                    .as_str()
                    .unwrap()
                    .contains('部'),
                "{out}"
            );
        }
    }
);

shiren_test!(
    #[ignore = "needs the real corpus (fetched)"]
    check_tune_passes_yan_shus_huanxisha_and_names_a_broken_place,
    |dir: Dir, _cmd: TestCommand| {
        // 晏殊《浣溪沙》: its tones and rhymes are the tune's
        let good = "一曲新词酒一杯，去年天气旧亭台。夕阳西下几时回。无可奈何花落去，似曾相识燕归来。小园香径独徘徊。";
        let out = dir
            .command_real_data()
            .args(["check", "--tune", "浣溪沙", good])
            .output();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(text.contains("浣溪沙 (form 1"), "{text}");
        // without a name the tune is guessed from the line lengths
        let guessed = dir
            .command_real_data()
            .args(["check", "--tune", "--", good])
            .output();
        let text = String::from_utf8_lossy(&guessed.stdout);
        assert!(text.contains(" (form "), "{text}");
        // 杯 → 酒 at a rhyme foot: oblique, and outside the set's class
        let bad = good.replacen("酒一杯", "酒一酒", 1);
        let out = dir
            .command_real_data()
            .args(["check", "--tune", "浣溪沙", &bad])
            .output();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains("line 1, char 7 酒"), "{text}");
        // a ci of no form of the tune, and an unknown tune: one line, exit 2
        let e = dir
            .command_real_data()
            .args(["check", "--tune", "浣溪沙", "一二三四五。"])
            .fails();
        assert!(e.contains("fit no form of 浣溪沙"), "{e}");
        let e = dir
            .command_real_data()
            .args(["check", "--tune", "浣纱溪", good])
            .fails();
        assert!(e.contains("unknown tune"), "{e}");
    }
);
