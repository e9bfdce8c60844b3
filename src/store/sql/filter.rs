//! Translates a resolved SCIM filter (RFC 7644 §3.4.2.2) and sort order (§3.4.2.3) into SQL with
//! bound arguments, so listing runs in the database instead of loading every row.
//!
//! Attributes live in a column, in the resource's JSON `attributes` object (read and walked
//! through the [`Dialect`]'s JSON functions), or in a membership relation. Each leaf condition is
//! wrapped in `coalesce(…, FALSE)` so a missing attribute compares false and `not` turns it true,
//! as a reader of the filter expects. Generated text uses `?` placeholders, numbered once the
//! statement is complete ([`super::dialect::numbered`]).

use sqlx::any::AnyArguments;
use sqlx::Arguments;

use super::dialect::Dialect;
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
    /// A column holding a name folded by Rust with `fold` (user names by RFC 8265, group names
    /// lower-cased), the twin of a name unique in that form: filters compare it with the value
    /// folded alike, so a lookup agrees with the uniqueness check (SQLite's `lower()` folds ASCII
    /// only).
    Folded {
        column: &'static str,
        fold: fn(&str) -> String,
    },
    Json {
        object: &'static str,
        keys: Vec<&'static str>,
    },
}

pub(super) enum Elements {
    /// The elements of the array at `keys` of the JSON column `object`.
    Json {
        object: &'static str,
        keys: Vec<&'static str>,
    },
    /// Rows of a relation: `from` is the `FROM … WHERE <joined to the outer row>` part, and
    /// `column` maps a sub-attribute to its SQL expression (`None`: not filterable).
    Relation {
        from: &'static str,
        column: fn(Dialect, Option<&str>) -> Option<&'static str>,
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
            keys: json_keys(schema, name, None),
        })),
        (schema, name, sub) => scalar(Scalar::Json {
            object: table.attributes,
            keys: json_keys(schema, name, sub),
        }),
    }
}

/// Qualified column names of a resource table.
pub(super) struct Table {
    pub created_at: &'static str,
    pub updated_at: &'static str,
    pub attributes: &'static str,
}

/// The keys leading to an attribute inside a resource's `attributes` object: extension attributes
/// sit under their schema URN (RFC 7643 §3.3).
fn json_keys(
    schema: Option<&'static str>,
    name: &'static str,
    sub: Option<&'static str>,
) -> Vec<&'static str> {
    schema.into_iter().chain([name]).chain(sub).collect()
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
    Bool(bool),
}

impl Arg {
    pub fn add_to(&self, args: &mut AnyArguments<'_>) {
        // Adding a String, i64, f64 or bool to arguments cannot fail.
        let _ = match self {
            Arg::Text(text) => args.add(text.clone()),
            Arg::Int(n) => args.add(*n),
            Arg::Real(x) => args.add(*x),
            Arg::Bool(b) => args.add(*b),
        };
    }
}

/// Compiles `filter` for the resource laid out by `L`. `None` means an attribute the layout
/// cannot query; the SCIM layer only hands over attributes it resolved, so this is a bug guard.
pub(super) fn where_clause<L: Layout>(dialect: Dialect, filter: &Filter<Attr>) -> Option<Sql> {
    let mut compiler = Compiler::<L> {
        dialect,
        args: Vec::new(),
        layout: std::marker::PhantomData,
    };
    let text = compiler.compile(filter)?;
    Some(Sql {
        text,
        args: compiler.args,
    })
}

/// Builds SQL text for one database, collecting the arguments in the order their placeholders
/// appear.
struct Compiler<L> {
    dialect: Dialect,
    args: Vec<Arg>,
    layout: std::marker::PhantomData<L>,
}

