//! One poem being written, a character at a time: where the writer stands
//! in the layout, what the constraints allow at the next place (masks for
//! form, rhyme, tones, repetition and kept characters), the draw, and the
//! finished poem. The batch loop that feeds the model is in `write.rs`.

use super::*;

/// Where one try at a poem stands.
pub(super) struct Cursor {
    /// The common line length of a regulated poem (0 for free verse and ci).
    line_len: usize,
    /// Characters each rhyme set's first-foot group must have (every foot its own, when possible).
    n_feet: Vec<usize>,
    tone_plan: TonePlan,
    /// The group each rhyme set is held to, once chosen: one set for shi,
    /// the tune's sets for ci (each a 词林正韵 class).
    groups: Vec<Option<u16>>,
    feet: Vec<u32>,
    out: Vec<u32>,
    /// Line and position (from 0) of the next character.
    i: usize,
    j: usize,
    best: TopK,
    cands: Vec<(u32, f32)>,
    /// What the repetition rule forbids at the cursor, as a list and as bits by token.
    banned: Vec<u32>,
    ban: Vec<u64>,
    /// The rule left nothing at the cursor and was set aside there.
    relaxed: bool,
    /// Summed log-probability of the chosen tokens, and how many.
    logp: f64,
    chosen: usize,
}

impl Cursor {
    pub(super) fn new<M: CharModel>(w: &Writer<M>, plan: &Plan, job: &Job) -> Cursor {
        let layout = plan.layout.as_deref();
        // A ci's tones and rhymes come from its tune, not from the 近体诗 rules.
        let line_len = match plan.ci {
            Some(_) => 0,
            None => layout.and_then(regulated_len).unwrap_or(0),
        };
        let mut n_feet: Vec<usize> = match &plan.ci {
            Some(f) => (0..f.sets.len())
                .map(|s| f.lines.iter().filter(|l| l.rhyme == Some(s)).count())
                .collect(),
            None => vec![layout.map_or(0, |l| l.len()) / 2],
        };
        // Groups for the first foot need a character for every foot; if no
        // group is that large in this vocabulary, any group with one will do.
        let (_, members) = w.rhyme_tables(plan.ci.is_some());
        for (s, n) in n_feet.iter_mut().enumerate() {
            let level = set_level(plan, s);
            let fits = |n: usize| {
                (0..members.len() as u16).any(|g| w.group_usable(g, &job.excluded, n, level))
            };
            if job.rhyme && !fits(*n) {
                *n = 1;
            }
        }
        // Kept characters steer the plan before writing starts: their tones
        // fix the key positions around them, and kept feet fix the group.
        let mut tone_plan = TonePlan::new(job.tones, line_len);
        let mut locks: Vec<(&(usize, usize), &u32)> = plan.locks.iter().collect();
        locks.sort();
        for (&(i, j), &t) in &locks {
            tone_plan.lock(i, j, w.tone[t as usize]);
        }
        // The group: one every kept foot is in, preferring one a kept first
        // line's end is in too (蛇 is in 四支 and 六麻: beside 花 it is 六麻).
        let group = if job.rhyme && line_len > 0 {
            let groups_at = |i: usize| {
                plan.locks
                    .get(&(i, line_len - 1))
                    .map(|&t| &w.token_groups[t as usize])
            };
            let feet: Vec<&Vec<u16>> = (1..).step_by(2).take(64).filter_map(groups_at).collect();
            let head = groups_at(0);
            feet.first().and_then(|first| {
                let ok = |g: &&u16| !job.excluded.contains(g);
                let shared: Vec<u16> = first
                    .iter()
                    .filter(ok)
                    .filter(|g| feet.iter().all(|f| f.contains(g)))
                    .copied()
                    .collect();
                shared
                    .iter()
                    .find(|g| head.is_some_and(|h| h.contains(g)))
                    .or(shared.first())
                    .or_else(|| first.iter().find(ok))
                    .copied()
            })
        } else {
            None
        };
        Cursor {
            line_len,
            // A kept foot's group holds the first (shi's only) rhyme set.
            groups: (0..n_feet.len())
                .map(|s| if s == 0 { group } else { None })
                .collect(),
            n_feet,
            tone_plan,
            feet: Vec::new(),
            out: Vec::new(),
            i: 0,
            j: 0,
            best: TopK::default(),
            cands: Vec::with_capacity(w.han.len()),
            banned: Vec::new(),
            ban: if job.repeats {
                vec![0; w.chars.len().div_ceil(64)]
            } else {
                Vec::new()
            },
            relaxed: false,
            logp: 0.0,
            chosen: 0,
        }
    }

