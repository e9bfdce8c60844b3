//! Parser for SCIM 2.0 filters (RFC 7644 §3.4.2.2) and PATCH paths (RFC 7644 §3.5.2, §3.10).
//!
//! Hand-written in two small steps: a tokenizer turns the text into words, JSON strings and the
//! four brackets, then a recursive-descent parser builds a [`Filter<AttrPath>`] or a
//! [`PatchPath`]. The grammar of RFC 7644 Figure 1, with precedence made explicit:
//!
//! ```text
//! filter    = and-exp *( "or" and-exp )            ; left-associative
//! and-exp   = term *( "and" term )                 ; left-associative
//! term      = "(" filter ")" / "not" "(" filter ")"
//!           / attrPath "[" valFilter "]"           ; valuePath
//!           / attrPath "pr" / attrPath compareOp compValue
//! attrPath  = [URI ":"] ATTRNAME ["." ATTRNAME]
//! ```
//!
//! Keywords and operators are case-insensitive; attribute names keep the case they were written
//! in. Any run of ASCII whitespace separates tokens (the ABNF asks for exactly one `SP`). Inputs
//! are bounded by [`MAX_INPUT_LEN`] and [`MAX_DEPTH`], so no input can exhaust the stack. Offsets
//! in error messages count characters (not bytes) from 0.

use serde_json::Number;

use crate::store::query::{CompValue, CompareOp, Filter};

/// An attribute as written in a filter or PATCH path, before the schema is consulted:
/// `[schemaURI ":"] attr ["." subAttr]` (RFC 7644 §3.10). Names keep the case they were written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URI prefix, e.g. `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.
    pub schema: Option<String>,
    pub attr: String,
    pub sub: Option<String>,
}

/// Longest filter or path accepted, in bytes.
pub const MAX_INPUT_LEN: usize = 4096;

/// Deepest nesting accepted of `( … )`, `not ( … )` and `[ … ]` taken together.
pub const MAX_DEPTH: usize = 32;

/// Most `and` / `or` operators in one filter. Chains nest the tree one level per operator, and
/// every later stage (schema resolution, SQL generation, SQLite's own parser) walks it
/// recursively: the bound keeps a hostile filter from exhausting a worker's stack.
pub const MAX_OPERATORS: usize = 64;

/// Why a filter or path was refused; the message says what went wrong and at which offset.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    pub message: String,
}

fn error(message: impl Into<String>) -> SyntaxError {
    SyntaxError {
        message: message.into(),
    }
}

/// A PATCH operation path: `attrPath` or `valuePath ["." subAttr]` (RFC 7644 §3.5.2 "path" ABNF).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute the operation targets; when `filter` is `Some`, `attr.sub` is `None`.
    pub attr: AttrPath,
    /// The `[valFilter]` selecting values of a multi-valued attribute. Its attribute paths name
    /// sub-attributes of `attr`: `attr` is the sub-attribute name, `sub` and `schema` are `None`.
    pub filter: Option<Filter<AttrPath>>,
    /// The `.subAttr` after the closing `]`.
    pub sub: Option<String>,
}

/// Parses a `filter` query parameter (RFC 7644 §3.4.2.2).
pub fn parse_filter(input: &str) -> Result<Filter<AttrPath>, SyntaxError> {
    let tokens = tokenize(input)?;
    let mut parser = Parser::new(&tokens, input);
    if parser.peek().is_none() {
        return Err(error("empty filter"));
    }
    let filter = parser.filter()?;
    parser.finish()?;
    Ok(filter)
}

/// Parses the `path` of a PATCH operation (RFC 7644 §3.5.2):
/// `attrPath / valuePath ["." subAttr]`.
pub fn parse_path(input: &str) -> Result<PatchPath, SyntaxError> {
    let tokens = tokenize(input)?;
    let mut parser = Parser::new(&tokens, input);
    let (word, at) = match parser.next() {
        None => return Err(error("empty path")),
        Some(Token {
            tok: Tok::Word(word),
            at,
            ..
        }) => (word.as_str(), *at),
        Some(token) => {
            return Err(error(format!(
                "expected an attribute path at offset {}, found {}",
                token.at,
                token.tok.describe()
            )))
        }
    };
    let attr = attr_path(word, at)?;
    if !matches!(parser.peek_tok(0), Some(Tok::OpenBracket)) {
        parser.finish()?;
        return Ok(PatchPath {
            attr,
            filter: None,
            sub: None,
        });
    }
    let filter = parser.value_filter(&attr, word, at)?;
    let sub = parser.sub_attr_after_bracket()?;
    parser.finish()?;
    Ok(PatchPath {
        attr,
        filter: Some(filter),
        sub,
    })
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    /// A run of characters other than whitespace, brackets and `"`: an attribute path, a keyword,
    /// an operator, `true`/`false`/`null` or a number.
    Word(String),
    /// A JSON string literal, already decoded.
    Str(String),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Open => "\"(\"".into(),
            Tok::Close => "\")\"".into(),
            Tok::OpenBracket => "\"[\"".into(),
            Tok::CloseBracket => "\"]\"".into(),
            Tok::Word(word) => quote(word),
            Tok::Str(_) => "a string".into(),
        }
    }
}

#[derive(Debug)]
struct Token {
    tok: Tok,
    /// Character offset of the token's first character.
    at: usize,
    /// Character offset just past the token.
    end: usize,
}

fn is_word_char(c: char) -> bool {
    !c.is_ascii_whitespace() && !matches!(c, '(' | ')' | '[' | ']' | '"')
}

fn tokenize(input: &str) -> Result<Vec<Token>, SyntaxError> {
    if input.len() > MAX_INPUT_LEN {
        return Err(error(format!(
            "input is {} bytes long; at most {MAX_INPUT_LEN} are accepted",
            input.len()
        )));
    }
    let chars: Vec<char> = input.chars().collect();
    let mut tokens: Vec<Token> = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let token = next_token(&chars, i, tokens.last())?;
        i = token.end;
        tokens.push(token);
    }
    Ok(tokens)
}

