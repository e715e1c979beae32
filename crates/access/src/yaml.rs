//! `pairings.yaml`: the operator's file of initial pairings, read and written in a small,
//! stated subset of YAML.
//!
//! Why not a YAML crate: `serde_yaml` is unmaintained, and the file has one fixed shape; a
//! general YAML parser (anchors, tags, multi-documents, implicit typing such as `no` being
//! false) would accept far more than this file may say, and what it silently accepts is what
//! decides who may use the archive. This parser accepts exactly:
//!
//! ```yaml
//! # comments: whole lines, or after a space
//! pairings:
//!   - key: alice+5e6f7a8b+AU5...=       # a verifier key string (Ed25519)
//!     type: ADMIN                         # ADMIN, INPUT, USER or INTERFACE (or lowercase)
//!     tenants: [corporate, personnel]     # a flow list, or "*" for every tenant
//!   - key: bob+01234567+AX...=
//!     type: USER
//!     tenants:                            # or a block list
//!       - corporate
//! ```
//!
//! `pairings: []` is an empty set. Indentation is spaces only (tabs are refused, as YAML
//! does); each item's keys are `key`, `type` and `tenants`, each exactly once, in any order;
//! scalars are plain or in double quotes without escapes. Anything else is an error naming
//! its line. [`to_yaml`] writes the canonical form (`totebox pair add/remove` rewrite the
//! file with it: comments are not kept, which the header it writes says).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::pairing::{Pairing, PairingSet, PairingType, Tenants};
use crate::text;

/// A `pairings.yaml` error: its line (from 1) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// The line.
    pub line: usize,
    /// What is wrong there.
    pub what: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.what)
    }
}

fn err<T>(line: usize, what: impl Into<String>) -> Result<T, YamlError> {
    Err(YamlError {
        line,
        what: what.into(),
    })
}

/// One meaningful line: number, indent, content without comment or trailing space.
struct Line<'a> {
    no: usize,
    indent: usize,
    text: &'a str,
}

fn strip_comment(s: &str) -> &str {
    let mut in_quotes = false;
    let mut prev_space = true;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            '#' if !in_quotes && prev_space => return &s[..i],
            _ => {}
        }
        prev_space = c == ' ';
    }
    s
}

/// A scalar: plain, or `"..."` with no `"` or `\` inside.
fn scalar(s: &str, no: usize) -> Result<String, YamlError> {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('"') {
        let Some(inner) = inner.strip_suffix('"') else {
            return err(no, "unterminated double-quoted value");
        };
        if inner.contains(['"', '\\']) {
            return err(no, "escapes in quoted values are not supported");
        }
        return Ok(inner.to_string());
    }
    if s.is_empty() {
        return err(no, "empty value");
    }
    if s.starts_with(['&', '*', '!', '|', '>', '\'', '{', '[', '%', '@', '`']) {
        return err(
            no,
            alloc::format!("unsupported YAML syntax {s:?} (quote it with \"...\" if meant)"),
        );
    }
    Ok(s.to_string())
}

fn flow_list(s: &str, no: usize) -> Result<Vec<String>, YamlError> {
    let inner = s
        .trim()
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or(YamlError {
            line: no,
            what: "a list must be [a, b] on one line".into(),
        })?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner.split(',').map(|v| scalar(v, no)).collect()
}

