//! Traditional ↔ simplified conversion of corpus text and user input.
//!
//! The Tang poems of chinese-poetry are in traditional characters; shiren
//! trains on simplified by default. OpenCC's tables (through the pure-Rust
//! `ferrous-opencc`, Apache-2.0) do the bulk of the work. OpenCC maps only
//! characters that modern usage still writes differently, so old variant
//! forms that appear in the Tang texts survive it (疎, 劒, 鴈, …); a small
//! folding table, applied after OpenCC, merges them into their standard
//! simplified forms so the vocabulary does not hold two ids for one word.
//! (zhconv is faster but GPL, so it is not linked.)

use std::sync::OnceLock;

use ferrous_opencc::config::BuiltinConfig;
use ferrous_opencc::OpenCC;

/// Which script the corpus text is kept in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Script {
    #[default]
    Simplified,
    Traditional,
}

impl std::str::FromStr for Script {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "simplified" | "s" => Ok(Script::Simplified),
            "traditional" | "t" => Ok(Script::Traditional),
            _ => Err(format!(
                "unknown script `{s}` (use simplified or traditional)"
            )),
        }
    }
}

/// Old variants OpenCC leaves alone, folded to the standard simplified character.
/// Each pair was seen in the Tang set after OpenCC's t2s.
const VARIANTS: &[(char, char)] = &[
    ('疎', '疏'),
    ('劒', '剑'),
    ('劍', '剑'),
    ('鴈', '雁'),
    ('猨', '猿'),
    ('遶', '绕'),
    ('慙', '惭'),
    ('簷', '檐'),
    ('徧', '遍'),
    ('牀', '床'),
    ('綵', '彩'),
    ('鬬', '斗'),
    ('鬭', '斗'),
    ('囪', '囱'),
    ('甯', '宁'),
    ('晝', '昼'),
    ('嶽', '岳'),
    ('迴', '回'),
    ('爲', '为'),
    ('喫', '吃'),
    ('銷', '销'),
    ('峯', '峰'),
    ('羣', '群'),
    ('盃', '杯'),
    ('鍾', '钟'),
    ('蹤', '踪'),
    ('牋', '笺'),
    ('箋', '笺'),
    ('卻', '却'),
    ('讬', '托'),
    ('託', '托'),
    ('菴', '庵'),
    ('巖', '岩'),
    ('厓', '崖'),
    ('嵒', '岩'),
    ('鷄', '鸡'),
    ('雞', '鸡'),
    ('棲', '栖'),
    ('捿', '栖'),
    ('樑', '梁'),
    ('蘂', '蕊'),
    ('蕋', '蕊'),
    ('蘃', '蕊'),
    ('煖', '暖'),
    ('暎', '映'),
    ('貍', '狸'),
    ('谿', '溪'),
    ('磎', '溪'),
];

fn t2s() -> &'static OpenCC {
    static T2S: OnceLock<OpenCC> = OnceLock::new();
    T2S.get_or_init(|| OpenCC::from_config(BuiltinConfig::T2s).expect("built-in t2s config loads"))
}

fn s2t() -> &'static OpenCC {
    static S2T: OnceLock<OpenCC> = OnceLock::new();
    S2T.get_or_init(|| OpenCC::from_config(BuiltinConfig::S2t).expect("built-in s2t config loads"))
}

fn fold_variant(c: char) -> char {
    VARIANTS
        .iter()
        .find(|(from, _)| *from == c)
        .map_or(c, |(_, to)| *to)
}

/// Traditional (or mixed) text to simplified, with old variants folded.
pub fn to_simplified(text: &str) -> String {
    t2s().convert(text).chars().map(fold_variant).collect()
}

/// Simplified text to traditional. Used to look up user input in a model
/// trained with `--script traditional`.
pub fn to_traditional(text: &str) -> String {
    s2t().convert(text)
}

/// Converts text into `script`.
pub fn to_script(text: &str, script: Script) -> String {
    match script {
        Script::Simplified => to_simplified(text),
        Script::Traditional => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tang_text_becomes_simplified() {
        assert_eq!(
            to_simplified("秦川雄帝宅，函谷壯皇居。"),
            "秦川雄帝宅，函谷壮皇居。"
        );
        assert_eq!(to_simplified("黃鶯"), "黄莺");
    }

    #[test]
    fn variants_opencc_keeps_are_folded() {
        for (from, to) in [
            ("疎", "疏"),
            ("劒", "剑"),
            ("鴈", "雁"),
            ("遶", "绕"),
            ("慙", "惭"),
        ] {
            assert_eq!(to_simplified(from), to, "{from}");
        }
    }

    #[test]
    fn simplified_goes_back_to_traditional() {
        assert_eq!(to_traditional("黄莺"), "黃鶯");
    }
}
