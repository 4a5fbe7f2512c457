//! The IDX file format of MNIST, read with every header field checked.
//!
//! An IDX file is a 4-byte magic number (two zero bytes, a type code, the
//! number of dimensions), one big-endian `u32` per dimension, then the data in
//! row-major order. MNIST uses two kinds, both of unsigned bytes (type 0x08):
//! images with 3 dimensions (count, rows, cols) and labels with 1 (count).
//! Files may be gzip-compressed, as the original distribution ships them; the
//! gzip magic is recognised whatever the file is called.
//!
//! Like llm.c's checkpoint header, nothing here trusts the header: the data
//! length must equal the product of the dimensions exactly, and every failure
//! names the file. This module knows nothing of models or of fetching.

use std::io::Read;
use std::path::Path;

/// Type code of unsigned-byte IDX data, the only one MNIST uses.
const TYPE_U8: u8 = 0x08;

/// What can be wrong with a set of IDX files. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: corrupt gzip stream ({source}); fetch the file again")]
    Gzip {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not an IDX {what} file: magic bytes {found}, expected {expected} (is this the right file?)")]
    BadMagic {
        path: String,
        what: &'static str,
        found: String,
        expected: String,
    },
    #[error("{path}: truncated: the header declares {expected} bytes after it, the file has {actual} (the file was cut short; fetch it again)")]
    Truncated {
        path: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "{path}: data goes on past the {declared} bytes the header declares (corrupt file; fetch it again)"
    )]
    TrailingBytes {
        path: String,
        /// At least this many bytes follow (a gzip stream is not inflated further).
        extra: u64,
        declared: u64,
    },
    #[error("{path}: not a regular file of at most {MAX_IDX_BYTES} bytes (give the MNIST IDX file itself)")]
    NotAFile { path: String },
    #[error("{path}: a dimension is zero or too large ({})", show_dims(.dims))]
    BadDims { path: String, dims: Vec<u32> },
    #[error("{path}: label {label} of item {index} is not a digit 0-9")]
    BadLabel {
        path: String,
        index: usize,
        label: u8,
    },
    #[error("{images} holds {n_images} images but {labels} holds {n_labels} labels (the two files come from different sets)")]
    CountMismatch {
        images: String,
        n_images: usize,
        labels: String,
        n_labels: usize,
    },
    #[error(
        "{path}: images are {rows}x{cols}, but the training images are {want_rows}x{want_cols}"
    )]
    ShapeMismatch {
        path: String,
        rows: usize,
        cols: usize,
        want_rows: usize,
        want_cols: usize,
    },
    #[error("{dir}: no {name} (nor {name}.gz, nor the same with '-' for '.') found; pass the folder holding the four MNIST IDX files")]
    Missing { dir: String, name: String },
}

/// Labelled digit images: `images` is (N, rows, cols) row-major, one byte per
/// pixel (0 = background, 255 = ink); `labels` is (N) with values 0..=9.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digits {
    pub rows: usize,
    pub cols: usize,
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Digits {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `i`, (rows, cols).
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.rows * self.cols;
        &self.images[i * n..(i + 1) * n]
    }

    /// The first `n` items (all of them if there are fewer).
    pub fn head(&self, n: usize) -> Digits {
        self.select(&(0..n.min(self.len())).collect::<Vec<_>>())
    }

    /// A new set holding the items at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Digits {
        let mut images = Vec::with_capacity(idx.len() * self.rows * self.cols);
        for &i in idx {
            images.extend_from_slice(self.image(i));
        }
        Digits {
            rows: self.rows,
            cols: self.cols,
            images,
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
        }
    }

    /// Fills a batch for the model: `x` (B, T = rows, D = cols) with pixels
    /// scaled to [0, 1], and `y` (B) with the labels, for the items at `idx`.
    pub fn fill_batch(&self, idx: &[usize], x: &mut Vec<f32>, y: &mut Vec<u32>) {
        x.clear();
        y.clear();
        for &i in idx {
            x.extend(self.image(i).iter().map(|&p| p as f32 / 255.0));
            y.push(self.labels[i] as u32);
        }
    }
}

/// The most data an IDX file may declare (MNIST's largest is 47 MB).
pub const MAX_IDX_BYTES: u64 = 1 << 30;

