//! Tiny corpora for the integration tests, one per source format. Each is
//! small enough to count by hand; the comments give the expected counts.

#![allow(dead_code)]

/// chinese-poetry JSON (npm layout file `poet.tang.0.json`), traditional
/// characters. 9 records:
/// - 0 五绝, 1 七绝, 2 五律, 3 七律: kept (3 has a `（…）` note, removed)
/// - 4: same text as 0 → duplicate
/// - 5: `□` → lost-chars
/// - 6: `[襟]` inside a line → notes
/// - 7: 3 characters → too-short
/// - 8: id listed in `error/poet.tang.0.json` → error-list
pub const TANG_JSON: &str = r#"[
  {"author": "王之渙", "title": "登鸛雀樓", "id": "a0",
   "paragraphs": ["白日依山盡，黃河入海流。", "欲窮千里目，更上一層樓。"]},
  {"author": "杜甫", "title": "絕句", "id": "a1",
   "paragraphs": ["兩箇黃鸝鳴翠柳，一行白鷺上青天。", "窗含西嶺千秋雪，門泊東吳萬里船。"]},
  {"author": "王維", "title": "山居秋暝", "id": "a2",
   "paragraphs": ["空山新雨後，天氣晚來秋。", "明月松間照，清泉石上流。", "竹喧歸浣女，蓮動下漁舟。", "隨意春芳歇，王孫自可留。"]},
  {"author": "杜甫", "title": "登高", "id": "a3",
   "paragraphs": ["風急天高猿嘯哀，渚清沙白鳥飛迴（一作來）。", "無邊落木蕭蕭下，不盡長江滾滾來。", "萬里悲秋常作客，百年多病獨登臺。", "艱難苦恨繁霜鬢，潦倒新停濁酒杯。"]},
  {"author": "王之渙", "title": "登鸛雀樓", "id": "a4",
   "paragraphs": ["白日依山盡，黃河入海流。", "欲窮千里目，更上一層樓。"]},
  {"author": "高宗皇帝", "title": "守歲", "id": "a5",
   "paragraphs": ["綬吐芽猶嫩，冰□已鏤津。"]},
  {"author": "李端", "title": "送人", "id": "a6",
   "paragraphs": ["停杯試北望，還欲淚沾[襟]。"]},
  {"author": "無名", "title": "短", "id": "a7",
   "paragraphs": ["春已歸"]},
  {"author": "無名", "title": "疑", "id": "a8",
   "paragraphs": ["黃鶯啼綠樹，流水繞孤村。"]}
]"#;

/// The collection's error list for [`TANG_JSON`]: flags record 8.
pub const TANG_ERRORS: &str = r#"[
  {"author": "無名", "title": "疑", "id": "a8", "paragraphs": ["黃鶯啼綠樹，流水繞孤村。"],
   "error_type": ["内容疑似介绍->黃鶯啼綠樹"]}
]"#;

/// The original project's poems.txt: `title:content`, one a line. 4 poems, kept:
/// an ASCII colon, a full-width colon, and a title that holds a colon itself.
pub const POEMS_TXT: &str = "静夜思:床前明月光，疑是地上霜。举头望明月，低头思故乡。
春晓：春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。
答人问：山中何所有:岭上多白云，只可自怡悦。不堪持赠君，归卧东山去。
黄鹤楼送孟浩然之广陵:故人西辞黄鹤楼，烟花三月下扬州。孤帆远影碧空尽，唯见长江天际流。
";

/// Plain text, records separated by blank lines: 3 records (the second is lyrics
/// whose lines end without punctuation).
pub const TEXT: &str = "白日依山尽，黄河入海流。
欲穷千里目，更上一层楼。

月亮代表我的心
你问我爱你有多深


床前明月光，疑是地上霜。举头望明月，低头思故乡。
";
