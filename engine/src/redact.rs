//! Secrets out of every artifact: the one place that knows which values are credentials.
//!
//! Every writer of something a person may share (the JSON record, the HTML page, the CSV
//! files, `blast report`'s markdown, logs, the live view, Kubernetes manifests) passes the
//! command line, URLs and free text through here, as curl does for `Authorization` in its
//! traces. A value is a secret when it is:
//! - the value of a header named `Authorization`, `Proxy-Authorization`, `Cookie`,
//!   `X-Api-Key`, or any name containing `token`, `secret`, `password` or `key`;
//! - the userinfo of a URL (`https://user:password@host/`);
//! - the value of `name=value` with such a name (`password=` in a PostgreSQL connection
//!   string, `?api_key=` in a query);
//! - the value of `--web-auth`.

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Whether a header, parameter or capture named `name` holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    matches!(
        name.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "x-api-key"
    ) || ["token", "secret", "password", "key"]
        .iter()
        .any(|word| name.contains(word))
}

/// `text` with every URL's userinfo and every secret `name=value`'s value replaced.
pub fn text(text: &str) -> String {
    pairs(&userinfo(text))
}

/// A command line as it may be recorded: flags' secret values, `-H` headers' secret values,
/// and whatever [`text`] finds in each argument, replaced.
pub fn arguments<S: AsRef<str>>(args: &[S]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut after = None;
    for arg in args.iter().map(AsRef::as_ref) {
        let shown = match (after.take(), arg.split_once('=')) {
            (Some("--web-auth"), _) => REDACTED.to_string(),
            (Some(_header), _) => header_line(arg),
            (None, Some(("--web-auth", _))) => format!("--web-auth={REDACTED}"),
            (None, Some(("--header", line))) => format!("--header={}", header_line(line)),
            _ if arg.starts_with("-H") && arg.len() > 2 => format!("-H{}", header_line(&arg[2..])),
            _ => {
                if matches!(arg, "--web-auth" | "-H" | "--header") {
                    after = Some(arg);
                }
                text(arg)
            }
        };
        out.push(shown);
    }
    out
}

/// A `Name: value` header line with a secret's value replaced, and [`text`] applied.
fn header_line(line: &str) -> String {
    match line.split_once(':') {
        Some((name, _)) if is_secret_name(name) => format!("{name}: {REDACTED}"),
        _ => text(line),
    }
}

/// `text` with the userinfo of every `scheme://user:password@host` replaced.
fn userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace() || c == '"')
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(sign) => {
                out.push_str(REDACTED);
                out.push_str(&authority[sign..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `text` with the value of every secret `name=value` replaced (up to a space, `&`, `;`, a
/// quote or the end).
fn pairs(text: &str) -> String {
    let is_value_end = |c: char| c.is_whitespace() || matches!(c, '&' | ';' | '"' | '\'' | ',');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let (before, after) = rest.split_at(eq);
        let is_name = |c: &char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        // Name characters are ASCII: one byte each.
        let name_start = before.len() - before.chars().rev().take_while(is_name).count();
        out.push_str(before);
        out.push('=');
        let after = &after[1..];
        let end = after.find(is_value_end).unwrap_or(after.len());
        if is_secret_name(&before[name_start..]) && end > 0 {
            out.push_str(REDACTED);
        } else {
            out.push_str(&after[..end]);
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_keeps_no_secret() {
        let args = [
            "blast",
            "https://alice:pw1@api.example/v1?api_key=k2&page=2",
            "-H",
            "Authorization: Bearer S3CRET",
            "--header=X-Api-Key: k3",
            "-HCookie: session=c4",
            "-H",
            "Accept: text/plain",
            "--web-auth",
            "bob:pw5",
            "--web-auth=carol:pw6",
            "--monitor-postgres",
            "postgres://pg:pw7@127.0.0.1:5432/app",
            "--monitor-cmd",
            "db=psql 'host=db password=pw8 user=x' -c 'select 1'",
            "-u",
            "10",
        ];
        let shown = arguments(&args).join(" ");
        for secret in [
            "pw1", "k2", "S3CRET", "k3", "c4", "pw5", "pw6", "pw7", "pw8",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        for kept in [
            "blast",
            "https://[redacted]@api.example/v1?api_key=[redacted]&page=2",
            "Authorization: [redacted]",
            "--header=X-Api-Key: [redacted]",
            "-HCookie: [redacted]",
            "Accept: text/plain",
            "--web-auth [redacted]",
            "--web-auth=[redacted]",
            "postgres://[redacted]@127.0.0.1:5432/app",
            "host=db password=[redacted] user=x",
            "-u 10",
        ] {
            assert!(shown.contains(kept), "{kept} not in {shown}");
        }
    }

    #[test]
    fn ordinary_text_is_left_as_it_was() {
        for text in [
            "GET /api/v1/items?page=2&sort=name",
            "http://127.0.0.1:8080/path@v2",
            "user@example.com wrote a=b",
            "keep-alive: timeout=5",
            "",
        ] {
            assert_eq!(super::text(text), text);
        }
        // Found by fuzz/: a multi-byte character before `=`.
        assert_eq!(super::text("\u{82}=\u{b7}"), "\u{82}=\u{b7}");
        assert_eq!(super::text("é password=x"), "é password=[redacted]");
        assert!(!is_secret_name("Accept"));
        assert!(is_secret_name("X-Auth-Token"));
    }
}