/// Reads a whole file, gunzipping it when it starts with the gzip magic. A
/// gzip stream is inflated only as far as the IDX header it starts with
/// declares (plus one byte, so that trailing data is still reported): a
/// small file that inflates to gigabytes stops there.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, IdxError> {
    let pstr = || path.display().to_string();
    let io = |source| IdxError::Io {
        path: pstr(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() || meta.len() > MAX_IDX_BYTES + 1024 {
        return Err(IdxError::NotAFile { path: pstr() });
    }
    let raw = std::fs::read(path).map_err(io)?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let gz = |source| IdxError::Gzip {
        path: pstr(),
        source,
    };
    let mut dec = flate2::read::MultiGzDecoder::new(&raw[..]);
    // The magic (its last byte is the number of dimensions), then the dimensions.
    let mut out = Vec::new();
    (&mut dec).take(4).read_to_end(&mut out).map_err(gz)?;
    let ndim = out.get(3).map_or(0, |&n| n.min(8)) as u64;
    (&mut dec)
        .take(4 * ndim)
        .read_to_end(&mut out)
        .map_err(gz)?;
    let declared = out[4.min(out.len())..]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64)
        .try_fold(1u64, |a, d| a.checked_mul(d))
        .unwrap_or(u64::MAX)
        .min(MAX_IDX_BYTES);
    dec.take(declared + 1).read_to_end(&mut out).map_err(gz)?;
    Ok(out)
}

/// Parses the header of an unsigned-byte IDX file with `ndim` dimensions and
/// returns the dimensions and the data after the header, whose length has been
/// checked against them.
fn parse<'a>(
    bytes: &'a [u8],
    ndim: u8,
    what: &'static str,
    path: &Path,
) -> Result<(Vec<usize>, &'a [u8]), IdxError> {
    let pstr = || path.display().to_string();
    let expected_magic = [0, 0, TYPE_U8, ndim];
    let header_len = 4 + 4 * ndim as usize;
    if bytes.len() < 4 || bytes[..4] != expected_magic {
        let found = &bytes[..bytes.len().min(4)];
        return Err(IdxError::BadMagic {
            path: pstr(),
            what,
            found: hex(found),
            expected: hex(&expected_magic),
        });
    }
    if bytes.len() < header_len {
        return Err(IdxError::Truncated {
            path: pstr(),
            expected: header_len as u64 - 4,
            actual: bytes.len() as u64 - 4,
        });
    }
    let dims32: Vec<u32> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let bad_dims = || IdxError::BadDims {
        path: pstr(),
        dims: dims32.clone(),
    };
    // A zero dimension is legal IDX but no use here; the product must fit in
    // memory arithmetic (the length check below then rejects absurd headers
    // without allocating anything).
    let mut total: u64 = 1;
    for &d in &dims32 {
        if d == 0 {
            return Err(bad_dims());
        }
        total = total.checked_mul(d as u64).ok_or_else(bad_dims)?;
    }
    if total > MAX_IDX_BYTES {
        return Err(bad_dims());
    }
    let data = &bytes[header_len..];
    let actual = data.len() as u64;
    if actual < total {
        return Err(IdxError::Truncated {
            path: pstr(),
            expected: total,
            actual,
        });
    }
    if actual > total {
        return Err(IdxError::TrailingBytes {
            path: pstr(),
            declared: total,
            extra: actual - total,
        });
    }
    Ok((dims32.iter().map(|&d| d as usize).collect(), data))
}

fn show_dims(dims: &[u32]) -> String {
    let s: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    s.join("×")
}

fn hex(bytes: &[u8]) -> String {
    let v: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if v.is_empty() {
        "(none: empty file)".to_string()
    } else {
        v.join(" ")
    }
}

/// Parses an IDX image file (magic 00 00 08 03): returns (count, rows, cols, pixels).
pub fn parse_images(bytes: &[u8], path: &Path) -> Result<(usize, usize, usize, Vec<u8>), IdxError> {
    let (dims, data) = parse(bytes, 3, "image", path)?;
    Ok((dims[0], dims[1], dims[2], data.to_vec()))
}

/// Parses an IDX label file (magic 00 00 08 01); every label must be 0..=9.
pub fn parse_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>, IdxError> {
    let (_, data) = parse(bytes, 1, "label", path)?;
    if let Some(index) = data.iter().position(|&l| l > 9) {
        return Err(IdxError::BadLabel {
            path: path.display().to_string(),
            index,
            label: data[index],
        });
    }
    Ok(data.to_vec())
}

