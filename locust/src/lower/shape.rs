//! `LoadTestShape` subclasses: their `tick()` evaluated second by second by a small evaluator
//! over the parsed tree (numbers, lists, dicts, arithmetic, `math`, comparisons, `if`, `for`
//! over lists and ranges), never by Python, and the users it asks for turned into blast's
//! linear stages as Locust's runner would move towards them at the spawn rate.

use rustpython_parser::ast::{self, CmpOp, Constant, Expr, Operator, Stmt, UnaryOp};
use std::collections::HashMap;

use crate::value::dotted;

/// The longest shape evaluated: a day, one tick a second.
const MAX_SECONDS: u32 = 86_400;
/// Statements one tick may run before it is taken for an endless loop.
const MAX_STEPS: u32 = 100_000;
/// Statements all ticks may run: a shape costlier than this is not evaluated.
const MAX_TOTAL_STEPS: u64 = 20_000_000;

/// A Python value the evaluator knows.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    None,
    Bool(bool),
    Num(f64),
    Str(String),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
}

/// What a statement did.
enum Flow {
    Next,
    Break,
    Continue,
    Return(Value),
}

type Eval<T> = Result<T, String>;

/// The shape as blast's `[load] stages`, and its run time in seconds.
pub(super) struct Stages {
    pub text: String,
    pub run_time: u32,
}

/// Evaluates the shape class `c`: its class attributes, then `tick()` once a second.
pub(super) fn stages(c: &ast::StmtClassDef) -> Eval<Stages> {
    let mut attrs: HashMap<String, Value> = HashMap::new();
    let mut tick = None;
    for stmt in &c.body {
        match stmt {
            Stmt::Assign(a) => {
                let [Expr::Name(n)] = a.targets.as_slice() else {
                    return Err("only simple class attributes translate in a LoadTestShape".into());
                };
                let value = Shape {
                    attrs: &attrs,
                    locals: HashMap::new(),
                    t: 0.0,
                    steps: 0,
                }
                .expr(&a.value)?;
                attrs.insert(n.id.to_string(), value);
            }
            Stmt::FunctionDef(f) if f.name.as_str() == "tick" => tick = Some(f),
            Stmt::FunctionDef(_) | Stmt::Pass(_) => {}
            Stmt::Expr(e) if matches!(e.value.as_ref(), Expr::Constant(_)) => {}
            _ => return Err("this statement does not translate in a LoadTestShape".into()),
        }
    }
    let tick = tick.ok_or("a LoadTestShape needs a tick() method")?;
    // Locust's runner: each second, move the user count towards the target at the spawn rate.
    let mut points = vec![(0u32, 0.0f64)];
    let mut users = 0.0;
    let mut end = None;
    let mut total = 0u64;
    for second in 0..MAX_SECONDS {
        let mut shape = Shape {
            attrs: &attrs,
            locals: HashMap::new(),
            t: f64::from(second),
            steps: 0,
        };
        let flow = shape.block(&tick.body)?;
        total += u64::from(shape.steps);
        if total > MAX_TOTAL_STEPS {
            return Err("tick() is too costly to evaluate for every second of the run".into());
        }
        let target = match flow {
            Flow::Return(Value::None) | Flow::Next => {
                end = Some(second);
                break;
            }
            Flow::Return(Value::List(pair)) if pair.len() >= 2 => match (&pair[0], &pair[1]) {
                (Value::Num(u), Value::Num(r)) if *u >= 0.0 && *r > 0.0 => (*u, *r),
                _ => {
                    return Err(
                        "tick() must return (users, spawn_rate) with numbers, or None".into(),
                    )
                }
            },
            _ => return Err("tick() must return (users, spawn_rate), or None".into()),
        };
        let (goal, rate) = target;
        users = if goal > users {
            (users + rate).min(goal)
        } else {
            (users - rate).max(goal)
        };
        points.push((second + 1, users.round()));
    }
    let run_time =
        end.ok_or("tick() never returns None within a day: give the run time with -t")?;
    points.truncate(run_time as usize + 1);
    Ok(Stages {
        text: linear(&points),
        run_time,
    })
}

