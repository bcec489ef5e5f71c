//! Tier 1 — message → [`FailureKind`], with the evidence that decided.
//!
//! (Interface placeholder: being implemented.)

use crate::model::{FailureKind, FailureType, HardwareClass};

/// What the classifier looks at.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClassifyInput<'a> {
    /// The error message.
    pub message: &'a str,
    /// The caller's error-type hint.
    pub type_hint: Option<&'a str>,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Stack trace.
    pub stacktrace: Option<&'a str>,
    /// Hardware class of the worker, when known.
    pub hardware: Option<HardwareClass>,
}

/// The decision and its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// Fine kind.
    pub kind: FailureKind,
    /// Coarse type of `kind`.
    pub failure_type: FailureType,
    /// Id of the table row (or fallback) that decided.
    pub rule: &'static str,
    /// The matched text.
    pub evidence: String,
    /// Xid code if the message is an NVIDIA Xid line.
    pub xid: Option<u32>,
    /// SXid code if the message is an NVSwitch SXid line.
    pub sxid: Option<u32>,
    /// Extra notes (e.g. "network" for an NCCL watchdog timeout).
    pub notes: Vec<&'static str>,
}

/// The compiled pattern table.
#[derive(Debug, Clone)]
pub struct Classifier {}

impl Classifier {
    /// Compiles the built-in table.
    pub fn new() -> Self {
        Classifier {}
    }

    /// Classifies one failure.
    pub fn classify(&self, input: &ClassifyInput<'_>) -> Classification {
        let _ = input;
        Classification {
            kind: FailureKind::Unknown,
            failure_type: FailureType::Unknown,
            rule: "fallback",
            evidence: String::new(),
            xid: None,
            sxid: None,
            notes: vec![],
        }
    }
}

impl Default for Classifier {
    fn default() -> Self {
        Self::new()
    }
}
