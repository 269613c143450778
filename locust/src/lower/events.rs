//! Event listeners. None is run; a `quitting` listener that sets the exit code from the run's
//! totals (the pattern Locust's docs show) becomes blast's success criteria, which set blast's
//! exit code the same way.

use rustpython_parser::ast::{self, CmpOp, Constant, Expr, Stmt};

use super::Lowering;
use crate::value::dotted;

impl Lowering<'_> {
    /// `@events.quitting.add_listener`: the criteria its exit-code branches mean, or a note.
    pub(super) fn quitting(&mut self, f: &ast::StmtFunctionDef) {
        let env = f
            .args
            .args
            .first()
            .map(|a| a.def.arg.to_string())
            .unwrap_or_default();
        let mut criteria = Vec::new();
        if branches(&f.body, &env, &mut criteria).is_some() && !criteria.is_empty() {
            let found = criteria.join(", ");
            self.found.note(
                f,
                &format!(
                    "the quitting listener {} becomes the criteria {found}",
                    f.name
                ),
            );
            self.criteria.extend(criteria);
        } else {
            self.found.note(f, &format!("the quitting listener {} is not run: write its checks as criteria (--threshold)", f.name));
        }
    }
}

/// Walks `if COND: exit code 1 / elif ... / else: exit code 0`, adding a criterion for each
/// failing condition; `None` when the body is anything else.
fn branches(body: &[Stmt], env: &str, criteria: &mut Vec<String>) -> Option<()> {
    for stmt in body {
        match stmt {
            Stmt::If(i) => {
                if sets_exit_code(&i.body, env)? != 0 {
                    condition(&i.test, env, criteria)?;
                }
                branches(&i.orelse, env, criteria)?;
            }
            Stmt::Assign(_) => {
                sets_exit_code(std::slice::from_ref(stmt), env)?;
            }
            Stmt::Expr(e) if is_log(&e.value) => {}
            _ => return None,
        }
    }
    Some(())
}

/// The exit code a branch sets (log lines around it are fine).
fn sets_exit_code(body: &[Stmt], env: &str) -> Option<i64> {
    let mut code = None;
    for stmt in body {
        match stmt {
            Stmt::Assign(a)
                if a.targets.len() == 1
                    && dotted(&a.targets[0])? == format!("{env}.process_exit_code") =>
            {
                match a.value.as_ref() {
                    Expr::Constant(ast::ExprConstant {
                        value: Constant::Int(i),
                        ..
                    }) => code = Some(i.to_string().parse().ok()?),
                    _ => return None,
                }
            }
            Stmt::Expr(e) if is_log(&e.value) => {}
            _ => return None,
        }
    }
    code
}

/// A failing condition on the run's totals, as the criteria that pass when it does not hold.
fn condition(test: &Expr, env: &str, criteria: &mut Vec<String>) -> Option<()> {
    match test {
        Expr::BoolOp(b) if matches!(b.op, ast::BoolOp::Or) => b
            .values
            .iter()
            .try_for_each(|v| condition(v, env, criteria)),
        Expr::Compare(c) => {
            let ([op], [right]) = (c.ops.as_slice(), c.comparators.as_slice()) else {
                return None;
            };
            let value = number(right)?;
            let (metric, unit, scale) = metric(&c.left, env)?;
            // The criterion is the opposite of the failing condition.
            let passing = match op {
                CmpOp::Gt => "<=",
                CmpOp::GtE => "<",
                CmpOp::Lt => ">=",
                CmpOp::LtE => ">",
                CmpOp::Eq => "!=",
                CmpOp::NotEq => "==",
                _ => return None,
            };
            criteria.push(format!("{metric}{passing}{}{unit}", round(value * scale)));
            Some(())
        }
        _ => None,
    }
}

/// `environment.stats.total.X`: blast's metric, its unit, and the factor to blast's unit.
fn metric(expr: &Expr, env: &str) -> Option<(String, &'static str, f64)> {
    let total = format!("{env}.stats.total");
    if let Expr::Call(call) = expr {
        if dotted(&call.func)? == format!("{total}.get_response_time_percentile") {
            let [q] = call.args.as_slice() else {
                return None;
            };
            return Some((format!("p{}", round(number(q)? * 100.0)), "ms", 1.0));
        }
        return None;
    }
    let attr = dotted(expr)?
        .strip_prefix(&format!("{total}."))?
        .to_string();
    Some(match attr.as_str() {
        "fail_ratio" => ("failure_rate".into(), "%", 100.0),
        "avg_response_time" => ("avg".into(), "ms", 1.0),
        "median_response_time" => ("median".into(), "ms", 1.0),
        "max_response_time" => ("max".into(), "ms", 1.0),
        "min_response_time" => ("min".into(), "ms", 1.0),
        "num_failures" => ("failures".into(), "", 1.0),
        "num_requests" => ("requests".into(), "", 1.0),
        "total_rps" => ("rps".into(), "", 1.0),
        _ => return None,
    })
}

/// `x` without the binary noise of a scaled decimal (0.999 × 100 is 99.9, not 99.89999…).
fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn number(expr: &Expr) -> Option<f64> {
    match expr {
        Expr::Constant(ast::ExprConstant {
            value: Constant::Int(i),
            ..
        }) => i.to_string().parse().ok(),
        Expr::Constant(ast::ExprConstant {
            value: Constant::Float(f),
            ..
        }) => Some(*f),
        _ => None,
    }
}

fn is_log(expr: &Expr) -> bool {
    let Expr::Call(c) = expr else { return false };
    dotted(&c.func)
        .is_some_and(|n| n == "print" || n.starts_with("logging.") || n.starts_with("logger."))
}