/// Lexes the token starting at `at`, which is not whitespace.
fn next_token(chars: &[char], at: usize, previous: Option<&Token>) -> Result<Token, SyntaxError> {
    let single = |tok| Token {
        tok,
        at,
        end: at + 1,
    };
    match chars[at] {
        '(' => Ok(single(Tok::Open)),
        ')' => Ok(single(Tok::Close)),
        '[' => Ok(single(Tok::OpenBracket)),
        ']' => Ok(single(Tok::CloseBracket)),
        '"' => {
            if previous.is_some_and(|p| p.end == at && matches!(p.tok, Tok::Word(_))) {
                return Err(error(format!("missing space before string at offset {at}")));
            }
            let token = string_token(chars, at)?;
            if chars.get(token.end).is_some_and(|&c| is_word_char(c)) {
                return Err(error(format!(
                    "missing space after string at offset {}",
                    token.end
                )));
            }
            Ok(token)
        }
        _ => {
            let len = chars[at..].iter().take_while(|&&c| is_word_char(c)).count();
            let end = at + len;
            Ok(Token {
                tok: Tok::Word(chars[at..end].iter().collect()),
                at,
                end,
            })
        }
    }
}

/// Lexes a JSON string starting with the `"` at `at`: finds the closing quote, honouring
/// backslash escapes, and lets serde_json decode the escapes (RFC 8259 §7).
fn string_token(chars: &[char], at: usize) -> Result<Token, SyntaxError> {
    let mut i = at + 1;
    while let Some(&c) = chars.get(i) {
        match c {
            '\\' => i += 2,
            '"' => {
                let raw: String = chars[at..=i].iter().collect();
                let decoded = serde_json::from_str::<String>(&raw).map_err(|e| {
                    let reason = e.to_string();
                    let reason = reason.split(" at line ").next().unwrap_or_default();
                    error(format!("invalid string at offset {at}: {reason}"))
                })?;
                // No stored value can hold U+0000 (PostgreSQL refuses it in text), so a
                // filter naming it is the client's mistake, not a query to run.
                if decoded.contains('\0') {
                    return Err(error(format!(
                        "the string at offset {at} holds U+0000, which no value can hold"
                    )));
                }
                return Ok(Token {
                    tok: Tok::Str(decoded),
                    at,
                    end: i + 1,
                });
            }
            _ => i += 1,
        }
    }
    Err(error(format!(
        "unterminated string starting at offset {at}"
    )))
}

/// Quotes user input for an error message, shortening it so messages stay readable.
fn quote(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// The error for input ending while the bracket `closer` closes, opened at `open`, is still open.
fn unclosed(closer: &Tok, open: usize) -> SyntaxError {
    match closer {
        Tok::CloseBracket => error(format!(
            "unterminated value filter: \"[\" at offset {open} is never closed"
        )),
        _ => error(format!(
            "unbalanced parenthesis: \"(\" at offset {open} is never closed"
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Attribute paths

/// Parses `[URI ":"] ATTRNAME ["." ATTRNAME]` (RFC 7644 §3.10). A schema URN contains dots
/// itself ("…:2.0:User"), so the URI ends at the last `:` and only the rest is split on `.`.
fn attr_path(word: &str, at: usize) -> Result<AttrPath, SyntaxError> {
    split_attr_path(word).map_err(|why| {
        error(format!(
            "invalid attribute path {} at offset {at}: {why}",
            quote(word)
        ))
    })
}

const NAME_RULE: &str =
    "a name is a letter then letters, digits, \"-\" or \"_\", with at most one \".\" sub-attribute";

fn split_attr_path(word: &str) -> Result<AttrPath, &'static str> {
    let (schema, rest) = match word.get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case("urn:") => {
            let colon = word.rfind(':').ok_or("missing \":\"")?;
            let (uri, rest) = (&word[..colon], &word[colon + 1..]);
            if !is_schema_uri(uri) {
                return Err("malformed schema URI");
            }
            (Some(uri.to_owned()), rest)
        }
        _ => (None, word),
    };
    let (attr, sub) = match rest.split_once('.') {
        Some((attr, sub)) => (attr, Some(sub)),
        None => (rest, None),
    };
    if !is_attr_name(attr) || !sub.is_none_or(is_attr_name) {
        return Err(NAME_RULE);
    }
    Ok(AttrPath {
        schema,
        attr: attr.to_owned(),
        sub: sub.map(str::to_owned),
    })
}

/// A URN (RFC 8141) as used for SCIM schema URIs: `urn:` then URN characters, no empty part.
fn is_schema_uri(uri: &str) -> bool {
    const PUNCTUATION: &[u8] = b"-._~!$&'*+,;=:@/%?#";
    uri.len() > 4
        && !uri.contains("::")
        && !uri.ends_with(':')
        && uri
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || PUNCTUATION.contains(&b))
}

/// `ATTRNAME = ALPHA *(nameChar)`, plus `$ref` (RFC 7643 §2.3.7), e.g. `members.$ref`.
fn is_attr_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.eq_ignore_ascii_case("$ref")
        || (chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

// ---------------------------------------------------------------------------------------------
// Values and operators

fn compare_op(word: &str) -> Option<CompareOp> {
    const OPS: [CompareOp; 9] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ];
    OPS.into_iter()
        .find(|op| word.eq_ignore_ascii_case(op.as_str()))
}

/// A `compValue` written as a word: `false`, `null`, `true` or a JSON number. `None` when the
/// word is none of these; `Some(Err)` when it starts like a number but is not a JSON number.
fn word_value(word: &str) -> Option<Result<CompValue, String>> {
    let value = if word.eq_ignore_ascii_case("true") {
        CompValue::Bool(true)
    } else if word.eq_ignore_ascii_case("false") {
        CompValue::Bool(false)
    } else if word.eq_ignore_ascii_case("null") {
        CompValue::Null
    } else if word.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Some(
            serde_json::from_str::<Number>(word)
                .map(CompValue::Number)
                .map_err(|_| format!("invalid number {}", quote(word))),
        );
    } else {
        return None;
    };
    Some(Ok(value))
}

fn is_keyword(word: &str, keyword: &str) -> bool {
    word.eq_ignore_ascii_case(keyword)
}

// ---------------------------------------------------------------------------------------------
// Parser

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    /// Character length of the input: the offset reported for "end of input".
    end: usize,
    /// The closer awaited and the offset of each bracket open around the current position.
    open: Vec<(Tok, usize)>,
    /// Inside `[ … ]`, where names are plain sub-attributes and brackets do not nest.
    in_value_filter: bool,
    /// `and` and `or` operators read so far.
    operators: usize,
}

type Parsed<T> = Result<T, SyntaxError>;