    /// One step of the generation loop, given the logits of the next token.
    pub(super) fn choose<M: CharModel>(
        &mut self,
        w: &Writer<M>,
        plan: &Plan,
        logits: &[f32],
        job: &mut Job,
    ) -> Step {
        let layout = plan.layout.as_deref();
        let (i, j) = (self.i, self.j);
        // Where are we: a character inside line i, or its closing punctuation?
        let slot = match layout {
            Some(l) if i >= l.len() => return Step::Done,
            Some(l) if j == l[i].len => Slot::Punct,
            Some(_) => Slot::Char,
            None if self.out.len() >= plan.max_len => return Step::Done,
            None => Slot::Char,
        };
        let set = if matches!(slot, Slot::Char) {
            self.foot_set(plan, job, i, j)
        } else {
            None
        };
        let is_foot = set.is_some();
        let s = set.unwrap_or(0);
        let level = set_level(plan, s);
        let forced = self.forced(w, plan);
        let token = match forced {
            Some(t) => {
                let c = w.chars[t as usize].unwrap_or('?');
                let mut note = |n: String| {
                    if !job.notes.contains(&n) {
                        job.notes.push(n);
                    }
                };
                // The user's own characters may break the rules the rest keeps: say so.
                if matches!(slot, Slot::Char) && layout.is_some() && job.tones != ToneMode::Off {
                    let req = self.tone_plan.req(i, j);
                    if !req.allows(w.tone[t as usize]) {
                        note(format!(
                            "the given `{c}` at line {}, position {} breaks the tone rules ({}); the rest of the poem keeps them",
                            i + 1,
                            j + 1,
                            match req {
                                ToneReq::Ping => "平 wanted",
                                ToneReq::Ze => "仄 wanted",
                                _ => "tone unknown",
                            }
                        ));
                    }
                }
                if is_foot && w.token_groups[t as usize].is_empty() {
                    note(format!(
                        "the given `{c}` ends line {} but is in no level (平) rhyme group; the other feet rhyme among themselves",
                        i + 1
                    ));
                }
                if plan.score_kept && matches!(slot, Slot::Char) && self.at_lock(plan) {
                    // Kept keywords count in the score, so placements compare.
                    self.logp += if w.model.logits_are_log_probs() {
                        logits[t as usize] as f64
                    } else {
                        logits[t as usize] as f64 - log_sum_exp(logits)
                    };
                    self.chosen += 1;
                }
                if is_foot {
                    // A foot the user wrote: it picks the group if none is chosen yet.
                    let gs = &w.rhyme_tables(plan.ci.is_some()).0[t as usize];
                    match self.groups[s] {
                        None => {
                            self.groups[s] = gs.iter().copied().find(|&g| {
                                !job.excluded.contains(&g)
                                    && level
                                        .is_none_or(|lv| Class::from_index(g as usize).level == lv)
                            })
                        }
                        Some(g) if !gs.contains(&g) => job.notes.push(
                            "the given text's rhyme foot is outside the chosen rhyme group".into(),
                        ),
                        Some(_) => {}
                    }
                    self.feet.push(t);
                }
                t
            }
            None => {
                // 1. The allowed characters at this position, with their logits.
                self.allowed(w, plan, logits, job, set);
                if self.relaxed {
                    job.notes.push(format!(
                        "no character fits line {}, position {} without repeating one; repetition allowed there",
                        i + 1,
                        j + 1
                    ));
                }
                if self.cands.is_empty() {
                    return Step::Dead(DeadEnd {
                        line: i,
                        pos: j,
                        group: if is_foot { self.groups[s] } else { None },
                        foot: is_foot,
                    });
                }
                // 2–5. Temperature, top-k, top-p, then a seeded draw.
                let token = sample(
                    &mut self.cands,
                    plan.temperature,
                    plan.top_k,
                    plan.top_p,
                    &mut job.rng,
                );
                // The draft's score: the model's own log-probability of the choice.
                self.logp += if w.model.logits_are_log_probs() {
                    logits[token as usize] as f64
                } else {
                    logits[token as usize] as f64 - log_sum_exp(logits)
                };
                self.chosen += 1;
                if is_foot && self.groups[s].is_none() {
                    self.groups[s] =
                        w.choose_group(token, &self.cands, &job.excluded, self.n_feet[s], level);
                }
                // A level end of line 1 rhymes (首句入韵): it is the first foot.
                let first_rhymes =
                    self.first_line_end(plan, job) && w.tone[token as usize] == Some(Tone::Ping);
                if first_rhymes && self.groups[0].is_none() {
                    let n = self.n_feet[0] + 1;
                    self.groups[0] = w.choose_group(token, &self.cands, &job.excluded, n, None);
                }
                if is_foot || first_rhymes {
                    self.feet.push(token);
                }
                token
            }
        };
        // 6. Append, and move on.
        if token == END {
            return Step::Done;
        }
        self.out.push(token);
        let han = w.chars[token as usize].is_some_and(is_han);
        match slot {
            Slot::Punct => (self.i, self.j) = (i + 1, 0),
            Slot::Char if layout.is_none() => {
                if han {
                    self.j += 1;
                } else {
                    (self.i, self.j) = (i + 1, 0);
                    if !plan.heads.is_empty() && self.i >= plan.heads.len() {
                        return Step::Done; // a free acrostic ends with its last head's line
                    }
                }
            }
            Slot::Char => {
                if !han {
                    // Unreachable through `plan`, which checks where given punctuation falls.
                    return Step::Dead(DeadEnd {
                        line: i,
                        pos: j,
                        group: None,
                        foot: false,
                    });
                }
                self.tone_plan.place(i, j, w.tone[token as usize]);
                self.j += 1;
            }
        }
        let done = match layout {
            Some(l) => self.i >= l.len(),
            None => self.out.len() >= plan.max_len,
        };
        if done {
            Step::Done
        } else {
            Step::Feed(token)
        }
    }