impl<L: Layout> Compiler<L> {
    fn compile(&mut self, filter: &Filter<Attr>) -> Option<String> {
        Some(match filter {
            Filter::And(a, b) => format!("({} AND {})", self.compile(a)?, self.compile(b)?),
            Filter::Or(a, b) => format!("({} OR {})", self.compile(a)?, self.compile(b)?),
            Filter::Not(inner) => format!("(NOT {})", self.compile(inner)?),
            Filter::Compare { attr, .. } | Filter::Present(attr) => match L::locate(attr)? {
                Location::Scalar(Scalar::Folded { column, fold }) => {
                    self.leaf(column, &folded(filter, fold))
                }
                Location::Scalar(scalar) => {
                    let expr = self.scalar_expr(&scalar);
                    self.leaf(&expr, filter)
                }
                Location::Elements(elements) => {
                    let from = self.elements_source(&elements);
                    let expr = self.element_expr(&elements, attr.sub)?;
                    format!("EXISTS (SELECT 1 {from} AND {})", self.leaf(&expr, filter))
                }
            },
            Filter::ValuePath { attr, filter } => {
                let Location::Elements(elements) = L::locate(attr)? else {
                    return None;
                };
                let from = self.elements_source(&elements);
                let inner = self.compile_elements(filter, &elements)?;
                format!("EXISTS (SELECT 1 {from} AND {inner})")
            }
        })
    }

    /// The inner filter of a value path, whose attributes are sub-attributes of one element.
    fn compile_elements(&mut self, filter: &Filter<Attr>, elements: &Elements) -> Option<String> {
        Some(match filter {
            Filter::And(a, b) => format!(
                "({} AND {})",
                self.compile_elements(a, elements)?,
                self.compile_elements(b, elements)?
            ),
            Filter::Or(a, b) => format!(
                "({} OR {})",
                self.compile_elements(a, elements)?,
                self.compile_elements(b, elements)?
            ),
            Filter::Not(inner) => format!("(NOT {})", self.compile_elements(inner, elements)?),
            Filter::Compare { attr, .. } | Filter::Present(attr) => {
                let expr = self.element_expr(elements, attr.sub)?;
                self.leaf(&expr, filter)
            }
            // Value paths do not nest (RFC 7644 §3.4.2.2 `valFilter`); the parser refuses them.
            Filter::ValuePath { .. } => return None,
        })
    }

    fn scalar_expr(&mut self, scalar: &Scalar) -> String {
        match scalar {
            Scalar::Column(column) | Scalar::Folded { column, .. } => column.to_string(),
            Scalar::Json { object, keys } => self.dialect.json_value(object, keys, &mut self.args),
        }
    }

    /// The `FROM … WHERE …` part that yields one row per element.
    fn elements_source(&mut self, elements: &Elements) -> String {
        match elements {
            Elements::Json { object, keys } => {
                let source = self.dialect.json_elements(object, keys, &mut self.args);
                format!("FROM {source} WHERE TRUE")
            }
            Elements::Relation { from, .. } => from.to_string(),
        }
    }

    /// The SQL expression of one element's sub-attribute (or of the element itself).
    fn element_expr(&mut self, elements: &Elements, sub: Option<&str>) -> Option<String> {
        match elements {
            Elements::Json { .. } => Some(match sub {
                Some(sub) => self.dialect.json_value("e.value", &[sub], &mut self.args),
                None => self.dialect.element_text().to_string(),
            }),
            Elements::Relation { column, .. } => column(self.dialect, sub).map(str::to_string),
        }
    }

    /// A comparison or presence test of `expr`, the value of the attribute `filter` names.
    fn leaf(&mut self, expr: &str, filter: &Filter<Attr>) -> String {
        let test = match filter {
            Filter::Compare { attr, op, value } => self.compare(expr, attr, *op, value),
            // §3.4.2.2 `pr`: a non-empty value; JSON objects and arrays must not be empty either.
            _ => format!("(coalesce(CAST({expr} AS TEXT), '') NOT IN ('', '{{}}', '[]'))"),
        };
        format!("coalesce({test}, FALSE)")
    }

    fn compare(&mut self, expr: &str, attr: &Attr, op: CompareOp, value: &CompValue) -> String {
        match value {
            CompValue::Null => match op {
                CompareOp::Ne => format!("({expr} IS NOT NULL)"),
                _ => format!("({expr} IS NULL)"),
            },
            // JSON values arrive as text on PostgreSQL: compare them as what the schema says.
            CompValue::Bool(b) => {
                self.ordered(&format!("CAST({expr} AS BOOLEAN)"), op, "?", Arg::Bool(*b))
            }
            CompValue::Number(n) => {
                let arg = match n.as_i64() {
                    Some(i) => Arg::Int(i),
                    None => Arg::Real(n.as_f64().unwrap_or(f64::NAN)),
                };
                self.ordered(&format!("CAST({expr} AS NUMERIC)"), op, "?", arg)
            }
            CompValue::String(s) => self.compare_text(expr, attr, op, s),
        }
    }

