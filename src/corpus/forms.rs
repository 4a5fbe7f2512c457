//! Fixed forms of regulated verse, recognised by shape alone.
//!
//! A poem is 五绝 when it has 4 lines of 5 characters, 七绝 4×7, 五律 8×5 and
//! 七律 8×7, where lines are the pieces between the clause marks ，。！？；.
//! Shape is all this module checks: tones and rhymes are `prosody`'s concern.

use super::clean::is_clause_end;

/// A poem's form: one of the four regulated forms, or free (anything else:
/// 古诗, 词, lyrics). The one form type of shiren: the corpus classifies by it,
/// the writer writes to it, the web API names it, a model's form tags stand for it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
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
    /// No fixed shape (古诗, 词, lyrics); a free poem stops at the end token
    /// or the length limit.
    #[default]
    #[serde(alias = "other")]
    Free,
}

impl Form {
    /// In discriminant order (`form as usize` indexes it).
    pub const ALL: [Form; 5] = [Form::Wujue, Form::Qijue, Form::Wulv, Form::Qilv, Form::Free];

    /// The regulated forms, in discriminant order; a model trained with form
    /// tags has one tag per form here, in this order.
    pub const REGULATED: [Form; 4] = [Form::Wujue, Form::Qijue, Form::Wulv, Form::Qilv];

    /// (lines, characters per line); `None` for `Free`.
    pub fn shape(self) -> Option<(usize, usize)> {
        match self {
            Form::Wujue => Some((4, 5)),
            Form::Qijue => Some((4, 7)),
            Form::Wulv => Some((8, 5)),
            Form::Qilv => Some((8, 7)),
            Form::Free => None,
        }
    }

    /// The form whose shape the text has.
    pub fn of_text(text: &str) -> Form {
        let lines = split_lines(text);
        let Some(first) = lines.first() else {
            return Form::Free;
        };
        let width = first.chars().count();
        if lines.iter().any(|l| l.chars().count() != width) {
            return Form::Free;
        }
        Form::REGULATED
            .into_iter()
            .find(|f| f.shape() == Some((lines.len(), width)))
            .unwrap_or(Form::Free)
    }

    /// The short Chinese name: 五绝, 七绝, 五律, 七律, 自由. Also the name of the
    /// form's tag in a model's `vocab.json`.
    pub fn name_zh(self) -> &'static str {
        match self {
            Form::Wujue => "五绝",
            Form::Qijue => "七绝",
            Form::Wulv => "五律",
            Form::Qilv => "七律",
            Form::Free => "自由",
        }
    }

    /// The full Chinese name: 五言绝句 … 七言律诗, 自由.
    pub fn full_name_zh(self) -> &'static str {
        match self {
            Form::Wujue => "五言绝句",
            Form::Qijue => "七言绝句",
            Form::Wulv => "五言律诗",
            Form::Qilv => "七言律诗",
            Form::Free => "自由",
        }
    }

    /// The id used by flags, JSON and the web API: wujue, qijue, wulv, qilv, free.
    pub fn name(self) -> &'static str {
        match self {
            Form::Wujue => "wujue",
            Form::Qijue => "qijue",
            Form::Wulv => "wulv",
            Form::Qilv => "qilv",
            Form::Free => "free",
        }
    }

    /// Every spelling a user may type for this form: the id (any case), the
    /// short and full Chinese names, traditional 絕, and the old names of free.
    fn is_spelled(self, s: &str) -> bool {
        s.eq_ignore_ascii_case(self.name())
            || s == self.name_zh()
            || s == self.full_name_zh()
            || match self {
                Form::Wujue => s == "五絕",
                Form::Qijue => s == "七絕",
                Form::Free => ["other", "free verse", "古诗", "其他"].contains(&s),
                _ => false,
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
        let s = s.trim();
        Form::ALL.into_iter().find(|f| f.is_spelled(s)).ok_or_else(|| {
            let shown: String = s.chars().take(20).collect();
            format!("unknown form `{shown}` (use wujue, qijue, wulv, qilv or free; or 五绝, 七绝, 五律, 七律)")
        })
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
        assert_eq!(Form::of_text(&make(6, 5)), Form::Free);
        assert_eq!(Form::of_text(&make(4, 6)), Form::Free);
        assert_eq!(
            Form::of_text("字字字字字，字字字字。字字字字字，字字字字字。"),
            Form::Free
        );
        assert_eq!(Form::Qilv.shape(), Some((8, 7)));
    }

    #[test]
    fn forms_parse_by_either_name() {
        assert_eq!("qijue".parse::<Form>(), Ok(Form::Qijue));
        assert_eq!("五律".parse::<Form>(), Ok(Form::Wulv));
        assert!("sonnet".parse::<Form>().unwrap_err().contains("wujue"));
    }

    #[test]
    fn every_spelling_of_a_form_reads_back_as_it() {
        for f in Form::ALL {
            for s in [
                f.name(),
                f.name_zh(),
                f.full_name_zh(),
                &f.name().to_uppercase(),
            ] {
                assert_eq!(s.parse::<Form>(), Ok(f), "{s}");
            }
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(json, format!("\"{}\"", f.name()));
            assert_eq!(serde_json::from_str::<Form>(&json).unwrap(), f);
        }
        assert_eq!("七絕".parse::<Form>(), Ok(Form::Qijue));
        assert_eq!(
            serde_json::from_str::<Form>("\"other\"").unwrap(),
            Form::Free
        );
        assert_eq!(Form::default(), Form::Free);
    }
}
