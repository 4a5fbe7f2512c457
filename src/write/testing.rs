//! Models for the writer's tests: the constraints alone shape their poems.

use super::CharModel;

/// Every character equally likely, over the specials (ids 0–3) and these characters.
pub struct Uniform(pub Vec<char>);

impl CharModel for Uniform {
    type State = ();
    fn vocab_size(&self) -> usize {
        self.0.len() + 4
    }
    fn char_of(&self, id: u32) -> Option<char> {
        id.checked_sub(4)
            .and_then(|i| self.0.get(i as usize).copied())
    }
    fn initial_state(&self) {}
    fn step(&self, _: &mut (), _: u32, logits: &mut [f32]) {
        logits.fill(0.0);
    }
}
