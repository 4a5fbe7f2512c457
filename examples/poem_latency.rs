//! How long one poem takes, as `shiren write` writes it (the default settings:
//! the likeliest of `DEFAULT_DRAFTS` drafts, rhyme on, repetition rule on), for a 七律 plain,
//! with a title, and with a title and two keywords. Loads the shipped model
//! and the 平水韵 table once, writes each kind 30 times one poem at a time,
//! and prints the median and the 90th percentile per poem.
//!
//! cargo run --release --example poem_latency      (needs the fetched table: shiren corpus fetch)
use std::path::Path;
use std::time::Instant;

use shiren::corpus::convert::Script;
use shiren::prosody::Lexicon;
use shiren::rng::Rng;
use shiren::write::{Form, Lm, Options, Writer};

fn main() -> anyhow::Result<()> {
    let loaded = shiren::checkpoint::load(Path::new("models/tang-small"))?;
    let data = shiren::cache::data_dir(None)?;
    let lex = Lexicon::load(&data, Script::Simplified)?;
    let lm = Lm::new(&loaded.model, &loaded.vocab);
    let w = Writer::new(&lm, Some(&lex));
    let base = Options {
        form: Form::Qilv,
        rhyme: true,
        ..Options::default()
    };
    let kinds = [
        ("七律", base.clone()),
        (
            "七律, title 送别",
            Options {
                title: "送别".into(),
                ..base.clone()
            },
        ),
        (
            "七律, title 送别, keywords 明月,江",
            Options {
                title: "送别".into(),
                keywords: vec!["明月,江".into()],
                ..base.clone()
            },
        ),
    ];
    println!("threads {}", rayon::current_num_threads());
    for (name, opts) in &kinds {
        w.write(opts, &mut Rng::new(0))?; // warm-up
        let mut ms: Vec<f64> = (1..=30)
            .map(|seed| {
                let t = Instant::now();
                w.write(opts, &mut Rng::new(seed)).expect("a poem");
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        println!(
            "{name}: median {:.1} ms, p90 {:.1} ms per poem",
            ms[15], ms[27]
        );
    }
    Ok(())
}
