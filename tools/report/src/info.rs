//! What the caller knows about a run that the engine does not: the bottom of the crate, which
//! every record and shard format reads and which depends on nothing else here.

/// What the caller knows about a run that the engine does not.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    /// The command line, program name first.
    pub command: Vec<String>,
    /// Base URL of the target.
    pub host: String,
    /// Built-in profile run, if any.
    pub profile: Option<String>,
    /// Scenario name (profile or file), if any.
    pub scenario: Option<String>,
    /// The start asked for with `--start-at`, if any.
    pub start_at: Option<std::time::SystemTime>,
    /// The run's id, shared by its shards.
    pub run_id: String,
    /// What tells scenarios apart: FNV-1a of the scenario's source and selected tags, or of
    /// the URL's request.
    pub scenario_digest: String,
    /// The scenario file or profile as written (none for a URL).
    pub scenario_source: Option<String>,
    /// Cores available to the run's process (for a merged record, the shards' together).
    pub cores: Option<usize>,
}
