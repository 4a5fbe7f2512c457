//! The encoded corpus a run trains on ([`Data`]): poems split into training
//! and validation parts, each encoded with its form tag (or title) in front.

use crate::corpus::convert::Script;
use crate::corpus::forms::Form;
use crate::corpus::split::{split, text_hash};
use crate::corpus::Poem;
use crate::vocab::Vocab;

/// The encoded corpus a run trains on.
pub struct Data {
    pub vocab: Vocab,
    /// Training poems, encoded without BEGIN/END; those of a tagged form start with its tag,
    /// and those read with a title start with it (with the untitled share drawn each
    /// epoch, every poem that has one: see [`Data::epoch_train`]).
    pub train: Vec<Vec<u32>>,
    /// With the untitled share drawn each epoch: per training poem, its text's hash
    /// and the length of its title prefix in `train` (0 without a title).
    pub each_epoch: Option<Vec<(u64, usize)>>,
    /// Validation poems, encoded without BEGIN/END and untagged, so that
    /// validation perplexity is over the characters alone, as in `shiren eval`.
    pub valid: Vec<Vec<u32>>,
    /// Description of the corpus, stored in checkpoints.
    pub corpus: String,
    pub script: Script,
}

impl Data {
    /// Sorts poems into their parts with [`split`] (test poems are left out), builds the
    /// vocabulary from the training split unless one is given (a resumed run
    /// keeps its checkpoint's), and encodes. Poems over `max_len` characters are
    /// dropped. With `form_tags`, a new vocabulary gets the [`Form::REGULATED`] (a
    /// given one keeps whatever tags it has) and training poems are tagged.
    /// With `titles`, training poems are led by their cleaned title (see
    /// [`crate::title`]); validation poems never are, so validation
    /// perplexity stays the titleless one. The untitled fifth is one fixed set
    /// ([`crate::title::untitled`]), or with `untitled_each_epoch` drawn afresh
    /// for each epoch by [`Data::epoch_train`].
    #[allow(clippy::too_many_arguments)]
    pub fn from_poems(
        poems: &[Poem],
        vocab: Option<Vocab>,
        min_count: usize,
        max_len: usize,
        form_tags: bool,
        titles: bool,
        untitled_each_epoch: bool,
        corpus: String,
        script: Script,
    ) -> Data {
        let each_epoch = titles && untitled_each_epoch;
        let kept = poems.iter().filter(|p| p.text.chars().count() <= max_len);
        let [train_poems, valid_poems, _] = split(kept, |p| p.text.as_str());
        let train: Vec<&str> = train_poems.iter().map(|p| p.text.as_str()).collect();
        let valid: Vec<&str> = valid_poems.iter().map(|p| p.text.as_str()).collect();
        let train_titles: Vec<Option<String>> = train_poems
            .iter()
            .map(|p| {
                (titles && (each_epoch || !crate::title::untitled(&p.text)))
                    .then(|| crate::title::clean(&p.title))
                    .flatten()
            })
            .collect();
        let vocab = vocab.unwrap_or_else(|| {
            let v = Vocab::build(train.iter().copied(), min_count);
            if form_tags {
                v.with_tags(&Form::REGULATED)
            } else {
                v
            }
        });
        let train: Vec<Vec<u32>> = train
            .iter()
            .zip(&train_titles)
            .map(|(t, title)| {
                let mut ids = crate::title::prefix(&vocab, title.as_deref());
                ids.extend(encode_tagged(&vocab, t));
                ids
            })
            .collect();
        let each_epoch = each_epoch.then(|| {
            train_poems
                .iter()
                .zip(&train)
                .map(|(p, ids)| (text_hash(&p.text), crate::title::prefix_len(ids)))
                .collect()
        });
        Data {
            train,
            each_epoch,
            valid: valid.iter().map(|t| vocab.encode(t)).collect(),
            vocab,
            corpus,
            script,
        }
    }
}

/// Percent of the poems of a tagged form left untagged (see [`TrainConfig::form_tags`](super::TrainConfig::form_tags)).
const UNTAGGED_PERCENT: u64 = 15;

/// The poem's ids, led by its form's tag when the vocabulary has one for it
/// and the poem is not among the untagged share. The share is picked by the
/// high half of the split's hash, which the split (low digits) does not use.
pub fn encode_tagged(vocab: &Vocab, text: &str) -> Vec<u32> {
    let mut ids = Vec::with_capacity(text.len() / 3 + 1);
    let untagged = (text_hash(text) >> 32) % 100 < UNTAGGED_PERCENT;
    if !untagged {
        ids.extend(vocab.tag(Form::of_text(text)));
    }
    ids.extend(vocab.encode(text));
    ids
}

impl Data {
    /// The training poems of epoch `epoch`: [`Data::train`] as it is, or with the
    /// untitled share drawn each epoch, without the title of the poems
    /// [`crate::title::untitled_in_epoch`] picks for this one.
    pub fn epoch_train(&self, epoch: u64) -> Vec<Vec<u32>> {
        let Some(each) = &self.each_epoch else {
            return self.train.clone();
        };
        self.train
            .iter()
            .zip(each)
            .map(|(ids, &(hash, k))| {
                let drop = k > 0 && crate::title::untitled_in_epoch(hash, epoch);
                ids[if drop { k } else { 0 }..].to_vec()
            })
            .collect()
    }

    /// SHA-256 (hex) of the encoded training and validation poems, in order.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [&self.train, &self.valid] {
            h.update((part.len() as u64).to_le_bytes());
            for seq in part {
                h.update((seq.len() as u32).to_le_bytes());
                for id in seq {
                    h.update(id.to_le_bytes());
                }
            }
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}
