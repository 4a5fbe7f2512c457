//! Readers: raw records out of the three source formats, with no cleaning.
//!
//! - chinese-poetry JSON: an array of objects with `title` (or `rhythmic` for
//!   ci), `author`, `paragraphs` (or `content`) and `id`. Both the npm
//!   package layout (`dist/quantangshi/poet.tang.*.json`) and the GitHub
//!   repository layout (`全唐诗/poet.tang.*.json`, `宋词/ci.song.*.json`) are
//!   plain folders of such files, so one reader serves both.
//! - `poems.txt` (the original project's format): one poem a line, `title:content`,
//!   with an ASCII or full-width colon.
//! - plain UTF-8 text: records separated by blank lines; a record's first line
//!   is not treated as a title.
//!
//! Every file is checked to be UTF-8 (a UTF-8 BOM is skipped) and may use CRLF
//! line ends. Cleaning is [`super::clean`]'s job, not this module's.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::CorpusError;

/// The source formats. `--format` forces one; otherwise [`detect`] picks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// `title:content`, one poem a line (the original project's poems.txt)
    PoemsTxt,
    /// chinese-poetry JSON: an array of {title, author, paragraphs, id}
    ChinesePoetryJson,
    /// Plain UTF-8 text, records separated by blank lines
    Text,
}

/// One record as read, before cleaning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRecord {
    pub title: String,
    pub author: String,
    /// The poem's lines joined: JSON paragraphs with nothing between them;
    /// text lines with '\n' between them.
    pub text: String,
    /// The collection's own id, used to apply its error list.
    pub id: Option<String>,
    pub source: String,
}

/// The records of one file, and the malformed lines skipped (`skip_bad`), as `path:line`.
#[derive(Debug, Default)]
pub struct FileRecords {
    pub records: Vec<RawRecord>,
    pub bad_lines: Vec<String>,
}

/// How to read.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    pub format: Option<Format>,
    pub skip_bad: bool,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CorpusError + '_ {
    move |source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            CorpusError::NotFound {
                path: path.display().to_string(),
            }
        } else {
            CorpusError::Io {
                path: path.display().to_string(),
                source,
            }
        }
    }
}

/// Entries of a folder (not recursive), sorted.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, CorpusError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io_err(dir))? {
        out.push(e.map_err(io_err(dir))?.path());
    }
    out.sort();
    Ok(out)
}

/// The poem files a `--file PATH` names: the file itself, or the poem files of a
/// folder. In a folder, chinese-poetry's own files (`poet.*.json`, `ci.*.json`)
/// are taken when present, so its author lists and error folder are not read
/// as poems; otherwise every `*.json` and `*.txt` file, recursively.
pub fn files_under(path: &Path) -> Result<Vec<PathBuf>, CorpusError> {
    walk(path).map(|w| w.files)
}

/// The files of a folder walk, and the entries it passed over.
#[derive(Debug, Default)]
pub struct Walk {
    pub files: Vec<PathBuf>,
    /// Entries not read: FIFOs, devices and sockets (a read could block or
    /// never end), links that lead out of the folder, in a circle, or to a
    /// file or folder already taken.
    pub skipped: usize,
}

