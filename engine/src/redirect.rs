//! Redirects: where a 3xx answer leads, and the request that follows it.
//!
//! Only same-origin redirects are followed (a load test must not wander off to another host),
//! up to [`MAX_REDIRECTS`] hops, with the method rules of browsers and Python's requests:
//! 303 turns any method but HEAD into GET, 301 and 302 turn a POST into GET, 307 and 308 keep
//! the method and the body.

use crate::request::Target;

/// Hops followed before a chain counts as a redirect failure (Locust's requests allows 30;
/// a load test that needs more is measuring its redirects, not its API).
pub const MAX_REDIRECTS: u32 = 10;

/// The next hop of a followed redirect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// The method of the next request.
    pub method: String,
    /// The path and query of the next request, on the same origin.
    pub path: String,
    /// Whether the original body is sent again (307 and 308).
    pub keep_body: bool,
}

/// Whether `status` is a redirect blast can follow.
pub(crate) fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

impl Redirect {
    /// Where `status` with `location` leads from `request` (the wire bytes just sent) to
    /// `target`; the reason when it is not followed because it leaves the target's origin.
    pub(crate) fn resolve(
        target: &Target,
        request: &[u8],
        status: u16,
        location: &str,
    ) -> Result<Redirect, String> {
        let mut line = request.split(|&b| b == b' ');
        let method = std::str::from_utf8(line.next().unwrap_or(b"GET")).unwrap_or("GET");
        let current = std::str::from_utf8(line.next().unwrap_or(b"/")).unwrap_or("/");
        let path = same_origin_path(target, current, location.trim())
            .ok_or_else(|| format!("redirect to {location} leaves {}", target.origin()))?;
        let to_get = match status {
            303 => method != "HEAD",
            301 | 302 => method == "POST",
            _ => false,
        };
        Ok(Redirect {
            method: if to_get { "GET" } else { method }.to_string(),
            path,
            keep_body: !to_get,
        })
    }

    /// Writes the next hop from the request just sent: the new request line, the same
    /// headers, and the body only when it is kept.
    pub fn rewrite(&self, previous: &[u8], out: &mut Vec<u8>) {
        let head_end = previous
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(previous.len(), |at| at + 4);
        let (head, body) = previous.split_at(head_end);
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let headers = head.split(|&b| b == b'\n').skip(1);
        for line in headers {
            let name = line
                .split(|&b| b == b':')
                .next()
                .unwrap_or(b"")
                .trim_ascii();
            let body_header = [
                &b"content-length"[..],
                b"content-type",
                b"transfer-encoding",
            ]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h));
            if line.trim_ascii().is_empty() || (body_header && !self.keep_body) {
                continue;
            }
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out.extend_from_slice(b"\r\n");
        if self.keep_body {
            out.extend_from_slice(body);
        }
    }
}

