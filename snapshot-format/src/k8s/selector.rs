//! Kubernetes label selectors (`app=web,tier!=db,env in (a,b),legacy notin (x),ready,!old`),
//! parsed as kube-apiserver parses `?labelSelector=` and `kubectl -l` (k8s.io/apimachinery's
//! `labels.Parse`), and matched against an object's labels.
//!
//! The grammar, as in Kubernetes:
//!
//! ```text
//! selector    ::= "" | requirement ("," requirement)*
//! requirement ::= ["!"] KEY
//!               | KEY ("=" | "==" | "!=") VALUE?
//!               | KEY ("in" | "notin") "(" VALUE? ("," VALUE?)* ")"
//!               | KEY (">" | "<") INTEGER
//! ```
//!
//! Whitespace (space, tab, CR, LF) separates tokens and is otherwise ignored, so
//! `a in(b)`, `a = b` and `a  notin ( b , c )` are all valid. Keys are label keys
//! (`[prefix/]name`: a DNS-1123 subdomain prefix of at most 253 characters, a name of at
//! most 63 alphanumerics, `-`, `_` or `.` starting and ending alphanumeric); values are
//! label values (the same as a name, or empty: `a=`, `a in ()` and `a in (b,)` select the
//! empty value). `>` and `<` compare a label's value as a 64-bit integer; a value that is
//! not one does not match. `in`/`=`/`==` and `>`/`<` require the label; `notin`/`!=` match
//! when it is absent. Everything else — empty requirements (`a,,b`, a trailing comma),
//! unbalanced or missing parentheses (`a in b`, `a in (b`), two values without a comma,
//! invalid keys or values — is an error naming what was found and what was expected.
//!
//! Selectors longer than [`MAX_SELECTOR_LEN`] bytes are rejected before parsing.
//!
//! ```
//! use snapshot_format::k8s::selector::LabelSelector;
//! let selector = LabelSelector::parse("app in (web,api),tier!=db,!legacy")?;
//! let pod = serde_json::json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}});
//! assert!(selector.matches(&pod));
//! assert!(LabelSelector::parse("app in web").is_err());
//! # Ok::<(), snapshot_format::k8s::selector::SelectorError>(())
//! ```

use std::collections::BTreeSet;

use serde_json::Value;

/// The longest selector accepted, in bytes.
pub const MAX_SELECTOR_LEN: usize = 4096;

/// How much of a selector longer than [`MAX_SELECTOR_LEN`] an error repeats.
const QUOTED_PREFIX_LEN: usize = 64;

/// A selector that does not parse: the selector and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector {selector:?}: {problem}")]
pub struct SelectorError {
    /// The selector given (its first 64 bytes followed by `…` when it is too long).
    pub selector: String,
    /// What is wrong, in the words of kube-apiserver's parser where it has them (for
    /// example `unable to parse requirement: found 'web', expected: '('`).
    pub problem: String,
}

/// The operator of a requirement (`selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One requirement: a key, an operator and its values (sorted, without duplicates).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    fn matches(&self, label: Option<&str>) -> bool {
        let has = |value: &str| self.values.iter().any(|v| v == value);
        match self.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In => label.is_some_and(has),
            Operator::NotEquals | Operator::NotIn => !label.is_some_and(has),
            Operator::Exists => label.is_some(),
            Operator::DoesNotExist => label.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(Ok(actual)), [bound]) =
                    (label.map(str::parse::<i64>), self.values.as_slice())
                else {
                    return false;
                };
                let Ok(bound) = bound.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > bound
                } else {
                    actual < bound
                }
            }
        }
    }
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses a selector as kube-apiserver does (see the [module
    /// documentation](crate::k8s::selector)).
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        if text.len() > MAX_SELECTOR_LEN {
            let mut end = QUOTED_PREFIX_LEN;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            return Err(SelectorError {
                selector: format!("{}…", &text[..end]),
                problem: format!(
                    "{} bytes long, more than the {MAX_SELECTOR_LEN} allowed",
                    text.len()
                ),
            });
        }
        let mut parser = Parser {
            tokens: lex(text),
            position: 0,
        };
        match parser.parse() {
            Ok(requirements) => Ok(LabelSelector { requirements }),
            Err(problem) => Err(SelectorError {
                selector: text.to_string(),
                problem,
            }),
        }
    }

    /// Whether the selector has no requirement (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `object`'s labels (`metadata.labels`) match. A label whose value is not a
    /// string counts as absent, as do all labels when `metadata.labels` is not an object.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object);
        self.requirements.iter().all(|requirement| {
            requirement.matches(
                labels
                    .and_then(|labels| labels.get(&requirement.key))
                    .and_then(Value::as_str),
            )
        })
    }
}

