//! What SQLite and PostgreSQL spell differently. Every other statement of the SQL backend is
//! written once in SQL both accept (`$N` placeholders, `TRUE`/`FALSE`, `ON CONFLICT`,
//! `RETURNING`), so the two databases cannot drift apart; this is the one place that knows which
//! database it talks to.

use super::filter::Arg;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Starts a transaction that will write. SQLite takes its one write lock up front, so
    /// concurrent writers queue instead of failing on a lock upgrade; PostgreSQL locks rows as the
    /// conditional updates reach them.
    pub fn begin_write(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }

    /// Starts a read-only transaction whose statements all see one snapshot (SQLite's deferred
    /// transactions do; PostgreSQL's default gives each statement its own).
    pub fn begin_snapshot(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN",
            Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }

    /// The text (or number, or boolean) at `keys` inside the JSON object in `object`.
    pub fn json_value(self, object: &str, keys: &[&str], args: &mut Vec<Arg>) -> String {
        match self {
            Dialect::Sqlite => {
                let path: String = keys.iter().map(|key| format!(".\"{key}\"")).collect();
                args.push(Arg::Text(format!("${path}")));
                format!("json_extract({object}, ?)")
            }
            Dialect::Postgres => {
                let (last, parents) = keys.split_last().expect("a JSON path has a key");
                let mut expr = format!("(CAST({object} AS jsonb)");
                for key in parents {
                    args.push(Arg::Text(key.to_string()));
                    expr.push_str(" -> ?");
                }
                args.push(Arg::Text(last.to_string()));
                expr.push_str(" ->> ?)");
                expr
            }
        }
    }

    /// A `FROM` item with one row per element of the JSON array at `keys` in `object`, as
    /// `e.value` (the element) and `e.key` (its position).
    pub fn json_elements(self, object: &str, keys: &[&str], args: &mut Vec<Arg>) -> String {
        match self {
            Dialect::Sqlite => {
                let path: String = keys.iter().map(|key| format!(".\"{key}\"")).collect();
                args.push(Arg::Text(format!("${path}")));
                format!("json_each({object}, ?) AS e")
            }
            Dialect::Postgres => {
                let mut array = format!("CAST({object} AS jsonb)");
                for key in keys {
                    args.push(Arg::Text(key.to_string()));
                    array.push_str(" -> ?");
                }
                format!("jsonb_array_elements({array}) WITH ORDINALITY AS e(value, key)")
            }
        }
    }

    /// An element of [`Dialect::json_elements`] that is itself a plain value, as text.
    pub fn element_text(self) -> &'static str {
        match self {
            Dialect::Sqlite => "e.value",
            Dialect::Postgres => "(e.value #>> '{}')",
        }
    }

    /// Orders the elements of [`Dialect::json_elements`] primary first, then as listed
    /// (RFC 7643 §2.4: the primary value stands for the list).
    pub fn primary_first(self) -> &'static str {
        match self {
            Dialect::Sqlite => "coalesce(json_extract(e.value, '$.primary'), 0) DESC, e.key",
            Dialect::Postgres => {
                "coalesce(e.value -> 'primary' = 'true'::jsonb, FALSE) DESC, e.key"
            }
        }
    }

    /// A `FROM` item with one row (column `value`) per string of the JSON array bound to
    /// `placeholder`: how a list of ids is passed as one argument.
    pub fn json_list(self, placeholder: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_each({placeholder})"),
            Dialect::Postgres => {
                format!("json_array_elements_text(CAST({placeholder} AS json)) AS j(value)")
            }
        }
    }

    /// A group member's display name: the user `u`'s `displayName`, else the user name.
    pub fn member_display(self) -> &'static str {
        match self {
            Dialect::Sqlite => "coalesce(json_extract(u.attributes, '$.displayName'), u.username)",
            Dialect::Postgres => {
                "coalesce(CAST(u.attributes AS jsonb) ->> 'displayName', u.username)"
            }
        }
    }

    /// The column that orders a table's rows as they were inserted (SQLite's implicit `rowid`, a
    /// sequence column on PostgreSQL).
    pub fn insertion_order(self) -> &'static str {
        match self {
            Dialect::Sqlite => "rowid",
            Dialect::Postgres => "seq",
        }
    }

    /// Whether the text `haystack` contains the text `needle`.
    pub fn contains(self, haystack: &str, needle: &str) -> String {
        match self {
            Dialect::Sqlite => format!("(instr({haystack}, {needle}) > 0)"),
            Dialect::Postgres => format!("(strpos({haystack}, {needle}) > 0)"),
        }
    }

    /// The last `length(needle)` characters of `text` (SQLite's `substr` counts back from the end
    /// with a negative start; PostgreSQL has `right`).
    pub fn suffix(self, text: &str, needle: &str) -> String {
        match self {
            Dialect::Sqlite => format!("substr({text}, -length({needle}))"),
            Dialect::Postgres => format!("right({text}, length({needle}))"),
        }
    }

    /// `text` with ASCII letters lower-cased and nothing else, as
    /// [`crate::store::query::fold_case`] does: PostgreSQL's `lower()` would otherwise fold by
    /// the database's locale, and SQLite's folds ASCII only.
    pub fn fold_case(self, text: &str) -> String {
        match self {
            Dialect::Sqlite => format!("lower({text})"),
            Dialect::Postgres => format!("lower(({text}) COLLATE \"C\")"),
        }
    }

    /// Text ordered by code point, as SQLite's default BINARY collation does; PostgreSQL would
    /// otherwise sort by the database's locale and page SCIM results differently.
    pub fn binary_order(self, text: &str) -> String {
        match self {
            Dialect::Sqlite => text.to_string(),
            Dialect::Postgres => format!("({text}) COLLATE \"C\""),
        }
    }
}

/// Numbers the `?` placeholders of generated SQL as `$1`, `$2`, …, the form both databases
/// accept. Quoted literals are copied as they are.
pub(super) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let (mut next, mut quoted) = (1, false);
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                out.push_str(&format!("${next}"));
                next += 1;
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_literals() {
        assert_eq!(
            numbered("a = ? AND b = '?' AND c IN (?, ?)"),
            "a = $1 AND b = '?' AND c IN ($2, $3)"
        );
    }
}
