//! Templates: text with `{{...}}` placeholders, compiled before the run and filled per request.
//!
//! A placeholder is a user variable (`{{token}}`) or a generator: `{{user_id}}`, `{{seq}}`,
//! `{{random_int 1 100}}`, `{{uuid}}`, `{{pick a b c}}`. Each piece knows where it lands (URL
//! path, header, JSON string, bare JSON value) and is escaped for that place.

use std::cell::Cell;

/// A value held by a user variable or made by a generator.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// Text (a JSON string, a picked word, a uuid).
    Text(String),
    /// A bare JSON value: a number, `true`, an object...
    Json(String),
}

impl Value {
    /// The shard of `shards` that owns this value in a pool: a hash of its text that every
    /// process computes alike (FNV-1a), so shards never hand out the same value.
    pub fn shard(&self, shards: usize) -> usize {
        if shards <= 1 {
            return 0;
        }
        let (Value::Text(s) | Value::Json(s)) = self;
        (fnv1a(s.as_bytes()) % shards as u64) as usize
    }

    /// Converts a captured JSON value.
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::String(s) => Value::Text(s.clone()),
            other => Value::Json(other.to_string()),
        }
    }
}

/// The 64-bit FNV-1a hash of `bytes`: the same in every process and on every machine.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Where a piece of a template lands, which decides how values are escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// URL path and query: bytes outside the safe set are percent-encoded.
    Url,
    /// A header value or plain body: CR and LF are dropped so a value cannot add lines.
    Text,
    /// Inside a JSON string: JSON-escaped.
    JsonString,
    /// A whole JSON value: text is quoted, JSON goes in as it is.
    JsonValue,
    /// A key or value of a form body (`application/x-www-form-urlencoded`): form-encoded.
    Form,
}

/// A value made fresh for each request.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Generator {
    /// The user's global index.
    UserId,
    /// A number unique across the run.
    Seq,
    /// A random integer in `[low, high]`.
    RandomInt(i64, i64),
    /// A random number in `[low, high)` (Python's `random.uniform`, `random.random`).
    RandomFloat(f64, f64),
    /// A random version-4 UUID.
    Uuid,
    /// One of the words, at random.
    Pick(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Literal(String),
    Var(usize, Place),
    Gen(Generator, Place),
}

/// A compiled template.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

/// Turns variable names into slots while compiling; unknown names are errors.
pub(crate) trait Vars {
    /// The slot of variable `name`, if the user class defines it.
    fn slot(&self, name: &str) -> Option<usize>;
}

/// What a user brings to rendering: its variables, random numbers and identity.
pub(crate) struct Context<'a> {
    pub vars: &'a [Option<Value>],
    pub rng: &'a mut fastrand::Rng,
    pub user_id: u64,
    pub worker: usize,
    pub workers: usize,
    pub shard: usize,
    pub shards: usize,
}

/// Rendering needed a variable that has no value yet: its slot.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unset(pub usize);

thread_local! {
    /// Per-worker counter behind `{{seq}}`: interleaved across workers, unique in the run
    /// without any shared state.
    static SEQ: Cell<u64> = const { Cell::new(0) };
}

impl Template {
    /// Compiles `text` whose pieces land in `place`.
    pub fn compile(text: &str, place: Place, vars: &dyn Vars) -> Result<Template, String> {
        let mut t = Template { pieces: Vec::new() };
        t.push_text(text, place, vars)?;
        Ok(t)
    }

    /// Compiles a form body (`a=1&b=x`) from its fields, in order; keys and values are
    /// templates, form-encoded.
    pub fn compile_form(fields: &[(&str, &str)], vars: &dyn Vars) -> Result<Template, String> {
        let mut t = Template { pieces: Vec::new() };
        for (i, (key, value)) in fields.iter().enumerate() {
            if i > 0 {
                t.literal("&");
            }
            t.push_text(key, Place::Form, vars)?;
            t.literal("=");
            t.push_text(value, Place::Form, vars)?;
        }
        Ok(t)
    }

    /// Compiles a JSON body from a TOML value: keys and scalars literal, strings templated.
    /// A string that is exactly one placeholder becomes a whole JSON value, so
    /// `"{{random_int 1 5}}"` sends a number and a captured number stays one.
    pub fn compile_json(value: &toml::Value, vars: &dyn Vars) -> Result<Template, String> {
        let mut t = Template { pieces: Vec::new() };
        t.push_json(value, vars)?;
        Ok(t)
    }