/// The points as blast's stages: runs of equal slope merged, `Ns:USERS` each.
fn linear(points: &[(u32, f64)]) -> String {
    let mut stages: Vec<(u32, f64)> = Vec::new();
    let mut slope = None;
    for pair in points.windows(2) {
        let ((t0, u0), (t1, u1)) = (pair[0], pair[1]);
        let s = (u1 - u0) / f64::from(t1 - t0);
        match (slope, stages.last_mut()) {
            (Some(prev), Some(last)) if prev == s => *last = (last.0 + (t1 - t0), u1),
            _ => stages.push((t1 - t0, u1)),
        }
        slope = Some(s);
    }
    stages
        .iter()
        .map(|(d, u)| format!("{d}s:{u}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One evaluation of `tick()` at run time `t`.
struct Shape<'a> {
    attrs: &'a HashMap<String, Value>,
    locals: HashMap<String, Value>,
    t: f64,
    steps: u32,
}

impl Shape<'_> {
    fn block(&mut self, body: &[Stmt]) -> Eval<Flow> {
        for stmt in body {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return Err("tick() runs too long: an endless loop?".into());
            }
            let flow = self.stmt(stmt)?;
            if !matches!(flow, Flow::Next) {
                return Ok(flow);
            }
        }
        Ok(Flow::Next)
    }

    fn stmt(&mut self, stmt: &Stmt) -> Eval<Flow> {
        Ok(match stmt {
            Stmt::Return(r) => Flow::Return(match &r.value {
                Some(v) => self.expr(v)?,
                None => Value::None,
            }),
            Stmt::Assign(a) => {
                let value = self.expr(&a.value)?;
                for target in &a.targets {
                    self.assign(target, value.clone())?;
                }
                Flow::Next
            }
            Stmt::AugAssign(a) => {
                let Expr::Name(n) = a.target.as_ref() else {
                    return Err("only names can be updated in tick()".into());
                };
                let old = self.name(n.id.as_str())?;
                let new = binary(&a.op, old, self.expr(&a.value)?)?;
                self.locals.insert(n.id.to_string(), new);
                Flow::Next
            }
            Stmt::If(i) => match truthy(&self.expr(&i.test)?) {
                true => self.block(&i.body)?,
                false => self.block(&i.orelse)?,
            },
            Stmt::For(f) => {
                let items = match self.expr(&f.iter)? {
                    Value::List(items) => items,
                    Value::Dict(pairs) => pairs.into_iter().map(|(k, _)| k).collect(),
                    _ => return Err("for loops in tick() go over lists or range()".into()),
                };
                for item in items {
                    self.assign(&f.target, item)?;
                    match self.block(&f.body)? {
                        Flow::Break => break,
                        Flow::Return(v) => return Ok(Flow::Return(v)),
                        Flow::Next | Flow::Continue => {}
                    }
                }
                Flow::Next
            }
            Stmt::Break(_) => Flow::Break,
            Stmt::Continue(_) => Flow::Continue,
            Stmt::Pass(_) => Flow::Next,
            Stmt::Expr(_) => Flow::Next,
            _ => return Err("this statement does not translate in tick()".into()),
        })
    }

    fn assign(&mut self, target: &Expr, value: Value) -> Eval<()> {
        match (target, value) {
            (Expr::Name(n), v) => {
                self.locals.insert(n.id.to_string(), v);
            }
            (Expr::Tuple(t), Value::List(items)) if t.elts.len() == items.len() => {
                for (e, v) in t.elts.iter().zip(items) {
                    self.assign(e, v)?;
                }
            }
            _ => return Err("this assignment does not translate in tick()".into()),
        }
        Ok(())
    }

    fn name(&self, name: &str) -> Eval<Value> {
        self.locals
            .get(name)
            .cloned()
            .ok_or_else(|| format!("{name} is not known in tick()"))
    }

    fn expr(&mut self, e: &Expr) -> Eval<Value> {
        Ok(match e {
            Expr::Constant(c) => match &c.value {
                Constant::None => Value::None,
                Constant::Bool(b) => Value::Bool(*b),
                Constant::Int(i) => {
                    Value::Num(i.to_string().parse().map_err(|_| "a huge integer")?)
                }
                Constant::Float(f) => Value::Num(*f),
                Constant::Str(s) => Value::Str(s.clone()),
                _ => return Err("this constant does not translate in tick()".into()),
            },
            Expr::Name(n) => self.name(n.id.as_str())?,
            Expr::Attribute(a) => match (dotted(&a.value).as_deref(), a.attr.as_str()) {
                (Some("self"), attr) => self
                    .attrs
                    .get(attr)
                    .cloned()
                    .ok_or_else(|| format!("self.{attr} is not a class attribute"))?,
                (Some("math"), "pi") => Value::Num(std::f64::consts::PI),
                (Some("math"), "e") => Value::Num(std::f64::consts::E),
                _ => {
                    return Err(format!(
                        "{} does not translate in tick()",
                        dotted(e).unwrap_or_default()
                    ))
                }
            },
            Expr::Tuple(ast::ExprTuple { elts, .. }) | Expr::List(ast::ExprList { elts, .. }) => {
                Value::List(elts.iter().map(|x| self.expr(x)).collect::<Eval<_>>()?)
            }
            Expr::Dict(d) => {
                let mut pairs = Vec::new();
                for (k, v) in d.keys.iter().zip(&d.values) {
                    let k = k.as_ref().ok_or("** in a dict does not translate")?;
                    pairs.push((self.expr(k)?, self.expr(v)?));
                }
                Value::Dict(pairs)
            }
            Expr::BinOp(b) => {
                let (l, r) = (self.expr(&b.left)?, self.expr(&b.right)?);
                binary(&b.op, l, r)?
            }
            Expr::UnaryOp(u) => match (&u.op, self.expr(&u.operand)?) {
                (UnaryOp::USub, Value::Num(x)) => Value::Num(-x),
                (UnaryOp::UAdd, Value::Num(x)) => Value::Num(x),
                (UnaryOp::Not, v) => Value::Bool(!truthy(&v)),
                _ => return Err("this unary operation does not translate in tick()".into()),
            },
            Expr::BoolOp(b) => {
                let and = matches!(b.op, ast::BoolOp::And);
                let mut last = Value::Bool(and);
                for v in &b.values {
                    last = self.expr(v)?;
                    if truthy(&last) != and {
                        break;
                    }
                }
                last
            }
            Expr::Compare(c) => {
                let mut left = self.expr(&c.left)?;
                for (op, right) in c.ops.iter().zip(&c.comparators) {
                    let right = self.expr(right)?;
                    if !compare(op, &left, &right)? {
                        return Ok(Value::Bool(false));
                    }
                    left = right;
                }
                Value::Bool(true)
            }
            Expr::IfExp(i) => match truthy(&self.expr(&i.test)?) {
                true => self.expr(&i.body)?,
                false => self.expr(&i.orelse)?,
            },
            Expr::Subscript(s) => match (self.expr(&s.value)?, self.expr(&s.slice)?) {
                (Value::List(items), Value::Num(i)) => {
                    let i = if i < 0.0 { items.len() as f64 + i } else { i };
                    items
                        .get(i as usize)
                        .cloned()
                        .ok_or("an index past the end of a list")?
                }
                (Value::Dict(pairs), key) => pairs
                    .into_iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v)
                    .ok_or("a key missing from a dict")?,
                _ => return Err("this subscript does not translate in tick()".into()),
            },
            Expr::Call(c) => self.call(c)?,
            _ => return Err("this expression does not translate in tick()".into()),
        })
    }

    fn call(&mut self, c: &ast::ExprCall) -> Eval<Value> {
        let name = dotted(&c.func).unwrap_or_default();
        if name == "self.get_run_time" {
            return Ok(Value::Num(self.t));
        }
        let args: Vec<Value> = c.args.iter().map(|a| self.expr(a)).collect::<Eval<_>>()?;
        let nums: Vec<f64> = args
            .iter()
            .filter_map(|a| match a {
                Value::Num(x) => Some(*x),
                _ => None,
            })
            .collect();
        let one = || {
            if nums.len() == 1 && args.len() == 1 {
                Ok(nums[0])
            } else {
                Err(format!("{name}() takes one number here"))
            }
        };
        Ok(Value::Num(match name.as_str() {
            "math.sin" => one()?.sin(),
            "math.cos" => one()?.cos(),
            "math.sqrt" => one()?.sqrt(),
            "math.exp" => one()?.exp(),
            "math.log" => one()?.ln(),
            "math.floor" => one()?.floor(),
            "int" => one()?.trunc(),
            "math.ceil" => one()?.ceil(),
            "abs" => one()?.abs(),
            "float" => one()?,
            // Python rounds halves to even.
            "round" if args.len() == 1 => {
                let x = one()?;
                let r = x.round();
                if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
                    r - x.signum()
                } else {
                    r
                }
            }
            "min" | "max" if nums.len() == args.len() && !nums.is_empty() => {
                let fold = if name == "min" { f64::min } else { f64::max };
                nums.iter().copied().reduce(fold).unwrap_or_default()
            }
            "len" => match args.as_slice() {
                [Value::List(items)] => items.len() as f64,
                [Value::Dict(pairs)] => pairs.len() as f64,
                [Value::Str(s)] => s.chars().count() as f64,
                _ => return Err("len() of this does not translate".into()),
            },
            "range" => {
                let (start, stop, step) = match nums.as_slice() {
                    [stop] => (0.0, *stop, 1.0),
                    [start, stop] => (*start, *stop, 1.0),
                    [start, stop, step] if *step != 0.0 => (*start, *stop, *step),
                    _ => return Err("range() takes one to three numbers".into()),
                };
                let mut items = Vec::new();
                let mut i = start;
                while (step > 0.0 && i < stop) || (step < 0.0 && i > stop) {
                    items.push(Value::Num(i));
                    i += step;
                    if items.len() > MAX_STEPS as usize {
                        return Err("range() too long".into());
                    }
                }
                return Ok(Value::List(items));
            }
            _ => return Err(format!("{name}() does not translate in tick()")),
        }))
    }
}

