//! Tier 1 — message templates: error message → stable template id and template text.
//!
//! Role in the pipeline: failures that differ only in their values (addresses, sizes, ids,
//! counts) should be recognised as "the same failure". The miner turns each message into a
//! template such as `CUDA out of memory. Tried to allocate <*>` with a [`TemplateId`] that
//! `features` hashes, `patterns` counts per template, `ranking` uses as a fine context and
//! `train` refits and saves (the state serializes and two miners merge).
//!
//! # Algorithm
//!
//! A Drain-style online miner (He et al., "Drain: An Online Log Parsing Approach with Fixed
//! Depth Tree", ICWS 2017) with better preprocessing and an offline refinement:
//!
//! 1. **Masking** ([`Masker`]): each whitespace token is cut at brackets, quotes, `=`, `,`
//!    and `;` into segments, and variable parts become `<*>`: URLs (after the scheme), paths,
//!    `true`/`false`/`null`, host and node ids (`R02-M1-N0-C:J12-U11`,
//!    `calvisitor-10-105-163-9.local`), word-prefixed ids (`blk_-695…`, `job_1445_0020`),
//!    numbers and numeric compounds (decimals, exponent forms `1e-05`, IPv4 with port as
//!    `<*>:<*>`, IPv6 `fe80::1%eth0`, PCI addresses `0000:3b:00.0`, MAC addresses, UUIDs,
//!    dates and times, versions, durations `1h30m`), hex (`0x1f`, `7f2a9c01`), a size or
//!    duration unit after a number (`2.00 GiB` → `<*>`), and month or weekday names beside a
//!    masked number. A number glued to a word (`ssh2`, `L3`, `jk2_init()`) is left alone.
//!    Every mask can be switched off; custom regex masks run first ([`TemplateConfig`]).
//!    Masking is linear in the message's length; a token longer than [`MAX_INSPECTED_TOKEN`]
//!    (4 KiB) is not inspected but becomes `<*>` whole.
//! 2. **Prefix tree**: templates are filed by token count, then by their first `depth` tokens;
//!    a token with a digit or a mask goes to the `<*>` branch, and a node with `max_children`
//!    children sends new tokens there too.
//! 3. **Similarity**: in its leaf, a message joins the template with the highest share of
//!    agreeing positions (equal tokens; a partial template token like `user=<*>` that
//!    matches; a bare `<*>` over a fully masked token), ties going to the more general one, if
//!    the share reaches `similarity`; else it founds a new template with a fresh id.
//! 4. **Update**: positions where the message differs become `<*>`; a common prefix up to a
//!    punctuation mark and a common suffix from one are kept (`user=root` + `user=admin` →
//!    `user=<*>`). Each position also remembers the distinct words it has seen (up to 16).
//!
//! [`TemplateMiner::refine`], run after a batch (and before a model is saved), then:
//!
//! 5. **merges across leaves** templates of equal length that a variable among the leading,
//!    tree-keyed tokens sent to different leaves: they agree everywhere below those tokens and
//!    share at least three constant tokens, as many as the similarity threshold asks
//!    (`com.apple.<job>: scheduler_evaluate_activity told me…`);
//! 6. **merges variable lengths**: templates equal once runs of `<*>` are collapsed
//!    (`delete <*>` / `delete <*> <*> <*>`);
//! 7. **splits closed vocabularies**: a generalized position whose messages only ever held
//!    2 to `vocabulary` distinct plain words (no digits, no masks) is a constant that tells
//!    templates apart (`VM Started` / `VM Stopped` / `VM Paused`), not a variable — unless two
//!    of those words also fill a slot of another template (user names in `session opened for
//!    user X` and `session closed for user X` are values). Each word gets a child template
//!    with its own id.
//!
//! [`mine`] runs the two-pass form over a batch: learn from every message online, refine,
//! then give each message its final template: the most specific template that covers it
//! (every template token matches the message token at its position) — the one it joined,
//! unless a more specific one covers it too — or that template's split child for its words.
//!
//! A refined or loaded miner assigns the same way: [`TemplateMiner::lookup`], and
//! [`TemplateMiner::add`] after [`TemplateMiner::refine`] or [`TemplateMiner::from_state`],
//! take the most specific covering template before falling back to similarity, so a saved
//! model gives each of its training messages its mined id. They create a split child only
//! for words the split position recorded (other words stay with the parent), and never
//! beyond `max_templates`.
//!
//! # Ids
//!
//! A [`TemplateId`] is assigned when a template is created and never changes, while the
//! template's text generalizes as messages arrive (so a hash of the text would not be
//! stable). A merged template's id resolves to the template it was merged into
//! ([`TemplateMiner::resolve`]); a split template keeps its id for messages that fit none of
//! its children. [`TemplateMiner::merge`] maps another miner's ids onto this one's.
//!
//! # Accuracy and speed
//!
//! On the ten Loghub-2.0 2k systems with corrected templates (one configuration, the
//! default), the two-pass form reaches a mean grouping accuracy of about 0.99 and a mean
//! template-level F1 of about 0.97 (online ids alone: 0.91 and 0.88); `faultline eval
//! templates` prints the per-system table. Online assignment takes one to two microseconds
//! per message.
//!
//! ```
//! use faultline::template::{mine, TemplateParams};
//!
//! let messages = [
//!     "CUDA out of memory. Tried to allocate 2.00 GiB",
//!     "NCCL watchdog timeout after 1800000 ms on rank 3",
//!     "CUDA out of memory. Tried to allocate 512.00 MiB",
//! ];
//! let (miner, ids) = mine(TemplateParams::default(), &messages);
//! assert_eq!(ids[0], ids[2]);
//! assert_ne!(ids[0], ids[1]);
//! assert_eq!(miner.get(ids[0]).unwrap().text(), "CUDA out of memory. Tried to allocate <*>");
//! ```

