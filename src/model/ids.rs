//! Validated identifiers: task and worker ids are used as file and URL path components later
//! (checkpoints, `/v1/tasks/{id}`), so they are checked once, here.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};

use super::ModelError;

/// Maximum length of an id, in bytes.
pub const MAX_ID_LEN: usize = 256;

fn check_id(s: &str) -> Result<(), ModelError> {
    let bad = |detail: String| ModelError::Invalid {
        field: "id",
        detail,
    };
    if s.is_empty() {
        return Err(bad("must not be empty".into()));
    }
    if s.len() > MAX_ID_LEN {
        return Err(bad(format!("longer than {MAX_ID_LEN} bytes")));
    }
    // Printable ASCII other than the slashes is always allowed (the usual id, checked a byte
    // at a time); anything else is checked character by character.
    let plain = s
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'\\');
    if !plain {
        if let Some(c) = s
            .chars()
            .find(|c| c.is_control() || c.is_whitespace() || *c == '/' || *c == '\\')
        {
            return Err(bad(format!("'{s}' contains the forbidden character {c:?}")));
        }
    }
    if s == "." || s.contains("..") {
        return Err(bad(format!("'{s}' contains '..' or is '.'")));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates `s`: 1..=256 bytes, no whitespace, control characters, slashes or `..`.
            pub fn new(s: &str) -> Result<Self, ModelError> {
                check_id(s)?;
                Ok($name(Arc::from(s)))
            }

            /// [`new`](Self::new) taking the text it keeps.
            pub fn from_string(s: String) -> Result<Self, ModelError> {
                check_id(&s)?;
                Ok($name(Arc::from(s)))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // A visitor checks the text where it lies and copies it once.
                struct Text;
                impl serde::de::Visitor<'_> for Text {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a string")
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$name, E> {
                        $name::new(s).map_err(E::custom)
                    }
                    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<$name, E> {
                        check_id(&s).map_err(E::custom)?;
                        Ok($name(Arc::from(s)))
                    }
                }
                d.deserialize_string(Text)
            }
        }
    };
}

id_type!(
    /// Identifier of a task (shared text: a clone only counts a reference).
    TaskId
);
id_type!(
    /// Identifier of a worker (shared text: a clone only counts a reference).
    WorkerId
);

impl WorkerId {
    /// Whether the id is a placeholder for "no worker known" rather than a worker: `NULL`,
    /// `None`, `nil`, `-`, `unknown`, `undefined` or `UNKNOWN_LOCATION` (BGL's), in any case
    /// (`N/A` is never an id: ids hold no slash). Logs write these where the source had no node; counting their failures against
    /// one "worker" would call it bad (BGL's 2k sample: `NULL` with 26 failures).
    pub fn is_placeholder(&self) -> bool {
        const PLACEHOLDERS: [&str; 7] = [
            "null",
            "none",
            "nil",
            "-",
            "unknown",
            "undefined",
            "unknown_location",
        ];
        let s = self.as_str();
        // Most ids are longer than any placeholder or differ in length: one comparison each.
        s.len() <= 16
            && PLACEHOLDERS
                .iter()
                .any(|p| p.len() == s.len() && p.eq_ignore_ascii_case(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_worker_ids_are_recognised() {
        for p in ["NULL", "null", "None", "-", "UNKNOWN_LOCATION", "unknown"] {
            assert!(WorkerId::new(p).unwrap().is_placeholder(), "{p}");
        }
        // "N/A" has a slash: not an id at all, so never a worker.
        assert!(WorkerId::new("N/A").is_err());
        for w in [
            "gpu-0001",
            "nullable-7",
            "R02-M1-N0-C:J12-U11",
            "n",
            "unknowns",
        ] {
            assert!(!WorkerId::new(w).unwrap().is_placeholder(), "{w}");
        }
    }

    #[test]
    fn ids_are_validated() {
        assert!(TaskId::new("task-000001").is_ok());
        assert!(TaskId::new("StepId=11300781.0").is_ok());
        for bad in ["", "../x", "a/b", "a b", "a\\b", "..", "a\u{0}"] {
            assert!(TaskId::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(WorkerId::new(&"x".repeat(257)).is_err());
        assert!(serde_json::from_str::<WorkerId>("\"../w\"").is_err());
    }

    proptest::proptest! {
        /// The byte-wise check of plain ASCII ids accepts exactly what the definition does.
        #[test]
        fn the_ascii_fast_path_keeps_the_definition(
            s in "[ -~]{0,10}|[\\x00-\\x7f]{0,10}|\\PC{0,6}|[a. /\\\\\u{a0}\u{2028}é]{0,6}"
        ) {
            let by_definition = !s.is_empty()
                && s.len() <= MAX_ID_LEN
                && !s
                    .chars()
                    .any(|c| c.is_control() || c.is_whitespace() || c == '/' || c == '\\')
                && s != "."
                && !s.contains("..");
            proptest::prop_assert_eq!(check_id(&s).is_ok(), by_definition, "{:?}", s);
        }
    }
}