/// The path a same-origin `location` names, resolved against the current path by RFC 3986
/// (the `url` crate: dot segments, relative paths, bare queries); `None` when it names another
/// scheme, host or port.
fn same_origin_path(target: &Target, current: &str, location: &str) -> Option<String> {
    let base = url::Url::parse(&format!("{}{current}", target.origin())).ok()?;
    let next = base.join(location).ok()?;
    let same = next.scheme() == base.scheme()
        && next.host() == base.host()
        && next.port_or_known_default() == base.port_or_known_default();
    // A fragment never goes on the wire.
    same.then(|| match next.query() {
        Some(query) => format!("{}?{query}", next.path()),
        None => next.path().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::parse("http://127.0.0.1:8080/").unwrap().0
    }

    fn resolve(request: &str, status: u16, location: &str) -> Result<Redirect, String> {
        Redirect::resolve(&target(), request.as_bytes(), status, location)
    }

    #[test]
    fn same_origin_locations_resolve_to_paths() {
        let get = "GET /a/b?x=1 HTTP/1.1\r\n\r\n";
        let path = |loc| resolve(get, 302, loc).map(|r| r.path);
        assert_eq!(path("/c").unwrap(), "/c");
        assert_eq!(path("c?y=2").unwrap(), "/a/c?y=2");
        assert_eq!(path("?y=2").unwrap(), "/a/b?y=2");
        assert_eq!(path("http://127.0.0.1:8080/d#frag").unwrap(), "/d");
        assert_eq!(path("//127.0.0.1:8080").unwrap(), "/");
        assert_eq!(path("HTTP://127.0.0.1:8080?q").unwrap(), "/?q");
        // RFC 3986, 5.4: the normal and abnormal examples that stay on the origin, from the
        // base http://a/b/c/d;p?q (here on this target).
        let rfc = "GET /b/c/d;p?q HTTP/1.1\r\n\r\n";
        let rfc_path = |loc| resolve(rfc, 302, loc).map(|r| r.path).unwrap();
        for (location, want) in [
            ("g", "/b/c/g"),
            ("./g", "/b/c/g"),
            ("g/", "/b/c/g/"),
            ("/g", "/g"),
            ("?y", "/b/c/d;p?y"),
            ("g?y", "/b/c/g?y"),
            ("#s", "/b/c/d;p?q"),
            ("g#s", "/b/c/g"),
            (";x", "/b/c/;x"),
            ("", "/b/c/d;p?q"),
            (".", "/b/c/"),
            ("./", "/b/c/"),
            ("..", "/b/"),
            ("../", "/b/"),
            ("../g", "/b/g"),
            ("../..", "/"),
            ("../../", "/"),
            ("../../g", "/g"),
            ("../../../g", "/g"),
            ("../../../../g", "/g"),
            ("/./g", "/g"),
            ("/../g", "/g"),
            ("g.", "/b/c/g."),
            (".g", "/b/c/.g"),
            ("g..", "/b/c/g.."),
            ("..g", "/b/c/..g"),
            ("./../g", "/b/g"),
            ("./g/.", "/b/c/g/"),
            ("g/./h", "/b/c/g/h"),
            ("g/../h", "/b/c/h"),
            ("g;x=1/./y", "/b/c/g;x=1/y"),
            ("g;x=1/../y", "/b/c/y"),
        ] {
            assert_eq!(rfc_path(location), want, "{location:?}");
        }
        for other in [
            "http://127.0.0.1:8081/",
            "https://127.0.0.1:8080/",
            "http://example.com/",
            "//example.com:8080/",
            "ftp://127.0.0.1:8080/",
        ] {
            let e = path(other).unwrap_err();
            assert!(
                e.contains(other) && e.contains("http://127.0.0.1:8080"),
                "{e}"
            );
        }
    }

    #[test]
    fn methods_change_as_browsers_change_them() {
        let post = "POST /login HTTP/1.1\r\n\r\n";
        let to = |status, req| resolve(req, status, "/next").unwrap();
        for status in [301, 302, 303] {
            let r = to(status, post);
            assert_eq!((r.method.as_str(), r.keep_body), ("GET", false), "{status}");
        }
        for status in [307, 308] {
            let r = to(status, post);
            assert_eq!((r.method.as_str(), r.keep_body), ("POST", true), "{status}");
        }
        let put = "PUT /x HTTP/1.1\r\n\r\n";
        assert_eq!(to(302, put).method, "PUT");
        assert_eq!(to(303, put).method, "GET");
        assert_eq!(to(303, "HEAD / HTTP/1.1\r\n\r\n").method, "HEAD");
    }

    #[test]
    fn rewrite_keeps_headers_and_drops_the_body_on_a_change_to_get() {
        let post = b"POST /login HTTP/1.1\r\nhost: h\r\ncontent-type: application/json\r\ncontent-length: 2\r\ncookie: a=1\r\n\r\n{}";
        let mut out = Vec::new();
        let get = Redirect::resolve(&target(), post, 303, "/home").unwrap();
        get.rewrite(post, &mut out);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "GET /home HTTP/1.1\r\nhost: h\r\ncookie: a=1\r\n\r\n"
        );
        out.clear();
        let keep = Redirect::resolve(&target(), post, 307, "/again").unwrap();
        keep.rewrite(post, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("POST /again HTTP/1.1\r\nhost: h\r\n"),
            "{text}"
        );
        assert!(
            text.ends_with("content-length: 2\r\ncookie: a=1\r\n\r\n{}"),
            "{text}"
        );
    }
}
