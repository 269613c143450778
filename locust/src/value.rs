//! Python expressions as blast values: strings and f-strings as templates (`{{token}}`,
//! `{{random_int 1 9}}`, `{{uuid}}`, `{{pick a b}}`), literals and dicts as JSON bodies.

use rustpython_parser::ast::{self, Constant, Expr, Ranged};
use std::collections::HashMap;

/// A module-level constant: its value as it would be written in a template or a JSON body.
#[derive(Clone, Debug)]
pub(crate) enum Literal {
    Text(String),
    Json(toml::Value),
    List(Vec<Literal>),
}

/// Why an expression has no blast value: where, and what.
pub(crate) struct Unsupported {
    pub offset: usize,
    pub message: String,
}

pub(crate) type Result<T> = std::result::Result<T, Unsupported>;

fn unsupported<T>(expr: &Expr, message: impl Into<String>) -> Result<T> {
    Err(Unsupported {
        offset: u32::from(expr.range().start()) as usize,
        message: message.into(),
    })
}

/// What names mean where an expression is lowered.
pub(crate) struct Scope<'a> {
    /// The name of the user object: `self`, or a task function's first parameter.
    pub user: &'a str,
    /// Module-level constants.
    pub constants: &'a HashMap<String, Literal>,
    /// Locals that hold a captured value (their name is the variable's).
    pub captured: &'a [String],
}

