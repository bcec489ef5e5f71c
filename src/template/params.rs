//! Miner parameters: the serde [`TemplateConfig`] (defaults, `deny_unknown_fields`) and its
//! checked form [`TemplateParams`]; only checked parameters run.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::mask::{MaskKind, Masker};
use super::TemplateError;

/// Unchecked miner configuration, as written in a TOML file (`faultline template --config`)
/// or built in code. [`TemplateConfig::check`] validates it into [`TemplateParams`].
///
/// ```
/// use faultline::template::TemplateConfig;
///
/// let cfg: TemplateConfig = toml::from_str("similarity = 0.6\ndepth = 3").unwrap();
/// let params = cfg.check().unwrap();
/// assert_eq!(params.config().depth, 3);
/// assert!(toml::from_str::<TemplateConfig>("simlarity = 0.6").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplateConfig {
    /// Leading tokens that key the prefix tree below the token-count level (Drain's depth
    /// minus two). At least 1.
    pub depth: usize,
    /// Similarity a message needs with a template to join it, in `(0, 1]`: the share of its
    /// positions that agree with the template.
    pub similarity: f64,
    /// Most children of one tree node; further distinct tokens go to the wildcard child.
    /// At least 2.
    pub max_children: usize,
    /// Most templates kept; `0` means no limit. When reached, a message that matches nothing
    /// joins the most similar template with its token count, or, if no template has its
    /// token count, the catch-all template `<*>` — created then if needed, the one template
    /// allowed beyond the limit (so at most `max_templates + 1` live templates). Split
    /// children count too: none is created once the limit is reached.
    pub max_templates: usize,
    /// The built-in masks that run (all by default).
    pub masks: Vec<MaskKind>,
    /// Extra masks: regular expressions whose matches become `<*>`, run on the whole message
    /// before the built-in ones, in order. A regex that can match the empty string (`x*`,
    /// `^`, `\b`) is refused.
    pub custom_masks: Vec<CustomMask>,
    /// Characters that separate tokens besides whitespace (none by default; `"="` or `","`
    /// are typical).
    pub delimiters: String,
    /// Refinement: merge templates of equal length that the tree filed apart because of a
    /// variable among the leading tokens it is keyed by (they agree below those tokens and
    /// share at least three constant tokens).
    pub merge_leaves: bool,
    /// Refinement: merge templates that are equal once runs of `<*>` are collapsed into one
    /// (a variable that spans a varying number of tokens).
    pub merge_lengths: bool,
    /// Refinement: a generalized position whose messages held 2 to this many distinct plain
    /// words (no digits, no masks) — and whose words do not also fill a slot of another
    /// template — is a constant: the template is split by it. `0` disables the split; at most
    /// 64.
    pub vocabulary: usize,
}

impl Default for TemplateConfig {
    fn default() -> Self {
        TemplateConfig {
            depth: 2,
            similarity: 0.5,
            max_children: 100,
            max_templates: 0,
            masks: MaskKind::ALL.to_vec(),
            custom_masks: Vec::new(),
            delimiters: String::new(),
            merge_leaves: true,
            merge_lengths: true,
            vocabulary: 4,
        }
    }
}

/// Largest `vocabulary`: the words kept per template position grow with it.
pub const MAX_VOCABULARY: usize = 64;

/// A user-defined mask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomMask {
    /// Name shown in errors.
    pub name: String,
    /// Regular expression (Rust `regex` syntax); every match becomes `<*>`.
    pub regex: String,
}

/// A parameter that failed validation; the message names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateParamsError {
    /// `depth` is 0.
    #[error("depth must be at least 1, got {0}")]
    Depth(usize),
    /// `similarity` is not in `(0, 1]`.
    #[error("similarity must be in (0, 1], got {0}")]
    Similarity(f64),
    /// `max_children` is below 2.
    #[error("max_children must be at least 2, got {0}")]
    MaxChildren(usize),
    /// `delimiters` holds a character that cannot separate tokens.
    #[error(
        "delimiters: {0:?} cannot be a delimiter (letters, digits, '<', '*' and '>' are reserved)"
    )]
    Delimiter(char),
    /// `vocabulary` is above [`MAX_VOCABULARY`].
    #[error("vocabulary must be at most {MAX_VOCABULARY}, got {0}")]
    Vocabulary(usize),
    /// A custom mask's regular expression can match the empty string: it would put `<*>`
    /// between characters.
    #[error("custom_masks '{0}': the regex matches the empty string")]
    CustomMaskEmpty(String),
    /// A custom mask's regular expression does not compile.
    #[error("custom_masks '{name}': invalid regex: {message}")]
    CustomMask {
        /// The mask's name.
        name: String,
        /// The regex compiler's message.
        message: String,
    },
}

/// Checked parameters, built only by [`TemplateConfig::check`]: the configuration and its
/// compiled masks.
#[derive(Debug, Clone)]
pub struct TemplateParams {
    config: TemplateConfig,
    masker: Masker,
}

impl TemplateConfig {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<TemplateConfig, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| TemplateError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })
    }

    /// Validates the configuration and compiles its masks.
    pub fn check(self) -> Result<TemplateParams, TemplateParamsError> {
        if self.depth == 0 {
            return Err(TemplateParamsError::Depth(self.depth));
        }
        if !(self.similarity > 0.0 && self.similarity <= 1.0) {
            return Err(TemplateParamsError::Similarity(self.similarity));
        }
        if self.max_children < 2 {
            return Err(TemplateParamsError::MaxChildren(self.max_children));
        }
        if self.vocabulary > MAX_VOCABULARY {
            return Err(TemplateParamsError::Vocabulary(self.vocabulary));
        }
        if let Some(c) = self
            .delimiters
            .chars()
            .find(|c| c.is_alphanumeric() || matches!(c, '<' | '*' | '>'))
        {
            return Err(TemplateParamsError::Delimiter(c));
        }
        let masker = Masker::new(&self.masks, &self.custom_masks, &self.delimiters)?;
        Ok(TemplateParams {
            config: self,
            masker,
        })
    }
}

impl TemplateParams {
    /// The validated configuration.
    pub fn config(&self) -> &TemplateConfig {
        &self.config
    }

    /// The compiled masks and tokenizer.
    pub fn masker(&self) -> &Masker {
        &self.masker
    }
}

impl Default for TemplateParams {
    fn default() -> Self {
        // Invariant: the default configuration is valid (tested in `default_config_is_valid`).
        TemplateConfig::default()
            .check()
            .expect("the default template config is valid")
    }
}

impl TryFrom<TemplateConfig> for TemplateParams {
    type Error = TemplateParamsError;

    fn try_from(c: TemplateConfig) -> Result<Self, Self::Error> {
        c.check()
    }
}