impl<'a> Parser<'a> {
    fn new(tokens: &'a [Token], input: &str) -> Self {
        Parser {
            tokens,
            pos: 0,
            end: input.chars().count(),
            open: Vec::new(),
            in_value_filter: false,
            operators: 0,
        }
    }

    fn peek(&self) -> Option<&'a Token> {
        self.tokens.get(self.pos)
    }

    fn peek_tok(&self, ahead: usize) -> Option<&'a Tok> {
        self.tokens.get(self.pos + ahead).map(|t| &t.tok)
    }

    fn next(&mut self) -> Option<&'a Token> {
        let token = self.tokens.get(self.pos)?;
        self.pos += 1;
        Some(token)
    }

    fn offset(&self) -> usize {
        self.peek().map_or(self.end, |t| t.at)
    }

    /// "at offset N, found X" for the next token.
    fn here(&self) -> String {
        let found = self
            .peek()
            .map_or_else(|| "end of input".into(), |t| t.tok.describe());
        format!("at offset {}, found {found}", self.offset())
    }

    /// Consumes an `and` or `or`, counting it against [`MAX_OPERATORS`].
    fn eat_operator(&mut self, keyword: &str) -> Parsed<bool> {
        if !self.eat_keyword(keyword) {
            return Ok(false);
        }
        self.operators += 1;
        if self.operators > MAX_OPERATORS {
            return Err(error(format!(
                "more than {MAX_OPERATORS} \"and\"/\"or\" operators at offset {}",
                self.offset()
            )));
        }
        Ok(true)
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let hit = matches!(self.peek_tok(0), Some(Tok::Word(w)) if is_keyword(w, keyword));
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// Consumes an opening bracket, whose `closer` is awaited from now on.
    fn enter(&mut self, closer: Tok) -> Parsed<()> {
        let at = self.offset();
        if self.open.len() >= MAX_DEPTH {
            return Err(error(format!(
                "nesting deeper than {MAX_DEPTH} levels at offset {at}"
            )));
        }
        self.pos += 1;
        self.open.push((closer, at));
        Ok(())
    }

    /// Consumes the closer awaited for the innermost open bracket.
    fn leave(&mut self) -> Parsed<()> {
        let Some((closer, open)) = self.open.last() else {
            return Ok(());
        };
        match self.peek() {
            Some(token) if token.tok == *closer => {
                self.pos += 1;
                self.open.pop();
                Ok(())
            }
            None => Err(unclosed(closer, *open)),
            Some(_) => Err(error(format!(
                "expected \"and\", \"or\" or {} {}",
                closer.describe(),
                self.here()
            ))),
        }
    }

    /// Accepts only the end of input after a complete filter or path.
    fn finish(&self) -> Parsed<()> {
        match self.peek() {
            None => Ok(()),
            Some(Token {
                tok: Tok::Close,
                at,
                ..
            }) => Err(error(format!(
                "unbalanced parenthesis: \")\" at offset {at} has no matching \"(\""
            ))),
            Some(Token {
                tok: Tok::CloseBracket,
                at,
                ..
            }) => Err(error(format!(
                "unbalanced bracket: \"]\" at offset {at} has no matching \"[\""
            ))),
            Some(token) => Err(error(format!(
                "trailing input at offset {}: {}",
                token.at,
                token.tok.describe()
            ))),
        }
    }

    /// `filter = and-exp *("or" and-exp)`
    fn filter(&mut self) -> Parsed<Filter<AttrPath>> {
        let mut left = self.conjunction()?;
        while self.eat_operator("or")? {
            let right = self.conjunction()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `and-exp = term *("and" term)`
    fn conjunction(&mut self) -> Parsed<Filter<AttrPath>> {
        let mut left = self.term()?;
        while self.eat_operator("and")? {
            let right = self.term()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `term = "(" filter ")" / "not" "(" filter ")" / attrExp / valuePath`
    fn term(&mut self) -> Parsed<Filter<AttrPath>> {
        match self.peek_tok(0) {
            Some(Tok::Open) => self.group(),
            Some(Tok::Word(w)) if is_keyword(w, "not") && self.peek_tok(1) == Some(&Tok::Open) => {
                self.pos += 1;
                Ok(Filter::Not(Box::new(self.group()?)))
            }
            Some(Tok::Word(_)) => self.attr_exp(),
            Some(Tok::OpenBracket) if self.in_value_filter => Err(self.nested_bracket()),
            None => Err(self
                .open
                .last()
                .map_or_else(|| self.expected_term(), |(c, at)| unclosed(c, *at))),
            _ => Err(self.expected_term()),
        }
    }

    fn expected_term(&self) -> SyntaxError {
        error(format!(
            "expected an attribute path, \"not\" or \"(\" {}",
            self.here()
        ))
    }

    /// `"(" filter ")"`, the next token being `(`.
    fn group(&mut self) -> Parsed<Filter<AttrPath>> {
        self.enter(Tok::Close)?;
        let inner = self.filter()?;
        self.leave()?;
        Ok(inner)
    }

    fn nested_bracket(&self) -> SyntaxError {
        error(format!(
            "nested \"[\" at offset {} inside a value filter",
            self.offset()
        ))
    }

    /// `attrPath "pr" / attrPath compareOp compValue / attrPath "[" valFilter "]"`
    fn attr_exp(&mut self) -> Parsed<Filter<AttrPath>> {
        let Some(Token {
            tok: Tok::Word(word),
            at,
            ..
        }) = self.next()
        else {
            return Err(error(format!("expected an attribute path {}", self.here())));
        };
        let attr = self.attr_path_here(word, *at)?;
        if self.peek_tok(0) == Some(&Tok::OpenBracket) {
            let filter = self.value_filter(&attr, word, *at)?;
            return Ok(Filter::ValuePath {
                attr,
                filter: Box::new(filter),
            });
        }
        if self.eat_keyword("pr") {
            self.reject_value_after_pr()?;
            return Ok(Filter::Present(attr));
        }
        if let Some(op) = self.compare_op() {
            let value = self.comp_value(op)?;
            return Ok(Filter::Compare { attr, op, value });
        }
        if is_keyword(word, "not") {
            return Err(error(format!(
                "expected \"(\" after \"not\" {}",
                self.here()
            )));
        }
        Err(error(format!(
            "expected a comparison operator after {} {}",
            quote(word),
            self.here()
        )))
    }

    /// An attribute path; inside `[ … ]` it must be a plain sub-attribute name.
    fn attr_path_here(&self, word: &str, at: usize) -> Parsed<AttrPath> {
        let attr = attr_path(word, at)?;
        if self.in_value_filter && (attr.schema.is_some() || attr.sub.is_some()) {
            return Err(error(format!(
                "expected a sub-attribute name inside \"[ ]\" at offset {at}, found {}",
                quote(word)
            )));
        }
        Ok(attr)
    }

    fn compare_op(&mut self) -> Option<CompareOp> {
        let Some(Tok::Word(word)) = self.peek_tok(0) else {
            return None;
        };
        let op = compare_op(word)?;
        self.pos += 1;
        Some(op)
    }

    /// `compValue = false / null / true / number / string` (JSON, RFC 8259).
    fn comp_value(&mut self, op: CompareOp) -> Parsed<CompValue> {
        let needs = format!("{:?} needs a value", op.as_str());
        let value = match self.peek() {
            Some(Token {
                tok: Tok::Str(s), ..
            }) => CompValue::String(s.clone()),
            Some(Token {
                tok: Tok::Word(word),
                at,
                ..
            }) => match word_value(word) {
                Some(Ok(value)) => value,
                Some(Err(why)) => return Err(error(format!("{needs} at offset {at}: {why}"))),
                None => {
                    return Err(error(format!(
                        "{needs} at offset {at}: {} is not a JSON string, number, true, \
                         false or null",
                        quote(word)
                    )))
                }
            },
            _ => return Err(error(format!("{needs} {}", self.here()))),
        };
        self.pos += 1;
        Ok(value)
    }

    /// `title pr "x"`: name the mistake rather than report mere trailing input.
    fn reject_value_after_pr(&self) -> Parsed<()> {
        let is_value = match self.peek_tok(0) {
            Some(Tok::Str(_)) => true,
            Some(Tok::Word(word)) => word_value(word).is_some(),
            _ => false,
        };
        if is_value {
            return Err(error(format!(
                "\"pr\" takes no value, found one at offset {}",
                self.offset()
            )));
        }
        Ok(())
    }

    /// `"[" valFilter "]"` after `attr` (spelled `word` at offset `at`), the next token being `[`.
    fn value_filter(&mut self, attr: &AttrPath, word: &str, at: usize) -> Parsed<Filter<AttrPath>> {
        if self.in_value_filter {
            return Err(self.nested_bracket());
        }
        if attr.sub.is_some() {
            return Err(error(format!(
                "a value filter \"[ ]\" must follow an attribute, not the sub-attribute {} \
                 at offset {at}",
                quote(word)
            )));
        }
        self.enter(Tok::CloseBracket)?;
        self.in_value_filter = true;
        let inner = self.filter()?;
        self.leave()?;
        self.in_value_filter = false;
        Ok(inner)
    }

    /// The `"." subAttr` directly after the `]` of a PATCH path's valuePath (RFC 7644 §3.5.2).
    fn sub_attr_after_bracket(&mut self) -> Parsed<Option<String>> {
        let Some(Token {
            tok: Tok::Word(word),
            at,
            ..
        }) = self.peek()
        else {
            return Ok(None);
        };
        let Some(name) = word.strip_prefix('.') else {
            return Ok(None);
        };
        let closing = self.pos.checked_sub(1).and_then(|i| self.tokens.get(i));
        let closing = closing.map_or(0, |t| t.end);
        if *at != closing {
            return Err(error(format!(
                "unexpected space before {} at offset {at}",
                quote(word)
            )));
        }
        if !is_attr_name(name) {
            return Err(error(format!(
                "invalid sub-attribute {} at offset {at}",
                quote(word)
            )));
        }
        self.pos += 1;
        Ok(Some(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // --- builders -------------------------------------------------------------------------

    fn path(text: &str) -> AttrPath {
        let (attr, sub) = match text.split_once('.') {
            Some((attr, sub)) => (attr, Some(sub.to_owned())),
            None => (text, None),
        };
        AttrPath {
            schema: None,
            attr: attr.to_owned(),
            sub,
        }
    }

    fn urn_path(schema: &str, attr: &str, sub: Option<&str>) -> AttrPath {
        AttrPath {
            schema: Some(schema.to_owned()),
            attr: attr.to_owned(),
            sub: sub.map(str::to_owned),
        }
    }

    fn cmp(attr: &str, op: CompareOp, value: CompValue) -> Filter<AttrPath> {
        Filter::Compare {
            attr: path(attr),
            op,
            value,
        }
    }

    fn eq(attr: &str, value: &str) -> Filter<AttrPath> {
        cmp(attr, CompareOp::Eq, s(value))
    }

    fn co(attr: &str, value: &str) -> Filter<AttrPath> {
        cmp(attr, CompareOp::Co, s(value))
    }

    fn s(text: &str) -> CompValue {
        CompValue::String(text.to_owned())
    }

    fn n(number: i64) -> CompValue {
        CompValue::Number(number.into())
    }

    fn pr(attr: &str) -> Filter<AttrPath> {
        Filter::Present(path(attr))
    }

    fn and(l: Filter<AttrPath>, r: Filter<AttrPath>) -> Filter<AttrPath> {
        Filter::And(Box::new(l), Box::new(r))
    }

    fn or(l: Filter<AttrPath>, r: Filter<AttrPath>) -> Filter<AttrPath> {
        Filter::Or(Box::new(l), Box::new(r))
    }

    fn not(inner: Filter<AttrPath>) -> Filter<AttrPath> {
        Filter::Not(Box::new(inner))
    }

    fn vp(attr: &str, filter: Filter<AttrPath>) -> Filter<AttrPath> {
        Filter::ValuePath {
            attr: path(attr),
            filter: Box::new(filter),
        }
    }

    fn check_filters(cases: Vec<(&str, Filter<AttrPath>)>) {
        for (input, want) in cases {
            assert_eq!(parse_filter(input), Ok(want), "input: {input}");
        }
    }

    fn check_errors(cases: &[(&str, &str)], parse: fn(&str) -> Result<(), SyntaxError>) {
        for (input, want) in cases {
            match parse(input) {
                Ok(()) => panic!("{input:?} parsed, expected an error containing {want:?}"),
                Err(e) => assert!(
                    e.message.contains(want),
                    "{input:?}: error {:?} does not contain {want:?}",
                    e.message
                ),
            }
        }
    }

    fn filter_unit(input: &str) -> Result<(), SyntaxError> {
        parse_filter(input).map(drop)
    }

    fn path_unit(input: &str) -> Result<(), SyntaxError> {
        parse_path(input).map(drop)
    }

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

    // --- filters --------------------------------------------------------------------------

    #[test]
    fn each_operator() {
        use CompareOp::*;
        let cases = [
            ("eq", Eq),
            ("ne", Ne),
            ("co", Co),
            ("sw", Sw),
            ("ew", Ew),
            ("gt", Gt),
            ("ge", Ge),
            ("lt", Lt),
            ("le", Le),
        ];
        for (name, op) in cases {
            let input = format!("userName {name} \"bjensen\"");
            assert_eq!(
                parse_filter(&input),
                Ok(cmp("userName", op, s("bjensen"))),
                "{input}"
            );
        }
        check_filters(vec![("title pr", pr("title"))]);
    }

    #[test]
    fn values() {
        check_filters(vec![
            ("a eq true", cmp("a", CompareOp::Eq, CompValue::Bool(true))),
            (
                "a eq FALSE",
                cmp("a", CompareOp::Eq, CompValue::Bool(false)),
            ),
            ("a eq null", cmp("a", CompareOp::Eq, CompValue::Null)),
            ("a eq Null", cmp("a", CompareOp::Eq, CompValue::Null)),
            ("a gt 42", cmp("a", CompareOp::Gt, n(42))),
            ("a gt -7", cmp("a", CompareOp::Gt, n(-7))),
            ("a gt 0", cmp("a", CompareOp::Gt, n(0))),
            (
                "a lt 1.5e3",
                cmp(
                    "a",
                    CompareOp::Lt,
                    CompValue::Number(Number::from_f64(1500.0).unwrap()),
                ),
            ),
            (
                "a lt -0.25",
                cmp(
                    "a",
                    CompareOp::Lt,
                    CompValue::Number(Number::from_f64(-0.25).unwrap()),
                ),
            ),
            ("a eq \"\"", eq("a", "")),
        ]);
    }

    #[test]
    fn string_escapes() {
        check_filters(vec![
            (r#"a eq "say \"hi\"""#, eq("a", "say \"hi\"")),
            (r#"a eq "back\\slash""#, eq("a", "back\\slash")),
            (r#"a eq "a\/b""#, eq("a", "a/b")),
            (r#"a eq "\b\f\n\r\t""#, eq("a", "\u{8}\u{c}\n\r\t")),
            (r#"a eq "caf\u00e9""#, eq("a", "café")),
            (r#"a eq "\ud83d\ude00""#, eq("a", "😀")),
            (r#"a eq "😀 ünïcödé""#, eq("a", "😀 ünïcödé")),
            (r#"a eq "(not) [a] and or""#, eq("a", "(not) [a] and or")),
            (r#"a eq "\\""#, eq("a", "\\")),
        ]);
        assert!(parse_filter(r#"userName eq "a\u0000""#).is_err());
    }

    #[test]
    fn precedence_and_grouping() {
        let (a, b, c) = (|| eq("a", "1"), || eq("b", "2"), || eq("c", "3"));
        check_filters(vec![
            (
                r#"a eq "1" or b eq "2" and c eq "3""#,
                or(a(), and(b(), c())),
            ),
            (
                r#"a eq "1" and b eq "2" or c eq "3""#,
                or(and(a(), b()), c()),
            ),
            (
                r#"(a eq "1" or b eq "2") and c eq "3""#,
                and(or(a(), b()), c()),
            ),
            (
                r#"a eq "1" and b eq "2" and c eq "3""#,
                and(and(a(), b()), c()),
            ),
            (r#"a eq "1" or b eq "2" or c eq "3""#, or(or(a(), b()), c())),
            (r#"not (a eq "1") and b eq "2""#, and(not(a()), b())),
            (r#"not(a eq "1" or b eq "2")"#, not(or(a(), b()))),
            (r#"not (not (a eq "1"))"#, not(not(a()))),
            (r#"((a eq "1"))"#, a()),
            ("\t ( a eq \"1\" )\tand\t( b eq \"2\" ) ", and(a(), b())),
        ]);
    }

    #[test]
    fn keywords_are_case_insensitive() {
        check_filters(vec![
            (r#"userName EQ "x""#, eq("userName", "x")),
            ("title PR", pr("title")),
            ("a Pr AND b pR", and(pr("a"), pr("b"))),
            ("a pr Or b pr", or(pr("a"), pr("b"))),
            ("NOT (a pr)", not(pr("a"))),
            ("Not(a pr)", not(pr("a"))),
            (r#"UserName Eq "x""#, eq("UserName", "x")),
        ]);
    }

    #[test]
    fn keywords_can_name_attributes() {
        check_filters(vec![
            ("not pr", pr("not")),
            (
                "and eq 1 and or pr",
                and(cmp("and", CompareOp::Eq, n(1)), pr("or")),
            ),
            ("pr pr", pr("pr")),
            ("a_b-c.d-9 pr", pr("a_b-c.d-9")),
            ("not[eq pr]", vp("not", pr("eq"))),
        ]);
    }

    #[test]
    fn rfc7644_examples() {
        let employee = || eq("userType", "Employee");
        let emails_or = || {
            or(
                co("emails", "example.com"),
                co("emails.value", "example.org"),
            )
        };
        let ts = "2011-05-13T04:42:34Z";
        check_filters(vec![
            (r#"userName eq "bjensen""#, eq("userName", "bjensen")),
            (
                r#"name.familyName co "O'Malley""#,
                co("name.familyName", "O'Malley"),
            ),
            (r#"userName sw "J""#, cmp("userName", CompareOp::Sw, s("J"))),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
                Filter::Compare {
                    attr: urn_path(CORE_USER, "userName", None),
                    op: CompareOp::Sw,
                    value: s("J"),
                },
            ),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:name.familyName co "O'Malley""#,
                Filter::Compare {
                    attr: urn_path(CORE_USER, "name", Some("familyName")),
                    op: CompareOp::Co,
                    value: s("O'Malley"),
                },
            ),
            ("title pr", pr("title")),
            (
                r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
                cmp("meta.lastModified", CompareOp::Gt, s(ts)),
            ),
            (
                r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
                cmp("meta.lastModified", CompareOp::Ge, s(ts)),
            ),
            (
                r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
                cmp("meta.lastModified", CompareOp::Lt, s(ts)),
            ),
            (
                r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
                cmp("meta.lastModified", CompareOp::Le, s(ts)),
            ),
            (
                r#"title pr and userType eq "Employee""#,
                and(pr("title"), employee()),
            ),
            (
                r#"title pr or userType eq "Intern""#,
                or(pr("title"), eq("userType", "Intern")),
            ),
            (
                r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
                eq("schemas", ENTERPRISE),
            ),
            (
                r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
                and(employee(), emails_or()),
            ),
            (
                r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
                and(
                    cmp("userType", CompareOp::Ne, s("Employee")),
                    not(emails_or()),
                ),
            ),
            (
                r#"userType eq "Employee" and (emails.type eq "work")"#,
                and(employee(), eq("emails.type", "work")),
            ),
            (
                r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
                and(
                    employee(),
                    vp(
                        "emails",
                        and(eq("type", "work"), co("value", "@example.com")),
                    ),
                ),
            ),
            (
                r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
                or(
                    vp(
                        "emails",
                        and(eq("type", "work"), co("value", "@example.com")),
                    ),
                    vp("ims", and(eq("type", "xmpp"), co("value", "@foo.com"))),
                ),
            ),
        ]);
    }

    #[test]
    fn urn_prefixed_attributes() {
        check_filters(vec![
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
                Filter::Compare {
                    attr: urn_path(ENTERPRISE, "employeeNumber", None),
                    op: CompareOp::Eq,
                    value: s("701984"),
                },
            ),
            (
                "URN:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value pr",
                Filter::Present(urn_path(
                    "URN:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                    "manager",
                    Some("value"),
                )),
            ),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work"]"#,
                Filter::ValuePath {
                    attr: urn_path(CORE_USER, "emails", None),
                    filter: Box::new(eq("type", "work")),
                },
            ),
            (
                r#"members.$ref eq "https://example.com/Users/1""#,
                eq("members.$ref", "https://example.com/Users/1"),
            ),
        ]);
    }

    #[test]
    fn value_paths() {
        check_filters(vec![
            (
                r#"userName eq "a" or emails[type eq "work"]"#,
                or(eq("userName", "a"), vp("emails", eq("type", "work"))),
            ),
            (
                r#"emails[not (type eq "work") or (primary eq true and value pr)]"#,
                vp(
                    "emails",
                    or(
                        not(eq("type", "work")),
                        and(
                            cmp("primary", CompareOp::Eq, CompValue::Bool(true)),
                            pr("value"),
                        ),
                    ),
                ),
            ),
            (
                r#"emails [ type eq "work" ]"#,
                vp("emails", eq("type", "work")),
            ),
            (
                r#"not (emails[type eq "work"])"#,
                not(vp("emails", eq("type", "work"))),
            ),
        ]);
    }

    #[test]
    fn filter_errors() {
        let deep = format!(
            "{}a pr{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        let deep_not = format!("{}a pr{}", "not (".repeat(40), ")".repeat(40));
        let deep_brackets = format!(
            "emails[{}a pr{}]",
            "(".repeat(MAX_DEPTH),
            ")".repeat(MAX_DEPTH)
        );
        let huge = format!("a eq \"{}\"", "x".repeat(MAX_INPUT_LEN));
        let cases: &[(&str, &str)] = &[
            ("", "empty filter"),
            ("   \t ", "empty filter"),
            (
                r#"userName xx "a""#,
                "expected a comparison operator after \"userName\" at offset 9",
            ),
            (
                "userName",
                "expected a comparison operator after \"userName\" at offset 8",
            ),
            ("userName eq", "\"eq\" needs a value at offset 11"),
            ("a gt", "\"gt\" needs a value"),
            ("a gt )", "\"gt\" needs a value at offset 5, found \")\""),
            ("a eq bob", "\"bob\" is not a JSON string"),
            ("a eq 01", "invalid number"),
            ("a eq 1.", "invalid number"),
            ("a eq -", "invalid number"),
            ("a eq 1e999", "invalid number"),
            ("a eq +1", "is not a JSON"),
            ("a eq NaN", "is not a JSON"),
            (r#"title pr "x""#, "\"pr\" takes no value"),
            ("title pr 1", "\"pr\" takes no value"),
            (r#"a eq "abc"#, "unterminated string starting at offset 5"),
            (r#"a eq "abc\""#, "unterminated string"),
            (r#"a eq "\x""#, "invalid string at offset 5"),
            (r#"a eq "\ud800""#, "invalid string"),
            ("a eq \"tab\there\"", "invalid string"),
            (r#"a eq"x""#, "missing space before string at offset 4"),
            (
                r#"a eq "x"and b pr"#,
                "missing space after string at offset 8",
            ),
            (
                "(a pr",
                "unbalanced parenthesis: \"(\" at offset 0 is never closed",
            ),
            (
                "a pr)",
                "unbalanced parenthesis: \")\" at offset 4 has no matching",
            ),
            ("((a pr)", "unbalanced parenthesis"),
            (
                "()",
                "expected an attribute path, \"not\" or \"(\" at offset 1",
            ),
            (
                "(a pr b pr)",
                "expected \"and\", \"or\" or \")\" at offset 6",
            ),
            ("a pr b pr", "trailing input at offset 5"),
            (r#"a eq "x" "y""#, "trailing input at offset 9"),
            (
                "a pr and",
                "expected an attribute path, \"not\" or \"(\" at offset 8, found end",
            ),
            ("a pr or", "found end of input"),
            ("and", "expected a comparison operator after \"and\""),
            (
                r#""bjensen""#,
                "expected an attribute path, \"not\" or \"(\" at offset 0, found a string",
            ),
            ("42", "invalid attribute path \"42\" at offset 0"),
            ("not a pr", "expected \"(\" after \"not\" at offset 4"),
            ("not", "expected \"(\" after \"not\" at offset 3"),
            ("a.b.c pr", "invalid attribute path \"a.b.c\""),
            ("a..b pr", "invalid attribute path"),
            ("9a pr", "invalid attribute path"),
            ("a_b-c.d pr x", "trailing input at offset 11"),
            ("é pr", "invalid attribute path \"é\" at offset 0"),
            ("urn:pr pr", "malformed schema URI"),
            (
                "(a pr and",
                "unbalanced parenthesis: \"(\" at offset 0 is never closed",
            ),
            (
                "emails[a pr or",
                "unterminated value filter: \"[\" at offset 6",
            ),
            ("urn:a::b pr", "malformed schema URI"),
            ("urn:a:b: pr", "invalid attribute path"),
            (
                "emails[type eq \"work\"",
                "unterminated value filter: \"[\" at offset 6",
            ),
            (
                "emails[]",
                "expected an attribute path, \"not\" or \"(\" at offset 7, found \"]\"",
            ),
            ("a pr]", "unbalanced bracket: \"]\" at offset 4"),
            (
                "emails[type eq \"work\")",
                "expected \"and\", \"or\" or \"]\"",
            ),
            (
                "emails[x[y pr]]",
                "nested \"[\" at offset 8 inside a value filter",
            ),
            ("emails[[y pr]]", "nested \"[\" at offset 7"),
            ("emails[a pr and (x[y pr])]", "nested \"[\""),
            (
                "emails[emails.type pr]",
                "expected a sub-attribute name inside \"[ ]\" at offset 7",
            ),
            ("emails[urn:x:y:type pr]", "expected a sub-attribute name"),
            (
                "emails.value[type pr]",
                "must follow an attribute, not the sub-attribute",
            ),
            ("a pr [", "trailing input"),
            (&deep, "nesting deeper than 32 levels at offset 32"),
            (&deep_not, "nesting deeper than 32 levels"),
            (&deep_brackets, "nesting deeper than 32 levels"),
            (&huge, "at most 4096 are accepted"),
        ];
        check_errors(cases, filter_unit);
    }

    #[test]
    fn limits_are_inclusive() {
        let deep = format!("{}a pr{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(parse_filter(&deep), Ok(pr("a")));
        let long = format!("a eq \"{}\"", "x".repeat(MAX_INPUT_LEN - 7));
        assert_eq!(long.len(), MAX_INPUT_LEN);
        assert!(parse_filter(&long).is_ok());
        // Chains of up to MAX_OPERATORS `and`/`or`, mixed, parse; one more does not.
        let terms = vec!["a pr"; MAX_OPERATORS + 1];
        let mixed = |terms: &[&str]| {
            let mut text = terms[0].to_string();
            for (i, term) in terms[1..].iter().enumerate() {
                text.push_str(if i % 2 == 0 { " and " } else { " or " });
                text.push_str(term);
            }
            text
        };
        assert!(parse_filter(&mixed(&terms)).is_ok());
        let too_many = mixed(&vec!["a pr"; MAX_OPERATORS + 2]);
        let message = parse_filter(&too_many).unwrap_err().message;
        assert!(message.contains("more than 64"), "{message}");
    }

    #[test]
    fn error_messages_quote_long_input_briefly() {
        let name = "a".repeat(200);
        let message = parse_filter(&name).unwrap_err().message;
        assert!(message.len() < 150, "{message}");
        assert!(message.contains('…'), "{message}");
    }

    // --- PATCH paths ----------------------------------------------------------------------

    #[test]
    fn patch_paths() {
        let plain = |attr: AttrPath| PatchPath {
            attr,
            filter: None,
            sub: None,
        };
        let cases = vec![
            ("members", plain(path("members"))),
            ("name.familyName", plain(path("name.familyName"))),
            (" members.$ref ", plain(path("members.$ref"))),
            (
                r#"members[value eq "2819c223"]"#,
                PatchPath {
                    attr: path("members"),
                    filter: Some(eq("value", "2819c223")),
                    sub: None,
                },
            ),
            (
                r#"emails[type eq "work"].value"#,
                PatchPath {
                    attr: path("emails"),
                    filter: Some(eq("type", "work")),
                    sub: Some("value".into()),
                },
            ),
            (
                r#"addresses[type eq "work"].streetAddress"#,
                PatchPath {
                    attr: path("addresses"),
                    filter: Some(eq("type", "work")),
                    sub: Some("streetAddress".into()),
                },
            ),
            (
                r#"emails[type eq "work" and not (primary eq false)]"#,
                PatchPath {
                    attr: path("emails"),
                    filter: Some(and(
                        eq("type", "work"),
                        not(cmp("primary", CompareOp::Eq, CompValue::Bool(false))),
                    )),
                    sub: None,
                },
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                plain(urn_path(ENTERPRISE, "manager", None)),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                plain(urn_path(ENTERPRISE, "manager", Some("value"))),
            ),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work"].display"#,
                PatchPath {
                    attr: urn_path(CORE_USER, "emails", None),
                    filter: Some(eq("type", "work")),
                    sub: Some("display".into()),
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_path(input), Ok(want), "input: {input}");
        }
    }

    #[test]
    fn patch_path_errors() {
        let cases: &[(&str, &str)] = &[
            ("", "empty path"),
            ("  ", "empty path"),
            ("members[", "unterminated value filter"),
            (r#"members[value eq "x""#, "unterminated value filter"),
            (
                r#"members[value eq "x"]junk"#,
                "trailing input at offset 21",
            ),
            (
                r#"members[value eq "x"] .value"#,
                "unexpected space before \".value\"",
            ),
            (
                r#"members[value eq "x"].value.x"#,
                "invalid sub-attribute \".value.x\"",
            ),
            (r#"members[value eq "x"]."#, "invalid sub-attribute"),
            (".value", "invalid attribute path \".value\" at offset 0"),
            ("members junk", "trailing input at offset 8"),
            ("members]", "unbalanced bracket"),
            ("members pr", "trailing input"),
            (
                r#""members""#,
                "expected an attribute path at offset 0, found a string",
            ),
            (
                "[type pr]",
                "expected an attribute path at offset 0, found \"[\"",
            ),
            ("name.familyName[type pr]", "not the sub-attribute"),
            ("members[x[y pr]]", "nested \"[\""),
            ("members[]", "expected an attribute path"),
        ];
        check_errors(cases, path_unit);
    }

    // --- properties -----------------------------------------------------------------------

    /// Prints a filter, parenthesising every `and`, `or` and `not` operand.
    fn print(filter: &Filter<AttrPath>) -> String {
        match filter {
            Filter::Compare { attr, op, value } => {
                format!(
                    "{} {} {}",
                    print_path(attr),
                    op.as_str(),
                    print_value(value)
                )
            }
            Filter::Present(attr) => format!("{} pr", print_path(attr)),
            Filter::And(l, r) => format!("({}) and ({})", print(l), print(r)),
            Filter::Or(l, r) => format!("({}) or ({})", print(l), print(r)),
            Filter::Not(inner) => format!("not ({})", print(inner)),
            Filter::ValuePath { attr, filter } => {
                format!("{}[{}]", print_path(attr), print(filter))
            }
        }
    }

    fn print_path(attr: &AttrPath) -> String {
        let mut out = String::new();
        if let Some(schema) = &attr.schema {
            out.push_str(schema);
            out.push(':');
        }
        out.push_str(&attr.attr);
        if let Some(sub) = &attr.sub {
            out.push('.');
            out.push_str(sub);
        }
        out
    }

    fn print_value(value: &CompValue) -> String {
        match value {
            CompValue::Null => "null".into(),
            CompValue::Bool(b) => b.to_string(),
            CompValue::Number(n) => n.to_string(),
            CompValue::String(s) => serde_json::to_string(s).unwrap(),
        }
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => "[a-zA-Z][a-zA-Z0-9_-]{0,6}",
            1 => Just("$ref".to_owned()),
            1 => prop::sample::select(vec!["not", "and", "or", "pr", "eq", "true", "null"])
                .prop_map(str::to_owned),
        ]
    }

    fn schema() -> impl Strategy<Value = Option<String>> {
        prop::option::weighted(
            0.2,
            prop_oneof![
                Just(ENTERPRISE.to_owned()),
                Just(CORE_USER.to_owned()),
                "urn:[a-z]{1,4}(:[a-zA-Z0-9.-]{1,4}){0,3}",
            ],
        )
    }

    fn attr_path_strategy() -> impl Strategy<Value = AttrPath> {
        (schema(), name(), prop::option::of(name())).prop_map(|(schema, attr, sub)| AttrPath {
            schema,
            attr,
            sub,
        })
    }

    fn sub_attr_strategy() -> impl Strategy<Value = AttrPath> {
        name().prop_map(|attr| AttrPath {
            schema: None,
            attr,
            sub: None,
        })
    }

    fn value_strategy() -> impl Strategy<Value = CompValue> {
        prop_oneof![
            Just(CompValue::Null),
            any::<bool>().prop_map(CompValue::Bool),
            any::<i64>().prop_map(|i| CompValue::Number(i.into())),
            any::<u64>().prop_map(|u| CompValue::Number(u.into())),
            // Decimals whose shortest form parses back exactly with serde_json's default parser.
            (any::<i32>(), 0..6u32).prop_map(|(m, k)| {
                let f = f64::from(m) / 10f64.powi(k as i32);
                CompValue::Number(Number::from_f64(f).unwrap())
            }),
            "[^\\x00]*".prop_map(CompValue::String),
        ]
    }

    fn op_strategy() -> impl Strategy<Value = CompareOp> {
        use CompareOp::*;
        prop::sample::select(vec![Eq, Ne, Co, Sw, Ew, Gt, Ge, Lt, Le])
    }

    fn tree(
        leaf: BoxedStrategy<Filter<AttrPath>>,
        depth: u32,
    ) -> impl Strategy<Value = Filter<AttrPath>> {
        leaf.prop_recursive(depth, 24, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone())
                    .prop_map(|(l, r)| Filter::And(Box::new(l), Box::new(r))),
                (inner.clone(), inner.clone())
                    .prop_map(|(l, r)| Filter::Or(Box::new(l), Box::new(r))),
                inner.prop_map(|f| Filter::Not(Box::new(f))),
            ]
        })
    }

    fn leaf(attr: BoxedStrategy<AttrPath>) -> BoxedStrategy<Filter<AttrPath>> {
        prop_oneof![
            attr.clone().prop_map(Filter::Present),
            (attr, op_strategy(), value_strategy()).prop_map(|(attr, op, value)| Filter::Compare {
                attr,
                op,
                value
            }),
        ]
        .boxed()
    }

    fn filter_strategy() -> impl Strategy<Value = Filter<AttrPath>> {
        let inner = tree(leaf(sub_attr_strategy().boxed()), 2).boxed();
        let multi_valued = (schema(), name()).prop_map(|(schema, attr)| AttrPath {
            schema,
            attr,
            sub: None,
        });
        let value_path = (multi_valued, inner).prop_map(|(attr, filter)| Filter::ValuePath {
            attr,
            filter: Box::new(filter),
        });
        let outer_leaf = prop_oneof![3 => leaf(attr_path_strategy().boxed()), 1 => value_path];
        tree(outer_leaf.boxed(), 4)
    }

    fn token_soup() -> impl Strategy<Value = String> {
        let pieces = vec![
            "(", ")", "[", "]", "\"", "\\", " ", "\t", "and", "or", "not", "pr", "eq", "gt",
            "name", "emails", ".", ".value", "urn:", ":", "1", "-", "1.5e3", "true", "null",
            "\"x\"", "\\u", "d83d", "é", "😀", "$ref",
        ];
        prop::collection::vec(prop::sample::select(pieces), 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn never_panics_on_arbitrary_strings(input in any::<String>()) {
            let _ = parse_filter(&input);
            let _ = parse_path(&input);
        }

        #[test]
        fn never_panics_on_token_soup(input in token_soup()) {
            let _ = parse_filter(&input);
            let _ = parse_path(&input);
        }

        #[test]
        fn printed_filters_parse_back(filter in filter_strategy()) {
            let text = print(&filter);
            prop_assume!(text.len() <= MAX_INPUT_LEN);
            prop_assert_eq!(parse_filter(&text), Ok(filter), "text: {}", text);
        }

        #[test]
        fn printed_patch_paths_parse_back(
            attr in (schema(), name()),
            filter in prop::option::of(tree(leaf(sub_attr_strategy().boxed()), 2)),
            sub in prop::option::of(name()),
        ) {
            let (schema, attr) = attr;
            let want = match filter {
                Some(filter) => PatchPath {
                    attr: AttrPath { schema, attr, sub: None },
                    filter: Some(filter),
                    sub,
                },
                None => PatchPath { attr: AttrPath { schema, attr, sub }, filter: None, sub: None },
            };
            let mut text = print_path(&want.attr);
            if let Some(filter) = &want.filter {
                text = format!("{text}[{}]", print(filter));
            }
            if let (Some(_), Some(sub)) = (&want.filter, &want.sub) {
                text = format!("{text}.{sub}");
            }
            prop_assert_eq!(parse_path(&text), Ok(want), "text: {}", text);
        }
    }
}
