//! Runbooks as code: the seed's structure (trigger, impact, investigation, common causes,
//! resolution, prevention) as typed data loaded from `runbooks/*.yaml`, linted before use,
//! templated with the alarm's values, matched against the diagnosis's evidence, rendered for
//! people.
//!
//! Dependencies inside point one way: `model` ← `source` ← `findings` ← `lint` ← `set`;
//! `template` and `render` read the model.

pub mod embedded;
pub mod findings;
pub mod lint;
pub mod model;
pub mod render;
pub mod set;
pub mod source;
pub mod template;

pub use model::*;
pub use set::*;
pub use source::{parse_source, read_dir, RunbookSource, POLICY_FILE};