/// A token of the selector language (the lexer of `labels.Parse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    End,
    Identifier,
    In,
    NotIn,
    Bang,
    Equals,
    DoubleEquals,
    NotEquals,
    GreaterThan,
    LessThan,
    OpenPar,
    ClosedPar,
    Comma,
}

fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(byte: u8) -> bool {
    matches!(byte, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits `text` into tokens with their text; the last is [`Token::End`]. An identifier
/// runs up to whitespace or a special character; of the special characters, `!=` and `==`
/// are one token, any other is a token by itself.
fn lex(text: &str) -> Vec<(Token, &str)> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut position = 0;
    loop {
        while position < bytes.len() && is_whitespace(bytes[position]) {
            position += 1;
        }
        let start = position;
        let Some(&first) = bytes.get(position) else {
            tokens.push((Token::End, ""));
            return tokens;
        };
        let token = if is_special(first) {
            let pair = bytes.get(position + 1) == Some(&b'=') && matches!(first, b'!' | b'=');
            position += if pair { 2 } else { 1 };
            match (first, pair) {
                (b'!', true) => Token::NotEquals,
                (b'=', true) => Token::DoubleEquals,
                (b'!', _) => Token::Bang,
                (b'=', _) => Token::Equals,
                (b'>', _) => Token::GreaterThan,
                (b'<', _) => Token::LessThan,
                (b'(', _) => Token::OpenPar,
                (b')', _) => Token::ClosedPar,
                _ => Token::Comma,
            }
        } else {
            while position < bytes.len()
                && !is_special(bytes[position])
                && !is_whitespace(bytes[position])
            {
                position += 1;
            }
            match &text[start..position] {
                "in" => Token::In,
                "notin" => Token::NotIn,
                _ => Token::Identifier,
            }
        };
        tokens.push((token, &text[start..position]));
    }
}

/// Where the parser is. `in` and `notin` are operators after a key and identifiers
/// everywhere else (`in=notin` and `a in (in)` are valid).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

/// The recursive descent of `labels.Parse`, over the tokens of [`lex`].
struct Parser<'a> {
    tokens: Vec<(Token, &'a str)>,
    position: usize,
}

/// How an error names the token it found.
fn found(literal: &str, token: Token) -> String {
    if token == Token::End {
        "end of string".to_string()
    } else {
        format!("'{literal}'")
    }
}

impl<'a> Parser<'a> {
    fn lookahead(&self, context: Context) -> (Token, &'a str) {
        let (token, literal) = self
            .tokens
            .get(self.position)
            .copied()
            .unwrap_or((Token::End, ""));
        match token {
            Token::In | Token::NotIn if context == Context::Values => (Token::Identifier, literal),
            _ => (token, literal),
        }
    }

    fn consume(&mut self, context: Context) -> (Token, &'a str) {
        let next = self.lookahead(context);
        self.position += 1;
        next
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::Bang => {
                    let requirement = self
                        .requirement()
                        .map_err(|problem| format!("unable to parse requirement: {problem}"))?;
                    requirements.push(requirement);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::End => return Ok(requirements),
                        Token::Comma => {
                            let (next, literal) = self.lookahead(Context::Values);
                            if !matches!(next, Token::Identifier | Token::Bang) {
                                return Err(format!(
                                    "found {}, expected: identifier after ','",
                                    found(literal, next)
                                ));
                            }
                        }
                        _ => {
                            return Err(format!(
                                "found {}, expected: ',' or end of string",
                                found(literal, token)
                            ));
                        }
                    }
                }
                Token::End => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found {}, expected: !, identifier, or end of string",
                        found(literal, token)
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let (mut token, mut key) = self.consume(Context::Values);
        let negated = token == Token::Bang;
        if negated {
            (token, key) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found {}, expected: identifier", found(key, token)));
        }
        validate_key(key)?;
        let (next, _) = self.lookahead(Context::Values);
        if negated || matches!(next, Token::End | Token::Comma) {
            let operator = if negated {
                Operator::DoesNotExist
            } else {
                Operator::Exists
            };
            return Ok(Requirement {
                key: key.to_string(),
                operator,
                values: Vec::new(),
            });
        }
        let (token, literal) = self.consume(Context::KeyAndOperator);
        let operator = match token {
            Token::In => Operator::In,
            Token::NotIn => Operator::NotIn,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::NotEquals => Operator::NotEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            _ => {
                return Err(format!(
                    "found {}, expected: in, notin, =, ==, !=, gt, lt",
                    found(literal, token)
                ));
            }
        };
        let values = if matches!(operator, Operator::In | Operator::NotIn) {
            self.set()?
        } else {
            BTreeSet::from([self.exact_value()?])
        };
        for value in &values {
            validate_value(key, value)?;
        }
        if matches!(operator, Operator::GreaterThan | Operator::LessThan) {
            for value in &values {
                if value.parse::<i64>().is_err() {
                    return Err(format!(
                        "invalid value {value:?} for label {key:?}: for 'Gt', 'Lt' operators, \
                         the value must be an integer"
                    ));
                }
            }
        }
        Ok(Requirement {
            key: key.to_string(),
            operator,
            values: values.into_iter().map(str::to_string).collect(),
        })
    }

    /// `( VALUE? ("," VALUE?)* )`; an omitted value is the empty value.
    fn set(&mut self) -> Result<BTreeSet<&'a str>, String> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(format!("found {}, expected: '('", found(literal, token)));
        }
        let mut values = BTreeSet::new();
        let mut expect_value = true;
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier if expect_value => {
                    values.insert(literal);
                    expect_value = false;
                }
                Token::Comma => {
                    if expect_value {
                        values.insert("");
                    }
                    expect_value = true;
                }
                Token::ClosedPar => {
                    if expect_value {
                        values.insert("");
                    }
                    return Ok(values);
                }
                _ if expect_value => {
                    return Err(format!(
                        "found {}, expected: ',', ')' or identifier",
                        found(literal, token)
                    ));
                }
                _ => {
                    return Err(format!(
                        "found {}, expected: ',' or ')'",
                        found(literal, token)
                    ));
                }
            }
        }
    }

    /// The value after `=`, `==`, `!=`, `>` or `<`; empty when none follows.
    fn exact_value(&mut self) -> Result<&'a str, String> {
        let (token, _) = self.lookahead(Context::Values);
        if matches!(token, Token::End | Token::Comma) {
            return Ok("");
        }
        match self.consume(Context::Values) {
            (Token::Identifier, literal) => Ok(literal),
            (token, literal) => Err(format!(
                "found {}, expected: identifier",
                found(literal, token)
            )),
        }
    }
}