    /// The text with every placeholder written as `[name]`: Locust-style stats names.
    pub fn display_name(source: &str) -> String {
        let mut out = String::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            let Some(close) = rest[open..].find("}}") else {
                break;
            };
            out.push_str(&rest[..open]);
            let inner = rest[open + 2..open + close].trim();
            let word = inner.split_whitespace().next().unwrap_or("");
            out.push('[');
            out.push_str(word);
            out.push(']');
            rest = &rest[open + close + 2..];
        }
        out.push_str(rest);
        out
    }

    /// Appends the rendered template to `out`.
    pub fn render(&self, cx: &mut Context<'_>, out: &mut Vec<u8>) -> Result<(), Unset> {
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.extend_from_slice(s.as_bytes()),
                Piece::Var(slot, place) => {
                    let value = cx.vars[*slot].as_ref().ok_or(Unset(*slot))?;
                    write_value(value, *place, out);
                }
                Piece::Gen(generator, place) => generate(generator, *place, cx, out),
            }
        }
        Ok(())
    }

    fn literal(&mut self, s: &str) {
        match self.pieces.last_mut() {
            Some(Piece::Literal(l)) => l.push_str(s),
            _ => self.pieces.push(Piece::Literal(s.to_string())),
        }
    }

    fn push_text(&mut self, text: &str, place: Place, vars: &dyn Vars) -> Result<(), String> {
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            let close = rest[open..]
                .find("}}")
                .ok_or_else(|| format!("unclosed placeholder in {text:?}: expected }}}}"))?;
            self.escaped(&rest[..open], place);
            let piece = placeholder(rest[open + 2..open + close].trim(), place, vars)?;
            self.pieces.push(piece);
            rest = &rest[open + close + 2..];
        }
        self.escaped(rest, place);
        Ok(())
    }

    /// Literal text of a template, escaped as its place needs.
    fn escaped(&mut self, text: &str, place: Place) {
        match place {
            Place::JsonString => self.literal(&json_escape(text)),
            Place::Form => {
                self.literal(&form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>())
            }
            _ => self.literal(text),
        }
    }

    fn push_json(&mut self, value: &toml::Value, vars: &dyn Vars) -> Result<(), String> {
        match value {
            toml::Value::String(s) => {
                let trimmed = s.trim();
                let whole = trimmed.starts_with("{{")
                    && trimmed.ends_with("}}")
                    && trimmed[2..].find("{{").is_none()
                    && trimmed.find("}}") == Some(trimmed.len() - 2);
                if whole {
                    let inner = trimmed[2..trimmed.len() - 2].trim();
                    let piece = placeholder(inner, Place::JsonValue, vars)?;
                    self.pieces.push(piece);
                } else {
                    self.literal("\"");
                    self.push_text(s, Place::JsonString, vars)?;
                    self.literal("\"");
                }
            }
            toml::Value::Array(items) => {
                self.literal("[");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.literal(",");
                    }
                    self.push_json(item, vars)?;
                }
                self.literal("]");
            }
            toml::Value::Table(table) => {
                self.literal("{");
                for (i, (key, item)) in table.iter().enumerate() {
                    if i > 0 {
                        self.literal(",");
                    }
                    self.literal(&format!("\"{}\":", json_escape(key)));
                    self.push_json(item, vars)?;
                }
                self.literal("}");
            }
            toml::Value::Datetime(d) => self.literal(&format!("\"{d}\"")),
            scalar => self.literal(&scalar.to_string()),
        }
        Ok(())
    }
}

/// Compiles the inside of one `{{...}}`.
fn placeholder(inner: &str, place: Place, vars: &dyn Vars) -> Result<Piece, String> {
    let mut words = inner.split_whitespace();
    let head = words.next().ok_or("empty placeholder {{}}")?;
    let args: Vec<&str> = words.collect();
    let no_args = |g: Generator| {
        if args.is_empty() {
            Ok(g)
        } else {
            Err(format!("{{{{{head}}}}} takes no arguments"))
        }
    };
    let generator = match head {
        "user_id" => no_args(Generator::UserId)?,
        "seq" => no_args(Generator::Seq)?,
        "uuid" => no_args(Generator::Uuid)?,
        "random_int" => {
            let bounds: Vec<i64> = args.iter().filter_map(|a| a.parse().ok()).collect();
            match bounds[..] {
                [low, high] if args.len() == 2 && low <= high => Generator::RandomInt(low, high),
                _ => {
                    return Err(format!(
                        "{{{{{inner}}}}}: expected {{{{random_int LOW HIGH}}}} with integers LOW <= HIGH"
                    ))
                }
            }
        }
        "random_float" => {
            let bounds: Vec<f64> = args.iter().filter_map(|a| a.parse().ok()).collect();
            match bounds[..] {
                [low, high] if args.len() == 2 && low.is_finite() && high.is_finite() && low <= high => {
                    Generator::RandomFloat(low, high)
                }
                _ => {
                    return Err(format!(
                        "{{{{{inner}}}}}: expected {{{{random_float LOW HIGH}}}} with numbers LOW <= HIGH"
                    ))
                }
            }
        }
        "pick" if args.is_empty() => {
            return Err("{{pick}} needs at least one word to pick from".into())
        }
        "pick" => Generator::Pick(args.iter().map(|a| a.to_string()).collect()),
        name if args.is_empty() => {
            return match vars.slot(name) {
                Some(slot) => Ok(Piece::Var(slot, place)),
                None => Err(format!(
                    "unknown variable {{{{{name}}}}}: it is never captured or taken from a pool, and is not a generator (user_id, seq, random_int, random_float, uuid, pick)"
                )),
            }
        }
        _ => return Err(format!("unknown generator in {{{{{inner}}}}}")),
    };
    Ok(Piece::Gen(generator, place))
}

