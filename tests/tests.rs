//! shiren's integration tests: one test binary that runs the built `shiren`
//! on small inputs the tests write themselves. Each part of the program adds
//! its own module here.

// Helpers: `shiren_test!` (temp dir + ready command) and `eqnice!`.
#[macro_use]
mod macros;

// Tiny corpora in each source format, written by the tests.
mod hay;

// Writing with a person: `shiren check`, `write --template/--revise`, the prompt with piped input.
mod cowrite;

// `shiren corpus`: readers, cleaning rules, bad input, the real corpus (ignored).
mod corpus;

// README.md and docs/: size, links and anchors, generated blocks, no work items.
mod docs;

// `shiren eval` and its measures: a tiny trained model evaluated end to end.
mod eval;

// `shiren train --init-from`: a run from the shipped model's weights, resumed; characters it lacks.
mod finetune;

// `shiren mnist`: the IDX reader on small files, training on a synthetic task, the real set (ignored).
mod mnist;

// `shiren score`, `export --torch` and `import` on the shipped model.
mod score;

// `shiren serve`: the JSON API and page on an ephemeral loopback port, bad input, 64 clients.
mod serve;

// `shiren train` and the training loop: resume after kill -9, divergence, run folders, settings.
mod train;

// `write --title` and `--keywords`: a title changes the poem, keywords always appear.
mod titles;

// `shiren tunes` and `write --tune` on the real Song ci (ignored).
mod tunes;

// `shiren write`: bad input and the missing shipped model.
mod write;

// Hostile input: sizes, non-files, loops, bombs, damaged checkpoints, two trainers at once.
mod hardening;

// Bounded random and truncated inputs to every reader of untrusted bytes (no panic, one line, memory bound).
mod fuzz;