/// Why a label name (or the name part of a key) is invalid, if it is: at most 63
/// characters, alphanumerics, `-`, `_` and `.`, alphanumeric at both ends.
fn name_problems(name: &str, max: usize, problems: &mut Vec<String>, what: &str) {
    if name.len() > max {
        problems.push(format!("{what} must be no more than {max} characters"));
    }
    let bytes = name.as_bytes();
    let inner_ok = bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let ends_ok = bytes.first().is_none_or(u8::is_ascii_alphanumeric)
        && bytes.last().is_none_or(u8::is_ascii_alphanumeric);
    if !(inner_ok && ends_ok) {
        problems.push(format!(
            "{what} must consist of alphanumeric characters, '-', '_' or '.', and must start \
             and end with an alphanumeric character"
        ));
    }
}

/// Dot-separated non-empty parts of lowercase alphanumerics and `-`, alphanumeric at
/// both ends: the characters of a lowercase RFC 1123 subdomain.
fn is_dns_subdomain_text(text: &str) -> bool {
    text.split('.').all(|part| {
        let bytes = part.as_bytes();
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        bytes.first().is_some_and(alnum)
            && bytes.last().is_some_and(alnum)
            && bytes.iter().all(|b| alnum(b) || *b == b'-')
    })
}

/// A label key (`IsQualifiedName`): `[prefix/]name`.
fn validate_key(key: &str) -> Result<(), String> {
    let mut problems = Vec::new();
    let name = match key.split_once('/') {
        Some((_, name)) if name.contains('/') => {
            return Err(format!(
                "invalid label key {key:?}: a qualified name must be a name of alphanumeric \
                 characters, '-', '_' or '.' with an optional DNS subdomain prefix and '/' \
                 (e.g. 'example.com/MyName')"
            ));
        }
        Some((prefix, name)) => {
            if prefix.is_empty() {
                problems.push("prefix part must be non-empty".to_string());
            } else {
                if prefix.len() > 253 {
                    problems.push("prefix part must be no more than 253 characters".to_string());
                }
                if !is_dns_subdomain_text(prefix) {
                    problems.push(
                        "prefix part a lowercase RFC 1123 subdomain must consist of lower case \
                         alphanumeric characters, '-' or '.', and must start and end with an \
                         alphanumeric character"
                            .to_string(),
                    );
                }
            }
            name
        }
        None => key,
    };
    if name.is_empty() {
        problems.push("name part must be non-empty".to_string());
    } else {
        name_problems(name, 63, &mut problems, "name part");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "invalid label key {key:?}: {}",
            problems.join("; ")
        ))
    }
}

