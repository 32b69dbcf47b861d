//! How many samples the inputs of a PromQL expression took in a recent
//! window, itself as PromQL: what tells which Beijing day a value of an
//! expression belongs to.
//!
//! An expression has no samples of its own: evaluated at an instant, it reads
//! the latest sample of each series it selects. Its value at that instant
//! belongs to the day of the newest of those samples; a step just after
//! midnight that still reads yesterday's last samples shows yesterday's
//! value. [`samples_in`] mirrors the expression's structure (aggregations,
//! vector matching, `label_replace`) so that its series carry the same labels
//! as the expression's, each valued above zero exactly when one of its inputs
//! has a sample in the window: a window reaching back to midnight says
//! whether the value is today's. (`timestamp()` would say when, but
//! Prometheus evaluates it apart at every step, hundreds of times slower
//! than a range function.)

use std::time::Duration;

use promql_parser::label::Labels;
use promql_parser::parser::{
    self, AggregateExpr, BinModifier, BinaryExpr, Call, Expr, LabelModifier, MatrixSelector,
    VectorMatchCardinality, VectorSelector, value::ValueType,
};

/// Parses `expr`, which must be an instant vector.
pub fn parse(expr: &str) -> Result<Expr, String> {
    let e = parser::parse(expr)?;
    if e.value_type() != ValueType::Vector {
        return Err(format!(
            "{expr:?} is a {}, not an instant vector",
            e.value_type()
        ));
    }
    Ok(e)
}

/// The PromQL whose series are the series of `expr`, each above zero when
/// an input sample behind it lies in the last `window` (at most that many
/// samples of one input); `None` when `expr` reads no series (`vector(1)`).
/// An error names what cannot be followed.
pub fn samples_in(expr: &Expr, window: Duration) -> Result<Option<String>, String> {
    mirror(expr, &|vs: &VectorSelector| {
        let ms = MatrixSelector {
            vs: vs.clone(),
            range: window,
        };
        format!("count_over_time({ms})")
    })
}

type Leaf<'a> = &'a dyn Fn(&VectorSelector) -> String;

/// `e` with each series it reads replaced by `leaf` of its selector, and
/// every operation on them made to keep their labels and the largest value.
fn mirror(e: &Expr, leaf: Leaf) -> Result<Option<String>, String> {
    Ok(match e {
        Expr::VectorSelector(vs) => Some(leaf(vs)),
        // Inside a function (`rate(x[5m])`): the value changes with each
        // sample of `x`.
        Expr::MatrixSelector(ms) => Some(leaf(&ms.vs)),
        Expr::Paren(p) => mirror(&p.expr, leaf)?,
        Expr::Unary(u) => mirror(&u.expr, leaf)?,
        Expr::Subquery(s) => mirror(&s.expr, leaf)?,
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => None,
        Expr::Aggregate(a) => aggregate(a, leaf)?,
        Expr::Binary(b) => binary(b, leaf)?,
        Expr::Call(c) => call(c, leaf)?,
        Expr::Extension(_) => return Err("an extension expression".into()),
    })
}

fn labels(ls: &Labels) -> String {
    ls.labels.join(", ")
}

fn aggregate(a: &AggregateExpr, leaf: Leaf) -> Result<Option<String>, String> {
    let Some(inner) = mirror(&a.expr, leaf)? else {
        return Ok(None);
    };
    let op = a.op.to_string().to_ascii_lowercase();
    Ok(Some(match op.as_str() {
        // These keep the labels of the series they pick.
        "topk" | "bottomk" | "limitk" | "limit_ratio" => inner,
        "count_values" => {
            return Err(
                "count_values makes labels of values, which no sample time can follow".into(),
            );
        }
        _ => match &a.modifier {
            Some(LabelModifier::Include(ls)) if !ls.labels.is_empty() => {
                format!("max by ({}) ({inner})", labels(ls))
            }
            Some(LabelModifier::Exclude(ls)) => {
                format!("max without ({}) ({inner})", labels(ls))
            }
            _ => format!("max({inner})"),
        },
    }))
}

/// The matching of a binary operation, without `bool`: the same series meet.
fn matching(m: Option<&BinModifier>, grouping: bool) -> String {
    let Some(m) = m else {
        return String::new();
    };
    let mut s = String::new();
    match &m.matching {
        Some(LabelModifier::Include(ls)) => s.push_str(&format!(" on ({})", labels(ls))),
        Some(LabelModifier::Exclude(ls)) if !ls.labels.is_empty() => {
            s.push_str(&format!(" ignoring ({})", labels(ls)))
        }
        _ => {}
    }
    if grouping {
        match &m.card {
            VectorMatchCardinality::ManyToOne(ls) => {
                s.push_str(&format!(" group_left ({})", labels(ls)))
            }
            VectorMatchCardinality::OneToMany(ls) => {
                s.push_str(&format!(" group_right ({})", labels(ls)))
            }
            _ => {}
        }
    }
    s
}