    /// A token the plan forces at the cursor: the user's first words, a
    /// kept character (an acrostic's head, a template's), the form's punctuation.
    /// Whether the next place holds a kept character (not begin text or punctuation).
    pub(super) fn at_lock(&self, plan: &Plan) -> bool {
        self.out.len() >= plan.begin.len() && plan.locks.contains_key(&(self.i, self.j))
    }

    pub(super) fn forced<M: CharModel>(&self, w: &Writer<M>, plan: &Plan) -> Option<u32> {
        let (i, j) = (self.i, self.j);
        if self.out.len() < plan.begin.len() {
            Some(plan.begin[self.out.len()])
        } else if let Some(&t) = plan.locks.get(&(i, j)) {
            Some(t)
        } else {
            match plan.layout.as_deref() {
                Some(l) if i < l.len() && j == l[i].len => Some(w.ids[&l[i].end]),
                _ => None,
            }
        }
    }

    /// The rhyme set of line `i`, position `j` (from 0) when it is a rhyme
    /// foot under `job`: set 0 at the ends of lines 2, 4, … of a regulated
    /// poem; the tune's set at a ci's rhyme positions.
    /// Whether the next place ends line 1 of rhymed shi: it may end either
    /// way, but a level end must rhyme with the feet (首句入韵), as `shiren
    /// check` holds it to.
    fn first_line_end(&self, plan: &Plan, job: &Job) -> bool {
        job.rhyme
            && plan.ci.is_none()
            && self.line_len > 0
            && self.i == 0
            && self.j + 1 == self.line_len
    }

    fn foot_set(&self, plan: &Plan, job: &Job, i: usize, j: usize) -> Option<usize> {
        if !job.rhyme {
            return None;
        }
        match &plan.ci {
            Some(f) => f
                .lines
                .get(i)
                .filter(|l| j + 1 == l.len)
                .and_then(|l| l.rhyme),
            None => (self.line_len > 0 && i % 2 == 1 && j + 1 == self.line_len).then_some(0),
        }
    }