impl Scope<'_> {
    /// `expr` as a template: the text of a string, an f-string's parts with placeholders.
    pub fn template(&self, expr: &Expr) -> Result<String> {
        match expr {
            Expr::Constant(c) => match &c.value {
                Constant::Str(s) => Ok(s.clone()),
                Constant::Int(i) => Ok(i.to_string()),
                Constant::Float(f) => Ok(f.to_string()),
                _ => unsupported(expr, "this constant is not text"),
            },
            Expr::JoinedStr(j) => j
                .values
                .iter()
                .map(|part| match part {
                    Expr::FormattedValue(f) if f.format_spec.is_none() => self.placeholder(&f.value),
                    Expr::FormattedValue(_) => {
                        unsupported(part, "a format spec in an f-string is not supported: format the value in the URL or body without one")
                    }
                    other => self.template(other),
                })
                .collect(),
            Expr::BinOp(b) if matches!(b.op, ast::Operator::Add) => {
                Ok(self.template(&b.left)? + &self.template(&b.right)?)
            }
            // "/items/%s" % self.id, "%s-%d" % (a, b)
            Expr::BinOp(b) if matches!(b.op, ast::Operator::Mod) => match b.left.as_ref() {
                Expr::Constant(ast::ExprConstant { value: Constant::Str(format), .. }) => {
                    let values: Vec<&Expr> = match b.right.as_ref() {
                        Expr::Tuple(t) => t.elts.iter().collect(),
                        one => vec![one],
                    };
                    self.percent(expr, format, &values)
                }
                _ => unsupported(expr, "% formatting translates with a literal format string"),
            },
            _ => self.placeholder(expr),
        }
    }

    /// `format % values` with `%s`, `%d`, `%i` and `%%`, the values as templates.
    fn percent(&self, expr: &Expr, format: &str, values: &[&Expr]) -> Result<String> {
        let mut out = String::new();
        let mut values = values.iter();
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('s' | 'd' | 'i') => match values.next() {
                    Some(v) => out.push_str(&self.template(v)?),
                    None => return unsupported(expr, "the format has more %s than values"),
                },
                _ => {
                    return unsupported(
                        expr,
                        "% formatting translates %s, %d and %i only: use an f-string",
                    )
                }
            }
        }
        if values.next().is_some() {
            return unsupported(expr, "the format has fewer %s than values");
        }
        Ok(out)
    }

    /// `expr` as the value put into a template: a user variable, a generator or a constant.
    fn placeholder(&self, expr: &Expr) -> Result<String> {
        if let Some(var) = self.variable(expr) {
            return Ok(format!("{{{{{var}}}}}"));
        }
        if let Expr::Name(n) = expr {
            return match self.constants.get(n.id.as_str()) {
                Some(Literal::Text(t)) => Ok(t.clone()),
                Some(Literal::Json(v)) => Ok(json_text(v)),
                Some(Literal::List(_)) => unsupported(expr, format!("the list {} is not text: pick from it with random.choice({})", n.id, n.id)),
                None => unsupported(expr, format!("{} is not a module constant, a captured value or an attribute of {}: blast can only use values known before the run or captured from a response", n.id, self.user)),
            };
        }
        if let Expr::Call(call) = expr {
            match (dotted(&call.func).as_deref(), call.args.as_slice()) {
                (Some("str"), [inner]) => return self.placeholder(inner),
                (Some("random.randint"), [low, high]) => {
                    return Ok(format!(
                        "{{{{random_int {} {}}}}}",
                        self.integer(low)?,
                        self.integer(high)?
                    ))
                }
                (Some("uuid.uuid4" | "uuid4"), []) => return Ok("{{uuid}}".into()),
                (Some("random.random"), []) => return Ok("{{random_float 0 1}}".into()),
                (Some("random.uniform"), [low, high]) => {
                    let (low, high) = (self.number(low)?, self.number(high)?);
                    let (low, high) = if low <= high {
                        (low, high)
                    } else {
                        (high, low)
                    };
                    return Ok(format!("{{{{random_float {low} {high}}}}}"));
                }
                // `next(COUNTER)` for a module-level `itertools.count()`.
                (Some("next"), [Expr::Name(n)]) if matches!(self.constants.get(n.id.as_str()), Some(Literal::Text(t)) if t == SEQ) => {
                    return Ok(SEQ.into())
                }
                (Some("random.choice"), [choices]) => return self.pick(choices),
                _ => {}
            }
        }
        if let Some(found) = lookup(expr, self.constants) {
            return match found {
                Literal::Text(t) => Ok(t),
                Literal::Json(v) => Ok(json_text(&v)),
                Literal::List(_) => unsupported(
                    expr,
                    "this list is not text: pick from it with random.choice(...)",
                ),
            };
        }
        unsupported(expr, "this expression has no blast value: use a literal, a module constant, a value captured from a response, random.randint, random.choice, random.random, random.uniform or uuid.uuid4()")
    }

    /// The user variable `expr` names: `self.x`, or a local that holds a captured value.
    pub fn variable(&self, expr: &Expr) -> Option<String> {
        match expr {
            Expr::Attribute(a) => match a.value.as_ref() {
                Expr::Name(n) if n.id.as_str() == self.user => Some(a.attr.to_string()),
                _ => None,
            },
            Expr::Name(n) if self.captured.iter().any(|c| c == n.id.as_str()) => {
                Some(n.id.to_string())
            }
            _ => None,
        }
    }

    fn number(&self, expr: &Expr) -> Result<f64> {
        match self.json(expr)? {
            toml::Value::Integer(i) => Ok(i as f64),
            toml::Value::Float(f) => Ok(f),
            _ => unsupported(expr, "expected a number"),
        }
    }

    fn integer(&self, expr: &Expr) -> Result<i64> {
        match self.json(expr)? {
            toml::Value::Integer(i) => Ok(i),
            _ => unsupported(expr, "expected a whole number"),
        }
    }

    /// `random.choice(words)`: `{{pick a b c}}`, for words without spaces.
    fn pick(&self, choices: &Expr) -> Result<String> {
        let items: Vec<String> = match choices {
            Expr::List(l) => l
                .elts
                .iter()
                .map(|e| self.template(e))
                .collect::<Result<_>>()?,
            Expr::Tuple(t) => t
                .elts
                .iter()
                .map(|e| self.template(e))
                .collect::<Result<_>>()?,
            Expr::Name(n) => match self.constants.get(n.id.as_str()) {
                Some(Literal::List(items)) => items
                    .iter()
                    .map(|i| match i {
                        Literal::Text(t) => Ok(t.clone()),
                        Literal::Json(v) => Ok(json_text(v)),
                        Literal::List(_) => unsupported(
                            choices,
                            "random.choice over a list of lists is not supported",
                        ),
                    })
                    .collect::<Result<_>>()?,
                _ => {
                    return unsupported(
                        choices,
                        format!(
                            "random.choice needs a list: {} is not a module-level list",
                            n.id
                        ),
                    )
                }
            },
            _ => {
                return unsupported(
                    choices,
                    "random.choice needs a literal list or a module-level one",
                )
            }
        };
        if items.is_empty()
            || items
                .iter()
                .any(|i| i.is_empty() || i.contains(char::is_whitespace) || i.contains('}'))
        {
            return unsupported(choices, "random.choice translates to {{pick ...}}, whose choices are single words: use words without spaces");
        }
        Ok(format!("{{{{pick {}}}}}", items.join(" ")))
    }

    /// `expr` as a JSON value for a body: literals, dicts, lists; strings as templates; a
    /// string that is one placeholder becomes the whole value when the body is sent.
    pub fn json(&self, expr: &Expr) -> Result<toml::Value> {
        Ok(match expr {
            Expr::Constant(c) => match &c.value {
                Constant::Str(s) => toml::Value::String(s.clone()),
                Constant::Bool(b) => toml::Value::Boolean(*b),
                Constant::Int(i) => match i.to_string().parse() {
                    Ok(i) => toml::Value::Integer(i),
                    Err(_) => return unsupported(expr, "this integer does not fit 64 bits"),
                },
                Constant::Float(f) => toml::Value::Float(*f),
                Constant::None => return unsupported(
                    expr,
                    "None (JSON null) cannot be written in a blast body yet: leave the field out",
                ),
                _ => return unsupported(expr, "this constant has no JSON form"),
            },
            Expr::UnaryOp(u) if matches!(u.op, ast::UnaryOp::USub) => {
                match self.json(&u.operand)? {
                    toml::Value::Integer(i) => toml::Value::Integer(-i),
                    toml::Value::Float(f) => toml::Value::Float(-f),
                    _ => return unsupported(expr, "only numbers can be negative"),
                }
            }
            Expr::Dict(d) => {
                let mut table = toml::map::Map::new();
                for (key, value) in d.keys.iter().zip(&d.values) {
                    let Some(key) = key else {
                        return unsupported(
                            value,
                            "** in a dict literal is not supported: write the keys out",
                        );
                    };
                    let key = match key {
                        Expr::Constant(ast::ExprConstant {
                            value: Constant::Str(s),
                            ..
                        }) => s.clone(),
                        other => self.template(other)?,
                    };
                    table.insert(key, self.json(value)?);
                }
                toml::Value::Table(table)
            }
            Expr::List(l) => {
                toml::Value::Array(l.elts.iter().map(|e| self.json(e)).collect::<Result<_>>()?)
            }
            Expr::Tuple(t) => {
                toml::Value::Array(t.elts.iter().map(|e| self.json(e)).collect::<Result<_>>()?)
            }
            Expr::Name(n) => match self.constants.get(n.id.as_str()) {
                Some(Literal::Json(v)) => v.clone(),
                Some(Literal::Text(t)) => toml::Value::String(t.clone()),
                Some(Literal::List(items)) => {
                    toml::Value::Array(items.iter().map(literal_json).collect())
                }
                None => toml::Value::String(self.template(expr)?),
            },
            Expr::Subscript(_) | Expr::Attribute(_) => match lookup(expr, self.constants) {
                Some(found) => literal_json(&found),
                None => toml::Value::String(self.template(expr)?),
            },
            _ => toml::Value::String(self.template(expr)?),
        })
    }
}

