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
    // Found by listing the characters of the simplified Tang set outside GB2312
    // (2,216 of 7,648) and keeping those that are plain variants of a common
    // character. Left alone on purpose: 祇 (also 神祇), 徴/徵 (also the note zhǐ).
    ('嬾', '懒'),
    ('媿', '愧'),
    ('堦', '阶'),
    ('幷', '并'),
    ('竝', '并'),
    ('廻', '回'),
    ('臯', '皋'),
    ('覩', '睹'),
    ('髪', '发'),
    ('桮', '杯'),
    ('飜', '翻'),
    ('歛', '敛'),
    ('妬', '妒'),
    ('檝', '楫'),
    ('隣', '邻'),
    ('呌', '叫'),
    ('逈', '迥'),
    ('巵', '卮'),
    ('顇', '悴'),
    ('顦', '憔'),
    ('罇', '樽'),
    ('鵶', '鸦'),
    ('燄', '焰'),
    ('荅', '答'),
    ('羇', '羁'),
    ('鏁', '锁'),
    ('鼇', '鳌'),
    ('嚬', '颦'),
    ('僊', '仙'),
    ('缾', '瓶'),
    ('棃', '梨'),
    ('栢', '柏'),
    ('隄', '堤'),
    ('壻', '婿'),
    ('醆', '盏'),
    ('麤', '粗'),
    ('趂', '趁'),
    ('鸎', '莺'),
    ('帬', '裙'),
    ('牕', '窗'),
    ('緜', '绵'),
    ('碁', '棋'),
    ('粧', '妆'),
    ('牓', '榜'),
    ('藂', '丛'),
    ('懽', '欢'),
    ('邨', '村'),
    ('悮', '误'),
    ('輭', '软'),
    ('椀', '碗'),
    ('崄', '险'),
    ('峩', '峨'),
    ('怱', '匆'),
    ('飡', '餐'),
    ('犂', '犁'),
    ('諠', '喧'),
    ('衞', '卫'),
    ('効', '效'),
    ('欵', '款'),
    ('姪', '侄'),
    ('畧', '略'),
    ('蕚', '萼'),
    ('擡', '抬'),
    ('汚', '污'),
    ('秪', '只'),
    ('秖', '只'),
    ('髣', '仿'),
    ('髴', '佛'),
    ('斾', '旆'),
    ('櫂', '棹'),
    ('褭', '袅'),
    ('遰', '递'),
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
    // A map, not a scan of the table: this runs on every character of the corpus.
    static MAP: OnceLock<std::collections::HashMap<char, char>> = OnceLock::new();
    let map = MAP.get_or_init(|| VARIANTS.iter().copied().collect());
    map.get(&c).copied().unwrap_or(c)
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
    fn the_variant_table_is_consistent() {
        let mut seen = std::collections::HashSet::new();
        for &(from, to) in VARIANTS {
            assert!(seen.insert(from), "{from} is listed twice");
            assert_ne!(from, to);
            // A target is final: folding it again changes nothing.
            assert_eq!(fold_variant(to), to, "{from} → {to} → {}", fold_variant(to));
        }
        assert_eq!(to_simplified("嬾髣髴"), "懒仿佛");
    }

    #[test]
    fn simplified_goes_back_to_traditional() {
        assert_eq!(to_traditional("黄莺"), "黃鶯");
    }
}