/// A label value (`IsValidLabelValue`): empty, or a name of at most 63 characters.
fn validate_value(key: &str, value: &str) -> Result<(), String> {
    let mut problems = Vec::new();
    name_problems(value, 63, &mut problems, "a label value");
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "invalid value {value:?} for label {key:?}: {}",
            problems.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn problem(selector: &str) -> String {
        match LabelSelector::parse(selector) {
            Ok(parsed) => panic!("{selector:?} parsed as {parsed:?}"),
            Err(error) => {
                assert_eq!(error.selector, selector);
                error.problem
            }
        }
    }

    fn matches(selector: &str, labels: Value) -> bool {
        let parsed = LabelSelector::parse(selector)
            .unwrap_or_else(|error| panic!("{selector:?} does not parse: {error}"));
        parsed.matches(&json!({"metadata": {"labels": labels}}))
    }

    /// The cases of the three selectors this one replaces (etcd-tools' objects,
    /// resource-backup's restore options, testenv's API server).
    #[test]
    fn kubectl_selectors() {
        let labels = json!({"app": "web", "tier": "frontend"});
        for (selector, expected) in [
            ("app=web", true),
            ("app==web,tier=frontend", true),
            ("app==web,tier", true),
            ("app!=web", false),
            ("app in (db, web)", true),
            ("app in (web, api)", true),
            ("tier in (frontend, backend)", true),
            ("app notin (web)", false),
            ("tier notin (frontend)", false),
            ("env in (prod)", false),
            ("tier", true),
            ("app", true),
            ("legacy", false),
            ("!tier", false),
            ("!app", false),
            ("!legacy", true),
            ("", true),
        ] {
            assert_eq!(matches(selector, labels.clone()), expected, "{selector}");
        }
        for bad in [
            "app=(",
            "a b c",
            "a b",
            "a b=c",
            "app in web",
            "a in (b",
            &"x".repeat(10_000),
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }

    /// k8s.io/apimachinery's `TestSelectorParse` and `TestSetSelectorParser`.
    #[test]
    fn syntax_as_kubernetes_parses_it() {
        for good in [
            "x=a,y=b,z=c",
            "",
            " ",
            "x!=a,y=b",
            "x=",
            "x= ",
            "x=,z= ",
            "x= ,z= ",
            "!x",
            "x>1",
            "x>1,z<5",
            "\rx",
            "this-is-a-dns.domain.com/key-with-dash",
            "this-is-another-dns.domain.com/key-with-dash in (so,what)",
            "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
            "foo  in\t (abc)",
            "x notin\n (abc)",
            "x  notin\t\t\t(abc,def)",
            "x in (abc,def)",
            "x in (abc,)",
            "x in ()",
            "x notin (abc,def),bar,z in (),w",
            "x,y in (a)",
            "x notin ( )",
            "x notin (, a)",
            "a ",
            "a in (x,y,notin, z,in)",
            "notin=in",
            "a in(b)",
            "a = b",
            "x in (foo,,baz),y,z notin ()",
            "1foo in (bar)",
            "1234 in (bar)",
        ] {
            if let Err(error) = LabelSelector::parse(good) {
                panic!("{good:?}: {error}");
            }
        }
        for bad in [
            "x=a||y=b",
            "x==a==b",
            "!x=a",
            "x<a",
            "x>",
            "x,,y",
            ",x,y",
            "x,",
            "x nott in (y)",
            "a in (xyz),",
            "a in (xyz)b notin ()",
            "a in (xyz abc)",
            "a notin(",
            "a (",
            "(",
            "!",
            "!!x",
            "x in",
            "x in (a))",
            "x=a=b",
            "x=(a)",
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// Keys are qualified names, values label values, as `NewRequirement` checks them.
    #[test]
    fn keys_and_values_are_validated() {
        for good in [
            "example.com/app=web",
            "app.kubernetes.io/name",
            "a_b.c-d=E_f.G-h",
            &format!("{}=v", "k".repeat(63)),
            &format!("k={}", "v".repeat(63)),
            &format!("{}/k", "p".repeat(253)),
        ] {
            assert!(LabelSelector::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "-app=web",
            "app-=web",
            "a~b",
            "Example.com/app",
            "/app",
            "example.com/",
            "a/b/c",
            "ex_ample.com/app",
            "a=-b",
            "a=b-",
            "a=b~c",
            "a in (b, -c)",
            "a\0b",
            "é=x",
            &format!("{}=v", "k".repeat(64)),
            &format!("k={}", "v".repeat(64)),
            &format!("{}/k", "p".repeat(254)),
            &"a".repeat(254),
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }

    /// k8s.io/apimachinery's `TestSelectorMatches` and `TestRequirementSelectorMatching`.
    #[test]
    fn matching_as_kubernetes_matches() {
        assert!(matches("", json!({"x": "y"})));
        assert!(matches("x=y", json!({"x": "y"})));
        assert!(matches("x=y,z=w", json!({"x": "y", "z": "w"})));
        assert!(matches("x!=y,z!=w", json!({"x": "z", "z": "a"})));
        assert!(matches("notin=in", json!({"notin": "in"})));
        assert!(matches("x", json!({"x": "z"})));
        assert!(matches("!x", json!({"y": "z"})));
        assert!(matches("x>1", json!({"x": "2"})));
        assert!(matches("x<1", json!({"x": "0"})));
        assert!(!matches("x=z", json!({})));
        assert!(!matches("x=y", json!({"x": "z"})));
        assert!(!matches("x=y,z=w", json!({"x": "w", "z": "w"})));
        assert!(!matches("x!=y,z!=w", json!({"x": "z", "z": "w"})));
        assert!(!matches("x", json!({"y": "z"})));
        assert!(!matches("!x", json!({"x": "z"})));
        assert!(!matches("x>1", json!({"x": "0"})));
        assert!(!matches("x<1", json!({"x": "2"})));
        assert!(!matches("z>1", json!({"z": "v2"})));
        assert!(!matches("z>1", json!({})));
        assert!(matches(
            "x in (foo),y notin (alpha)",
            json!({"x": "foo", "y": "baz"})
        ));
        assert!(!matches(
            "x in (foo),y in (alpha)",
            json!({"x": "foo", "y": "baz"})
        ));
        // `in ()` is the empty value.
        assert!(matches("x notin (),y", json!({"y": ""})));
        assert!(!matches("x notin (),!y", json!({"y": ""})));
        assert!(!matches("x in ()", json!({"y": "baz"})));
        assert!(matches("x in ()", json!({"x": ""})));
        assert!(matches("x=", json!({"x": ""})));
        assert!(matches("x in (a,,b)", json!({"x": ""})));
        // A label that is not a string is absent.
        assert!(matches("!x", json!({"x": 1})));
        // No labels at all.
        let none = LabelSelector::parse("!x,y notin (a)").expect("parses");
        assert!(none.matches(&json!({"metadata": {}})));
        assert!(none.matches(&json!({})));
        assert!(none.matches(&json!({"metadata": {"labels": "not a map"}})));
        assert!(
            !LabelSelector::parse("x")
                .expect("parses")
                .matches(&json!({}))
        );
    }

    #[test]
    fn problems_say_what_was_found_and_expected() {
        assert_eq!(
            problem("app in web"),
            "unable to parse requirement: found 'web', expected: '('"
        );
        assert_eq!(
            problem("a in (b"),
            "unable to parse requirement: found end of string, expected: ',' or ')'"
        );
        assert_eq!(
            problem("a b"),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(problem("a,,b"), "found ',', expected: identifier after ','");
        assert_eq!(
            problem("a,"),
            "found end of string, expected: identifier after ','"
        );
        assert_eq!(
            problem("x=a=b"),
            "found '=', expected: ',' or end of string"
        );
        assert_eq!(
            problem(")"),
            "found ')', expected: !, identifier, or end of string"
        );
        assert_eq!(
            problem("x>a"),
            "unable to parse requirement: invalid value \"a\" for label \"x\": for 'Gt', 'Lt' \
             operators, the value must be an integer"
        );
        assert!(problem("a~b").starts_with(
            "unable to parse requirement: invalid label key \"a~b\": name part must consist of"
        ));
        assert!(problem("a=b~").contains("invalid value \"b~\" for label \"a\""));
        let error = LabelSelector::parse(&"é".repeat(3000)).expect_err("too long");
        assert_eq!(error.problem, "6000 bytes long, more than the 4096 allowed");
        assert_eq!(error.selector, format!("{}…", "é".repeat(32)));
        assert_eq!(
            LabelSelector::parse("a b").expect_err("bad").to_string(),
            "invalid label selector \"a b\": unable to parse requirement: found 'b', \
             expected: in, notin, =, ==, !=, gt, lt"
        );
    }
}
