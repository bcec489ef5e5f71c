//! The miner: a Drain-style fixed-depth prefix tree over masked tokens, the offline
//! refinement (merges and closed-vocabulary splits) and the serializable state.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::mask::WILDCARD;
use super::params::TemplateParams;
use super::tokens::Tokens;
use super::{TemplateError, TemplateId};

/// Current [`MinerState::format_version`].
pub const FORMAT_VERSION: u32 = 1;

/// Distinct words remembered per template position (or `vocabulary`, when larger), so that
/// slots of different templates can be compared.
const WORDS_KEPT: usize = 16;

/// Constant tokens two templates must share to be merged across tree leaves.
const MIN_SHARED_CONSTANTS: usize = 3;

/// The words seen at one position of a template, with counts: `None` once the position held
/// a non-word (a digit or a mask) or more distinct words than are kept.
type Slot = Option<Vec<(String, u64)>>;

/// One template: its id, its tokens (`<*>` for a variable part) and how many messages it
/// holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Assigned when the template is created; never changes.
    pub id: TemplateId,
    /// The template's tokens.
    pub tokens: Vec<String>,
    /// Messages assigned to it (after [`mine`](super::mine): in the final assignment).
    pub count: u64,
    /// The template this one was split from by [`TemplateMiner::refine`], with the words at
    /// the parent's split positions.
    pub parent: Option<(TemplateId, Vec<String>)>,
    /// The template this one was merged into (its id then resolves there).
    pub merged_into: Option<TemplateId>,
    /// Tree path it is filed under (one key per level below the token count).
    route: Vec<String>,
    /// Vocabulary per position.
    slots: Vec<Slot>,
    /// Positions whose words pick a child template (set by `refine`).
    split: Vec<usize>,
}

impl Template {
    /// The template text: tokens joined by single spaces.
    pub fn text(&self) -> String {
        self.tokens.join(" ")
    }

    /// Positions that select a child template (non-empty once refined and split).
    pub fn split_positions(&self) -> &[usize] {
        &self.split
    }
}

/// What [`TemplateMiner::add`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// A new template was created for it.
    Created,
    /// It joined a template and generalized it (some tokens became `<*>`).
    Updated,
    /// It joined a template unchanged.
    Unchanged,
}

#[derive(Debug, Clone, Default)]
struct Node {
    children: HashMap<String, Node>,
    /// Indices into `TemplateMiner::templates`.
    leaves: Vec<usize>,
}

/// The template miner. See the [module docs](super) for the algorithm.
///
/// ```
/// use faultline::template::{TemplateMiner, TemplateParams};
///
/// let mut miner = TemplateMiner::new(TemplateParams::default());
/// let (a, _) = miner.add("Connection closed by 10.0.0.1 port 22");
/// let (b, _) = miner.add("Connection closed by 10.0.0.7 port 2222");
/// assert_eq!(a, b);
/// assert_eq!(miner.get(a).unwrap().text(), "Connection closed by <*> port <*>");
/// assert_eq!(miner.lookup("Connection closed by 10.9.9.9 port 1"), Some(a));
/// ```
#[derive(Debug, Clone)]
pub struct TemplateMiner {
    params: TemplateParams,
    /// Every template ever created, merged ones included, in creation order.
    templates: Vec<Template>,
    by_id: HashMap<TemplateId, usize>,
    /// `(parent, words at its split positions)` → child.
    children: HashMap<(TemplateId, Vec<String>), TemplateId>,
    next_id: u64,
    /// Token count → first tree level.
    root: HashMap<usize, Node>,
    /// Refined, or loaded from a state: new messages join the most specific template that
    /// covers them before similarity is consulted, as [`lookup`](Self::lookup) does.
    refined: bool,
    scratch: Tokens,
}

/// A miner's saved state ([`TemplateMiner::state`], [`TemplateMiner::from_state`]); the tree
/// is rebuilt from the templates' routes on load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinerState {
    /// Version of this layout ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// The configuration the miner ran with.
    pub config: super::TemplateConfig,
    /// Next id to assign.
    pub next_id: u64,
    /// Every template in creation order, merged ones included.
    pub templates: Vec<TemplateState>,
}

/// One template in a [`MinerState`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateState {
    /// Its id.
    pub id: TemplateId,
    /// Its tokens.
    pub tokens: Vec<String>,
    /// Messages assigned.
    pub count: u64,
    /// Tree path.
    pub route: Vec<String>,
    /// Words seen per position with their counts (`null`: not a closed vocabulary).
    pub vocabulary: Vec<Option<Vec<(String, u64)>>>,
    /// Positions that select a child template.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub split: Vec<usize>,
    /// The template it was split from, with the words at the parent's split positions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<(TemplateId, Vec<String>)>,
    /// The template it was merged into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<TemplateId>,
}

