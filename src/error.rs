//! Tier 0 — the crate error: collects every module's error enum.

/// Any error of the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid domain data.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// Invalid configuration file.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Invalid retry parameters.
    #[error(transparent)]
    Retry(#[from] crate::retry::RetryError),
    /// Invalid rules.
    #[error(transparent)]
    Rules(#[from] crate::rules::RulesError),
    /// Engine failure.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// Coordinator failure.
    #[error(transparent)]
    Coordinator(#[from] crate::engine::CoordinatorError),
}

/// Result with the crate error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
