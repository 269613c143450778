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
    /// The file could not be read; the I/O error is its source, so an error chain (anyhow's
    /// `{:#}`) names it once.
    #[error("cannot read {path}")]
    Read {
        /// File name as given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_file_names_its_reason_once_in_the_chain() {
        let e = crate::read("/no/such/scenario.toml").unwrap_err();
        assert_eq!(e.to_string(), "cannot read /no/such/scenario.toml");
        let cause = std::error::Error::source(&e).expect("the I/O error");
        assert!(cause.to_string().contains("No such file"), "{cause}");
    }
}
