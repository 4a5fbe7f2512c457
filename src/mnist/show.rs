//! Text renderings for the terminal: a digit as character art, and the
//! confusion matrix as a table. Pure formatting; no model or I/O.

use super::train::{Eval, CLASSES};

/// Intensity ramp from background to full ink.
const RAMP: &[u8] = b" .:-=+*#%@";

/// Renders one image (`rows`×`cols` bytes) as lines of text, two characters
/// per pixel so that the digit keeps its shape in a terminal's tall cells.
/// Blank rows above and below the digit are left out.
pub fn digit_art(pixels: &[u8], cols: usize) -> String {
    let rows: Vec<&[u8]> = pixels.chunks(cols.max(1)).collect();
    // Equal-width intensity bins, so that MNIST's near-white strokes (253, 254) get the densest glyph.
    let glyph = |p: u8| RAMP[p as usize * RAMP.len() / 256];
    let inked = |r: &&[u8]| r.iter().any(|&p| glyph(p) != b' ');
    let first = rows.iter().position(inked).unwrap_or(rows.len());
    let last = rows.iter().rposition(inked).map_or(first, |l| l + 1);
    let mut s = String::with_capacity(pixels.len() * 2 + rows.len());
    for row in &rows[first..last] {
        for &p in row.iter() {
            let c = glyph(p) as char;
            s.push(c);
            s.push(c);
        }
        // Keep lines free of trailing blanks.
        s.truncate(s.trim_end_matches(' ').len());
        s.push('\n');
    }
    s
}

/// The confusion matrix with the true digit down the side, the prediction
/// across the top, and each row's recall at the end.
pub fn confusion_table(ev: &Eval) -> String {
    let mut s = String::from("true\\pred");
    for k in 0..CLASSES {
        s.push_str(&format!("{k:>6}"));
    }
    s.push_str("   recall\n");
    for (t, row) in ev.confusion.iter().enumerate() {
        s.push_str(&format!("{t:>9}"));
        for n in row {
            s.push_str(&format!("{n:>6}"));
        }
        let total: usize = row.iter().sum();
        let recall = 100.0 * row[t] as f64 / total.max(1) as f64;
        s.push_str(&format!("  {recall:>6.2}%\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn art_maps_ink_to_dense_characters() {
        assert_eq!(digit_art(&[0, 255, 128, 0], 2), "  @@\n++\n");
        // Blank rows around the digit go; a blank row inside it stays.
        assert_eq!(
            digit_art(&[0, 0, 255, 0, 0, 0, 0, 255, 0, 0], 2),
            "@@\n\n  @@\n"
        );
    }

    #[test]
    fn table_has_a_row_per_digit() {
        let mut confusion = [[0; CLASSES]; CLASSES];
        confusion[3][3] = 3;
        confusion[3][5] = 1;
        let ev = Eval {
            n: 4,
            correct: 3,
            loss: 0.0,
            confusion,
            predictions: vec![],
        };
        let t = confusion_table(&ev);
        assert_eq!(t.lines().count(), 11);
        assert!(t.lines().nth(4).unwrap().ends_with(" 75.00%"), "{t}");
    }
}
