//! One `self.client` (or `self.rest`) call as a request, and the JSON paths read from its
//! response.

use rustpython_parser::ast::{self, Constant, Expr, Ranged};

use crate::model::Request;
use crate::value::{dotted, Scope, Unsupported};

/// The `self.client` methods named after an HTTP method.
const VERBS: [&str; 7] = ["get", "post", "put", "patch", "delete", "head", "options"];

/// `self.client.<verb>`: the HTTP method, or `Some("")` for `self.client.request(method, ...)`.
pub(super) fn client_method<'c>(call: &'c ast::ExprCall, user: &str) -> Option<&'c str> {
    let Expr::Attribute(a) = call.func.as_ref() else {
        return None;
    };
    // FastHttpUser's `self.rest(method, url, ...)`: a JSON request whose response is checked.
    if a.attr.as_str() == "rest" && dotted(&a.value)? == user {
        return Some("");
    }
    if dotted(&a.value)? != format!("{user}.client") {
        return None;
    }
    match a.attr.as_str() {
        v if VERBS.contains(&v) => Some(v),
        "request" => Some(""),
        _ => None,
    }
}

/// One `self.client` call as a request.
pub(super) fn request(
    scope: &Scope<'_>,
    call: &ast::ExprCall,
    verb: &str,
    line: usize,
) -> crate::value::Result<Request> {
    let bad = |e: &Expr, m: &str| {
        Err(Unsupported {
            offset: u32::from(e.range().start()) as usize,
            message: m.into(),
        })
    };
    let mut positional = call.args.iter();
    let method = match verb {
        "" => match positional.next() {
            Some(m) => scope.template(m)?.to_ascii_uppercase(),
            None => return bad(&call.func, "request() needs a method and a URL"),
        },
        v => v.to_ascii_uppercase(),
    };
    let keyword = |name: &str| {
        call.keywords
            .iter()
            .find(|k| k.arg.as_deref() == Some(name))
            .map(|k| &k.value)
    };
    let Some(url) = positional.next().or_else(|| keyword("url")) else {
        return bad(&call.func, "the request has no URL");
    };
    let mut path = scope.template(url)?;
    if path.starts_with("http://") || path.starts_with("https://") {
        return bad(url, "an absolute URL does not translate: give the path, and the host with host = ... or --host");
    }
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let mut r = Request {
        line,
        method,
        ..Request::default()
    };
    // requests applies auth= after headers=: it wins over an Authorization header.
    let mut basic = None;
    for k in &call.keywords {
        let Some(arg) = k.arg.as_deref() else {
            return bad(
                &k.value,
                "**kwargs does not translate: write the keywords out",
            );
        };
        match arg {
            // verify=False is noted by the caller: blast checks certificates unless --insecure.
            "url" | "catch_response" | "verify" | "stream" => {}
            "name" => r.name = Some(scope.template(&k.value)?),
            "headers" => r.headers = headers(scope, &k.value)?,
            "json" => r.json = Some(scope.json(&k.value)?),
            "data" => match &k.value {
                Expr::Call(c)
                    if dotted(&c.func).as_deref() == Some("json.dumps") && c.args.len() == 1 =>
                {
                    r.json = Some(scope.json(&c.args[0])?)
                }
                Expr::Dict(d) => {
                    for (key, value) in d.keys.iter().zip(&d.values) {
                        let Some(key) = key else {
                            return bad(
                                value,
                                "** in a form body does not translate: write the fields out",
                            );
                        };
                        r.form.push((scope.template(key)?, scope.template(value)?));
                    }
                }
                other => r.body = Some(scope.template(other)?),
            },
            "params" => {
                let Expr::Dict(d) = &k.value else {
                    return bad(&k.value, "params must be a dict");
                };
                let mut query = Vec::new();
                for (key, value) in d.keys.iter().zip(&d.values) {
                    let Some(key) = key else {
                        return bad(value, "** in params does not translate");
                    };
                    query.push(format!(
                        "{}={}",
                        query_part(&scope.template(key)?),
                        query_part(&scope.template(value)?)
                    ));
                }
                path.push(if path.contains('?') { '&' } else { '?' });
                path.push_str(&query.join("&"));
            }
            "timeout" => match scope.json(&k.value)? {
                toml::Value::Integer(s) => r.timeout = Some(format!("{s}s")),
                toml::Value::Float(s) => r.timeout = Some(format!("{}ms", (s * 1000.0).round())),
                _ => return bad(&k.value, "timeout must be a number of seconds"),
            },
            "auth" => {
                let pair = match &k.value {
                    Expr::Tuple(t) if t.elts.len() == 2 => {
                        Some((scope.json(&t.elts[0]), scope.json(&t.elts[1])))
                    }
                    _ => None,
                };
                let Some((Ok(toml::Value::String(user)), Ok(toml::Value::String(password)))) = pair
                else {
                    return bad(&k.value, "auth= translates as a (user, password) pair of literals or constants: for other credentials set the Authorization header");
                };
                if user.contains("{{") || password.contains("{{") {
                    return bad(&k.value, "auth= with values known only at run time does not translate: set the Authorization header");
                }
                use base64::Engine as _;
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                basic = Some(format!("Basic {token}"));
            }
            "allow_redirects" => match scope.json(&k.value)? {
                toml::Value::Boolean(b) => r.follow_redirects = Some(b),
                _ => return bad(&k.value, "allow_redirects must be True or False"),
            },
            other => {
                return Err(Unsupported {
                    offset: u32::from(k.range.start()) as usize,
                    message: match other {
                        "files" => "files= (a multipart upload) is not supported: send the body as data=\"...\" with its Content-Type header".into(),
                        _ => format!("the keyword {other}= is not supported: a request translates with name, headers, params, json, data, timeout, allow_redirects, auth, verify and catch_response"),
                    },
                })
            }
        }
    }
    if let Some(basic) = basic {
        r.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
        r.headers.push(("Authorization".into(), basic));
    }
    r.path = path;
    Ok(r)
}

