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
    /// Classifier table error.
    #[error(transparent)]
    Classify(#[from] crate::classify::ClassifyError),
    /// Template mining error.
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
    /// Ingest error.
    #[error(transparent)]
    Ingest(#[from] crate::ingest::IngestError),
    /// History store error.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Feature error.
    #[error(transparent)]
    Features(#[from] crate::features::FeatureError),
    /// Clustering error.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// Pattern parameters error.
    #[error(transparent)]
    Patterns(#[from] crate::patterns::PatternError),
    /// Ranking error.
    #[error(transparent)]
    Ranking(#[from] crate::ranking::RankingError),
    /// Simulation error.
    #[error(transparent)]
    Sim(#[from] crate::sim::SimError),
    /// Analysis error.
    #[error(transparent)]
    Analyze(#[from] crate::analyze::AnalyzeError),
    /// Training or model loading error.
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    /// Report error.
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// Coordinator failure.
    #[error(transparent)]
    Coordinator(#[from] crate::engine::CoordinatorError),
}

/// Result with the crate error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
