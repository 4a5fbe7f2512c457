//! The trained network as the writer's [`CharModel`]: each poem carries its
//! own batch-of-one state, and a step of many poems is one batched model step.

use super::{CharModel, Form, BEGIN};
use crate::model::{Model, State as ModelState, StepWeights};
use crate::vocab::Vocab;

/// The trained network with its vocabulary, as a [`CharModel`]. Each
/// sequence carries its own batch-of-one state; [`CharModel::step_rows`]
/// gathers the rows into one batch for a single [`Model::step`] and scatters
/// them back, so a batched engine step serves many poems at once.
pub struct Lm<'a> {
    pub model: &'a Model,
    pub vocab: &'a Vocab,
    /// The model's weights as steps read them fastest (transposed for
    /// batched steps, half precision when exact), made once here.
    wt: StepWeights,
    /// The batched states of the last steps, kept for the next: a fresh one
    /// is megabytes of zeroed pages every step. One per thread that steps.
    spare: std::sync::Mutex<Vec<ModelState>>,
}

impl<'a> Lm<'a> {
    pub fn new(model: &'a Model, vocab: &'a Vocab) -> Lm<'a> {
        Lm {
            model,
            vocab,
            wt: model.step_weights(),
            spare: Default::default(),
        }
    }
}

impl CharModel for Lm<'_> {
    type State = ModelState;
    fn vocab_size(&self) -> usize {
        self.model.cfg.vocab
    }
    fn char_of(&self, id: u32) -> Option<char> {
        self.vocab.char(id)
    }
    fn form_tag(&self, form: Form) -> Option<u32> {
        self.vocab.tag(form)
    }
    fn reads_titles(&self) -> bool {
        self.model
            .cfg
            .positions
            .as_ref()
            .is_some_and(|p| p.resets.contains(&BEGIN))
    }
    fn logits_are_log_probs(&self) -> bool {
        self.model.cfg.shortlist > 0
    }
    fn initial_state(&self) -> ModelState {
        self.model.new_state(1)
    }
    fn step(&self, state: &mut ModelState, token: u32, logits: &mut [f32]) {
        self.model.step(state, &[token], logits);
    }
    fn step_rows(
        &self,
        states: &mut [&mut ModelState],
        tokens: &[u32],
        logits: Option<&mut [f32]>,
    ) {
        let b = states.len();
        if b == 1 {
            return self
                .model
                .step_with(Some(&self.wt), states[0], tokens, logits);
        }
        // a kept state of this batch size, if there is one; else a new one
        let spare = self.spare.lock().ok().and_then(|mut s| {
            let at = s.iter().position(|x| x.batch == b);
            at.map(|i| s.swap_remove(i))
        });
        let mut batch = spare.unwrap_or_else(|| self.model.new_state(b));
        // (layers) × (b, H) ← b × (layers) × (1, H), and back after the step.
        for (r, s) in states.iter().enumerate() {
            batch.copy_row(r, s, 0);
        }
        self.model
            .step_with(Some(&self.wt), &mut batch, tokens, logits);
        for (r, s) in states.iter_mut().enumerate() {
            s.copy_row(0, &batch, r);
        }
        if let Ok(mut s) = self.spare.lock() {
            s.push(batch);
            // as many as threads step at once: the oldest go
            let keep = crate::engine::matmul::threads().max(1);
            let extra = s.len().saturating_sub(keep);
            s.drain(..extra);
        }
    }
}