/// Literal query text form-encoded as requests encodes `params`; placeholders left for blast
/// to encode.
pub(super) fn query_part(text: &str) -> String {
    if text.contains("{{") {
        return text.to_string();
    }
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A dict of headers.
pub(super) fn headers(
    scope: &Scope<'_>,
    expr: &Expr,
) -> crate::value::Result<Vec<(String, String)>> {
    let Expr::Dict(d) = expr else {
        return Err(Unsupported {
            offset: u32::from(expr.range().start()) as usize,
            message: "headers must be a dict".into(),
        });
    };
    d.keys
        .iter()
        .zip(&d.values)
        .map(|(k, v)| match k {
            Some(k) => Ok((scope.template(k)?, scope.template(v)?)),
            None => Err(Unsupported {
                offset: u32::from(v.range().start()) as usize,
                message: "** in headers does not translate".into(),
            }),
        })
        .collect()
}

/// `response.json()[k]...` or `.get(k)`: the response's name and the JSON path.
pub(super) fn json_path(expr: &Expr) -> Option<(String, String)> {
    let mut keys = Vec::new();
    let mut e = expr;
    loop {
        match e {
            Expr::Subscript(s) => {
                keys.push(s.slice.as_ref());
                e = &s.value;
            }
            Expr::Attribute(a) if a.attr.as_str() == "js" => {
                let Expr::Name(response) = a.value.as_ref() else {
                    return None;
                };
                return path_of(keys, response.id.as_str());
            }
            Expr::Call(c) => match c.func.as_ref() {
                Expr::Attribute(a) if a.attr.as_str() == "get" && c.args.len() == 1 => {
                    keys.push(&c.args[0]);
                    e = &a.value;
                }
                Expr::Attribute(a) if a.attr.as_str() == "json" && c.args.is_empty() => {
                    let Expr::Name(response) = a.value.as_ref() else {
                        return None;
                    };
                    return path_of(keys, response.id.as_str());
                }
                _ => return None,
            },
            _ => return None,
        }
    }
}

/// The JSON path of `keys` (outermost last) read from `response`.
pub(super) fn path_of(mut keys: Vec<&Expr>, response: &str) -> Option<(String, String)> {
    keys.reverse();
    let mut path = String::new();
    for key in keys {
        match key {
            Expr::Constant(ast::ExprConstant {
                value: Constant::Str(s),
                ..
            }) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(s);
            }
            Expr::Constant(ast::ExprConstant {
                value: Constant::Int(i),
                ..
            }) => path.push_str(&format!("[{i}]")),
            _ => return None,
        }
    }
    (!path.is_empty()).then(|| (response.to_string(), path))
}