/// Reads a pair of image and label files (plain or gzip) into one checked set.
pub fn read_pair(images: &Path, labels: &Path) -> Result<Digits, IdxError> {
    let (n, rows, cols, pixels) = parse_images(&read_maybe_gz(images)?, images)?;
    let labels_v = parse_labels(&read_maybe_gz(labels)?, labels)?;
    if labels_v.len() != n {
        return Err(IdxError::CountMismatch {
            images: images.display().to_string(),
            n_images: n,
            labels: labels.display().to_string(),
            n_labels: labels_v.len(),
        });
    }
    Ok(Digits {
        rows,
        cols,
        images: pixels,
        labels: labels_v,
    })
}

/// Encodes an unsigned-byte IDX file; the inverse of the parsers, used to
/// install files taken from gzip and by tests that write their own data.
pub fn encode(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&[0, 0, TYPE_U8, dims.len() as u8]);
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks() {
        let p = Path::new("x.idx");
        let good = encode(&[2, 2, 3], &[7; 12]);
        let (n, r, c, px) = parse_images(&good, p).unwrap();
        assert_eq!((n, r, c, px.len()), (2, 2, 3, 12));
        // Labels read as images: wrong magic.
        let err = parse_images(&encode(&[3], &[1, 2, 3]), p).unwrap_err();
        assert!(matches!(err, IdxError::BadMagic { .. }), "{err}");
        assert!(
            err.to_string().starts_with("x.idx: not an IDX image file"),
            "{err}"
        );
        // Header cut inside the dimensions.
        let err = parse_images(&good[..9], p).unwrap_err();
        assert!(matches!(err, IdxError::Truncated { .. }), "{err}");
        // Zero and overflowing dimensions.
        let err = parse_images(&encode(&[0, 2, 3], &[]), p).unwrap_err();
        assert!(matches!(err, IdxError::BadDims { .. }), "{err}");
        let err = parse_images(&encode(&[u32::MAX; 3], &[]), p).unwrap_err();
        assert!(matches!(err, IdxError::BadDims { .. }), "{err}");
        // A huge header is refused before any allocation.
        let err = parse_images(&encode(&[u32::MAX, 2, 2], &[]), p).unwrap_err();
        assert!(matches!(err, IdxError::BadDims { .. }), "{err}");
        let err = parse_images(&encode(&[1000, 2, 2], &[]), p).unwrap_err();
        assert!(matches!(err, IdxError::Truncated { .. }), "{err}");
        // Labels out of range.
        let err = parse_labels(&encode(&[3], &[1, 12, 3]), p).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.idx: label 12 of item 1 is not a digit 0-9"
        );
        assert_eq!(hex(&[]), "(none: empty file)");
    }

    #[test]
    fn a_gzip_bomb_stops_inflating_at_the_size_its_header_declares() {
        use std::io::Write;
        // 2×2×2 images, then 200 MB of zeros: inflated whole, 200 MB was allocated
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bomb.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&p).unwrap(),
            flate2::Compression::best(),
        );
        gz.write_all(&encode(&[2, 2, 2], &[1; 8])).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..200 {
            gz.write_all(&zeros).unwrap();
        }
        gz.finish().unwrap();
        assert!(std::fs::metadata(&p).unwrap().len() < 1 << 20);
        let bytes = read_maybe_gz(&p).unwrap();
        assert_eq!(bytes.len(), 4 + 12 + 8 + 1, "header, data, one byte past");
        let err = parse_images(&bytes, &p).unwrap_err();
        assert!(matches!(err, IdxError::TrailingBytes { .. }), "{err}");
        // a plain file is read as it is, a device is not read at all
        std::fs::write(&p, encode(&[3], &[1, 2, 3])).unwrap();
        assert_eq!(
            parse_labels(&read_maybe_gz(&p).unwrap(), &p).unwrap(),
            [1, 2, 3]
        );
        let err = read_maybe_gz(Path::new("/dev/zero")).unwrap_err();
        assert!(matches!(err, IdxError::NotAFile { .. }), "{err}");
    }

    #[test]
    fn batches_scale_pixels() {
        let d = Digits {
            rows: 1,
            cols: 2,
            images: vec![0, 255, 51, 102],
            labels: vec![3, 9],
        };
        let (mut x, mut y) = (vec![], vec![]);
        d.fill_batch(&[1, 0], &mut x, &mut y);
        assert_eq!(x, vec![0.2, 0.4, 0.0, 1.0]);
        assert_eq!(y, vec![9, 3]);
        assert_eq!(d.select(&[1]).images, vec![51, 102]);
        assert_eq!(d.head(5).len(), 2);
    }
}