/// A module-level constant, if `expr` is one blast can carry (text, numbers, lists, dicts).
pub(crate) fn literal(expr: &Expr, constants: &HashMap<String, Literal>) -> Option<Literal> {
    let scope = Scope {
        user: "",
        constants,
        captured: &[],
    };
    match expr {
        Expr::List(ast::ExprList { elts, .. }) | Expr::Tuple(ast::ExprTuple { elts, .. }) => elts
            .iter()
            .map(|e| literal(e, constants))
            .collect::<Option<_>>()
            .map(Literal::List),
        Expr::Constant(ast::ExprConstant {
            value: Constant::Str(s),
            ..
        }) => Some(Literal::Text(s.clone())),
        Expr::Constant(_) | Expr::Dict(_) | Expr::UnaryOp(_) => {
            scope.json(expr).ok().map(Literal::Json)
        }
        Expr::Name(n) => constants.get(n.id.as_str()).cloned(),
        // A module-level counter, `itertools.count()`: a number unique in the run.
        Expr::Call(c)
            if matches!(
                dotted(&c.func).as_deref(),
                Some("itertools.count" | "count")
            ) && c.args.len() <= 1 =>
        {
            Some(Literal::Text(SEQ.into()))
        }
        _ => lookup(expr, constants),
    }
}

/// The template of a run-wide sequence number, which an `itertools.count()` becomes.
pub(crate) const SEQ: &str = "{{seq}}";

/// A value inside a constant: `CONFIG["host"]`, `USERS[0]`, or `config.HOST` for a module
/// imported with `import config`.
fn lookup(expr: &Expr, constants: &HashMap<String, Literal>) -> Option<Literal> {
    let index = |i: &ast::bigint::BigInt| usize::try_from(i.to_string().parse::<i64>().ok()?).ok();
    match expr {
        Expr::Attribute(_) => constants.get(&dotted(expr)?).cloned(),
        Expr::Subscript(s) => {
            let outer = literal(&s.value, constants)?;
            let Expr::Constant(ast::ExprConstant { value: key, .. }) = s.slice.as_ref() else {
                return None;
            };
            match (outer, key) {
                (Literal::Json(toml::Value::Table(t)), Constant::Str(k)) => {
                    t.get(k).cloned().map(|v| match v {
                        toml::Value::String(s) => Literal::Text(s),
                        other => Literal::Json(other),
                    })
                }
                (Literal::List(items), Constant::Int(i)) => items.get(index(i)?).cloned(),
                (Literal::Json(toml::Value::Array(items)), Constant::Int(i)) => {
                    items.get(index(i)?).cloned().map(Literal::Json)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn literal_json(l: &Literal) -> toml::Value {
    match l {
        Literal::Text(t) => toml::Value::String(t.clone()),
        Literal::Json(v) => v.clone(),
        Literal::List(items) => toml::Value::Array(items.iter().map(literal_json).collect()),
    }
}

/// A number or string constant as the text a template puts in.
fn json_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `a.b.c` for a chain of names and attributes.
pub(crate) fn dotted(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Name(n) => Some(n.id.to_string()),
        Expr::Attribute(a) => Some(format!("{}.{}", dotted(&a.value)?, a.attr)),
        _ => None,
    }
}
