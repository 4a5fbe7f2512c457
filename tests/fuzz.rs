//! Bounded random and truncated inputs for every reader of untrusted bytes:
//! the corpus readers, the IDX reader, the checkpoint loader and the web
//! API's request parser. Each input must give a value or one line of error:
//! no panic, no abort (which would end this test binary), and at most
//! [`MEMORY_BOUND`] bytes allocated at once by the thread reading it.
//!
//! The inputs are generated from fixed seeds (shiren's own `Rng`), so a
//! failure is reproduced by running the test again; each case prints its
//! seed and input size when it fails. Valid inputs are mutated the ways
//! files get damaged: cut short, bytes flipped, runs repeated, spans
//! replaced by random bytes or by big numbers.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use shiren::rng::Rng;

/// The most one reading of one input (of at most 64 KiB) may hold at once.
/// The largest legitimate case here (a tiny checkpoint loaded) peaks far below.
pub const MEMORY_BOUND: usize = 64 << 20;

/// Cases per reader and mutation kind.
const CASES: usize = 200;

// ---------------------------------------------------------------------------
// per-thread allocation accounting

/// The system allocator, counting the bytes each thread holds and its peak,
/// so that one case's peak can be measured while other tests run beside it.
struct Counting;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    let _ = HELD.try_with(|h| {
        let now = h.get() + delta;
        h.set(now);
        let _ = PEAK.try_with(|p| {
            if now > p.get() {
                p.set(now)
            }
        });
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            account(l.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        account(-(l.size() as isize));
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            account(new as isize - l.size() as isize);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` on `input`, insisting on no panic, a one-line error if any, and a
/// peak of at most [`MEMORY_BOUND`] bytes above what the thread held before.
fn check<T, E: std::fmt::Display>(
    what: &str,
    seed: u64,
    input: &[u8],
    f: impl FnOnce(&[u8]) -> Result<T, E>,
) {
    let start = HELD.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let r = catch_unwind(AssertUnwindSafe(|| f(input).map(|_| ())));
    let peak = (PEAK.with(Cell::get) - start).max(0) as usize;
    let shown = || String::from_utf8_lossy(&input[..input.len().min(120)]).into_owned();
    match r {
        Err(_) => panic!(
            "{what}: panic on case {seed} ({} bytes): {:?}",
            input.len(),
            shown()
        ),
        Ok(Err(e)) => {
            let msg = format!("{e:#}");
            assert!(
                !msg.contains('\n') && !msg.is_empty(),
                "{what}: case {seed}: not one line: {msg:?}"
            );
        }
        Ok(Ok(())) => {}
    }
    assert!(
        peak <= MEMORY_BOUND,
        "{what}: case {seed} ({} bytes) held {peak} bytes at once",
        input.len()
    );
}

/// `valid` damaged in one of the ways files are: cut short, bytes flipped,
/// a span repeated, a span replaced by random bytes or by a huge number.
fn mutate(valid: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = valid.to_vec();
    let at = |rng: &mut Rng, len: usize| if len == 0 { 0 } else { rng.below(len) };
    match rng.below(6) {
        0 => v.truncate(at(rng, valid.len())),
        1 => {
            for _ in 0..1 + rng.below(8) {
                let i = at(rng, v.len());
                if let Some(b) = v.get_mut(i) {
                    *b ^= 1 << rng.below(8);
                }
            }
        }
        2 => {
            let i = at(rng, v.len());
            let n = rng.below(64).min(v.len() - i.min(v.len()));
            let span = v[i..i + n].to_vec();
            for _ in 0..rng.below(50) {
                v.splice(i..i, span.iter().copied());
            }
        }
        3 => {
            let i = at(rng, v.len());
            let n = rng.below(32);
            let junk: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            let end = (i + n).min(v.len());
            v.splice(i..end, junk);
        }
        4 => {
            // a digit run (a size, a count, a shape) made enormous
            if let Some(i) = v.iter().position(|b| b.is_ascii_digit()).map(|first| {
                let digits: Vec<usize> = (first..v.len())
                    .filter(|&k| v[k].is_ascii_digit())
                    .collect();
                digits[at(rng, digits.len())]
            }) {
                let big = [
                    "99999999999",
                    "18446744073709551616",
                    "1e300",
                    "-1",
                    "4294967296",
                ];
                v.splice(i..i + 1, big[rng.below(big.len())].bytes());
            }
        }
        _ => {
            let n = rng.below(4096);
            v = (0..n).map(|_| rng.next_u64() as u8).collect();
        }
    }
    v.truncate(64 << 10);
    v
}

fn cases(seed: u64, valid: &[u8], mut each: impl FnMut(u64, &[u8])) {
    let mut rng = Rng::new(seed);
    each(0, valid);
    for k in 1..=CASES as u64 {
        let input = mutate(valid, &mut rng);
        each(k, &input);
    }
}

// ---------------------------------------------------------------------------
// the readers

const POEMS_TXT: &str = "登鸛雀樓:白日依山盡，黃河入海流。欲窮千里目，更上一層樓。\n题:有冒号：春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。\n";

#[test]
fn corpus_readers_survive_damaged_files() {
    let dir = tempfile::tempdir().unwrap();
    let json = crate::hay::TANG_JSON.as_bytes();
    for (name, valid, seed) in [
        ("poems.txt", POEMS_TXT.as_bytes(), 1),
        ("poet.tang.0.json", json, 2),
        (
            "plain.txt",
            "春眠不觉晓\n处处闻啼鸟\n\n夜来风雨声\n".as_bytes(),
            3,
        ),
    ] {
        let path = dir.path().join(name);
        cases(seed, valid, |k, input| {
            std::fs::write(&path, input).unwrap();
            let opts = shiren::corpus::read::ReadOptions::default();
            check(name, k, input, |_| {
                shiren::corpus::read::read_file(&path, &opts)
            });
            let skip = shiren::corpus::read::ReadOptions {
                skip_bad: true,
                ..Default::default()
            };
            check(name, k, input, |_| {
                shiren::corpus::read::read_file(&path, &skip)
            });
        });
    }
}

#[test]
fn the_idx_reader_survives_damaged_and_bombed_files() {
    use shiren::mnist::idx::{encode, parse_images, parse_labels, read_maybe_gz};
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let p = Path::new("x.idx");
    let images = encode(&[3, 4, 4], &[7; 48]);
    cases(11, &images, |k, input| {
        check("idx images", k, input, |b| parse_images(b, p));
        check("idx labels", k, input, |b| parse_labels(b, p));
    });
    // gzip: damaged streams, and honest headers over far more data than declared
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&images).unwrap();
    let gz = gz.finish().unwrap();
    let path = dir.path().join("x.gz");
    cases(12, &gz, |k, input| {
        std::fs::write(&path, input).unwrap();
        check("idx gzip", k, input, |_| {
            read_maybe_gz(&path).and_then(|b| parse_images(&b, &path))
        });
    });
    // Bombs: a header declaring little, then 65 to 128 MB of zeros, as gzip
    // members (a reader inflates concatenated members as one stream). Read
    // whole, each would break the memory bound.
    let member = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let zeros = member(&vec![0u8; 1 << 20]);
    let mut rng = Rng::new(13);
    for k in 0..4 {
        let mut bomb = member(&encode(&[1 + rng.below(5) as u32, 28, 28], &[]));
        for _ in 0..65 + rng.below(64) {
            bomb.extend_from_slice(&zeros);
        }
        std::fs::write(&path, &bomb).unwrap();
        check("idx gzip bomb", k, &bomb, |_| {
            read_maybe_gz(&path).and_then(|b| parse_images(&b, &path))
        });
    }
}

#[test]
fn the_checkpoint_loader_survives_damaged_files() {
    use shiren::checkpoint::{self, Meta};
    use shiren::model::{Model, ModelConfig};
    use shiren::vocab::Vocab;
    let dir = tempfile::tempdir().unwrap();
    let vocab = Vocab::build(["白日依山尽，黄河入海流。"], 1);
    let cfg = ModelConfig {
        vocab: vocab.len(),
        embed: 4,
        hidden: 6,
        layers: 2,
        ..ModelConfig::default()
    };
    let model = Model::new(cfg.clone(), &mut Rng::new(1));
    let meta = Meta::new(
        cfg,
        serde_json::json!({}),
        shiren::corpus::convert::Script::Simplified,
        "fuzz".into(),
    );
    let good = dir.path().join("good");
    checkpoint::save(&good, &model, &vocab, &meta, None).unwrap();
    for (file, seed) in [
        (checkpoint::CONFIG_FILE, 21),
        (checkpoint::VOCAB_FILE, 22),
        (checkpoint::MODEL_FILE, 23),
    ] {
        let valid = std::fs::read(good.join(file)).unwrap();
        let ck = dir.path().join("ck");
        cases(seed, &valid, |k, input| {
            let _ = std::fs::remove_dir_all(&ck);
            std::fs::create_dir(&ck).unwrap();
            for f in [
                checkpoint::CONFIG_FILE,
                checkpoint::VOCAB_FILE,
                checkpoint::MODEL_FILE,
            ] {
                std::fs::copy(good.join(f), ck.join(f)).unwrap();
            }
            std::fs::write(ck.join(file), input).unwrap();
            check(file, k, input, |_| checkpoint::load(&ck));
        });
    }
}

#[test]
fn the_api_request_parser_survives_hostile_bodies() {
    use shiren::serve::api::{parse_request, Limits};
    let limits = Limits::default();
    let valid = r#"{"acrostic":"春夏秋冬","form":"wujue","tones":"strict","seed":5,"count":3,"temperature":0.8,"top_k":40,"top_p":0.9,"rhyme":true,"max_len":64}"#;
    cases(31, valid.as_bytes(), |k, input| {
        check("api", k, input, |b| {
            parse_request(b).and_then(|r| r.validate(&limits, 7))
        });
    });
    // deep nesting, long strings, many keys
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let long = format!(r#"{{"begin":"{}"}}"#, "春".repeat(20_000));
    let many: String = format!(
        "{{{}}}",
        (0..3000)
            .map(|i| format!("\"k{i}\":{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    for (k, body) in [deep, long, many].iter().enumerate() {
        check("api", 1000 + k as u64, body.as_bytes(), |b| {
            parse_request(b).and_then(|r| r.validate(&limits, 7))
        });
    }
}
