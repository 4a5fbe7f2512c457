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