/// [`files_under`], counting what it skips. Symbolic links are followed only
/// to places inside the folder not yet visited, so `self -> .`, `up -> ..`
/// and a link to /dev/zero are skipped, and each file is read once.
pub fn walk(path: &Path) -> Result<Walk, CorpusError> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    if !meta.is_dir() {
        return Ok(Walk {
            files: vec![path.to_path_buf()],
            skipped: 0,
        });
    }
    let root = std::fs::canonicalize(path).map_err(io_err(path))?;
    let mut skipped = 0;
    let mut seen: HashSet<PathBuf> = HashSet::from([root.clone()]);
    // What an entry is, after following a link that stays inside the folder:
    // Some((is_dir, canonical path)), or None when it is skipped.
    let mut resolve = |p: &Path| -> Option<(bool, PathBuf)> {
        let lmeta = std::fs::symlink_metadata(p).ok()?;
        let canon = if lmeta.file_type().is_symlink() {
            std::fs::canonicalize(p)
                .ok()
                .filter(|c| c.starts_with(&root))?
        } else {
            p.to_path_buf()
        };
        let meta = std::fs::metadata(&canon).ok()?;
        if !(meta.is_dir() || meta.is_file()) {
            return None;
        }
        let key = std::fs::canonicalize(&canon).unwrap_or(canon);
        seen.insert(key.clone()).then_some((meta.is_dir(), key))
    };

    let entries = list_dir(path)?;
    let name = |p: &PathBuf| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let cp: Vec<PathBuf> = entries
        .iter()
        .filter(|p| {
            let n = name(p);
            std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file())
                && (n.starts_with("poet.") || n.starts_with("ci."))
                && n.ends_with(".json")
        })
        .cloned()
        .collect();
    if !cp.is_empty() {
        return Ok(Walk { files: cp, skipped });
    }
    let mut files = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for p in list_dir(&dir)? {
            let n = name(&p);
            if n.starts_with('.') || (n == "error" && p.is_dir()) {
                continue;
            }
            let poem_file =
                (n.ends_with(".json") || n.ends_with(".txt")) && !n.starts_with("author");
            match resolve(&p) {
                Some((true, _)) => stack.push(p),
                Some((false, _)) if poem_file => files.push(p),
                Some((false, _)) => {}
                None => skipped += 1,
            }
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(CorpusError::NoFiles {
            path: path.display().to_string(),
        });
    }
    Ok(Walk { files, skipped })
}

/// The largest file read (the whole Tang collection is ~60 MB of JSON).
pub const MAX_FILE_BYTES: u64 = 2 << 30;

/// The ids in a chinese-poetry `error/` folder (records the collection itself flags
/// as doubtful: lost characters, introductions instead of poems, …). No folder, no ids.
pub fn error_ids(dir: &Path) -> Result<HashSet<String>, CorpusError> {
    let mut ids = HashSet::new();
    if !dir.is_dir() {
        return Ok(ids);
    }
    for path in list_dir(dir)? {
        if path.extension().is_some_and(|e| e == "json") {
            for r in read_json(&path)?.records {
                if let Some(id) = r.id {
                    ids.insert(id);
                }
            }
        }
    }
    Ok(ids)
}

/// Reads a file as UTF-8, skipping a BOM; a bad byte is reported with its offset.
/// Only regular files of at most [`MAX_FILE_BYTES`] are read: a device
/// (/dev/zero) or a FIFO is refused before it is opened.
pub fn read_utf8(path: &Path) -> Result<String, CorpusError> {
    use std::io::Read;
    let shown = || path.display().to_string();
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(CorpusError::NotRegular { path: shown() });
    }
    let too_large = || CorpusError::TooLarge {
        path: shown(),
        max: MAX_FILE_BYTES,
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(io_err(path))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let start = if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
        3
    } else {
        0
    };
    String::from_utf8(bytes).map_err(|e| CorpusError::NotUtf8 {
        path: shown(),
        offset: start + e.utf8_error().valid_up_to(),
    })
}

/// Picks the format from the extension, then the content: JSON starts with `[`
/// or `{`; `PoemsTxt` when 90% of the lines carry a colon, or more than half
/// and no blank line separates records; otherwise `Text`.
pub fn detect(path: &Path, content: &str) -> Format {
    if path.extension().is_some_and(|e| e == "json") {
        return Format::ChinesePoetryJson;
    }
    let head = content.trim_start();
    if head.starts_with('[') || head.starts_with('{') {
        return Format::ChinesePoetryJson;
    }
    let lines: Vec<&str> = content.lines().map(str::trim).collect();
    let non_empty = lines.iter().filter(|l| !l.is_empty()).count();
    let blank_inside = lines
        .windows(3)
        .any(|w| !w[0].is_empty() && w[1].is_empty() && !w[2].is_empty());
    let with_colon = lines
        .iter()
        .filter(|l| l.contains(':') || l.contains('：'))
        .count();
    // Most lines `title:content` is poems.txt; a few lines without a colon among
    // them are then reported as bad lines rather than read as one long record.
    let colons = with_colon * 10 >= non_empty * 9 || (!blank_inside && with_colon * 2 > non_empty);
    if non_empty > 0 && colons {
        Format::PoemsTxt
    } else {
        Format::Text
    }
}

