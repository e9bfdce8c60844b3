//! The query model the SCIM layer hands to a store: a filter tree in the shape of RFC 7644
//! §3.4.2.2, generic over how an attribute is named. The SCIM parser builds `Filter<AttrPath>`
//! from text; the SCIM schema resolves it to `Filter<Attr>`, which a backend translates to its own
//! query language (SQL `WHERE` clauses for [`super::SqlStore`]).

use serde_json::Number;

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

/// An attribute as written in a filter or PATCH path, before the schema is consulted:
/// `[schemaURI ":"] attr ["." subAttr]` (RFC 7644 §3.10). Names keep the case they were written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URI prefix, e.g. `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.
    pub schema: Option<String>,
    pub attr: String,
    pub sub: Option<String>,
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