fn binary(op: &Operator, l: Value, r: Value) -> Eval<Value> {
    let (Value::Num(a), Value::Num(b)) = (&l, &r) else {
        return match (op, l, r) {
            (Operator::Add, Value::List(mut a), Value::List(b)) => {
                if a.len() + b.len() > MAX_STEPS as usize {
                    return Err("a list too long in tick()".into());
                }
                a.extend(b);
                Ok(Value::List(a))
            }
            _ => Err(
                "arithmetic on something other than numbers does not translate in tick()".into(),
            ),
        };
    };
    let (a, b) = (*a, *b);
    Ok(Value::Num(match op {
        Operator::Add => a + b,
        Operator::Sub => a - b,
        Operator::Mult => a * b,
        Operator::Div if b != 0.0 => a / b,
        Operator::FloorDiv if b != 0.0 => (a / b).floor(),
        Operator::Mod if b != 0.0 => a - b * (a / b).floor(),
        Operator::Pow => a.powf(b),
        _ => return Err("division by zero in tick()".into()),
    }))
}

fn compare(op: &CmpOp, l: &Value, r: &Value) -> Eval<bool> {
    if let (Value::Num(a), Value::Num(b)) = (l, r) {
        return Ok(match op {
            CmpOp::Lt => a < b,
            CmpOp::LtE => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::GtE => a >= b,
            CmpOp::Eq => a == b,
            CmpOp::NotEq => a != b,
            _ => return Err("this comparison does not translate in tick()".into()),
        });
    }
    match op {
        CmpOp::Eq | CmpOp::Is => Ok(l == r),
        CmpOp::NotEq | CmpOp::IsNot => Ok(l != r),
        _ => Err("this comparison does not translate in tick()".into()),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::None => false,
        Value::Bool(b) => *b,
        Value::Num(x) => *x != 0.0,
        Value::Str(s) => !s.is_empty(),
        Value::List(items) => !items.is_empty(),
        Value::Dict(pairs) => !pairs.is_empty(),
    }
}