/// Reads one file in the given or detected format.
pub fn read_file(path: &Path, opts: &ReadOptions) -> Result<FileRecords, CorpusError> {
    let content = read_utf8(path)?;
    let format = opts.format.unwrap_or_else(|| detect(path, &content));
    match format {
        Format::ChinesePoetryJson => parse_json(path, &content),
        Format::PoemsTxt => parse_poems_txt(path, &content, opts.skip_bad),
        Format::Text => Ok(parse_text(path, &content)),
    }
}

/// An error list's records carry ids, not necessarily verse.
fn read_json(path: &Path) -> Result<FileRecords, CorpusError> {
    parse_json_records(path, &read_utf8(path)?, false)
}

#[derive(serde::Deserialize)]
struct JsonPoem {
    #[serde(default)]
    title: Option<String>,
    /// Song ci carry the tune name here instead of a title.
    #[serde(default)]
    rhythmic: Option<String>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    paragraphs: Option<Vec<String>>,
    /// 诗经 and 楚辞 use `content`.
    #[serde(default)]
    content: Option<Vec<String>>,
    #[serde(default)]
    id: Option<String>,
}

/// Parses a chinese-poetry JSON array. A syntax error names the line and column.
pub fn parse_json(path: &Path, content: &str) -> Result<FileRecords, CorpusError> {
    parse_json_records(path, content, true)
}

/// serde_json's message without its ` at line L column C` tail, for errors
/// that report the line and column as fields of their own.
pub fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    text.split(" at line ").next().unwrap_or("").to_string()
}

fn parse_json_records(
    path: &Path,
    content: &str,
    need_verse: bool,
) -> Result<FileRecords, CorpusError> {
    let json_err = |e: serde_json::Error| CorpusError::Json {
        path: path.display().to_string(),
        line: e.line(),
        column: e.column(),
        msg: json_message(&e),
    };
    let poems: Vec<JsonPoem> = match serde_json::from_str::<Vec<JsonPoem>>(content) {
        Ok(p) => p,
        // A single object is one poem (some collections ship one per file).
        Err(e) if content.trim_start().starts_with('{') => {
            vec![serde_json::from_str::<JsonPoem>(content).map_err(|_| json_err(e))?]
        }
        Err(e) => return Err(json_err(e)),
    };
    let shown = path.display().to_string();
    // An array of something else (an author list, a config) has no verse at all.
    if need_verse
        && !poems.is_empty()
        && poems
            .iter()
            .all(|p| p.paragraphs.is_none() && p.content.is_none())
    {
        return Err(CorpusError::WrongShape { path: shown });
    }
    let records = poems
        .into_iter()
        .enumerate()
        .map(|(i, p)| RawRecord {
            title: p.title.or(p.rhythmic).unwrap_or_default(),
            author: p.author.unwrap_or_default(),
            text: p.paragraphs.or(p.content).unwrap_or_default().concat(),
            id: p.id,
            source: format!("{shown}#{i}"),
        })
        .collect();
    Ok(FileRecords {
        records,
        bad_lines: Vec::new(),
    })
}

/// Splits a `title:content` line. A title may hold a colon (`答人問：山中何所有`)
/// while the verse of a poem has none, so the split is at the LAST colon,
/// ASCII ':' or full-width '：', whichever comes last.
pub fn split_title(line: &str) -> Option<(&str, &str)> {
    let i = line.rfind([':', '：'])?;
    let len = line[i..].chars().next().map_or(1, char::len_utf8);
    Some((&line[..i], &line[i + len..]))
}

/// Parses `poems.txt`: one `title:content` a line; blank lines are ignored. A line
/// with no colon stops the read with its line number, or with `skip_bad` is counted.
pub fn parse_poems_txt(
    path: &Path,
    content: &str,
    skip_bad: bool,
) -> Result<FileRecords, CorpusError> {
    let shown = path.display().to_string();
    let mut out = FileRecords::default();
    for (i, line) in content.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match split_title(line) {
            Some((title, text)) => out.records.push(RawRecord {
                title: title.trim().to_string(),
                author: String::new(),
                text: text.to_string(),
                id: None,
                source: format!("{shown}:{}", i + 1),
            }),
            None if skip_bad => out.bad_lines.push(format!("{shown}:{}", i + 1)),
            None => {
                return Err(CorpusError::BadLine {
                    path: shown,
                    line: i + 1,
                })
            }
        }
    }
    Ok(out)
}

