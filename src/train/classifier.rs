//! The learned classifier: message template → failure kind, learned from the history's
//! classified failures (the rule table's verdicts). A template gets an entry when enough of
//! its classified failures (`min_support`) agree on one kind (`min_purity`); failures the
//! rules called `unknown` are not evidence. At run time it is a fallback: a message the rule
//! table calls `unknown` whose template has an entry gets the template's majority kind.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::FailureKind;
use crate::template::TemplateId;

/// The method name written to the manifest.
pub const CLASSIFIER_METHOD: &str = "template_majority";

/// One template's learned kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateKind {
    /// The template.
    pub template_id: TemplateId,
    /// Its majority kind.
    pub kind: FailureKind,
    /// Classified failures of that kind.
    pub count: u64,
    /// Classified (not `unknown`) failures of the template.
    pub total: u64,
}

/// The fitted template → kind table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateClassifier {
    /// Always [`CLASSIFIER_METHOD`].
    pub method: String,
    /// Fewest classified failures a template needs for an entry.
    pub min_support: u64,
    /// Smallest share of them the majority kind needs.
    pub min_purity: f64,
    /// The entries, by template id.
    pub entries: Vec<TemplateKind>,
    #[serde(skip)]
    index: BTreeMap<TemplateId, usize>,
}

impl TemplateClassifier {
    /// Learns the table from `(template, kind)` pairs (`unknown` kinds are ignored).
    pub fn fit(
        pairs: impl IntoIterator<Item = (TemplateId, FailureKind)>,
        min_support: u64,
        min_purity: f64,
    ) -> Self {
        let mut counts: BTreeMap<TemplateId, BTreeMap<FailureKind, u64>> = BTreeMap::new();
        for (t, k) in pairs {
            if k != FailureKind::Unknown {
                *counts.entry(t).or_default().entry(k).or_default() += 1;
            }
        }
        let entries =
            counts
                .into_iter()
                .filter_map(|(template_id, kinds)| {
                    let total: u64 = kinds.values().sum();
                    // Ties go to the kind listed first in the taxonomy (BTreeMap order).
                    let (kind, count) = kinds.into_iter().fold(
                        None,
                        |best: Option<(FailureKind, u64)>, (k, c)| match best {
                            Some((_, bc)) if bc >= c => best,
                            _ => Some((k, c)),
                        },
                    )?;
                    (total >= min_support && count as f64 >= min_purity * total as f64).then_some(
                        TemplateKind {
                            template_id,
                            kind,
                            count,
                            total,
                        },
                    )
                })
                .collect();
        Self::from_entries(min_support, min_purity, entries)
    }

    /// A table from stored entries (builds the lookup index).
    pub(crate) fn from_entries(
        min_support: u64,
        min_purity: f64,
        entries: Vec<TemplateKind>,
    ) -> Self {
        let index = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.template_id, i))
            .collect();
        TemplateClassifier {
            method: CLASSIFIER_METHOD.to_string(),
            min_support,
            min_purity,
            entries,
            index,
        }
    }

    /// Rebuilds the lookup index after deserializing.
    pub(crate) fn reindex(self) -> Self {
        Self::from_entries(self.min_support, self.min_purity, self.entries)
    }

    /// The learned kind of a template.
    pub fn kind_of(&self, template: TemplateId) -> Option<FailureKind> {
        self.index.get(&template).map(|&i| self.entries[i].kind)
    }
}

/// Held-out evaluation of the learned classifier against the rule table's verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ClassifierMetrics {
    /// Share of the failures held out from fitting (every `1/share`-th by sequence number).
    pub holdout_share: f64,
    /// Held-out failures the rules classified (not `unknown`).
    pub holdout_rows: u64,
    /// Of those, failures whose template has an entry in the table fitted without them.
    pub covered: u64,
    /// Of the covered, failures where the learned kind equals the rules' kind.
    pub agree: u64,
    /// `covered / holdout_rows` (0 when nothing was held out).
    pub coverage: f64,
    /// `agree / covered`: the held-out accuracy against the rules (0 when nothing is covered).
    pub accuracy: f64,
    /// Held-out failures the rules called `unknown` that the table gives a kind.
    pub unknown_recovered: u64,
    /// Entries of the final table (fitted on every failure).
    pub entries: u64,
}

/// Whether the failure with sequence number `seq` is held out.
pub(crate) fn held_out(seq: u64, every: u64) -> bool {
    every > 0 && seq % every == every - 1
}

/// Fits on the failures not held out and scores on the held-out ones.
pub(crate) fn evaluate(
    rows: &[(u64, TemplateId, FailureKind)],
    every: u64,
    min_support: u64,
    min_purity: f64,
) -> ClassifierMetrics {
    let fitted = TemplateClassifier::fit(
        rows.iter()
            .filter(|(s, _, _)| !held_out(*s, every))
            .map(|(_, t, k)| (*t, *k)),
        min_support,
        min_purity,
    );
    let mut m = ClassifierMetrics {
        holdout_share: if every > 0 { 1.0 / every as f64 } else { 0.0 },
        ..Default::default()
    };
    for (_, t, k) in rows.iter().filter(|(s, _, _)| held_out(*s, every)) {
        let learned = fitted.kind_of(*t);
        if *k == FailureKind::Unknown {
            m.unknown_recovered += u64::from(learned.is_some());
            continue;
        }
        m.holdout_rows += 1;
        if let Some(l) = learned {
            m.covered += 1;
            m.agree += u64::from(l == *k);
        }
    }
    if m.holdout_rows > 0 {
        m.coverage = m.covered as f64 / m.holdout_rows as f64;
    }
    if m.covered > 0 {
        m.accuracy = m.agree as f64 / m.covered as f64;
    }
    m
}
