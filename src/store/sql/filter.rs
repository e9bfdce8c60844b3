//! Translates a resolved SCIM filter (RFC 7644 §3.4.2.2) and sort order (§3.4.2.3) into SQLite
//! SQL with bound arguments, so listing runs in the database instead of loading every row.
//!
//! Attributes live in a column, in the resource's JSON `attributes` object (read with
//! `json_extract`, lists walked with `json_each`), or in a membership relation. Each leaf
//! condition is wrapped in `coalesce(…, 0)` so a missing attribute compares false and `not`
//! turns it true, as a reader of the filter expects.

use sqlx::sqlite::SqliteArguments;
use sqlx::Arguments;

use crate::store::query::{Attr, AttrKind, CompValue, CompareOp, Filter, Sort};

/// Where a resource keeps one attribute.
pub(super) enum Location {
    /// One value: a column (`users.username`) or a JSON path into the attributes.
    Scalar(Scalar),
    /// A list: a JSON array or the rows of a membership relation.
    Elements(Elements),
}

pub(super) enum Scalar {
    Column(&'static str),
    /// A column holding the value lower-cased by Rust (full Unicode folding), the twin of a
    /// name that is unique case-insensitively: filters compare it with the lower-cased value, so a
    /// lookup agrees with the uniqueness check (SQLite's `lower()` folds ASCII only).
    Folded(&'static str),
    Json {
        object: &'static str,
        path: String,
    },
}

pub(super) enum Elements {
    /// `json_each` over the array at `path` of the JSON column `object`.
    Json { object: &'static str, path: String },
    /// Rows of a relation: `from` is the `FROM … WHERE <joined to the outer row>` part, and
    /// `column` maps a sub-attribute to its SQL expression (`None`: not filterable).
    Relation {
        from: &'static str,
        column: fn(Option<&str>) -> Option<&'static str>,
    },
}

/// How a resource table maps attributes to [`Location`]s.
pub(super) trait Layout {
    fn locate(attr: &Attr) -> Option<Location>;
}

/// Where a resource table keeps what every resource has: `meta` timestamps in the `created_at` and
/// `updated_at` columns of `table`, every other attribute in its JSON `attributes` column.
pub(super) fn common_location(table: &'static Table, attr: &Attr) -> Option<Location> {
    let scalar = |s| Some(Location::Scalar(s));
    match (attr.schema, attr.name, attr.sub) {
        (None, "meta", Some("created")) => scalar(Scalar::Column(table.created_at)),
        (None, "meta", Some("lastModified")) => scalar(Scalar::Column(table.updated_at)),
        (None, "meta", _) => None,
        (schema, name, _) if attr.multi_valued => Some(Location::Elements(Elements::Json {
            object: table.attributes,
            path: json_path(schema, name, None),
        })),
        (schema, name, sub) => scalar(Scalar::Json {
            object: table.attributes,
            path: json_path(schema, name, sub),
        }),
    }
}

/// Qualified column names of a resource table.
pub(super) struct Table {
    pub created_at: &'static str,
    pub updated_at: &'static str,
    pub attributes: &'static str,
}

/// The JSON path of an attribute inside a resource's `attributes` object: extension attributes
/// sit under their schema URN (RFC 7643 §3.3).
pub(super) fn json_path(schema: Option<&str>, name: &str, sub: Option<&str>) -> String {
    let mut path = String::from("$");
    for key in schema.into_iter().chain([name]).chain(sub) {
        path.push_str(&format!(".\"{key}\""));
    }
    path
}

/// A `WHERE` or `ORDER BY` fragment with its arguments, in the order they appear.
pub(super) struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub(super) enum Arg {
    Text(String),
    Int(i64),
    Real(f64),
}

impl Arg {
    pub fn add_to(&self, args: &mut SqliteArguments<'_>) {
        // Adding a String, i64 or f64 to SQLite arguments cannot fail.
        let _ = match self {
            Arg::Text(text) => args.add(text.clone()),
            Arg::Int(n) => args.add(*n),
            Arg::Real(x) => args.add(*x),
        };
    }
}

/// Compiles `filter` for the resource laid out by `L`. `None` means an attribute the layout
/// cannot query; the SCIM layer only hands over attributes it resolved, so this is a bug guard.
pub(super) fn where_clause<L: Layout>(filter: &Filter<Attr>) -> Option<Sql> {
    let mut args = Vec::new();
    let text = compile::<L>(filter, &mut args)?;
    Some(Sql { text, args })
}

fn compile<L: Layout>(filter: &Filter<Attr>, args: &mut Vec<Arg>) -> Option<String> {
    Some(match filter {
        Filter::And(a, b) => format!(
            "({} AND {})",
            compile::<L>(a, args)?,
            compile::<L>(b, args)?
        ),
        Filter::Or(a, b) => format!("({} OR {})", compile::<L>(a, args)?, compile::<L>(b, args)?),
        Filter::Not(inner) => format!("(NOT {})", compile::<L>(inner, args)?),
        Filter::Compare { attr, .. } | Filter::Present(attr) => match L::locate(attr)? {
            Location::Scalar(Scalar::Folded(column)) => leaf(column, &folded(filter), args),
            Location::Scalar(scalar) => {
                let expr = scalar_expr(&scalar, args);
                leaf(&expr, filter, args)
            }
            Location::Elements(elements) => {
                let (from, element) = elements_source(&elements, args);
                let expr = element_expr(&elements, &element, attr.sub, args)?;
                format!("EXISTS (SELECT 1 {from} AND {})", leaf(&expr, filter, args))
            }
        },
        Filter::ValuePath { attr, filter } => {
            let Location::Elements(elements) = L::locate(attr)? else {
                return None;
            };
            let (from, element) = elements_source(&elements, args);
            let inner = compile_elements(filter, &elements, &element, args)?;
            format!("EXISTS (SELECT 1 {from} AND {inner})")
        }
    })
}

/// The inner filter of a value path, whose attributes are sub-attributes of one element.
fn compile_elements(
    filter: &Filter<Attr>,
    elements: &Elements,
    element: &str,
    args: &mut Vec<Arg>,
) -> Option<String> {
    let both = |a: &Filter<Attr>, b: &Filter<Attr>, op: &str, args: &mut Vec<Arg>| {
        Some(format!(
            "({} {op} {})",
            compile_elements(a, elements, element, args)?,
            compile_elements(b, elements, element, args)?
        ))
    };
    Some(match filter {
        Filter::And(a, b) => both(a, b, "AND", args)?,
        Filter::Or(a, b) => both(a, b, "OR", args)?,
        Filter::Not(inner) => format!(
            "(NOT {})",
            compile_elements(inner, elements, element, args)?
        ),
        Filter::Compare { attr, .. } | Filter::Present(attr) => {
            let expr = element_expr(elements, element, attr.sub, args)?;
            leaf(&expr, filter, args)
        }
        // Value paths do not nest (RFC 7644 §3.4.2.2 `valFilter`); the parser refuses them.
        Filter::ValuePath { .. } => return None,
    })
}

/// A comparison against a [`Scalar::Folded`] column: the value lower-cased here, compared exactly.
fn folded(filter: &Filter<Attr>) -> Filter<Attr> {
    match filter {
        Filter::Compare {
            attr,
            op,
            value: CompValue::String(text),
        } => Filter::Compare {
            attr: Attr {
                case_exact: true,
                ..*attr
            },
            op: *op,
            value: CompValue::String(text.to_lowercase()),
        },
        other => other.clone(),
    }
}

fn scalar_expr(scalar: &Scalar, args: &mut Vec<Arg>) -> String {
    match scalar {
        Scalar::Column(column) | Scalar::Folded(column) => column.to_string(),
        Scalar::Json { object, path } => {
            args.push(Arg::Text(path.clone()));
            format!("json_extract({object}, ?)")
        }
    }
}

/// The `FROM … WHERE …` part that yields one row per element, and the name of an element.
fn elements_source(elements: &Elements, args: &mut Vec<Arg>) -> (String, String) {
    match elements {
        Elements::Json { object, path } => {
            args.push(Arg::Text(path.clone()));
            (
                format!("FROM json_each({object}, ?) AS e WHERE 1"),
                "e.value".into(),
            )
        }
        Elements::Relation { from, .. } => (from.to_string(), String::new()),
    }
}

/// The SQL expression of one element's sub-attribute (or of the element itself).
fn element_expr(
    elements: &Elements,
    element: &str,
    sub: Option<&str>,
    args: &mut Vec<Arg>,
) -> Option<String> {
    match elements {
        Elements::Json { .. } => Some(match sub {
            Some(sub) => {
                args.push(Arg::Text(json_path(None, sub, None)));
                format!("json_extract({element}, ?)")
            }
            None => element.to_string(),
        }),
        Elements::Relation { column, .. } => column(sub).map(str::to_string),
    }
}

/// A comparison or presence test of `expr`, the value of the attribute `filter` names.
fn leaf(expr: &str, filter: &Filter<Attr>, args: &mut Vec<Arg>) -> String {
    let test = match filter {
        Filter::Compare { attr, op, value } => compare(expr, attr, *op, value, args),
        // §3.4.2.2 `pr`: a non-empty value; JSON objects and arrays must not be empty either.
        _ => format!("(coalesce({expr}, '') NOT IN ('', '{{}}', '[]'))"),
    };
    format!("coalesce({test}, 0)")
}

fn compare(
    expr: &str,
    attr: &Attr,
    op: CompareOp,
    value: &CompValue,
    args: &mut Vec<Arg>,
) -> String {
    match value {
        CompValue::Null => match op {
            CompareOp::Ne => format!("({expr} IS NOT NULL)"),
            _ => format!("({expr} IS NULL)"),
        },
        CompValue::Bool(b) => ordered(expr, op, "?", Arg::Int(i64::from(*b)), args),
        CompValue::Number(n) => {
            let arg = match n.as_i64() {
                Some(i) => Arg::Int(i),
                None => Arg::Real(n.as_f64().unwrap_or(f64::NAN)),
            };
            ordered(expr, op, "?", arg, args)
        }
        CompValue::String(s) => compare_text(expr, attr, op, s, args),
    }
}

/// `expr op placeholder` for eq, ne and the ordering operators; `placeholder` binds `arg`.
fn ordered(expr: &str, op: CompareOp, placeholder: &str, arg: Arg, args: &mut Vec<Arg>) -> String {
    args.push(arg);
    let sql_op = match op {
        CompareOp::Ne => return format!("(NOT coalesce({expr} = {placeholder}, 0))"),
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        // co/sw/ew are string operators; the SCIM layer refuses them for other types.
        _ => "=",
    };
    format!("({expr} {sql_op} {placeholder})")
}

/// String comparison, folded to lower case unless the attribute is `caseExact` (RFC 7643 §2.2).
fn compare_text(
    expr: &str,
    attr: &Attr,
    op: CompareOp,
    value: &str,
    args: &mut Vec<Arg>,
) -> String {
    let fold = |e: &str| {
        if attr.case_exact {
            e.to_string()
        } else {
            format!("lower({e})")
        }
    };
    let (x, v) = (fold(expr), fold("?"));
    let mut bind = |times: usize| {
        for _ in 0..times {
            args.push(Arg::Text(value.to_string()));
        }
    };
    match op {
        // Every string contains, starts and ends with the empty string.
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew if value.is_empty() => {
            format!("({expr} IS NOT NULL)")
        }
        CompareOp::Co => {
            bind(1);
            format!("(instr({x}, {v}) > 0)")
        }
        CompareOp::Sw => {
            bind(2);
            format!("(substr({x}, 1, length(?)) = {v})")
        }
        CompareOp::Ew => {
            bind(2);
            format!("(substr({x}, -length(?)) = {v})")
        }
        _ => ordered(&x, op, &v, Arg::Text(value.to_string()), args),
    }
}

/// `ORDER BY` terms for §3.4.2.3: missing values last in either direction, then the id so pages
/// are stable. A list sorts by its primary value, else its first.
pub(super) fn order_by<L: Layout>(sort: Option<&Sort>, id_column: &str) -> Option<Sql> {
    let Some(sort) = sort else {
        return Some(Sql {
            text: id_column.to_string(),
            args: Vec::new(),
        });
    };
    let mut args = Vec::new();
    let expr = match L::locate(&sort.attr)? {
        Location::Scalar(scalar) => scalar_expr(&scalar, &mut args),
        Location::Elements(elements) => {
            // The value comes before the FROM clause in the text, so its arguments go first.
            let mut from_args = Vec::new();
            let (from, element) = elements_source(&elements, &mut from_args);
            let sub = sort.attr.sub.or(Some("value"));
            let value = element_expr(&elements, &element, sub, &mut args)?;
            args.extend(from_args);
            let first = match elements {
                // The primary value, else the first in the list.
                Elements::Json { .. } => "json_extract(e.value, '$.primary') DESC, e.key".into(),
                // Relations have no primary: the least value.
                Elements::Relation { .. } => value.clone(),
            };
            format!("(SELECT {value} {from} ORDER BY {first} LIMIT 1)")
        }
    };
    let expr = match sort.attr.kind {
        AttrKind::String | AttrKind::Reference if !sort.attr.case_exact => format!("lower({expr})"),
        _ => expr,
    };
    let direction = if sort.descending { "DESC" } else { "ASC" };
    // The expression appears twice, so its arguments are bound twice.
    args.extend(args.clone());
    Some(Sql {
        text: format!("({expr}) IS NULL, {expr} {direction}, {id_column}"),
        args,
    })
}
