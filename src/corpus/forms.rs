//! Fixed forms of regulated verse, recognised by shape alone.
//!
//! A poem is 五绝 when it has 4 lines of 5 characters, 七绝 4×7, 五律 8×5 and
//! 七律 8×7, where lines are the pieces between the clause marks ，。！？；.
//! Shape is all this module checks: tones and rhymes are `prosody`'s concern.

use super::clean::is_clause_end;

/// The forms, by shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    /// 五绝: 4 lines × 5 characters
    Wujue,
    /// 七绝: 4 lines × 7 characters
    Qijue,
    /// 五律: 8 lines × 5 characters
    Wulv,
    /// 七律: 8 lines × 7 characters
    Qilv,
    /// anything else (古诗, 词, lyrics)
    Other,
}

impl Form {
    /// In discriminant order (`form as usize` indexes it).
    pub const ALL: [Form; 5] = [
        Form::Wujue,
        Form::Qijue,
        Form::Wulv,
        Form::Qilv,
        Form::Other,
    ];

    /// (lines, characters per line); `None` for `Other`.
    pub fn shape(self) -> Option<(usize, usize)> {
        match self {
            Form::Wujue => Some((4, 5)),
            Form::Qijue => Some((4, 7)),
            Form::Wulv => Some((8, 5)),
            Form::Qilv => Some((8, 7)),
            Form::Other => None,
        }
    }

    /// The form whose shape the text has.
    pub fn of_text(text: &str) -> Form {
        let lines = split_lines(text);
        let Some(first) = lines.first() else {
            return Form::Other;
        };
        let width = first.chars().count();
        if lines.iter().any(|l| l.chars().count() != width) {
            return Form::Other;
        }
        Form::ALL
            .into_iter()
            .find(|f| f.shape() == Some((lines.len(), width)))
            .unwrap_or(Form::Other)
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Form::Wujue => "五绝",
            Form::Qijue => "七绝",
            Form::Wulv => "五律",
            Form::Qilv => "七律",
            Form::Other => "其他",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Form::Wujue => "wujue",
            Form::Qijue => "qijue",
            Form::Wulv => "wulv",
            Form::Qilv => "qilv",
            Form::Other => "other",
        }
    }
}

impl std::fmt::Display for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name_zh())
    }
}

impl std::str::FromStr for Form {
    type Err = String;
    fn from_str(s: &str) -> Result<Form, String> {
        Form::ALL
            .into_iter()
            .find(|f| s == f.name() || s == f.name_zh() || (s == "古诗" && *f == Form::Other))
            .ok_or_else(|| format!("unknown form `{s}` (use wujue, qijue, wulv, qilv or other; or 五绝, 七绝, 五律, 七律)"))
    }
}

/// The lines of a poem, without their closing punctuation: the non-empty pieces
/// between ，。！？； (and line breaks).
pub fn split_lines(text: &str) -> Vec<&str> {
    text.split(|c: char| is_clause_end(c) || c == '\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_lines_drops_the_punctuation() {
        assert_eq!(
            split_lines("白日依山尽，黄河入海流。欲穷千里目！更上一层楼？"),
            ["白日依山尽", "黄河入海流", "欲穷千里目", "更上一层楼"]
        );
        assert_eq!(split_lines("一；二\n三"), ["一", "二", "三"]);
        assert!(split_lines("").is_empty());
    }

    #[test]
    fn each_form_by_shape() {
        let make = |n: usize, w: usize| {
            (0..n)
                .map(|i| format!("{}{}", "字".repeat(w), if i % 2 == 0 { "，" } else { "。" }))
                .collect::<String>()
        };
        assert_eq!(Form::of_text(&make(4, 5)), Form::Wujue);
        assert_eq!(Form::of_text(&make(4, 7)), Form::Qijue);
        assert_eq!(Form::of_text(&make(8, 5)), Form::Wulv);
        assert_eq!(Form::of_text(&make(8, 7)), Form::Qilv);
        assert_eq!(Form::of_text(&make(6, 5)), Form::Other);
        assert_eq!(Form::of_text(&make(4, 6)), Form::Other);
        assert_eq!(
            Form::of_text("字字字字字，字字字字。字字字字字，字字字字字。"),
            Form::Other
        );
        assert_eq!(Form::Qilv.shape(), Some((8, 7)));
    }

    #[test]
    fn forms_parse_by_either_name() {
        assert_eq!("qijue".parse::<Form>(), Ok(Form::Qijue));
        assert_eq!("五律".parse::<Form>(), Ok(Form::Wulv));
        assert!("sonnet".parse::<Form>().unwrap_err().contains("wujue"));
    }
}
