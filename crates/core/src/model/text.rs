//! Making text that came from outside (alarm names, descriptions, state reasons, tags, log
//! lines) inert where Firebreak shows it: in Markdown (the postmortem, chat), in plain-text
//! pages, and on a terminal. Each function is total: any UTF-8 in, never a panic, and text
//! without special characters comes out unchanged, so ordinary alarm names
//! (`articles-api-5xx-rate`) and log lines (`max_connections=10`) read as they are.
//!
//! The rules:
//! - [`markdown`]: Markdown and HTML cannot render. Backslash before `\`, `` ` ``, `*`, `[`,
//!   `]`, `|`, `~`, and `!` before `[`; `_` unless it sits between two letters or digits (where
//!   CommonMark cannot open or close emphasis with it); `#`, `-`, `+`, `=`, `>` and `1.`/`1)` at
//!   the start of a line. `<`, `>`, `&` become `&lt;`, `&gt;`, `&amp;`, so no tag, autolink
//!   (`<http://…>`) or entity survives. A bare URL is broken with a word joiner (U+2060) after its
//!   `://` and inside `www.`, so GitHub-style autolinking cannot make it clickable.
//! - [`mentions`]: no chat tool pings anyone. A word joiner after every `@` (`@channel`,
//!   `@here`, `@everyone`, `@alice`), and `<` before `!`, `@` or `#` (Slack's `<!here>`,
//!   `<@U123>`, `<#C123>`) becomes `‹`.
//! - [`terminal`]: no control character reaches the terminal. ESC sequences are removed whole
//!   (CSI up to its final byte, OSC up to BEL or ESC `\`), then every other C0 control but `\n`
//!   and `\t`, DEL, C1 controls, and the bidirectional overrides and isolates (U+202A–U+202E,
//!   U+2066–U+2069), which can make a line read other than it is.
//! - [`one_line`]: [`terminal`], then every run of whitespace (newlines included) as one space.

/// The word joiner: invisible, and breaks mentions and autolinks.
const WJ: char = '\u{2060}';

/// Escapes `s` for a Markdown (or HTML) context. See the module documentation.
pub fn markdown(s: &str) -> String {
    escape(s, true)
}

/// `at_start`: `s` begins a line (block markers there are escaped); false for text placed after
/// other text on a line.
fn escape(s: &str, at_start: bool) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    let mut line_start = at_start;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let prev = if i > 0 { Some(chars[i - 1]) } else { None };
        let next = chars.get(i + 1).copied();
        if line_start {
            // leading spaces keep the line start
            if c == ' ' || c == '\t' {
                out.push(c);
                i += 1;
                continue;
            }
            if matches!(c, '#' | '-' | '+' | '=' | '>') {
                if c == '>' {
                    out.push_str("&gt;");
                } else {
                    out.push('\\');
                    out.push(c);
                }
                line_start = false;
                i += 1;
                continue;
            }
            if c.is_ascii_digit() {
                // `12.` or `3)` at the start of a line is an ordered list item
                let mut j = i;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
                if j < chars.len() && matches!(chars[j], '.' | ')') {
                    out.extend(&chars[i..j]);
                    out.push('\\');
                    out.push(chars[j]);
                    line_start = false;
                    i = j + 1;
                    continue;
                }
            }
            line_start = false;
        }
        match c {
            '\n' => {
                out.push('\n');
                line_start = true;
            }
            '\\' | '`' | '*' | '[' | ']' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '!' if next == Some('[') => out.push_str("\\!"),
            '_' => {
                let inner =
                    prev.is_some_and(char::is_alphanumeric) && next.is_some_and(char::is_alphanumeric);
                if !inner {
                    out.push('\\');
                }
                out.push('_');
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            ':' if next == Some('/') && chars.get(i + 2) == Some(&'/') => {
                out.push_str(":/");
                out.push(WJ);
                out.push('/');
                i += 3;
                continue;
            }
            'w' | 'W'
                if chars.get(i..i + 4).is_some_and(|w| {
                    w.iter().take(3).all(|x| x.eq_ignore_ascii_case(&'w')) && w[3] == '.'
                }) && !prev.is_some_and(char::is_alphanumeric) =>
            {
                out.extend(&chars[i..i + 3]);
                out.push(WJ);
                out.push('.');
                i += 4;
                continue;
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// Neutralises chat mentions in `s`. See the module documentation.
pub fn mentions(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '@' => {
                out.push('@');
                // idempotent: text already made inert keeps one joiner
                if it.peek() != Some(&WJ) {
                    out.push(WJ);
                }
            }
            '<' if matches!(it.peek(), Some('!' | '@' | '#')) => out.push('‹'),
            _ => out.push(c),
        }
    }
    out
}

/// Removes control characters and escape sequences from `s`, keeping `\n` and `\t`. See the
/// module documentation.
pub fn terminal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\u{1b}' => match it.peek() {
                // CSI: parameters and intermediates, then one final byte in @..~
                Some('[') => {
                    it.next();
                    for d in it.by_ref() {
                        if ('@'..='~').contains(&d) {
                            break;
                        }
                    }
                }
                // OSC (and the other string commands): up to BEL or ESC \
                Some(']' | 'P' | '^' | '_' | 'X') => {
                    it.next();
                    while let Some(d) = it.next() {
                        if d == '\u{7}' {
                            break;
                        }
                        if d == '\u{1b}' && it.peek() == Some(&'\\') {
                            it.next();
                            break;
                        }
                    }
                }
                // a two-character escape
                Some(_) => {
                    it.next();
                }
                None => {}
            },
            '\n' | '\t' => out.push(c),
            c if is_control(c) => {}
            _ => out.push(c),
        }
    }
    out
}