/// Parses plain text: records are runs of non-blank lines; lines are joined with '\n'.
pub fn parse_text(path: &Path, content: &str) -> FileRecords {
    let shown = path.display().to_string();
    let mut out = FileRecords::default();
    let mut lines: Vec<&str> = Vec::new();
    let mut start = 0;
    let flush = |lines: &mut Vec<&str>, start: usize, out: &mut FileRecords| {
        if !lines.is_empty() {
            out.records.push(RawRecord {
                title: String::new(),
                author: String::new(),
                text: lines.join("\n"),
                id: None,
                source: format!("{shown}:{start}"),
            });
            lines.clear();
        }
    };
    for (i, line) in content.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            flush(&mut lines, start, &mut out);
        } else {
            if lines.is_empty() {
                start = i + 1;
            }
            lines.push(line);
        }
    }
    flush(&mut lines, start, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_colon_splits_so_a_title_may_hold_one() {
        assert_eq!(
            split_title("静夜思:床前明月光"),
            Some(("静夜思", "床前明月光"))
        );
        assert_eq!(
            split_title("静夜思：床前明月光"),
            Some(("静夜思", "床前明月光"))
        );
        assert_eq!(
            split_title("答人問：山中何所有:白雲"),
            Some(("答人問：山中何所有", "白雲"))
        );
        assert_eq!(
            split_title("問答：一:二：三"),
            Some(("問答：一:二", "三")),
            "the last colon splits, whatever its width"
        );
        assert_eq!(
            split_title("题:有冒号：春眠不觉晓，处处闻啼鸟。"),
            Some(("题:有冒号", "春眠不觉晓，处处闻啼鸟。"))
        );
        assert_eq!(
            split_title("题：有冒号:春眠不觉晓"),
            Some(("题：有冒号", "春眠不觉晓"))
        );
        assert_eq!(split_title("没有冒号"), None);
    }

    #[test]
    fn detects_each_format() {
        let p = Path::new("x.txt");
        assert_eq!(
            detect(Path::new("a.json"), "garbage"),
            Format::ChinesePoetryJson
        );
        assert_eq!(detect(p, " [ {} ]"), Format::ChinesePoetryJson);
        assert_eq!(detect(p, "a:白日依山尽\nb:黄河入海流\n"), Format::PoemsTxt);
        assert_eq!(
            detect(p, "白日依山尽\n黄河入海流\n\n欲穷千里目\n"),
            Format::Text
        );
        assert_eq!(detect(p, "白日依山尽\n黄河入海流\n"), Format::Text);
        assert_eq!(detect(p, "a:一\nb:二\n三\n"), Format::PoemsTxt);
        assert_eq!(detect(p, "a:一\n\nb:二\n三\n"), Format::Text);
    }

    #[test]
    fn text_records_are_blank_line_separated_with_crlf() {
        let r = parse_text(Path::new("t"), "一二三\r\n四五六\r\n\r\n\r\n七八九\r\n");
        let texts: Vec<&str> = r.records.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts, ["一二三\n四五六", "七八九"]);
        assert_eq!(r.records[1].source, "t:5");
    }

    #[test]
    fn json_takes_paragraphs_or_content_and_title_or_rhythmic() {
        let r = parse_json(
            Path::new("j.json"),
            r#"[{"title":"t","author":"a","paragraphs":["一，","二。"],"id":"x"},
                {"rhythmic":"浣溪沙","content":["三。"]}]"#,
        )
        .unwrap();
        assert_eq!(r.records[0].text, "一，二。");
        assert_eq!(r.records[0].id.as_deref(), Some("x"));
        assert_eq!(r.records[1].title, "浣溪沙");
        assert_eq!(r.records[1].text, "三。");
    }

    #[test]
    fn bad_json_names_line_and_column() {
        let e = parse_json(Path::new("j.json"), "[\n{\"title\": }]").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("j.json:2:"), "{msg}");
    }

    #[test]
    fn not_utf8_names_the_byte() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gbk.txt");
        // "ab" then 白 in GBK (B0 D7).
        std::fs::write(&p, b"ab\xB0\xD7").unwrap();
        let msg = read_utf8(&p).unwrap_err().to_string();
        assert!(msg.contains("byte 2"), "{msg}");
        std::fs::write(&p, b"\xEF\xBB\xBFok").unwrap();
        assert_eq!(read_utf8(&p).unwrap(), "ok");
    }
}
