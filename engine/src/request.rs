//! Request templates: everything about a request that is known before the run.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, HOST, USER_AGENT};
use http::{HeaderMap, Method, Uri};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use crate::EngineError;

/// Where requests go: the scheme, the addresses the host resolved to, and what the `Host`
/// header says.
#[derive(Clone, Debug)]
pub struct Target {
    /// `https://`: connections run TLS.
    pub tls: bool,
    /// The host as written in the URL, without IPv6 brackets; TLS checks certificates against
    /// it (SNI).
    pub host: String,
    /// The port, from the URL or the scheme's default.
    pub port: u16,
    /// Every address the host resolved to, in the resolver's order; connections try each in
    /// turn until one connects.
    pub addrs: Arc<[SocketAddr]>,
    /// `host[:port]` sent in the `Host` header; the port only when it is not the scheme's.
    pub authority: String,
    /// `Basic ...` from `user:pass@` in the URL, sent as `Authorization` as curl does.
    pub basic_auth: Option<String>,
}

impl Target {
    /// Parses an `http://` or `https://` URL and resolves its host once, before the run; the
    /// returned URI holds the path and query.
    pub fn parse(url: &str) -> Result<(Target, Uri), EngineError> {
        let bad = |why: &str| EngineError::InvalidUrl {
            url: url.to_string(),
            why: why.to_string(),
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad(
                "expected an absolute URL such as http://127.0.0.1:8080/",
            ));
        };
        let (tls, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "http" => (false, 80),
            "https" => (true, 443),
            _ => return Err(bad("the scheme must be http:// or https://")),
        };
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        let path = match path.split('#').next().unwrap_or("") {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        let uri: Uri = path.parse().map_err(|_| bad("not a valid path"))?;
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((user, hostport)) => (Some(user), hostport),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport).map_err(|why| bad(&why))?;
        let port = port.unwrap_or(default_port);
        // Checked here so that every TLS connection has a name to verify ("127.1" resolves,
        // but no certificate can be checked against it).
        if tls && rustls::pki_types::ServerName::try_from(host.as_str()).is_err() {
            return Err(bad(
                "the host is neither a DNS name nor an IP address that a TLS certificate can name",
            ));
        }
        // A name no resolver could know is bad input; a well-formed one DNS does not know is
        // a target that cannot be reached.
        let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':');
        if host.is_empty() || !host.chars().all(name_char) {
            return Err(bad("the host is not a valid name or IP address"));
        }
        let unresolvable = |why: String| EngineError::Unresolvable {
            host: host.clone(),
            why,
        };
        let addrs: Vec<SocketAddr> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| unresolvable(e.to_string()))?
            .collect();
        if addrs.is_empty() {
            return Err(unresolvable("it resolves to no address".into()));
        }
        let shown = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let authority = if port == default_port {
            shown
        } else {
            format!("{shown}:{port}")
        };
        let basic_auth = userinfo.map(|u| {
            use base64::Engine as _;
            let credentials: Vec<u8> = percent_encoding::percent_decode_str(u).collect();
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(credentials)
            )
        });
        let target = Target {
            tls,
            host,
            port,
            addrs: addrs.into(),
            authority,
            basic_auth,
        };
        Ok((target, uri))
    }

    /// The URL's origin, `scheme://authority`.
    pub fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }
}

/// Splits `host[:port]` or `[v6]:port`; a port must be a number from 1 to 65535.
fn split_host_port(text: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or("an IPv6 address needs its closing ]")?;
        match after {
            "" => (host, None),
            p => (
                host,
                Some(p.strip_prefix(':').ok_or("expected :port after ]")?),
            ),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err("missing host".into());
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(format!("port {p:?} is not a number from 1 to 65535")),
        },
    };
    Ok((host.to_string(), port))
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
        if let Some(auth) = &target.basic_auth {
            let auth = HeaderValue::from_str(auth)
                .map_err(|_| EngineError::InvalidRequest("invalid user:pass in the URL".into()))?;
            map.entry(AUTHORIZATION).or_insert(auth);
        }
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
        assert_eq!(t.addrs[..], ["127.0.0.1:9".parse().unwrap()]);
        assert_eq!(t.authority, "127.0.0.1:9");
        assert_eq!(uri.path_and_query().unwrap().as_str(), "/a?b=1");
        let (t, uri) = Target::parse("http://[::1]").unwrap();
        assert_eq!((t.addrs[0].port(), t.host.as_str()), (80, "::1"));
        assert_eq!((t.authority.as_str(), uri.path()), ("[::1]", "/"));
        let (t, _) = Target::parse("https://[::1]:8443/x").unwrap();
        assert_eq!(
            (t.tls, t.port, t.authority.as_str()),
            (true, 8443, "[::1]:8443")
        );
        assert_eq!(t.origin(), "https://[::1]:8443");
        // The scheme's own port is left out of Host, as browsers and curl do.
        let (t, _) = Target::parse("http://127.0.0.1:80/").unwrap();
        assert_eq!(t.authority, "127.0.0.1");
        let (t, _) = Target::parse("HTTPS://127.0.0.1:443?q=1").unwrap();
        assert_eq!((t.tls, t.authority.as_str()), (true, "127.0.0.1"));
    }

    #[test]
    fn localhost_resolves_to_every_address() {
        // Found by hand: a host that resolves but that no certificate can name.
        assert!(Target::parse("https://127.1:9/").is_err());
        assert!(Target::parse("http://127.1:9/").is_ok());
        let (t, _) = Target::parse("http://localhost:9/").unwrap();
        assert!(!t.addrs.is_empty());
        assert!(t
            .addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 9));
        assert_eq!(t.authority, "localhost:9");
    }

    #[test]
    fn user_and_password_become_basic_auth() {
        let (t, _) = Target::parse("http://al%40ice:s3cret@127.0.0.1:9/").unwrap();
        // base64("al@ice:s3cret")
        assert_eq!(t.basic_auth.as_deref(), Some("Basic YWxAaWNlOnMzY3JldA=="));
        assert_eq!(t.authority, "127.0.0.1:9");
        let get = RequestTemplate::new(&t, "GET", "/", &[], Bytes::new()).unwrap();
        assert!(wire(&get).contains("\r\nauthorization: Basic YWxAaWNlOnMzY3JldA==\r\n"));
    }

    #[test]
    fn rejects_what_it_cannot_send() {
        for url in [
            "127.0.0.1:80",
            "ftp://x/",
            "http//x",
            "not a url",
            "http://127.0.0.1:0/",
            "http://127.0.0.1:99999/",
            "http://127.0.0.1:abc/",
            "http://127.0.0.1:-1/",
            "http://[::1/",
            "http://:80/",
        ] {
            assert!(Target::parse(url).is_err(), "{url}");
        }
        let e = Target::parse("http://127.0.0.1:99999/")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("port \"99999\" is not a number from 1 to 65535"),
            "{e}"
        );
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