/// Writes a fresh value; numbers go straight into `out`, with no allocation per request.
fn generate(generator: &Generator, place: Place, cx: &mut Context<'_>, out: &mut Vec<u8>) {
    use std::io::Write;
    let number = match generator {
        Generator::UserId => cx.user_id as i64,
        Generator::Seq => {
            let n = SEQ.with(|c| {
                let n = c.get();
                c.set(n + 1);
                n
            });
            // Interleaved across workers, then across shards: unique in the whole run.
            let stream = n * cx.workers as u64 + cx.worker as u64;
            (stream * cx.shards as u64 + cx.shard as u64 + 1) as i64
        }
        Generator::RandomInt(low, high) => cx.rng.i64(*low..=*high),
        Generator::RandomFloat(low, high) => {
            // Digits, '.', 'e' and '-' need no escaping in any place.
            let _ = write!(out, "{}", low + (high - low) * cx.rng.f64());
            return;
        }
        Generator::Uuid => return write_value(&Value::Text(uuid(cx.rng)), place, out),
        Generator::Pick(words) => {
            let word = &words[cx.rng.usize(..words.len())];
            return write_value(&Value::Text(word.clone()), place, out);
        }
    };
    // Digits and '-' need no escaping in any place.
    let _ = write!(out, "{number}");
}

/// A random version-4 UUID in its usual text form.
fn uuid(rng: &mut fastrand::Rng) -> String {
    let mut b = rng.u128(..).to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn write_value(value: &Value, place: Place, out: &mut Vec<u8>) {
    let (Value::Text(s) | Value::Json(s)) = value;
    match place {
        Place::Url => {
            for &b in s.as_bytes() {
                if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b) {
                    out.push(b);
                } else {
                    out.extend_from_slice(format!("%{b:02X}").as_bytes());
                }
            }
        }
        Place::Text => out.extend(s.bytes().filter(|b| !matches!(b, b'\r' | b'\n'))),
        Place::Form => {
            out.extend(form_urlencoded::byte_serialize(s.as_bytes()).flat_map(str::bytes))
        }
        Place::JsonString => out.extend_from_slice(json_escape(s).as_bytes()),
        Place::JsonValue => match value {
            Value::Text(s) => {
                out.push(b'"');
                out.extend_from_slice(json_escape(s).as_bytes());
                out.push(b'"');
            }
            Value::Json(s) => out.extend_from_slice(s.as_bytes()),
        },
    }
}

