//! Reading the Song ci of the fetched chinese-poetry package, and deriving
//! the 词谱 from them (the I/O around [`super::tunes`], which stays pure).
//!
//! `dist/songci/ci.song.N.json` hold 21,053 ci as `{author, paragraphs,
//! rhythmic}`, in simplified script; `rhythmic` is the tune's name. The files
//! are read in the order of N, so held-out splits are the same on every machine.

use std::path::Path;

use anyhow::Context as _;

use super::cilin::Cilin;
use super::tunes::Cipu;
use super::Lexicon;
use crate::corpus::convert::Script;

#[derive(serde::Deserialize)]
struct CiRecord {
    paragraphs: Vec<String>,
    rhythmic: String,
}

/// Every Song ci as (tune, text), in file order.
pub fn read_ci(package: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let dir = package.join("dist/songci");
    let mut files: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(&dir)
        .with_context(|| format!("{}: cannot list the Song ci", dir.display()))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix("ci.song.")?.strip_suffix(".json")?;
            Some((n.parse().ok()?, e.path()))
        })
        .collect();
    files.sort();
    anyhow::ensure!(
        !files.is_empty(),
        "{}: no ci.song.N.json files (delete the corpus package folder to refetch it)",
        dir.display()
    );
    let mut out = Vec::new();
    for (_, path) in files {
        let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
        let v: Vec<CiRecord> = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a list of ci records", path.display()))?;
        out.extend(v.into_iter().map(|r| (r.rhythmic, r.paragraphs.concat())));
    }
    Ok(out)
}

/// The Song ci, the simplified lexicon and its 词林正韵 classes, fetched
/// under `data_dir` on first use; what `shiren tunes`, `write --tune` and
/// the web page's tunes are built from.
pub struct Songci {
    pub ci: Vec<(String, String)>,
    pub lex: Lexicon,
    /// 词林正韵, with the split groups split by these ci's rhymes.
    pub cilin: Cilin,
    /// The 词谱 of every tune with enough ci.
    pub cipu: Cipu,
}

