//! The runbooks and severity policy shipped in `runbooks/`, compiled in: the default when no
//! directory is configured, so a function or `make demo` works with nothing beside the binary.

include!(concat!(env!("OUT_DIR"), "/embedded_runbooks.rs"));

/// The file name of the severity policy among [`FILES`].
pub const POLICY_FILE: &str = "policy.yaml";

/// The shipped severity policy's YAML, when it is present.
pub fn policy_yaml() -> Option<&'static str> {
    FILES.iter().find(|(n, _)| *n == POLICY_FILE).map(|(_, y)| *y)
}

/// The shipped runbooks' YAML (every file but the policy).
pub fn runbook_files() -> impl Iterator<Item = (&'static str, &'static str)> {
    FILES.iter().copied().filter(|(n, _)| *n != POLICY_FILE)
}