/// Whether a template token (which may hold `<*>` inside, like `user=<*>`) matches a message
/// token: `<*>` stands for any run of characters, possibly empty.
///
/// ```
/// use faultline::template::token_matches;
///
/// assert!(token_matches("user=<*>", "user=root"));
/// assert!(token_matches("<*>", "anything"));
/// assert!(!token_matches("user=<*>", "uid=0"));
/// ```
pub fn token_matches(template: &str, token: &str) -> bool {
    if !template.contains(WILDCARD) {
        return template == token;
    }
    let mut parts = template.split(WILDCARD);
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = token.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return true;
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Generalizes a template token so that it also covers a message token, or `None` when it
/// already does. The common prefix up to and including its last punctuation character and the
/// common suffix from its first punctuation character are kept; the rest becomes `<*>`.
///
/// ```
/// use faultline::template::generalize;
///
/// assert_eq!(generalize("user=root", "user=admin").as_deref(), Some("user=<*>"));
/// assert_eq!(generalize("Started", "Stopped").as_deref(), Some("<*>"));
/// assert_eq!(generalize("user=<*>", "user=x"), None);
/// ```
pub fn generalize(template: &str, token: &str) -> Option<String> {
    if template == WILDCARD || token_matches(template, token) {
        return None;
    }
    let a = template.as_bytes();
    let b = token.as_bytes();
    // A cut is allowed after (prefix) or before (suffix) a punctuation character, on a char
    // boundary, and never inside a `<*>`.
    let cut_ok = |i: usize| template.is_char_boundary(i) && !inside_wildcard(a, i);
    let mut p = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    while p > 0 && (a[p - 1].is_ascii_alphanumeric() || a[p - 1] >= 0x80 || !cut_ok(p)) {
        p -= 1;
    }
    let max_s = (a.len() - p).min(b.len() - p);
    let mut s = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(max_s)
        .take_while(|(x, y)| x == y)
        .count();
    while s > 0 && {
        let i = a.len() - s;
        a[i].is_ascii_alphanumeric() || a[i] >= 0x80 || !cut_ok(i)
    } {
        s -= 1;
    }
    let mut out = String::with_capacity(p + s + WILDCARD.len());
    out.push_str(&template[..p]);
    out.push_str(WILDCARD);
    out.push_str(&template[a.len() - s..]);
    while out.contains("<*><*>") {
        out = out.replace("<*><*>", WILDCARD);
    }
    Some(out)
}

/// Whether a cut at byte `i` would split a `<*>`.
fn inside_wildcard(a: &[u8], i: usize) -> bool {
    let at = |j: usize, c: u8| a.get(j) == Some(&c);
    (i >= 1 && at(i - 1, b'<') && at(i, b'*')) || (i >= 2 && at(i - 2, b'<') && at(i - 1, b'*'))
}

/// Whether a token goes to the wildcard branch of the tree: it holds a mask or a digit.
fn routes_to_wildcard(tok: &str) -> bool {
    tok.contains(WILDCARD) || tok.bytes().any(|c| c.is_ascii_digit())
}

/// Whether a message token can be a word of a closed vocabulary: no mask, no digit.
fn is_word(tok: &str) -> bool {
    !routes_to_wildcard(tok)
}

/// Similarity of a message to a template of the same length: the share of positions that
/// agree (equal tokens, a partial template token like `user=<*>` that matches, or a bare
/// `<*>` over a fully masked token), and the template's bare-wildcard count (the tie-break).
fn similarity(template: &[String], tokens: &Tokens) -> (f64, usize) {
    if template.is_empty() {
        // The empty message's template.
        return (1.0, 0);
    }
    let mut same = 0usize;
    let mut params = 0usize;
    for (t, m) in template.iter().zip(tokens.iter()) {
        if t == WILDCARD {
            params += 1;
            if m == WILDCARD {
                same += 1;
            }
        } else if token_matches(t, m) {
            same += 1;
        }
    }
    (same as f64 / template.len() as f64, params)
}

/// Whether a template of the message's length covers it: every template token matches the
/// message token at its position ([`token_matches`]).
fn covers(template: &[String], tokens: &Tokens) -> bool {
    template.len() == tokens.len()
        && template
            .iter()
            .zip(tokens.iter())
            .all(|(t, m)| token_matches(t, m))
}

/// How specific a template is, to choose among several that cover a message: more positions
/// that are not a bare `<*>`, then more constant bytes (wildcards excluded).
fn specificity(template: &[String]) -> (usize, usize) {
    let fixed = template.iter().filter(|t| *t != WILDCARD).count();
    let bytes = template
        .iter()
        .map(|t| t.len() - t.matches(WILDCARD).count() * WILDCARD.len())
        .sum();
    (fixed, bytes)
}

/// Tokens with runs of bare `<*>` collapsed into one.
fn collapse(tokens: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::with_capacity(tokens.len());
    for t in tokens {
        if !(t == WILDCARD && out.last() == Some(&WILDCARD)) {
            out.push(t);
        }
    }
    out
}

/// Records word `tok` (seen `count` times) in a vocabulary slot.
fn observe(slot: &mut Slot, tok: &str, count: u64, cap: usize) {
    let Some(words) = slot else { return };
    if !is_word(tok) {
        *slot = None;
    } else if let Some(w) = words.iter_mut().find(|(w, _)| w == tok) {
        w.1 += count;
    } else if words.len() < cap.max(WORDS_KEPT) {
        words.push((tok.to_string(), count));
    } else {
        *slot = None;
    }
}

/// Adds the words of slot `other` to `slot`.
fn merge_slot(slot: &mut Slot, other: &Slot, cap: usize) {
    match other {
        None => *slot = None,
        Some(words) => {
            for (w, c) in words {
                observe(slot, w, *c, cap);
            }
        }
    }
}

impl TemplateMiner {
    /// An empty miner.
    pub fn new(params: TemplateParams) -> TemplateMiner {
        TemplateMiner {
            params,
            templates: Vec::new(),
            by_id: HashMap::new(),
            children: HashMap::new(),
            next_id: 1,
            root: HashMap::new(),
            refined: false,
            scratch: Tokens::new(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &TemplateParams {
        &self.params
    }

    /// Number of live templates (not merged into another).
    pub fn len(&self) -> usize {
        self.templates().count()
    }

    /// Whether no template was created yet.
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// Live templates (not merged into another), in creation order.
    pub fn templates(&self) -> impl Iterator<Item = &Template> {
        self.templates.iter().filter(|t| t.merged_into.is_none())
    }

    /// The live id for `id`: itself, or the template it was merged into.
    pub fn resolve(&self, mut id: TemplateId) -> TemplateId {
        while let Some(next) = self
            .by_id
            .get(&id)
            .and_then(|&i| self.templates[i].merged_into)
        {
            id = next;
        }
        id
    }

    /// The template with `id`, following merges.
    pub fn get(&self, id: TemplateId) -> Option<&Template> {
        self.by_id
            .get(&self.resolve(id))
            .map(|&i| &self.templates[i])
    }

    /// A message's masked tokens, as the miner sees them.
    pub fn tokenize(&self, message: &str) -> Tokens {
        let mut tokens = Tokens::new();
        self.params.masker().tokenize(message, &mut tokens);
        tokens
    }

    /// Learns from one message (online): it joins the most similar template of its tree leaf
    /// at or above the similarity threshold, generalizing it, or founds a new template.
    /// Returns the id of the template that holds it now (after a merge, the survivor's; for a
    /// split template, the child for its words) and what changed.
    pub fn add(&mut self, message: &str) -> (TemplateId, Change) {
        let mut tokens = std::mem::take(&mut self.scratch);
        self.params.masker().tokenize(message, &mut tokens);
        let r = self.add_tokens(&tokens, 1, None, true);
        self.scratch = tokens;
        r
    }

    /// The template a message belongs to now, without learning from it: the most specific
    /// template that covers it (each template token matches the message token at its
    /// position) in the tree leaves its tokens can reach, else the most similar template of
    /// its leaf at or above the similarity threshold, else — once the miner is full
    /// (`max_templates`) — the template [`add`](Self::add) would make it join. A split
    /// template gives way to its child for the message's words when there is one. `None` if
    /// it matches no template.
    ///
    /// After [`mine`](super::mine) (or [`add_batch`](Self::add_batch)), `lookup` gives every
    /// message of the batch the id it was assigned, also after the state is saved and loaded.
    pub fn lookup(&self, message: &str) -> Option<TemplateId> {
        let tokens = self.tokenize(message);
        let i = self
            .covering(&tokens)
            .or_else(|| self.search(&tokens, None))
            .or_else(|| {
                if self.can_create() {
                    return None;
                }
                self.closest_same_length(&tokens)
                    .or_else(|| self.existing_catch_all())
            })?;
        let r = self.resolve_index(i);
        if let Some(key) = self.split_key(r, &tokens) {
            if let Some(c) = self.children.get(&(self.templates[r].id, key)) {
                return Some(self.resolve(*c));
            }
        }
        Some(self.templates[r].id)
    }

    /// The final template of a message after [`refine`](Self::refine), given the template
    /// `first` that [`add`](Self::add) returned for it: the live template that the most
    /// specific template covering the message resolves to (as [`lookup`](Self::lookup) finds
    /// it; `first`'s when none covers it), or that template's split child for the message's
    /// words — created when new, if its words are in the recorded vocabulary and the miner is
    /// not full.
    pub fn finalize(&mut self, message: &str, first: TemplateId) -> TemplateId {
        let tokens = self.tokenize(message);
        let i = match self.covering(&tokens) {
            Some(i) => i,
            None => match self.by_id.get(&self.resolve(first)) {
                Some(&i) => i,
                None => return first,
            },
        };
        let (t, _) = self.target(i, &tokens);
        self.templates[t].id
    }

    /// Two-pass mining of a batch on top of what the miner holds (a loaded model, or an empty
    /// miner for [`mine`](super::mine)): every message is learned, the miner is refined, and
    /// each message gets its final template ([`finalize`](Self::finalize)). Counts become the
    /// counts held before plus the batch's final assignment (a count held by a template that
    /// the refinement merged moves to the survivor). Returns one id per message, in order.
    pub fn add_batch<S: AsRef<str>>(&mut self, messages: &[S]) -> Vec<TemplateId> {
        let before: Vec<(TemplateId, u64)> = self
            .templates
            .iter()
            .filter(|t| t.count > 0)
            .map(|t| (t.id, t.count))
            .collect();
        let first: Vec<TemplateId> = messages.iter().map(|m| self.add(m.as_ref()).0).collect();
        self.refine();
        let ids: Vec<TemplateId> = first
            .into_iter()
            .zip(messages)
            .map(|(id, m)| self.finalize(m.as_ref(), id))
            .collect();
        self.recount(&ids);
        for (id, count) in before {
            if let Some(&i) = self.by_id.get(&self.resolve(id)) {
                self.templates[i].count += count;
            }
        }
        ids
    }

    /// Whether a new template may be created: below `max_templates` (when set) and ids left.
    fn can_create(&self) -> bool {
        let max = self.params.config().max_templates;
        self.next_id < u64::MAX && (max == 0 || self.len() < max)
    }

    /// Learns `tokens` (`count` messages); `route` is a tree path to try first (another
    /// miner's, when merging); `words`: record the tokens in the vocabularies.
    fn add_tokens(
        &mut self,
        tokens: &Tokens,
        count: u64,
        route: Option<&[String]>,
        words: bool,
    ) -> (TemplateId, Change) {
        let covering = if self.refined {
            self.covering(tokens)
        } else {
            None
        };
        let found = covering.or_else(|| self.search(tokens, route)).or_else(|| {
            (!self.can_create())
                .then(|| self.closest_same_length(tokens))
                .flatten()
        });
        let Some(i) = found else {
            if self.can_create() {
                if let Some(idx) = self.create(tokens.to_vec(), count, route) {
                    return (self.templates[idx].id, Change::Created);
                }
            }
            // Full, and no template has the message's token count: the catch-all.
            let (idx, created) = self.catch_all();
            let t = &mut self.templates[idx];
            t.count += count;
            let change = if created {
                Change::Created
            } else {
                Change::Unchanged
            };
            return (t.id, change);
        };
        let (target, created) = self.target(i, tokens);
        // Generalize the template the message lands on when it has the message's shape (a
        // variable-length merge may have sent it to one of another length), else the one it
        // matched, so that both keep matching such messages.
        let g = if self.templates[target].tokens.len() == tokens.len() {
            target
        } else {
            i
        };
        let cap = self.params.config().vocabulary;
        let t = &mut self.templates[g];
        let mut changed = false;
        let same_length = t.tokens.len() == tokens.len();
        for (p, ((a, b), slot)) in t
            .tokens
            .iter_mut()
            .zip(tokens.iter())
            .zip(&mut t.slots)
            .enumerate()
        {
            if let Some(general) = generalize(a, b) {
                *a = general;
                changed = true;
            }
            // The vocabulary of a split position is frozen: it decides which words get a
            // child template (see `target`).
            if words && same_length && !t.split.contains(&p) {
                observe(slot, b, count, cap);
            }
        }
        // The template matched in the message's leaf (when the message lands elsewhere) and
        // the parent of a split child keep covering the message too, so that `lookup` finds
        // it where `add` put it.
        let parent = self.templates[g]
            .parent
            .as_ref()
            .and_then(|(p, _)| self.by_id.get(p).copied());
        for other in [Some(i), parent].into_iter().flatten() {
            if other != g && self.templates[other].tokens.len() == tokens.len() {
                for (a, b) in self.templates[other].tokens.iter_mut().zip(tokens.iter()) {
                    if let Some(general) = generalize(a, b) {
                        *a = general;
                    }
                }
            }
        }
        let mut target = target;
        if g != target
            && collapse(&self.templates[g].tokens) != collapse(&self.templates[target].tokens)
        {
            // A template merged into one of another length no longer agrees with it: it
            // becomes a template of its own again, so that its template covers the message.
            self.templates[g].merged_into = None;
            target = g;
        }
        let t = &mut self.templates[target];
        t.count += count;
        let change = if created {
            Change::Created
        } else if changed {
            Change::Updated
        } else {
            Change::Unchanged
        };
        (t.id, change)
    }

    /// The catch-all template (one bare `<*>`), the home of messages that fit nothing once the
    /// miner is full, created on first use — the one template allowed beyond
    /// `max_templates`. Returns its index and whether it was created.
    fn catch_all(&mut self) -> (usize, bool) {
        if let Some(i) = self.existing_catch_all() {
            return (i, false);
        }
        if let Some(i) = self.create(vec![WILDCARD.to_string()], 0, None) {
            return (i, true);
        }
        // Ids are exhausted (`next_id` is `u64::MAX`): the oldest live template. There is
        // one: ids are assigned from below `u64::MAX` (`from_state` refuses `u64::MAX`), so
        // exhausting them created templates, which are never removed, and every merge chain
        // ends at a live template.
        let i = self
            .templates
            .iter()
            .position(|t| t.merged_into.is_none())
            .expect("ids are exhausted only after templates were created");
        (i, false)
    }

    /// The live catch-all template, if there is one.
    fn existing_catch_all(&self) -> Option<usize> {
        let mut stack: Vec<&Node> = self.root.get(&1).into_iter().collect();
        while let Some(n) = stack.pop() {
            for &i in &n.leaves {
                let t = &self.templates[i];
                if t.merged_into.is_none() && t.parent.is_none() && t.tokens == [WILDCARD] {
                    return Some(i);
                }
            }
            stack.extend(n.children.values());
        }
        None
    }

    /// Index of the live template for index `i` (following merges).
    fn resolve_index(&self, i: usize) -> usize {
        self.by_id
            .get(&self.resolve(self.templates[i].id))
            .copied()
            .unwrap_or(i)
    }

    /// Where a message that matched template `i` lands: the live template `i` resolves to,
    /// or that template's split child for the message's words. A child is created on first
    /// use only if each word is in the recorded vocabulary of its split position and the
    /// miner is not full; other words stay with the parent (as [`lookup`](Self::lookup) does),
    /// so that a loaded model does not grow a child per unseen value. Returns the index and
    /// whether a template was created.
    fn target(&mut self, i: usize, tokens: &Tokens) -> (usize, bool) {
        let r = self.resolve_index(i);
        let Some(key) = self.split_key(r, tokens) else {
            return (r, false);
        };
        let parent = self.templates[r].id;
        if let Some(&c) = self.children.get(&(parent, key.clone())) {
            return (
                self.by_id.get(&self.resolve(c)).copied().unwrap_or(r),
                false,
            );
        }
        let t = &self.templates[r];
        let known = t.split.iter().zip(&key).all(|(&p, w)| {
            t.slots[p]
                .as_ref()
                .is_some_and(|words| words.iter().any(|(v, _)| v == w))
        });
        if !known || !self.can_create() {
            return (r, false);
        }
        let mut child = t.tokens.clone();
        for (&p, w) in t.split.iter().zip(&key) {
            child[p] = w.clone();
        }
        let route = t.route.clone();
        let Some(idx) = self.push(child, 0, route, Some((parent, key.clone()))) else {
            return (r, false);
        };
        self.children.insert((parent, key), self.templates[idx].id);
        (idx, true)
    }

    /// The words of `tokens` at template `i`'s split positions, if it was split, has the
    /// message's length, and all of them are words.
    fn split_key(&self, i: usize, tokens: &Tokens) -> Option<Vec<String>> {
        let t = &self.templates[i];
        if t.split.is_empty() || t.tokens.len() != tokens.len() {
            return None;
        }
        t.split
            .iter()
            .map(|&p| {
                let w = tokens.get(p);
                is_word(w).then(|| w.to_string())
            })
            .collect()
    }

    /// Files a new template; `None` once ids are exhausted.
    fn create(
        &mut self,
        tokens: Vec<String>,
        count: u64,
        route: Option<&[String]>,
    ) -> Option<usize> {
        let depth = self.params.config().depth.min(tokens.len());
        let route = match route {
            Some(r) if r.len() == depth => r.to_vec(),
            _ => self.route_for_new(&tokens),
        };
        self.push(tokens, count, route, None)
    }

    fn push(
        &mut self,
        tokens: Vec<String>,
        count: u64,
        route: Vec<String>,
        parent: Option<(TemplateId, Vec<String>)>,
    ) -> Option<usize> {
        // Ids never wrap: `u64::MAX` is never assigned, and nothing is once it is reached.
        let id = TemplateId(self.next_id);
        self.next_id = self.next_id.checked_add(1)?;
        let cap = self.params.config().vocabulary;
        let slots = tokens
            .iter()
            .map(|t| {
                let mut s = Some(Vec::new());
                observe(&mut s, t, count.max(1), cap);
                s
            })
            .collect();
        let idx = self.templates.len();
        self.templates.push(Template {
            id,
            tokens,
            count,
            parent,
            merged_into: None,
            route,
            slots,
            split: Vec::new(),
        });
        self.by_id.insert(id, idx);
        self.file(idx);
        Some(idx)
    }

    /// The most similar template with the same token count, anywhere in the tree.
    fn closest_same_length(&self, tokens: &Tokens) -> Option<usize> {
        let node = self.root.get(&tokens.len())?;
        let mut best: Option<(f64, usize)> = None;
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            for &i in &n.leaves {
                let (s, _) = similarity(&self.templates[i].tokens, tokens);
                if best.is_none_or(|(b, _)| s > b) {
                    best = Some((s, i));
                }
            }
            stack.extend(n.children.values());
        }
        best.map(|(_, i)| i)
    }

    /// The tree leaves a message can reach: at each level below the token count, the child
    /// named by its token (a word) and the wildcard child. (A token's named child may have
    /// been created after a message with that token was filed under the wildcard.)
    fn reachable_leaves(&self, tokens: &Tokens) -> Vec<&Node> {
        let Some(top) = self.root.get(&tokens.len()) else {
            return Vec::new();
        };
        let depth = self.params.config().depth.min(tokens.len());
        let mut nodes = vec![top];
        for tok in tokens.iter().take(depth) {
            let mut next = Vec::with_capacity(nodes.len() * 2);
            for n in nodes {
                if !routes_to_wildcard(tok) {
                    next.extend(n.children.get(tok));
                }
                next.extend(n.children.get(WILDCARD));
            }
            nodes = next;
        }
        nodes
    }

    /// The most specific template that covers the message (see [`specificity`]; ties go to
    /// the oldest) among the leaves it can reach. Split children are not candidates: a
    /// message reaches them through their parent's split positions.
    fn covering(&self, tokens: &Tokens) -> Option<usize> {
        let mut best: Option<((usize, usize), usize)> = None;
        for leaf in self.reachable_leaves(tokens) {
            for &i in &leaf.leaves {
                let t = &self.templates[i];
                if t.parent.is_some() || !covers(&t.tokens, tokens) {
                    continue;
                }
                let s = specificity(&t.tokens);
                if best.is_none_or(|(bs, bi)| s > bs || (s == bs && i < bi)) {
                    best = Some((s, i));
                }
            }
        }
        best.map(|(_, i)| i)
    }

    /// Walks the tree to the leaf for `tokens` (along `route` when given and present) and
    /// returns the leaf's best template at or above the threshold.
    fn search(&self, tokens: &Tokens, route: Option<&[String]>) -> Option<usize> {
        let top = self.root.get(&tokens.len())?;
        let depth = self.params.config().depth.min(tokens.len());
        let walk_route = |route: &[String]| {
            let mut node = top;
            for key in route {
                node = node.children.get(key.as_str())?;
            }
            Some(node)
        };
        let walk_tokens = || {
            let mut node = top;
            for tok in tokens.iter().take(depth) {
                node = match node.children.get(tok) {
                    Some(n) if !routes_to_wildcard(tok) => n,
                    _ => node.children.get(WILDCARD)?,
                };
            }
            Some(node)
        };
        let leaf = route
            .filter(|r| r.len() == depth)
            .and_then(walk_route)
            .or_else(walk_tokens)?;
        let st = self.params.config().similarity;
        let mut best: Option<(f64, usize, usize)> = None;
        for &i in &leaf.leaves {
            let (s, p) = similarity(&self.templates[i].tokens, tokens);
            let better = match best {
                None => true,
                Some((bs, bp, _)) => s > bs || (s == bs && p > bp),
            };
            if better {
                best = Some((s, p, i));
            }
        }
        best.filter(|&(s, _, _)| s >= st).map(|(_, _, i)| i)
    }

    /// The route a new template takes: one key per level below the token count.
    fn route_for_new(&self, tokens: &[String]) -> Vec<String> {
        let cfg = self.params.config();
        let depth = cfg.depth.min(tokens.len());
        let mut route = Vec::with_capacity(depth);
        let mut node = self.root.get(&tokens.len());
        for tok in &tokens[..depth] {
            let key = if routes_to_wildcard(tok) {
                WILDCARD
            } else {
                match node {
                    Some(n) if !n.children.contains_key(tok.as_str()) => {
                        let named =
                            n.children.len() - usize::from(n.children.contains_key(WILDCARD));
                        // Keep one child for the wildcard.
                        if named + 1 < cfg.max_children {
                            tok.as_str()
                        } else {
                            WILDCARD
                        }
                    }
                    _ => tok.as_str(),
                }
            };
            node = node.and_then(|n| n.children.get(key));
            route.push(key.to_string());
        }
        route
    }

    fn file(&mut self, idx: usize) {
        let t = &self.templates[idx];
        let mut node = self.root.entry(t.tokens.len()).or_default();
        for key in &t.route {
            node = node.children.entry(key.clone()).or_default();
        }
        node.leaves.push(idx);
    }

    fn rebuild_index(&mut self) {
        self.root.clear();
        self.by_id.clear();
        self.children.clear();
        for idx in 0..self.templates.len() {
            self.by_id.insert(self.templates[idx].id, idx);
            self.file(idx);
            if let Some((p, key)) = &self.templates[idx].parent {
                self.children
                    .insert((*p, key.clone()), self.templates[idx].id);
            }
        }
    }

    /// Offline refinement, run after a batch of messages and before a model is saved:
    ///
    /// 1. `merge_leaves`: templates of equal length filed under different leaves that differ
    ///    only in the leading tokens the tree is keyed by (a variable there) and share at least
    ///    three constant tokens, as many as the similarity threshold asks, become one.
    /// 2. `merge_lengths`: templates equal once runs of `<*>` are collapsed become one.
    /// 3. `vocabulary`: a generalized position whose messages held 2 to `vocabulary` distinct
    ///    plain words, two of which do not also fill a slot of another template, marks its
    ///    template for splitting: messages with those words go to a child template per word
    ///    (tuple), created as they arrive (see [`finalize`](Self::finalize)).
    ///
    /// The oldest template of a merge survives; the others resolve to it. Templates already
    /// split, and split children, take no part in merges. Returns `(merged, split)`.
    pub fn refine(&mut self) -> (usize, usize) {
        self.refined = true;
        let mut merged = 0;
        if self.params.config().merge_leaves {
            merged += self.merge_across_leaves();
        }
        if self.params.config().merge_lengths {
            merged += self.merge_variable_lengths();
        }
        let split = self.mark_splits();
        (merged, split)
    }

    /// Whether template `i` may take part in a merge.
    fn mergeable(&self, i: usize) -> bool {
        let t = &self.templates[i];
        t.merged_into.is_none() && t.parent.is_none() && t.split.is_empty()
    }

    /// Merges `from` into `into` (same length): tokens generalize, vocabularies and counts add.
    fn absorb(&mut self, into: usize, from: usize) {
        let cap = self.params.config().vocabulary;
        let src = self.templates[from].clone();
        let dst = &mut self.templates[into];
        if dst.tokens.len() == src.tokens.len() {
            for (a, b) in dst.tokens.iter_mut().zip(&src.tokens) {
                if let Some(g) = generalize(a, b) {
                    *a = g;
                }
            }
            for (s, o) in dst.slots.iter_mut().zip(&src.slots) {
                merge_slot(s, o, cap);
            }
        }
        dst.count += src.count;
        let id = dst.id;
        self.templates[from].merged_into = Some(id);
        self.templates[from].count = 0;
    }

    fn merge_across_leaves(&mut self) -> usize {
        let st = self.params.config().similarity;
        let depth = self.params.config().depth;
        let mut by_len: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut merged = 0;
        for i in 0..self.templates.len() {
            if !self.mergeable(i) {
                continue;
            }
            let t = &self.templates[i];
            let peers = by_len.entry(t.tokens.len()).or_default();
            let mut best: Option<(f64, usize)> = None;
            for &j in peers.iter() {
                let u = &self.templates[j];
                if u.route == t.route {
                    continue;
                }
                let same = t
                    .tokens
                    .iter()
                    .zip(&u.tokens)
                    .filter(|(a, b)| a == b && !a.contains(WILDCARD))
                    .count();
                let sim = same as f64 / t.tokens.len().max(1) as f64;
                // The tree's leading keys must be what sent them apart: below them the two
                // agree (or are both variable), and at least a few constants are shared.
                let below_agrees = t
                    .tokens
                    .iter()
                    .zip(&u.tokens)
                    .skip(depth)
                    .all(|(a, b)| a == b || (a.contains(WILDCARD) && b.contains(WILDCARD)));
                let ok = below_agrees && same >= MIN_SHARED_CONSTANTS;
                if ok && sim >= st && best.is_none_or(|(b, _)| sim > b) {
                    best = Some((sim, j));
                }
            }
            match best {
                Some((_, j)) => {
                    self.absorb(j, i);
                    merged += 1;
                }
                None => peers.push(i),
            }
        }
        merged
    }

    fn merge_variable_lengths(&mut self) -> usize {
        let mut keep: HashMap<Vec<String>, usize> = HashMap::new();
        let mut merged = 0;
        for i in 0..self.templates.len() {
            if !self.mergeable(i) {
                continue;
            }
            let key: Vec<String> = collapse(&self.templates[i].tokens)
                .into_iter()
                .map(str::to_string)
                .collect();
            match keep.get(&key) {
                Some(&j) => {
                    self.absorb(j, i);
                    merged += 1;
                }
                None => {
                    keep.insert(key, i);
                }
            }
        }
        merged
    }

    /// Marks closed-vocabulary positions for splitting; returns the templates marked.
    fn mark_splits(&mut self) -> usize {
        let cap = self.params.config().vocabulary;
        if cap == 0 {
            return 0;
        }
        // Words of every open slot (two words or more) → (template, position).
        let mut seen: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
        for (i, t) in self.templates.iter().enumerate() {
            if t.merged_into.is_some() {
                continue;
            }
            for (p, slot) in t.slots.iter().enumerate() {
                for (w, _) in slot.iter().filter(|w| w.len() >= 2).flatten() {
                    seen.entry(w.as_str()).or_default().push((i, p));
                }
            }
        }
        let mut plans = Vec::new();
        for (i, t) in self.templates.iter().enumerate() {
            if t.merged_into.is_some() || !t.split.is_empty() {
                continue;
            }
            let positions: Vec<usize> = (0..t.tokens.len())
                .filter(|&p| {
                    let Some(words) = t.slots[p].as_ref() else {
                        return false;
                    };
                    if !t.tokens[p].contains(WILDCARD) || words.len() < 2 || words.len() > cap {
                        return false;
                    }
                    // Values, not constants: two of these words also fill one slot of another
                    // template (user names in "session opened/closed for user X").
                    let mut shared: HashMap<(usize, usize), usize> = HashMap::new();
                    for (w, _) in words {
                        for &(j, q) in seen.get(w.as_str()).into_iter().flatten() {
                            if j != i {
                                *shared.entry((j, q)).or_default() += 1;
                            }
                        }
                    }
                    !shared.values().any(|&n| n >= 2)
                })
                .collect();
            if !positions.is_empty() {
                plans.push((i, positions));
            }
        }
        let n = plans.len();
        for (i, positions) in plans {
            self.templates[i].split = positions;
        }
        n
    }

    /// Sets every template's count to the number of times it appears in `ids` (after a
    /// second pass over a batch).
    pub fn recount(&mut self, ids: &[TemplateId]) {
        for t in &mut self.templates {
            t.count = 0;
        }
        for id in ids {
            if let Some(&i) = self.by_id.get(&self.resolve(*id)) {
                self.templates[i].count += 1;
            }
        }
    }

    /// The miner's state, for saving.
    pub fn state(&self) -> MinerState {
        MinerState {
            format_version: FORMAT_VERSION,
            config: self.params.config().clone(),
            next_id: self.next_id,
            templates: self
                .templates
                .iter()
                .map(|t| TemplateState {
                    id: t.id,
                    tokens: t.tokens.clone(),
                    count: t.count,
                    route: t.route.clone(),
                    vocabulary: t.slots.clone(),
                    split: t.split.clone(),
                    parent: t.parent.clone(),
                    merged_into: t.merged_into,
                })
                .collect(),
        }
    }

    /// Rebuilds a miner from a saved state, checking its configuration, ids, routes,
    /// positions and references.
    pub fn from_state(state: MinerState) -> Result<TemplateMiner, TemplateError> {
        if state.format_version != FORMAT_VERSION {
            return Err(TemplateError::FormatVersion {
                found: state.format_version,
                expected: FORMAT_VERSION,
            });
        }
        let params = state.config.check()?;
        let depth = params.config().depth;
        if state.next_id == u64::MAX {
            return Err(TemplateError::NextId(state.next_id));
        }
        let mut m = TemplateMiner::new(params);
        m.next_id = state.next_id;
        m.refined = true;
        for t in state.templates {
            let bad = |why: String| TemplateError::State { id: t.id.0, why };
            if t.id.0 == 0 || t.id.0 >= m.next_id || m.by_id.contains_key(&t.id) {
                return Err(bad(format!(
                    "the id is 0, repeated, or not below next_id {}",
                    m.next_id
                )));
            }
            if t.route.len() != depth.min(t.tokens.len()) {
                return Err(bad(format!(
                    "{} tokens and a route of {} keys do not fit depth {depth}",
                    t.tokens.len(),
                    t.route.len()
                )));
            }
            if t.vocabulary.len() != t.tokens.len() || t.split.iter().any(|&p| p >= t.tokens.len())
            {
                return Err(bad(
                    "vocabulary or split positions do not fit the tokens".into()
                ));
            }
            m.by_id.insert(t.id, m.templates.len());
            m.templates.push(Template {
                id: t.id,
                tokens: t.tokens,
                count: t.count,
                parent: t.parent,
                merged_into: t.merged_into,
                route: t.route,
                slots: t.vocabulary,
                split: t.split,
            });
        }
        for t in &m.templates {
            let refs = [t.parent.as_ref().map(|p| p.0), t.merged_into];
            for r in refs.into_iter().flatten() {
                if !m.by_id.contains_key(&r) || r == t.id {
                    return Err(TemplateError::State {
                        id: t.id.0,
                        why: format!("refers to template {r}, which is not in the state"),
                    });
                }
            }
        }
        // Merges must not form a cycle (`resolve` follows them).
        for t in &m.templates {
            let mut id = t.id;
            for _ in 0..=m.templates.len() {
                match m.by_id.get(&id).and_then(|&i| m.templates[i].merged_into) {
                    Some(next) => id = next,
                    None => break,
                }
            }
            if m.by_id
                .get(&id)
                .and_then(|&i| m.templates[i].merged_into)
                .is_some()
            {
                return Err(TemplateError::State {
                    id: t.id.0,
                    why: "its merges form a cycle".into(),
                });
            }
        }
        m.rebuild_index();
        Ok(m)
    }

    /// Folds `other`'s templates into this miner (for `train`: mine shards, then merge; run
    /// [`refine`](Self::refine) afterwards). Each of `other`'s live templates is matched like a
    /// message carrying its count — along its own tree path first — and joins (and
    /// generalizes) a template of this miner or becomes a new one with a fresh id; its
    /// vocabulary is added. Returns every id of `other` (merged ones included) mapped to an id
    /// of this miner.
    pub fn merge(&mut self, other: &TemplateMiner) -> BTreeMap<TemplateId, TemplateId> {
        let mut map = BTreeMap::new();
        let cap = self.params.config().vocabulary;
        for t in other.templates() {
            let tokens: Tokens = t.tokens.iter().map(String::as_str).collect();
            let (id, change) = self.add_tokens(&tokens, t.count, Some(&t.route), false);
            if let Some(&i) = self.by_id.get(&id) {
                let mine = &mut self.templates[i];
                // A template created from `t` takes its vocabulary; a split child or the
                // catch-all (of another length, when the miner is full) only adds to theirs.
                if mine.slots.len() == t.slots.len() {
                    if change == Change::Created && mine.parent.is_none() {
                        mine.slots = t.slots.clone();
                    } else {
                        for (s, o) in mine.slots.iter_mut().zip(&t.slots) {
                            merge_slot(s, o, cap);
                        }
                    }
                }
            }
            map.insert(t.id, id);
        }
        for t in other.templates.iter().filter(|t| t.merged_into.is_some()) {
            if let Some(&mine) = map.get(&other.resolve(t.id)) {
                map.insert(t.id, mine);
            }
        }
        map
    }
}