    /// Fills `cands` with the tokens allowed next and their logits; `set`:
    /// the rhyme set when this position is a foot.
    fn allowed<M: CharModel>(
        &mut self,
        w: &Writer<M>,
        plan: &Plan,
        logits: &[f32],
        job: &Job,
        set: Option<usize>,
    ) {
        let is_foot = set.is_some();
        let s = set.unwrap_or(0);
        let level = set_level(plan, s);
        let (token_groups, members) = w.rhyme_tables(plan.ci.is_some());
        let (i, j) = (self.i, self.j);
        // Greedy is top-1; otherwise only the top k can be drawn, so only they are kept.
        let k = if plan.temperature == 0.0 {
            1
        } else {
            plan.top_k
        };
        self.best.reset(k);
        self.cands.clear();
        if plan.layout.is_none() {
            // Free: Han or punctuation, no punctuation twice in a row, the end
            // token only after a finished line (and after every acrostic head).
            let after_punct = self
                .out
                .last()
                .is_none_or(|&t| !w.chars[t as usize].is_some_and(is_han));
            for (id, &l) in logits.iter().enumerate() {
                let ok = if id as u32 == END {
                    !self.out.is_empty() && after_punct && i >= plan.heads.len()
                } else {
                    w.free_ok[id] && (!after_punct || w.chars[id].is_some_and(is_han))
                };
                if ok {
                    self.best.push(id as u32, l);
                }
            }
            self.best.finish(&mut self.cands);
            return;
        }
        let req = match &plan.ci {
            Some(f) => ci_req(f.tone_at(job.tones, i, j)),
            None => self.tone_plan.req(i, j),
        };
        // The precomputed list for this tone requirement, or the rhyme group's members.
        // A tune may have no rhyme set at all: `get`, not an index.
        let pool: &[u32] = match (is_foot, self.groups.get(s).copied().flatten()) {
            (true, Some(g)) => &members[g as usize],
            _ => &w.by_req[req_index(req)],
        };
        // The repetition rule is one more mask; where it leaves nothing, it is
        // set aside for this position (and noted) rather than failing the poem.
        let rule = job.repeats && self.line_len > 0;
        if rule {
            let at_foot = i % 2 == 1 && j + 1 == self.line_len;
            self.fill_banned(w, at_foot);
        }
        self.relaxed = false;
        // Line 1's end: a character read only level must be in a group that can still rhyme.
        let first_end = self.first_line_end(plan, job);
        for pass in 0..2 {
            let strict = rule && pass == 0 && !self.banned.is_empty();
            if !first_end && !is_foot {
                // Most positions: only the rule's mask, asked after the floor.
                let ban = &self.ban;
                for &id in pool {
                    let banned = || strict && ban[id as usize / 64] >> (id % 64) & 1 != 0;
                    self.best.push_if(id, logits[id as usize], || !banned());
                }
                if !self.best.is_empty() || !strict {
                    break;
                }
                self.relaxed = true;
                self.best.reset(k);
                continue;
            }
            for &id in pool {
                let t = id as usize;
                if first_end && w.tone[t] == Some(Tone::Ping) {
                    let fits = |g: &u16| match self.groups[0] {
                        Some(chosen) => *g == chosen,
                        None => w.group_usable(*g, &job.excluded, self.n_feet[0] + 1, None),
                    };
                    if !token_groups[t].iter().any(fits) {
                        continue;
                    }
                }
                if is_foot {
                    let gs = &token_groups[t];
                    if !req.allows(w.tone[t]) || gs.is_empty() {
                        continue;
                    }
                    if self.groups[s].is_none()
                        && !gs
                            .iter()
                            .any(|&g| w.group_usable(g, &job.excluded, self.n_feet[s], level))
                    {
                        continue;
                    }
                    if self.feet.contains(&id) {
                        continue; // no foot twice, unless nothing else is left (below)
                    }
                }
                if strict && self.is_banned(id) {
                    continue;
                }
                self.best.push(id, logits[t]);
            }
            if !self.best.is_empty() || !strict {
                break;
            }
            self.relaxed = true;
            self.best.reset(k);
        }
        if self.best.is_empty() && is_foot && self.groups[s].is_some() {
            for &id in &self.feet {
                self.best.push(id, logits[id as usize]);
            }
        }
        self.best.finish(&mut self.cands);
    }

    pub(super) fn finish<M: CharModel>(&self, w: &Writer<M>, plan: &Plan, job: &Job) -> Poem {
        let group = if job.rhyme && plan.ci.is_none() {
            self.groups[0]
        } else {
            None
        };
        let mut poem = w.finish(&self.out, self.line_len, group, job.tones, job.rhyme);
        if let (Some(f), true) = (&plan.ci, job.rhyme) {
            // A ci's feet are its tune's rhyme positions; its classes are named per set.
            for (l, p) in poem.lines.iter_mut().zip(&f.lines) {
                if p.rhyme.is_some() && l.chars.len() == p.len {
                    if let Some(m) = l.chars.last_mut() {
                        m.foot = true;
                    }
                }
            }
            let names: Vec<String> = self
                .groups
                .iter()
                .flatten()
                .map(|&g| Class::from_index(g as usize).name())
                .collect();
            poem.rhyme_group = (!names.is_empty()).then(|| names.join("、"));
        }
        poem.notes = job.notes.clone();
        poem.score = if self.chosen == 0 {
            0.0
        } else {
            (self.logp / self.chosen as f64) as f32
        };
        poem
    }

    /// Sets `banned` and its bits to what the repetition rule forbids next.
    fn fill_banned<M: CharModel>(&mut self, w: &Writer<M>, foot: bool) {
        for &t in &self.banned {
            self.ban[t as usize / 64] &= !(1u64 << (t % 64));
        }
        let mut lines: Vec<&[u32]> = self
            .out
            .split(|&t| !w.chars[t as usize].is_some_and(is_han))
            .collect();
        let line = lines.pop().unwrap_or(&[]);
        repeats::banned(
            &lines,
            line,
            foot,
            |t| w.may_repeat[t as usize],
            &mut self.banned,
        );
        for &t in &self.banned {
            self.ban[t as usize / 64] |= 1u64 << (t % 64);
        }
    }

    fn is_banned(&self, t: u32) -> bool {
        self.ban[t as usize / 64] >> (t % 64) & 1 != 0
    }
}

/// log Σ exp(row), for models whose logits are not log-probabilities.
pub(super) fn log_sum_exp(row: &[f32]) -> f64 {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    m + row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln()
}