impl Songci {
    pub fn load(data_dir: &Path) -> anyhow::Result<Songci> {
        let package = crate::corpus::fetch::ensure_package(data_dir)?;
        let ci = read_ci(&package).context("reading the Song ci")?;
        // The collection is simplified, so the patterns are derived with the simplified lexicon.
        let lex = Lexicon::load(data_dir, Script::Simplified)
            .context("loading the 平水韵 tone and rhyme lexicon")?;
        let (cilin, cipu) = Cipu::build(&lex, ci.iter().map(|(t, x)| (t.as_str(), x.as_str())));
        Ok(Songci {
            ci,
            lex,
            cilin,
            cipu,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prosody::tunes::{self, TuneForm};
    use crate::prosody::{Tone, ToneMode};

    fn real() -> Songci {
        let dir = crate::cache::data_dir(None).unwrap();
        Songci::load(&dir).unwrap()
    }

    /// 浣溪沙 as 龙榆生《唐宋词格律》 gives it: 中 = 可平可仄.
    const HUANXISHA: [&str; 6] = [
        "中仄中平中仄平",
        "中平中仄仄平平",
        "中平中仄仄平平",
        "中仄中平平仄仄",
        "中平中仄仄平平",
        "中平中仄仄平平",
    ];

    #[test]
    #[ignore = "needs the real corpus and 平水韵 package (fetched)"]
    fn real_patterns_hold_on_held_out_ci_and_huanxisha_is_the_books() {
        let s = real();
        let pairs: Vec<(&str, &str)> = s.ci.iter().map(|(t, x)| (t.as_str(), x.as_str())).collect();
        let (_, h) = tunes::held_out(&s.lex, &pairs, 10, 20);
        eprintln!("{h:?}");
        assert_eq!(h.tunes, 20);
        assert!(h.fitted > 700, "{h:?}");
        assert!(h.position_rate() >= 0.90 && h.tone_rate() >= 0.90, "{h:?}");
        assert!(h.rhyme_rate() >= 0.95, "{h:?}");

        let cipu = &s.cipu;
        assert!(cipu.len() >= 100, "{} tunes", cipu.len());
        // 开 rhymes with 怀 and 谐 in the Song ci (第五部); 回 with 归 but
        // also with 来 and 台: it keeps 第三部.
        let bu = |c| -> Vec<u8> {
            s.cilin
                .classes(&s.lex, c)
                .iter()
                .filter(|k| k.level)
                .map(|k| k.bu)
                .collect()
        };
        assert_eq!(bu('开'), vec![5], "{} split", s.cilin.num_split());
        assert!(bu('回').contains(&3));
        let (t, f) = cipu.form("浣溪沙", 1).unwrap();
        assert!(t.count > 700);
        assert_eq!(f.shape(), "7 7 7 7 7 7");
        // Every tone the book fixes is fixed the same way here; where the
        // book allows either, the Song poets may still have kept one.
        for (line, book) in f.lines.iter().zip(HUANXISHA) {
            for (&got, want) in line.tones.iter().zip(book.chars()) {
                match want {
                    '平' => assert_eq!(got, Tone::Ping, "{book}"),
                    '仄' => assert_eq!(got, Tone::Ze, "{book}"),
                    _ => {}
                }
            }
        }
        let rhymes: Vec<bool> = f.lines.iter().map(|l| l.rhyme.is_some()).collect();
        assert_eq!(rhymes, [true, true, true, false, true, true]);
        assert_eq!(f.sets, [Tone::Ping]);
        assert_eq!(cipu.form("如梦令", 1).unwrap().1.sets, [Tone::Ze]);
        assert_eq!(cipu.form("菩萨蛮", 1).unwrap().1.rhyme_kind(), "平仄换韵");
        let e = cipu.tune("浣溪纱").unwrap_err().to_string();
        assert!(e.contains("浣溪沙"), "{e}");
        assert!(cipu.tune("忆江南").is_ok(), "an alias finds 望江南・忆江南");
    }

    /// Fixed tones kept and rhyme sets in one class, counted against the form
    /// itself (not through `tunes::check`).
    fn kept(s: &Songci, form: &TuneForm, p: &crate::write::Poem) -> (usize, usize, usize, usize) {
        let (mut tk, mut tn, mut rk, mut rn) = (0, 0, 0, 0);
        let mut shared: Vec<Option<Vec<crate::prosody::cilin::Class>>> =
            vec![None; form.sets.len()];
        for (line, want) in p.lines.iter().zip(&form.lines) {
            for (c, &t) in line.chars.iter().zip(&want.tones) {
                if t != Tone::Both {
                    tn += 1;
                    tk += usize::from(s.lex.tone(c.ch).is_some_and(|g| g.fits(t)));
                }
            }
            if let (Some(set), Some(last)) = (want.rhyme, line.chars.last()) {
                let level = form.sets[set] == Tone::Ping;
                let mine: Vec<_> = s
                    .cilin
                    .classes(&s.lex, last.ch)
                    .into_iter()
                    .filter(|k| k.level == level)
                    .collect();
                let sh = shared[set].get_or_insert_with(|| mine.clone());
                sh.retain(|k| mine.contains(k));
                rn += 1;
                rk += usize::from(!sh.is_empty());
            }
        }
        (tk, tn, rk, rn)
    }

    #[test]
    #[ignore = "needs the real corpus, the 平水韵 package and the shipped models"]
    fn the_shipped_models_keep_the_20_most_common_tunes_under_strict_tones() {
        let s = real();
        for model in ["models/tang-small", "models/songci-small"] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(model);
            keeps_the_common_tunes(&s, &crate::checkpoint::load(&dir).unwrap());
        }
    }

    fn keeps_the_common_tunes(s: &Songci, loaded: &crate::checkpoint::Loaded) {
        let cipu = &s.cipu;
        let lm = crate::write::Lm::new(&loaded.model, &loaded.vocab);
        let lex = match loaded.meta.script {
            Script::Simplified => s.lex.clone(),
            Script::Traditional => return, // the patterns are checked with the simplified lexicon
        };
        let w = crate::write::Writer::new(&lm, Some(&lex)).with_cilin(&s.cilin);
        let (mut tk, mut tn, mut rk, mut rn, mut relaxed) = (0, 0, 0, 0, 0);
        for t in cipu.tunes.iter().take(20) {
            let form = &t.forms[0];
            let o = crate::write::Options {
                tune: Some(form.clone()),
                rhyme: true,
                tones: ToneMode::Strict,
                ..Default::default()
            };
            for p in w.write_many(&o, 10, 1).unwrap() {
                if p.tones != ToneMode::Strict || !p.rhyme {
                    relaxed += 1;
                    continue;
                }
                let (a, b, c, d) = kept(s, form, &p);
                (tk, tn, rk, rn) = (tk + a, tn + b, rk + c, rn + d);
                assert_eq!((a, c), (b, d), "{}: {}", t.name, p.text);
            }
        }
        eprintln!("tones kept {tk}/{tn}, rhymes {rk}/{rn}, relaxed {relaxed} of 200");
        assert!(relaxed <= 2, "{relaxed} of 200 ci had to relax a rule");
    }
}