fn binary(b: &BinaryExpr, leaf: Leaf) -> Result<Option<String>, String> {
    let (l, r) = (mirror(&b.lhs, leaf)?, mirror(&b.rhs, leaf)?);
    let vectors =
        b.lhs.value_type() == ValueType::Vector && b.rhs.value_type() == ValueType::Vector;
    let (l, r) = match (l, r) {
        (None, None) => return Ok(None),
        (Some(t), None) | (None, Some(t)) => return Ok(Some(t)),
        (Some(l), Some(r)) if vectors => (l, r),
        // A scalar side with inputs (`scalar(x)`): the vector side's labels.
        (Some(l), Some(r)) => {
            return Ok(Some(if b.lhs.value_type() == ValueType::Vector {
                l
            } else {
                r
            }));
        }
    };
    let op = b.op.to_string().to_ascii_lowercase();
    let m = b.modifier.as_ref();
    Ok(Some(match op.as_str() {
        "and" | "or" | "unless" => format!("({l}) {op}{} ({r})", matching(m, false)),
        // The larger of the two, series matched as the expression matches
        // them: (l + r + |l - r|) / 2.
        _ => {
            let on = matching(m, true);
            format!("((({l}) +{on} ({r})) + abs(({l}) -{on} ({r}))) / 2")
        }
    }))
}

fn call(c: &Call, leaf: Leaf) -> Result<Option<String>, String> {
    let args = &c.args.args;
    let name = c.func.name;
    match name {
        "label_replace" | "label_join" => {
            let Some(first) = args.first() else {
                return Ok(None);
            };
            let Some(t) = mirror(first, leaf)? else {
                return Ok(None);
            };
            let rest: Vec<String> = args.iter().skip(1).map(|a| a.to_string()).collect();
            Ok(Some(format!("{name}({t}, {})", rest.join(", "))))
        }
        "histogram_quantile" => Ok(match args.get(1) {
            Some(v) => mirror(v, leaf)?.map(|t| format!("max without (le) ({t})")),
            None => None,
        }),
        // No series of their own, or labels made from matchers.
        "vector" | "time" | "pi" | "absent" | "absent_over_time" => Ok(None),
        // Everything else keeps its argument's series: the first that reads any.
        _ => {
            for a in args {
                if let Some(t) = mirror(a, leaf)? {
                    return Ok(Some(t));
                }
            }
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(expr: &str) -> String {
        let e = parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        samples_in(&e, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .unwrap_or_else(|| panic!("{expr}: no inputs"))
    }

    #[test]
    fn a_ratio_of_sums_is_fresh_when_either_sum_is() {
        assert_eq!(
            t("sum by (namespace) (used) / sum by (namespace) (domain)"),
            "(((max by (namespace) (count_over_time(used[1m]))) + (max by (namespace) (count_over_time(domain[1m])))) \
             + abs((max by (namespace) (count_over_time(used[1m]))) - (max by (namespace) (count_over_time(domain[1m]))))) / 2"
        );
    }

    #[test]
    fn a_rate_is_fresh_when_its_counter_has_a_sample() {
        assert_eq!(
            t(r#"sum by (namespace) (rate(cpu_seconds_total{state="running"}[5m]))"#),
            r#"max by (namespace) (count_over_time(cpu_seconds_total{state="running"}[1m]))"#
        );
    }

    #[test]
    fn label_replace_maps_the_counts_as_it_maps_the_values() {
        assert_eq!(
            t(r#"label_replace(sum by (unit, app) (x), "namespace", "$1-$2", "unit", "(.*)")"#),
            r#"label_replace(max by (unit, app) (count_over_time(x[1m])), "namespace", "$1-$2", "unit", "(.*)")"#
        );
    }

    #[test]
    fn matching_is_kept_and_bool_dropped() {
        assert_eq!(
            t("a > bool on (namespace) group_left (node) b"),
            "(((count_over_time(a[1m])) + on (namespace) group_left (node) (count_over_time(b[1m]))) \
             + abs((count_over_time(a[1m])) - on (namespace) group_left (node) (count_over_time(b[1m])))) / 2"
        );
        assert_eq!(
            t("a and ignoring (pod) b"),
            "(count_over_time(a[1m])) and ignoring (pod) (count_over_time(b[1m]))"
        );
    }

    #[test]
    fn scalars_and_constants_add_no_inputs() {
        assert_eq!(
            t("100 * sum without (vm) (x)"),
            "max without (vm) (count_over_time(x[1m]))"
        );
        assert_eq!(t("topk(3, x)"), "count_over_time(x[1m])");
        let constant = parse("vector(1)").unwrap();
        assert_eq!(samples_in(&constant, Duration::from_secs(60)), Ok(None));
    }

    #[test]
    fn a_selector_keeps_its_offset_after_the_window() {
        assert_eq!(t("x offset 1h"), "count_over_time(x[1m] offset 1h)");
    }

    #[test]
    fn what_cannot_be_followed_is_an_error_not_a_guess() {
        let count_values = parse("count_values(\"v\", x)").unwrap();
        assert!(samples_in(&count_values, Duration::from_secs(60)).is_err());
        assert!(parse("x[5m]").is_err());
        assert!(parse("sum(").is_err());
    }
}