/// Parses `pairings.yaml`. The set has public metadata off (that is `PUBLIC_METADATA`, a
/// provisioning option, not a pairing).
pub fn parse(src: &str) -> Result<PairingSet, YamlError> {
    let mut lines = Vec::new();
    for (i, raw) in src.split('\n').enumerate() {
        let no = i + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.contains('\t') {
            return err(no, "tab character (indent with spaces)");
        }
        let body = strip_comment(raw).trim_end();
        if body.trim().is_empty() {
            continue;
        }
        let indent = body.len() - body.trim_start().len();
        lines.push(Line {
            no,
            indent,
            text: body.trim_start(),
        });
    }
    let mut it = lines.into_iter().peekable();
    let Some(first) = it.next() else {
        return err(1, "empty file: expected `pairings:`");
    };
    if first.indent != 0 {
        return err(first.no, "`pairings:` must start at column 1");
    }
    let mut set = PairingSet::new();
    match first.text.strip_prefix("pairings:").map(str::trim) {
        Some("") => {}
        Some("[]") => {
            if let Some(l) = it.next() {
                return err(l.no, "nothing may follow `pairings: []`");
            }
            return Ok(set);
        }
        _ => return err(first.no, "expected `pairings:` (the only top-level key)"),
    }
    let mut item_indent = None;
    while let Some(l) = it.next() {
        let Some(rest) = l.text.strip_prefix("- ").or((l.text == "-").then_some("")) else {
            return err(l.no, "expected a list item `- key: ...`");
        };
        if l.indent == 0 || item_indent.is_some_and(|i| i != l.indent) {
            return err(l.no, "list items must be indented alike, under `pairings:`");
        }
        item_indent = Some(l.indent);
        let key_indent = l.indent + 2;
        let mut fields: Vec<(usize, String, FieldValue)> = Vec::new();
        let mut pending = (!rest.trim().is_empty()).then_some((l.no, rest.to_string()));
        loop {
            let (no, text) = match pending.take() {
                Some(p) => p,
                None => match it.peek() {
                    Some(n) if n.indent == key_indent && !n.text.starts_with("- ") => {
                        let n = it.next().ok_or(YamlError {
                            line: l.no,
                            what: "internal".into(),
                        })?;
                        (n.no, n.text.to_string())
                    }
                    Some(n) if n.indent > l.indent && n.indent != key_indent => {
                        return err(n.no, "unexpected indentation");
                    }
                    _ => break,
                },
            };
            let Some((k, v)) = text.split_once(':') else {
                return err(no, "expected `name: value`");
            };
            let k = k.trim();
            if fields.iter().any(|(_, f, _)| f == k) {
                return err(no, alloc::format!("`{k}` given twice"));
            }
            let v = v.trim();
            let value = if v.is_empty() {
                // A block list follows, indented more than the key.
                let mut items = Vec::new();
                while let Some(n) = it.peek() {
                    if n.indent <= key_indent {
                        break;
                    }
                    let Some(item) = n.text.strip_prefix("- ") else {
                        return err(n.no, "expected `- value`");
                    };
                    items.push(scalar(item, n.no)?);
                    it.next();
                }
                FieldValue::List(items)
            } else if v.starts_with('[') {
                FieldValue::List(flow_list(v, no)?)
            } else {
                FieldValue::Scalar(scalar(v, no)?)
            };
            fields.push((no, k.to_string(), value));
        }
        set_pairing(&mut set, l.no, fields)?;
    }
    Ok(set)
}

enum FieldValue {
    Scalar(String),
    List(Vec<String>),
}

fn set_pairing(
    set: &mut PairingSet,
    item_line: usize,
    fields: Vec<(usize, String, FieldValue)>,
) -> Result<(), YamlError> {
    let (mut key, mut kind, mut tenants) = (None, None, None);
    for (no, name, value) in fields {
        match (name.as_str(), value) {
            ("key", FieldValue::Scalar(s)) => match text::vkey(&s) {
                Ok(v) => key = Some((no, v)),
                Err(_) => return err(no, "not a verifier key string (name+id+key, Ed25519)"),
            },
            ("type", FieldValue::Scalar(s)) => match PairingType::parse(&s) {
                Some(t) => kind = Some(t),
                None => {
                    return err(
                        no,
                        alloc::format!("unknown type {s:?} (ADMIN, INPUT, USER or INTERFACE)"),
                    )
                }
            },
            ("tenants", FieldValue::Scalar(s)) if s == "*" => tenants = Some(Tenants::All),
            ("tenants", FieldValue::List(v)) => match Tenants::new(&v) {
                Ok(t) => tenants = Some(t),
                Err(e) => return err(no, e.to_string()),
            },
            ("tenants", _) => return err(no, "tenants is a list ([a, b]) or \"*\""),
            ("key" | "type", _) => return err(no, alloc::format!("{name} is a single value")),
            (other, _) => {
                return err(
                    no,
                    alloc::format!("unknown field `{other}` (key, type, tenants)"),
                )
            }
        }
    }
    let Some((key_line, key)) = key else {
        return err(item_line, "pairing without `key`");
    };
    let Some(kind) = kind else {
        return err(item_line, "pairing without `type`");
    };
    let Some(tenants) = tenants else {
        return err(item_line, "pairing without `tenants`");
    };
    let p = Pairing::new(key, kind, tenants).map_err(|e| YamlError {
        line: key_line,
        what: e.to_string(),
    })?;
    set.insert(p).map_err(|e| YamlError {
        line: key_line,
        what: e.to_string(),
    })
}

/// The canonical `pairings.yaml` of `set` (which [`parse`] reads back to the same pairings).
pub fn to_yaml(set: &PairingSet) -> String {
    let mut s = String::from(
        "# Pairings of this archive: who may use it, as what, for which tenants (docs/access.md).\n\
         # Rewritten by `totebox pair add` / `pair remove`: other comments are not kept.\n",
    );
    if set.pairings().is_empty() {
        s.push_str("pairings: []\n");
        return s;
    }
    s.push_str("pairings:\n");
    for p in set.pairings() {
        s.push_str("  - key: ");
        s.push_str(&p.key.vkey());
        s.push_str("\n    type: ");
        s.push_str(p.kind.upper());
        s.push_str("\n    tenants: ");
        match &p.tenants {
            Tenants::All => s.push_str("\"*\""),
            Tenants::Some(v) => {
                s.push('[');
                s.push_str(&v.join(", "));
                s.push(']');
            }
        }
        s.push('\n');
    }
    s
}
