//! The P4.3 load-testing plan for the EUCORA deployment API, as a pack on top of blast's generic
//! crates, which do not know it:
//!
//! - [`profiles`]: the plan's four scenarios (deployments, CAB approvals, connectors, burst)
//!   as scenario files, embedded, with the plan's loads and success criteria;
//! - [`eucora`]: the EUCORA API the plan tests, in memory, served by blast's reference target
//!   under `/api/v1/` ([`Eucora`] is a [`blast_target::App`]);
//! - [`results`]: the plan's results document, written from the records of its runs.
//!
//! ```
//! use blast_p43::{profile, Eucora};
//!
//! let burst = profile("burst").unwrap();
//! assert_eq!(burst.load.resolve(Some(1000.0), 1000).unwrap().1.as_secs(), 240);
//! let (config, api) = Eucora::serve_in(blast_target::Config::default());
//! let server = blast_target::Server::start("127.0.0.1:0".parse().unwrap(), config).unwrap();
//! assert_eq!(api.integrity()["deployments_created"], 0);
//! # drop(server);
//! ```
#![deny(missing_docs)]

pub mod eucora;
pub mod profiles;
pub mod results;

pub use eucora::{Eucora, CAB_BACKLOG, PLANES, SEEDED_APPROVALS, USERS};
pub use profiles::{profile, profile_source, ProfileError, PROFILES};