mod mask;
mod miner;
mod params;
mod tokens;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use mask::{MaskKind, Masker, MAX_INSPECTED_TOKEN, WILDCARD};
pub use miner::{
    generalize, token_matches, Change, MinerState, Template, TemplateMiner, TemplateState,
    FORMAT_VERSION,
};
pub use params::{CustomMask, TemplateConfig, TemplateParams, TemplateParamsError, MAX_VOCABULARY};
pub use tokens::Tokens;

/// A template's id: assigned at creation, stable while the template's text evolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TemplateId(pub u64);

impl TemplateId {
    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl From<TemplateId> for u64 {
    fn from(id: TemplateId) -> u64 {
        id.0
    }
}

impl std::fmt::Display for TemplateId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// Invalid parameters.
    #[error(transparent)]
    Params(#[from] TemplateParamsError),
    /// A configuration or state file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file is not valid TOML for [`TemplateConfig`] (the message names line
    /// and field).
    #[error("invalid template config {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A saved state has another format version.
    #[error("template state format_version {found} is not supported (expected {expected})")]
    FormatVersion {
        /// Version in the state.
        found: u32,
        /// Version this build reads.
        expected: u32,
    },
    /// A saved state's `next_id` leaves no id to assign.
    #[error("invalid template state: next_id {0} leaves no id to assign")]
    NextId(u64),
    /// A saved state is inconsistent.
    #[error("invalid template state: template {id}: {why}")]
    State {
        /// The template at fault.
        id: u64,
        /// What is wrong.
        why: String,
    },
}

/// Two-pass mining of a batch: every message is learned online, the miner is
/// [refined](TemplateMiner::refine), and each message gets the final template of the template
/// it joined (its split child where there is one). Returns the miner (with counts of the final
/// assignment) and one id per message, in order.
pub fn mine<S: AsRef<str>>(
    params: TemplateParams,
    messages: &[S],
) -> (TemplateMiner, Vec<TemplateId>) {
    let mut miner = TemplateMiner::new(params);
    let ids = miner.add_batch(messages);
    (miner, ids)
}
