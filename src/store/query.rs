//! The query model the SCIM layer hands to a store: a filter tree in the shape of RFC 7644
//! §3.4.2.2, generic over how an attribute is named. The SCIM parser builds a filter of names as
//! written; the SCIM schema resolves it to `Filter<Attr>`, which a backend translates to its own
//! query language (SQL `WHERE` clauses for [`super::SqlStore`]). [`Filter::matches`] is the
//! filter's meaning on one value in memory, the one PATCH applies to list elements; the SQL
//! translation must agree with it (a backend-suite property test compares the two).

use std::cmp::Ordering;

use serde_json::{Number, Value};

/// A filter expression (RFC 7644 §3.4.2.2).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter<A> {
    /// `attrPath op value`
    Compare {
        attr: A,
        op: CompareOp,
        value: CompValue,
    },
    /// `attrPath pr`
    Present(A),
    And(Box<Filter<A>>, Box<Filter<A>>),
    Or(Box<Filter<A>>, Box<Filter<A>>),
    /// `not ( filter )`
    Not(Box<Filter<A>>),
    /// `attrPath [ valFilter ]`: the inner filter names sub-attributes of `attr`, and holds when
    /// one value of the multi-valued `attr` satisfies it.
    ValuePath {
        attr: A,
        filter: Box<Filter<A>>,
    },
}

impl Filter<Attr> {
    /// Whether one element of a multi-valued attribute (`{"value": …, "type": …}`) satisfies
    /// this value filter, its attributes naming the element's sub-attributes.
    pub fn matches(&self, element: &Value) -> bool {
        // A missing sub-attribute is null: `type pr` is false and `type eq null` true for it.
        let field = |attr: &Attr| match attr.sub {
            Some(sub) => element.get(sub).unwrap_or(&Value::Null),
            None => element,
        };
        match self {
            Filter::And(a, b) => a.matches(element) && b.matches(element),
            Filter::Or(a, b) => a.matches(element) || b.matches(element),
            Filter::Not(inner) => !inner.matches(element),
            Filter::Present(attr) => is_present(field(attr)),
            Filter::Compare { attr, op, value } => compare(attr, field(attr), *op, value),
            // Value paths do not nest (RFC 7644 §3.4.2.2 `valFilter`); the parser refuses them.
            Filter::ValuePath { .. } => false,
        }
    }
}

/// §3.4.2.2 `pr`: a value that is not null, nor an empty string, object or list.
fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn compare(attr: &Attr, actual: &Value, op: CompareOp, expected: &CompValue) -> bool {
    let ordering = match (actual, expected) {
        (Value::Null, CompValue::Null) => Some(Ordering::Equal),
        (Value::Bool(a), CompValue::Bool(b)) => Some(a.cmp(b)),
        (Value::Number(a), CompValue::Number(b)) => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::String(a), CompValue::String(b)) => {
            let (a, b) = if attr.case_exact {
                (a.clone(), b.clone())
            } else {
                (fold_case(a), fold_case(b))
            };
            return match op {
                CompareOp::Co => a.contains(&b),
                CompareOp::Sw => a.starts_with(&b),
                CompareOp::Ew => a.ends_with(&b),
                _ => ordered(op, Some(a.cmp(&b))),
            };
        }
        _ => None,
    };
    ordered(op, ordering)
}

/// Whether `ordering` (`None`: the values do not compare) satisfies `op`.
fn ordered(op: CompareOp, ordering: Option<Ordering>) -> bool {
    match (op, ordering) {
        (CompareOp::Ne, ordering) => ordering != Some(Ordering::Equal),
        (_, None) => false,
        (CompareOp::Eq, Some(o)) => o == Ordering::Equal,
        (CompareOp::Gt, Some(o)) => o == Ordering::Greater,
        (CompareOp::Ge, Some(o)) => o != Ordering::Less,
        (CompareOp::Lt, Some(o)) => o == Ordering::Less,
        (CompareOp::Le, Some(o)) => o != Ordering::Greater,
        (CompareOp::Co | CompareOp::Sw | CompareOp::Ew, _) => false,
    }
}

/// How text of a `caseExact: false` attribute (RFC 7643 §2.2) is compared: ASCII letters folded
/// to lower case, the rest as written. This is what SQLite's `lower()` does, and what
/// PostgreSQL's does under the "C" collation the SQL dialect asks for, so every backend and
/// PATCH agree; RFC 7643 leaves the folding of other scripts unspecified.
pub fn fold_case(text: &str) -> String {
    text.to_ascii_lowercase()
}

/// Comparison operators of RFC 7644 §3.4.2.2, Table 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// Operators that order values; RFC 7644 §3.4.2.2 refuses them on booleans and binaries.
    pub fn is_ordering(self) -> bool {
        matches!(
            self,
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
        )
    }
}

/// `compValue` of RFC 7644 §3.4.2.2: a JSON literal.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
}

/// An attribute resolved against the SCIM schema: canonical names plus what a backend needs to
/// compare it (RFC 7643 §2.2 characteristics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    /// The extension schema URN for extension attributes (kept under that key in the resource),
    /// `None` for core attributes.
    pub schema: Option<&'static str>,
    pub name: &'static str,
    pub sub: Option<&'static str>,
    /// The type of the attribute compared: the sub-attribute's when there is one.
    pub kind: AttrKind,
    pub case_exact: bool,
    /// Whether the top-level attribute holds a list: a filter on it holds when one value matches.
    pub multi_valued: bool,
}

/// SCIM data types (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrKind {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

/// One page of a filtered, sorted listing (RFC 7644 §3.4.2).
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub filter: Option<Filter<Attr>>,
    pub sort: Option<Sort>,
    /// 1-based index of the first result (§3.4.2.4).
    pub start_index: u64,
    /// Most results to return; 0 asks only for the total.
    pub count: u64,
}

impl ListQuery {
    /// The first `count` resources whose `attr` equals `value` (SCIM `attr eq "value"`).
    pub fn equal(attr: Attr, value: &str, count: u64) -> Self {
        ListQuery {
            filter: Some(Filter::Compare {
                attr,
                op: CompareOp::Eq,
                value: CompValue::String(value.to_string()),
            }),
            sort: None,
            start_index: 1,
            count,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub attr: Attr,
    pub descending: bool,
}

/// The results of a [`ListQuery`]: `total` counts every match, `items` is the requested page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub total: u64,
    pub items: Vec<T>,
}
