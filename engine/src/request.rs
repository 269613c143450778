//! Request templates: everything about a request that is known before the run.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, HOST, USER_AGENT};
use http::{HeaderMap, Method, Uri};
use std::net::{SocketAddr, ToSocketAddrs};

use crate::EngineError;

/// Where requests go: the resolved socket address and the authority sent as `Host`.
#[derive(Clone, Debug)]
pub struct Target {
    /// Address connections are opened to.
    pub addr: SocketAddr,
    /// `host[:port]` as written in the URL, sent in the `Host` header.
    pub authority: String,
}

impl Target {
    /// Parses an `http://host[:port]` base and resolves it once, before the run.
    pub fn parse(url: &str) -> Result<(Target, Uri), EngineError> {
        let bad = |why: &str| EngineError::InvalidUrl {
            url: url.to_string(),
            why: why.to_string(),
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a valid URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(bad("https is not supported yet; use http://")),
            Some(_) => return Err(bad("the scheme must be http://")),
            None => {
                return Err(bad(
                    "expected an absolute URL such as http://127.0.0.1:8080/",
                ))
            }
        }
        let authority = uri.authority().ok_or_else(|| bad("missing host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let addr = (authority.host().trim_matches(['[', ']']), port)
            .to_socket_addrs()
            .map_err(|e| bad(&format!("cannot resolve host: {e}")))?
            .next()
            .ok_or_else(|| bad("host resolves to no address"))?;
        let target = Target {
            addr,
            authority: authority.as_str().to_string(),
        };
        Ok((target, uri))
    }
}

/// A request compiled before the run: the hot path copies its bytes and never parses.
#[derive(Clone, Debug)]
pub struct RequestTemplate {
    /// Name that groups this request in stats (Locust's `name`).
    pub name: String,
    method: Method,
    /// The whole request as it goes on the wire.
    encoded: Bytes,
}

impl RequestTemplate {
    /// Builds a template for `method path` to `target`, with extra headers and a body.
    ///
    /// `Host`, `User-Agent` and, for a non-empty body, `Content-Length` are filled in unless
    /// `headers` already has them.
    pub fn new(
        target: &Target,
        method: &str,
        path_and_query: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<RequestTemplate, EngineError> {
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| EngineError::InvalidRequest(format!("invalid method {method:?}")))?;
        let path: Uri = path_and_query
            .parse()
            .map_err(|_| EngineError::InvalidRequest(format!("invalid path {path_and_query:?}")))?;
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                EngineError::InvalidRequest(format!("invalid header name {name:?}"))
            })?;
            let value = HeaderValue::from_str(value.trim()).map_err(|_| {
                EngineError::InvalidRequest(format!("invalid value for header {name}"))
            })?;
            map.append(name, value);
        }
        let host = HeaderValue::from_str(&target.authority)
            .map_err(|_| EngineError::InvalidRequest("invalid host".into()))?;
        map.entry(HOST).or_insert(host);
        map.entry(USER_AGENT)
            .or_insert(HeaderValue::from_static(concat!(
                "blast/",
                env!("CARGO_PKG_VERSION")
            )));
        if !body.is_empty() || !matches!(method, Method::GET | Method::HEAD) {
            map.entry(CONTENT_LENGTH)
                .or_insert(HeaderValue::from(body.len()));
        }
        let encoded = encode(&method, &path, &map, &body);
        Ok(RequestTemplate {
            name: path_and_query.to_string(),
            method,
            encoded,
        })
    }

    /// Replaces the stats name (by default the path).
    pub fn with_name(mut self, name: impl Into<String>) -> RequestTemplate {
        self.name = name.into();
        self
    }

    /// The HTTP method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request line, headers and body exactly as written to the socket.
    pub fn encoded(&self) -> &Bytes {
        &self.encoded
    }
}

/// Serialises a request in HTTP/1.1 wire format.
fn encode(method: &Method, path: &Uri, headers: &HeaderMap, body: &Bytes) -> Bytes {
    let mut out = Vec::with_capacity(128 + body.len());
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.to_string().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::parse("http://127.0.0.1:8080/x").unwrap().0
    }

    #[test]
    fn parses_and_resolves_http_urls() {
        let (t, uri) = Target::parse("http://127.0.0.1:9/a?b=1").unwrap();
        assert_eq!(t.addr, "127.0.0.1:9".parse().unwrap());
        assert_eq!(t.authority, "127.0.0.1:9");
        assert_eq!(uri.path_and_query().unwrap().as_str(), "/a?b=1");
        let (t, _) = Target::parse("http://[::1]/").unwrap();
        assert_eq!(t.addr.port(), 80);
    }

    #[test]
    fn rejects_what_it_cannot_send() {
        for url in [
            "127.0.0.1:80",
            "https://x/",
            "ftp://x/",
            "http//x",
            "not a url",
        ] {
            assert!(Target::parse(url).is_err(), "{url}");
        }
    }

    fn wire(t: &RequestTemplate) -> String {
        String::from_utf8(t.encoded().to_vec()).unwrap()
    }

    #[test]
    fn fills_host_and_content_length() {
        let t = RequestTemplate::new(&target(), "POST", "/echo", &[], Bytes::from("hi")).unwrap();
        assert!(wire(&t).contains("\r\nhost: 127.0.0.1:8080\r\n"));
        assert!(wire(&t).contains("\r\ncontent-length: 2\r\n"));
        let get = RequestTemplate::new(&target(), "GET", "/", &[], Bytes::new()).unwrap();
        assert!(!wire(&get).contains("content-length"));
    }

    #[test]
    fn encodes_wire_format() {
        let t = RequestTemplate::new(&target(), "POST", "/a?b=1", &[], Bytes::from("xy")).unwrap();
        let text = wire(&t);
        assert!(text.starts_with("POST /a?b=1 HTTP/1.1\r\n"), "{text}");
        assert!(text.contains("\r\nhost: 127.0.0.1:8080\r\n"), "{text}");
        assert!(text.contains("\r\ncontent-length: 2\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nxy"), "{text}");
    }

    #[test]
    fn user_headers_win_and_bad_ones_are_refused() {
        let h = vec![("Host".to_string(), "example".to_string())];
        let t = RequestTemplate::new(&target(), "GET", "/", &h, Bytes::new()).unwrap();
        assert!(wire(&t).contains("\r\nhost: example\r\n"));
        let bad = vec![("bad header".to_string(), "x".to_string())];
        assert!(RequestTemplate::new(&target(), "GET", "/", &bad, Bytes::new()).is_err());
        assert!(RequestTemplate::new(&target(), "G T", "/", &[], Bytes::new()).is_err());
    }
}