/// [`terminal`], then every run of whitespace as one space, trimmed: for one-line contexts.
pub fn one_line(s: &str) -> String {
    terminal(s).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text from outside for a plain-text page (SNS email, SMS, a chat tool's default rendering):
/// no control characters, no mentions. Not backslash-escaped: plain text is not Markdown.
pub fn plain(s: &str) -> String {
    mentions(&terminal(s))
}

/// [`plain`] on one line (subjects).
pub fn plain_line(s: &str) -> String {
    mentions(&one_line(s))
}

/// Text from outside placed inside a line of Markdown (after a bullet, a label, a time): one
/// line, escaped, no mentions.
pub fn markdown_line(s: &str) -> String {
    mentions(&escape(&one_line(s), false))
}

fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_and_log_lines_are_unchanged() {
        for s in [
            "articles-api-5xx-rate",
            "DatabaseError: connection pool exhausted, max_connections=10",
            "prod/articles-api",
            "Threshold Crossed: 1 out of the last 1 datapoints [15.0] was greater than the threshold (5.0).",
        ] {
            assert_eq!(one_line(s), s);
            assert_eq!(mentions(s), s);
            assert_eq!(terminal(s), s);
        }
        assert_eq!(markdown("articles-api-5xx-rate"), "articles-api-5xx-rate");
        assert_eq!(markdown("max_connections=10 (pool)"), "max_connections=10 (pool)");
    }

    #[test]
    fn markdown_and_html_cannot_render() {
        let m = markdown(
            "<img src=x onerror=alert(1)> [click](http://evil) ![](http://evil/x.png) **b** `c` a|b",
        );
        assert!(!m.contains("<img"), "{m}");
        assert!(m.contains("&lt;img"), "{m}");
        assert!(!m.contains("[click]("), "{m}");
        assert!(m.contains("\\[click\\]"), "{m}");
        assert!(!m.contains("![]"), "{m}");
        assert!(!m.contains("http://"), "the URL is broken: {m}");
        assert!(
            m.contains("\\*\\*b\\*\\*") && m.contains("\\`c\\`") && m.contains("a\\|b"),
            "{m}"
        );
        assert_eq!(
            markdown("# title\n- item\n1. one\n> quote"),
            "\\# title\n\\- item\n1\\. one\n&gt; quote"
        );
        assert_eq!(markdown("_emph_ snake_case"), "\\_emph\\_ snake_case");
        assert_eq!(markdown("see www.evil.example"), "see www\u{2060}.evil.example");
        assert_eq!(markdown("a & b"), "a &amp; b");
        // inside a line, block markers are plain text
        assert_eq!(
            markdown_line("2.0x baseline # not a heading"),
            "2.0x baseline # not a heading"
        );
        assert_eq!(markdown_line("line\n# two"), "line # two");
        assert_eq!(markdown("back\\slash"), "back\\\\slash");
    }

    #[test]
    fn mentions_twice_is_mentions_once() {
        let once = mentions("@channel and @here");
        assert_eq!(mentions(&once), once);
        assert_eq!(once.matches('\u{2060}').count(), 2);
    }

    #[test]
    fn mentions_ping_nobody() {
        let m = mentions("@channel @here @everyone <!here> <!channel> <@U123> <#C9> a@b");
        assert!(
            !m.contains("@channel") && !m.contains("@here") && !m.contains("@everyone"),
            "{m}"
        );
        assert!(!m.contains("<!") && !m.contains("<@") && !m.contains("<#"), "{m}");
        assert!(m.contains("‹!here>"), "{m}");
        // still readable once the invisible joiners are gone
        assert_eq!(
            m.replace('\u{2060}', ""),
            "@channel @here @everyone ‹!here> ‹!channel> ‹@U123> ‹#C9> a@b"
        );
    }

    #[test]
    fn terminal_output_has_no_control_characters() {
        let t = terminal("red\u{1b}[31mALARM\u{1b}[0m nul\u{0} bell\u{7} osc\u{1b}]0;title\u{7}end cr\r del\u{7f} c1\u{9b} bidi\u{202e}txt\u{2066}x\nnext\tcol");
        assert_eq!(t, "redALARM nul bell oscend cr del c1 biditxtx\nnext\tcol");
        assert!(
            t.chars().all(|c| c == '\n' || c == '\t' || !is_control(c)),
            "{t:?}"
        );
        assert_eq!(one_line("a\n\n b\t c\u{1b}[2J"), "a b c");
    }

    #[test]
    fn every_function_is_total() {
        let samples = [
            String::new(),
            "\u{1b}".into(),
            "\u{1b}[".into(),
            "\u{1b}]unterminated".into(),
            "www".into(),
            "ww.".into(),
            ":/".into(),
            "1".into(),
            "12".into(),
            "_".into(),
            "!".into(),
            "<".into(),
            "@".into(),
            "ünïcödé 🚨 日本".into(),
            (0u8..=127).map(char::from).collect::<String>(),
        ];
        for s in &samples {
            let _ = (
                markdown(s),
                mentions(s),
                terminal(s),
                one_line(s),
                plain(s),
                plain_line(s),
                markdown_line(s),
            );
        }
    }
}