    /// `expr op placeholder` for eq, ne and the ordering operators; `placeholder` binds `arg`.
    fn ordered(&mut self, expr: &str, op: CompareOp, placeholder: &str, arg: Arg) -> String {
        self.args.push(arg);
        let sql_op = match op {
            CompareOp::Ne => return format!("(NOT coalesce({expr} = {placeholder}, FALSE))"),
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
    fn compare_text(&mut self, expr: &str, attr: &Attr, op: CompareOp, value: &str) -> String {
        let dialect = self.dialect;
        let fold = |e: &str| {
            if attr.case_exact {
                e.to_string()
            } else {
                dialect.fold_case(e)
            }
        };
        let (x, v) = (fold(expr), fold("?"));
        let mut bind = |times: usize| {
            for _ in 0..times {
                self.args.push(Arg::Text(value.to_string()));
            }
        };
        match op {
            // Every string contains, starts and ends with the empty string.
            CompareOp::Co | CompareOp::Sw | CompareOp::Ew if value.is_empty() => {
                format!("({expr} IS NOT NULL)")
            }
            CompareOp::Co => {
                bind(1);
                self.dialect.contains(&x, &v)
            }
            CompareOp::Sw => {
                bind(2);
                format!("(substr({x}, 1, length(?)) = {v})")
            }
            CompareOp::Ew => {
                bind(2);
                format!("({} = {v})", self.dialect.suffix(&x, "?"))
            }
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => {
                let (x, v) = (self.dialect.binary_order(&x), self.dialect.binary_order(&v));
                self.ordered(&x, op, &v, Arg::Text(value.to_string()))
            }
            _ => self.ordered(&x, op, &v, Arg::Text(value.to_string())),
        }
    }
}

/// A comparison against a [`Scalar::Folded`] column: the value folded here, compared exactly.
fn folded(filter: &Filter<Attr>, fold: fn(&str) -> String) -> Filter<Attr> {
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
            value: CompValue::String(fold(text)),
        },
        other => other.clone(),
    }
}

/// `ORDER BY` terms for §3.4.2.3: missing values last in either direction, then the id so pages
/// are stable. A list sorts by its primary value, else its first.
pub(super) fn order_by<L: Layout>(
    dialect: Dialect,
    sort: Option<&Sort>,
    id_column: &str,
) -> Option<Sql> {
    let Some(sort) = sort else {
        return Some(Sql {
            text: id_column.to_string(),
            args: Vec::new(),
        });
    };
    let mut value = Compiler::<L> {
        dialect,
        args: Vec::new(),
        layout: std::marker::PhantomData,
    };
    let expr = match L::locate(&sort.attr)? {
        Location::Scalar(scalar) => value.scalar_expr(&scalar),
        Location::Elements(elements) => {
            // The value comes before the FROM clause in the text, so its arguments go first.
            let sub = sort.attr.sub.or(Some("value"));
            let element = value.element_expr(&elements, sub)?;
            let from = value.elements_source(&elements);
            let first = match elements {
                Elements::Json { .. } => dialect.primary_first().to_string(),
                // Relations have no primary: the least value.
                Elements::Relation { .. } => dialect.binary_order(&element),
            };
            format!("(SELECT {element} {from} ORDER BY {first} LIMIT 1)")
        }
    };
    let key = match sort.attr.kind {
        AttrKind::String | AttrKind::Reference if !sort.attr.case_exact => {
            dialect.binary_order(&dialect.fold_case(&expr))
        }
        AttrKind::String | AttrKind::Reference => dialect.binary_order(&expr),
        AttrKind::Boolean => format!("CAST({expr} AS BOOLEAN)"),
        AttrKind::Integer | AttrKind::Decimal => format!("CAST({expr} AS NUMERIC)"),
        _ => expr.clone(),
    };
    let direction = if sort.descending { "DESC" } else { "ASC" };
    // The expression appears twice, so its arguments are bound twice.
    let mut args = value.args;
    args.extend(args.clone());
    Some(Sql {
        text: format!("({expr}) IS NULL, {key} {direction}, {id_column}"),
        args,
    })
}
