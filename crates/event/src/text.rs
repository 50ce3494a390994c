//! `Str`: an immutable, cheaply cloned byte string.
//!
//! Linux paths and argv entries are bytes, not UTF-8. An attacker can name a file with invalid
//! UTF-8 to confuse a monitor, so vigil never converts lossily: bytes are kept as they are and
//! rendered with escapes. Every place vigil shows a string to a person (show, summary, the
//! tree, DOT, match text) uses the one escaping here, which is unambiguous (two different
//! strings never look the same: `a\nb` typed with a backslash is shown `a\\nb`, a real
//! newline `a\nb`) and makes invisible characters visible: controls, and the format
//! characters that reorder or hide text on screen (bidi overrides such as U+202E, which make
//! `evil\u{202e}gpj.exe` look like `evilexe.jpg`; zero-width characters).

use std::fmt;
use std::sync::Arc;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Str(Arc<[u8]>);

impl Str {
    pub fn new(bytes: &[u8]) -> Self {
        Str(Arc::from(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The text, when it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Escaped form: valid UTF-8 is kept, control characters and invalid bytes become `\n`,
    /// `\t`, `\xNN`, C1 controls and invisible format characters `\u{202e}`; a backslash and a
    /// double quote are escaped so the form is unambiguous.
    pub fn escaped(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        escape_into(&self.0, &mut out);
        out
    }

    /// The text to hand to a program or a pattern (an exec action's argument, a glob): the
    /// string itself when it is valid UTF-8, else its escaped form (a String cannot hold the
    /// bytes). Not for showing to a person: use Display.
    pub fn to_text(&self) -> std::borrow::Cow<'_, str> {
        match self.as_str() {
            Some(s) => std::borrow::Cow::Borrowed(s),
            None => std::borrow::Cow::Owned(self.escaped()),
        }
    }
}

/// Whether a character is shown escaped: it is invisible, moves the cursor, changes how the
/// text around it is displayed (C0 and C1 controls, bidirectional controls, zero-width and
/// other format characters, line and paragraph separators, invisible fillers), or is the
/// escape character itself.
pub fn needs_escape(c: char) -> bool {
    matches!(c,
        '\\'
        | '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        // Unicode's format characters (general category Cf) ...
        | '\u{ad}'
        | '\u{600}'..='\u{605}'
        | '\u{61c}'
        | '\u{6dd}'
        | '\u{70f}'
        | '\u{890}'..='\u{891}'
        | '\u{8e2}'
        | '\u{180e}'
        | '\u{200b}'..='\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206f}'
        | '\u{feff}'
        | '\u{fff9}'..='\u{fffb}'
        | '\u{110bd}'
        | '\u{110cd}'
        | '\u{13430}'..='\u{1343f}'
        | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}'
        | '\u{e0001}'
        | '\u{e0020}'..='\u{e007f}'
        // ... line and paragraph separators, and letters that draw nothing (Hangul fillers).
        | '\u{2028}'..='\u{2029}'
        | '\u{115f}'..='\u{1160}'
        | '\u{3164}'
        | '\u{ffa0}'
    )
}

pub fn escape_into(bytes: &[u8], out: &mut String) {
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                escape_str(s, out);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                // valid_up_to guarantees `good` is UTF-8.
                escape_str(std::str::from_utf8(good).unwrap_or_default(), out);
                let n = e.error_len().unwrap_or(bad.len()).max(1);
                for b in &bad[..n] {
                    out.push_str(&format!("\\x{b:02x}"));
                }
                rest = &bad[n..];
            }
        }
    }
}

fn escape_str(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            // `\xNN` above 0x7f is an invalid byte: a character is written by its code point.
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
}

impl fmt::Display for Str {
    /// Human form: shown as is when it is valid UTF-8 with nothing to escape (no backslash, no
    /// control, no invisible character), else in its escaped form. Unambiguous: an escaped form
    /// always holds a backslash, a string shown as is never does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) if !s.chars().any(needs_escape) => f.write_str(s),
            _ => f.write_str(&self.escaped()),
        }
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.escaped())
    }
}

impl From<&str> for Str {
    fn from(s: &str) -> Self {
        Str::new(s.as_bytes())
    }
}

impl From<String> for Str {
    fn from(s: String) -> Self {
        Str(Arc::from(s.into_bytes()))
    }
}

impl From<&[u8]> for Str {
    fn from(b: &[u8]) -> Self {
        Str::new(b)
    }
}

impl From<Vec<u8>> for Str {
    fn from(b: Vec<u8>) -> Self {
        Str(Arc::from(b))
    }
}

impl AsRef<[u8]> for Str {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq<str> for Str {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Str {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == other.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_human_form_is_unambiguous_and_shows_invisible_characters() {
        // A backslash and an n, and a newline.
        let typed = Str::from("a\\nb");
        let newline = Str::from("a\nb");
        assert_ne!(typed.to_string(), newline.to_string());
        assert_eq!(typed.to_string(), "a\\\\nb");
        assert_eq!(newline.to_string(), "a\\nb");
        // Right-to-left override, isolates, marks, zero width, BOM, a C1 control.
        for (c, shown) in [
            ('\u{202e}', "\\u{202e}"),
            ('\u{202a}', "\\u{202a}"),
            ('\u{2066}', "\\u{2066}"),
            ('\u{2069}', "\\u{2069}"),
            ('\u{200e}', "\\u{200e}"),
            ('\u{200f}', "\\u{200f}"),
            ('\u{61c}', "\\u{61c}"),
            ('\u{200b}', "\\u{200b}"),
            ('\u{feff}', "\\u{feff}"),
            ('\u{9b}', "\\u{9b}"),
        ] {
            let s = Str::from(format!("evil{c}gpj.exe"));
            assert_eq!(s.to_string(), format!("evil{shown}gpj.exe"));
            assert_eq!(s.escaped(), format!("evil{shown}gpj.exe"));
        }
        // A code point written as \u{..} differs from the same value as an invalid byte.
        assert_ne!(
            Str::from("\u{85}").to_string(),
            Str::new(b"\x85").to_string()
        );
        // Text with nothing to escape is shown as it is, quotes and all.
        assert_eq!(Str::from("/tmp/été \"x\"").to_string(), "/tmp/été \"x\"");
        assert_eq!(Str::from("a\\b").to_text(), "a\\b");
    }

    #[test]
    fn escapes_invalid_utf8_and_controls() {
        let s = Str::new(b"a\xffb\nc\\\"");
        assert_eq!(s.escaped(), "a\\xffb\\nc\\\\\\\"");
        assert_eq!(Str::from("/etc/passwd").to_string(), "/etc/passwd");
    }
}
