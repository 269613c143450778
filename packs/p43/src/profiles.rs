//! The four P4.3 scenarios, embedded in the binary as scenario files users can print and adapt.

use blast_scenarios::{Scenario, ScenarioError};

/// Built-in profiles: (name, scenario file).
pub const PROFILES: [(&str, &str); 4] = [
    ("deployments", include_str!("../profiles/deployments.toml")),
    ("cab", include_str!("../profiles/cab.toml")),
    ("connectors", include_str!("../profiles/connectors.toml")),
    ("burst", include_str!("../profiles/burst.toml")),
];

/// Why a profile cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No built-in profile has this name.
    #[error("unknown profile {name:?} (known: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// The profile does not compile (a bug of the pack, caught by its tests).
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
}

/// The scenario file of a built-in profile, as text.
pub fn profile_source(name: &str) -> Result<&'static str, ProfileError> {
    PROFILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, source)| *source)
        .ok_or_else(|| ProfileError::Unknown {
            name: name.to_string(),
            known: PROFILES.map(|(n, _)| n).join(", "),
        })
}

/// A built-in profile, compiled.
pub fn profile(name: &str) -> Result<Scenario, ProfileError> {
    Ok(blast_scenarios::parse(
        &format!("profile {name}"),
        profile_source(name)?,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_compiles_with_its_plan_criteria() {
        for (name, _) in PROFILES {
            let s = profile(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s.name, name);
            assert!(!s.criteria.is_empty(), "{name}");
        }
        assert!(matches!(profile("nope"), Err(ProfileError::Unknown { .. })));
    }
}
