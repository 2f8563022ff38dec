//! Templating untrusted values (service names, dimension values) into queries so that they
//! stay literals: `x/ | stats count() by @message` must not become a second command.

/// A double-quoted string literal whose value is exactly `value`: `"` and `\` are escaped,
/// newlines and tabs written as `\n`, `\t`, `\r`. Use it after `=`, `!=`, `in [...]`, and after
/// `like` for a substring match.
pub fn escape_string_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A `/regex/` literal that matches `value` literally (every regex metacharacter escaped, `/`
/// written `\/`). Use it after `like` or `=~`; wrap it yourself for anchors or `(?i)` by
/// building the pattern from [`escape_regex_pattern`].
pub fn escape_regex_literal(value: &str) -> String {
    format!("/{}/", escape_regex_pattern(value))
}

/// The inside of a regex literal that matches `value` literally, `/` escaped for the query
/// syntax: combine with your own pattern, e.g. `format!("/(?i){}/", escape_regex_pattern(s))`.
pub fn escape_regex_pattern(value: &str) -> String {
    let escaped = regex::escape(value);
    let mut out = String::with_capacity(escaped.len());
    for c in escaped.chars() {
        match c {
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}
