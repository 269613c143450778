//! Errors of reading scenarios.

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file is malformed or inconsistent at a place.
    #[error("{path}:{line}:{col}: {message}")]
    File {
        /// File name as given.
        path: String,
        /// Line, from 1.
        line: usize,
        /// Column, from 1.
        col: usize,
        /// What was wrong or expected.
        message: String,
    },
    /// No built-in profile has this name.
    #[error("unknown profile {name:?} (known: {known})")]
    UnknownProfile {
        /// The name asked for.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File name as given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}