fn json_escape(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Names(&'static [&'static str]);

    impl Vars for Names {
        fn slot(&self, name: &str) -> Option<usize> {
            self.0.iter().position(|n| *n == name)
        }
    }

    #[test]
    fn seq_numbers_are_unique_across_workers_and_shards() {
        let t = Template::compile("{{seq}}", Place::Text, &Names(&[])).unwrap();
        let mut seen = std::collections::HashSet::new();
        // Each (shard, worker) on a thread of its own, as in a run: SEQ is per thread.
        for shard in 0..3 {
            for worker in 0..2 {
                let t = t.clone();
                let numbers: Vec<String> = std::thread::spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(1);
                    (0..50)
                        .map(|_| {
                            let mut cx = Context {
                                vars: &[],
                                rng: &mut rng,
                                user_id: 0,
                                worker,
                                workers: 2,
                                shard,
                                shards: 3,
                            };
                            let mut out = Vec::new();
                            t.render(&mut cx, &mut out).unwrap();
                            String::from_utf8(out).unwrap()
                        })
                        .collect()
                })
                .join()
                .unwrap();
                for n in numbers {
                    assert!(seen.insert(n.clone()), "{n} twice");
                }
            }
        }
        assert_eq!(seen.len(), 300);
    }

    #[test]
    fn every_shard_owns_its_own_pool_values() {
        let values: Vec<Value> = (0..3000).map(|i| Value::Json(i.to_string())).collect();
        let mut per_shard = [0; 3];
        for v in &values {
            let s = v.shard(3);
            // The same value, written as text or as a number, always lands on one shard.
            let (Value::Json(text) | Value::Text(text)) = v;
            assert_eq!(Value::Text(text.clone()).shard(3), s);
            per_shard[s] += 1;
        }
        assert!(per_shard.iter().all(|&n| n > 800), "{per_shard:?}");
        assert!(values.iter().all(|v| v.shard(1) == 0));
    }

    fn render(t: &Template, vars: &[Option<Value>]) -> Result<String, Unset> {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut cx = Context {
            vars,
            rng: &mut rng,
            user_id: 42,
            worker: 1,
            workers: 2,
            shard: 0,
            shards: 1,
        };
        let mut out = Vec::new();
        t.render(&mut cx, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    const VARS: Names = Names(&["id", "name"]);

    #[test]
    fn variables_are_substituted_and_escaped_for_their_place() {
        let vars = [
            Some(Value::Json("17".into())),
            Some(Value::Text("a b\"\r\n".into())),
        ];
        let url = Template::compile("/d/{{id}}/?q={{name}}", Place::Url, &VARS).unwrap();
        assert_eq!(render(&url, &vars).unwrap(), "/d/17/?q=a%20b%22%0D%0A");
        let header = Template::compile("Token {{name}}", Place::Text, &VARS).unwrap();
        assert_eq!(render(&header, &vars).unwrap(), "Token a b\"");
        let json: toml::Value = toml::from_str(
            r#"j = { id = "{{id}}", label = "x-{{name}}", n = 2, who = "{{name}}" }"#,
        )
        .unwrap();
        let body = Template::compile_json(&json["j"], &VARS).unwrap();
        assert_eq!(
            render(&body, &vars).unwrap(),
            r#"{"id":17,"label":"x-a b\"\r\n","n":2,"who":"a b\"\r\n"}"#
        );
    }

    #[test]
    fn json_bodies_keep_the_key_order_of_the_file() {
        let json: toml::Value =
            toml::from_str(r#"j = { version = "1.0", app_name = "a", target_ring = "b" }"#)
                .unwrap();
        let body = Template::compile_json(&json["j"], &VARS).unwrap();
        assert_eq!(
            render(&body, &[None, None]).unwrap(),
            r#"{"version":"1.0","app_name":"a","target_ring":"b"}"#
        );
    }

    #[test]
    fn unset_variables_stop_rendering() {
        let t = Template::compile("/d/{{id}}/", Place::Url, &VARS).unwrap();
        assert_eq!(render(&t, &[None, None]), Err(Unset(0)));
    }

    #[test]
    fn generators_make_fresh_values() {
        let t = Template::compile(
            "{{user_id}} {{random_int 5 5}} {{pick only}} {{uuid}}",
            Place::Text,
            &VARS,
        )
        .unwrap();
        let out = render(&t, &[]).unwrap();
        let parts: Vec<&str> = out.split(' ').collect();
        assert_eq!(parts[..3], ["42", "5", "only"]);
        let uuid = parts[3];
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        let seq = Template::compile("{{seq}}", Place::Text, &VARS).unwrap();
        let a: u64 = render(&seq, &[]).unwrap().parse().unwrap();
        let b: u64 = render(&seq, &[]).unwrap().parse().unwrap();
        // Worker 1 of 2 owns the even numbers.
        assert_eq!((a % 2, b - a), (0, 2));
    }

    #[test]
    fn form_bodies_encode_keys_literals_and_values() {
        let t = Template::compile_form(
            &[("user name", "a&b {{name}}"), ("n", "{{random_float 2 2}}")],
            &VARS,
        )
        .unwrap();
        let name = Some(Value::Text("é=1 +".into()));
        assert_eq!(
            render(&t, &[None, name]).unwrap(),
            "user+name=a%26b+%C3%A9%3D1+%2B&n=2"
        );
        let t = Template::compile("{{random_float 0.5 1.5}}", Place::Text, &VARS).unwrap();
        let x: f64 = render(&t, &[]).unwrap().parse().unwrap();
        assert!((0.5..1.5).contains(&x), "{x}");
    }

    #[test]
    fn mistakes_are_reported_at_compile_time() {
        for bad in [
            "{{nope}}",
            "{{random_int 5 1}}",
            "{{random_int x}}",
            "{{random_float 2 1}}",
            "{{random_float inf 1}}",
            "{{pick}}",
            "{{uuid 3}}",
            "{{id",
            "{{}}",
        ] {
            assert!(Template::compile(bad, Place::Text, &VARS).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_names_bracket_placeholders() {
        assert_eq!(
            Template::display_name("/api/v1/deployments/{{deployment_id}}/"),
            "/api/v1/deployments/[deployment_id]/"
        );
        assert_eq!(Template::display_name("/x/{{pick a b}}"), "/x/[pick]");
    }
}
