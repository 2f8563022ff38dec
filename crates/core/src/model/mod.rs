//! The domain's vocabulary: what every stage reads and writes.

pub mod autonomy;
pub mod duration;
pub mod entry_id;
pub mod evidence;
pub mod incident;
pub mod oncall;
pub mod page;
pub mod pipeline;
pub mod remedy;
pub mod settings;
pub mod severity;
pub mod signal;
pub mod text;
pub mod timeline;
