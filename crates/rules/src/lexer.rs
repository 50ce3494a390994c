//! Tokens of the rule language.

use logos::Logos;
use std::ops::Range;

#[derive(Logos, Clone, Debug, PartialEq)]
#[logos(skip r"[ \t\r\n\f]+")]
// Comments run to the end of the line.
#[logos(skip(r"(#|//)[^\n]*", allow_greedy = true))]
pub enum Tok {
    #[token("RULE")]
    Rule,
    #[token("PATTERN")]
    Pattern,
    #[token("WHERE")]
    Where,
    #[token("WITHIN")]
    Within,
    #[token("RETURN")]
    Return,
    #[token("DO")]
    Do,
    #[token("PRIORITY")]
    Priority,
    #[token("TAGS")]
    Tags,
    #[token("OUTPUT")]
    Output,
    #[token("LIST")]
    List,
    #[token("MACRO")]
    Macro,
    /// A duration: 5s, 100ms, 2m...
    #[regex(r"[0-9]+(ns|us|ms|s|m|h)", |l| parse_duration(l.slice()), priority = 3)]
    Duration(u64),
    #[regex(r"0x[0-9a-fA-F]+", |l| u64::from_str_radix(&l.slice()[2..], 16).ok().map(|v| v as i64))]
    #[regex(r"[0-9]+", |l| l.slice().parse::<i64>().ok())]
    Int(i64),
    #[regex(r#""([^"\\\n]|\\.)*""#, |l| unescape(l.slice()).ok())]
    Str(String),
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*", |l| l.slice().to_string())]
    Ident(String),
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token("~")]
    Tilde,
    #[token("|")]
    Pipe,
    #[token("..")]
    DotDot,
    #[token(".")]
    Dot,
    #[token("==")]
    Eq,
    #[token("!=")]
    Ne,
    #[token("<=")]
    Le,
    #[token(">=")]
    Ge,
    #[token("<")]
    Lt,
    #[token(">")]
    Gt,
    #[token("=")]
    Assign,
    #[token("&&")]
    AndAnd,
    #[token("||")]
    OrOr,
    #[token("!")]
    Bang,
    #[token("-")]
    Minus,
}

fn parse_duration(s: &str) -> Option<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let n: u64 = s[..split].parse().ok()?;
    let unit = match &s[split..] {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// A quoted string's value; Err names the character after a backslash that is no escape.
fn unescape(s: &str) -> Result<String, char> {
    let inner = s.get(1..s.len().saturating_sub(1)).unwrap_or("");
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some(other) => return Err(other),
            None => return Err('\\'),
        }
    }
    Ok(out)
}

impl Tok {
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Str(s) => format!("string \"{s}\""),
            Tok::Int(i) => format!("number {i}"),
            Tok::Duration(_) => "a duration".into(),
            other => format!("`{}`", token_text(other)),
        }
    }
}

pub fn token_text(t: &Tok) -> &'static str {
    match t {
        Tok::Rule => "RULE",
        Tok::Pattern => "PATTERN",
        Tok::Where => "WHERE",
        Tok::Within => "WITHIN",
        Tok::Return => "RETURN",
        Tok::Do => "DO",
        Tok::Priority => "PRIORITY",
        Tok::Tags => "TAGS",
        Tok::Output => "OUTPUT",
        Tok::List => "LIST",
        Tok::Macro => "MACRO",
        Tok::LBrace => "{",
        Tok::RBrace => "}",
        Tok::LBracket => "[",
        Tok::RBracket => "]",
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::Comma => ",",
        Tok::Colon => ":",
        Tok::Tilde => "~",
        Tok::Pipe => "|",
        Tok::DotDot => "..",
        Tok::Dot => ".",
        Tok::Eq => "==",
        Tok::Ne => "!=",
        Tok::Le => "<=",
        Tok::Ge => ">=",
        Tok::Lt => "<",
        Tok::Gt => ">",
        Tok::Assign => "=",
        Tok::AndAnd => "&&",
        Tok::OrOr => "||",
        Tok::Bang => "!",
        Tok::Minus => "-",
        _ => "?",
    }
}

/// Tokens with their byte spans, and the text that makes no token: its span and why.
pub type Lexed = (Vec<(Tok, Range<usize>)>, Vec<(Range<usize>, String)>);

pub fn lex(src: &str) -> Lexed {
    let mut toks = Vec::new();
    let mut bad = Vec::new();
    let mut lexer = Tok::lexer(src);
    while let Some(t) = lexer.next() {
        match t {
            Ok(t) => toks.push((t, lexer.span())),
            Err(()) => {
                let span = lexer.span();
                bad.push((span.clone(), why_bad(src, span)));
            }
        }
    }
    (toks, bad)
}

/// What is wrong with text the lexer refused (a token's callback refuses a number that does
/// not fit, a duration that overflows, a string with an unknown escape).
fn why_bad(src: &str, span: Range<usize>) -> String {
    let text = &src[span.clone()];
    let line_rest = src[span.start..].split('\n').next().unwrap_or("");
    if text.starts_with('"') {
        // Where the string would end on this line, escapes skipped.
        let mut escaped = false;
        for (i, c) in line_rest.char_indices().skip(1) {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    let body = &line_rest[..=i];
                    return match unescape(body) {
                        Err(e) => format!(
                            "unknown escape `\\{e}` in a string (use \\n, \\t, \\\\ or \\\")"
                        ),
                        Ok(_) => "this string cannot be read".into(),
                    };
                }
                _ => escaped = false,
            }
        }
        return "this string has no closing `\"` on its line".into();
    }
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        if text.ends_with(|c: char| c.is_ascii_alphabetic()) && !text.starts_with("0x") {
            return format!("duration `{text}` is too long (at most about 584 years)");
        }
        return format!("number `{text}` is too large (at most {})", i64::MAX);
    }
    format!("unexpected character `{text}`")
}
