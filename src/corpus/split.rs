//! The train / validation / test split: 90 / 5 / 5 by a hash of the poem text.
//!
//! The part depends on the text alone, so the same poem is never in two parts
//! (duplicates are removed before, and would land together anyway), and the
//! split does not move when the corpus is reordered or grows. The hash is
//! FNV-1a over the UTF-8 bytes, finished with a SplitMix64 mix so the low
//! digits are uniform; it is fixed here forever, since changing it would move
//! poems between parts of existing checkpoints' data.

/// Which part of the split a poem belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    Train,
    Valid,
    Test,
}

/// Stable 64-bit hash of a text.
pub fn text_hash(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in text.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // SplitMix64 finaliser.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The part of a poem: 90% train, 5% validation, 5% test.
pub fn part_of(text: &str) -> Part {
    match text_hash(text) % 100 {
        0..=89 => Part::Train,
        90..=94 => Part::Valid,
        _ => Part::Test,
    }
}

/// `items` by the part of their text, in their order: `[train, valid, test]`.
pub fn split<T>(items: impl IntoIterator<Item = T>, text: impl Fn(&T) -> &str) -> [Vec<T>; 3] {
    let mut parts: [Vec<T>; 3] = Default::default();
    for item in items {
        let k = match part_of(text(&item)) {
            Part::Train => 0,
            Part::Valid => 1,
            Part::Test => 2,
        };
        parts[k].push(item);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poems(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("第{i}首，白日依山尽。")).collect()
    }

    #[test]
    fn split_puts_each_item_in_its_part_in_order() {
        let ps = poems(400);
        let parts = split(ps.iter().enumerate(), |(_, t)| t.as_str());
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 400);
        for (part, items) in [Part::Train, Part::Valid, Part::Test]
            .into_iter()
            .zip(&parts)
        {
            assert!(!items.is_empty(), "{part:?} is empty");
            assert!(items.iter().all(|(_, t)| part_of(t) == part), "{part:?}");
            assert!(
                items.windows(2).all(|w| w[0].0 < w[1].0),
                "{part:?} out of order"
            );
        }
    }

    #[test]
    fn shares_are_near_90_5_5() {
        let ps = poems(20_000);
        let count =
            |p: Part| ps.iter().filter(|t| part_of(t) == p).count() as f64 / ps.len() as f64;
        assert!(
            (count(Part::Train) - 0.90).abs() < 0.01,
            "{}",
            count(Part::Train)
        );
        assert!(
            (count(Part::Valid) - 0.05).abs() < 0.006,
            "{}",
            count(Part::Valid)
        );
        assert!(
            (count(Part::Test) - 0.05).abs() < 0.006,
            "{}",
            count(Part::Test)
        );
    }

    #[test]
    fn every_character_moves_the_part() {
        // Texts that differ only in their last character must land independently
        // (same part with probability .9² + .05² + .05² = 0.815): a hash that
        // read only a prefix would put every pair together.
        let pairs = 20_000;
        let same = (0..pairs)
            .filter(|i| {
                let a = format!("第{i}首，白日依山尽，黄河入海流。");
                let b = format!("第{i}首，白日依山尽，黄河入海楼。");
                part_of(&a) == part_of(&b)
            })
            .count() as f64
            / pairs as f64;
        assert!((same - 0.815).abs() < 0.02, "{same}");
    }

    #[test]
    fn pinned_values_do_not_drift() {
        // If these change, every existing split moves: do not change the hash.
        // (Values from an independent Python FNV-1a + SplitMix64.)
        assert_eq!(text_hash(""), 0xf52a_15e9_a9b5_e89b);
        assert_eq!(text_hash("白日依山尽，黄河入海流。"), 0x20ed_b8da_a695_871f);
        assert_eq!(text_hash("床前明月光，疑是地上霜。"), 0x1b75_3a3c_a461_ba9a);
    }
}
