//! Failures as Locust's `_failures.csv` lists them: one row per (method, name, error), with the
//! error written the way Locust writes it where people grep for it.

use blast_engine::redact;
use blast_engine::{Counters, FailureClass, Snapshot};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// One kind of error a request can end with.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// Connection refused: nothing listening.
    Refused,
    /// Any other connect failure (unreachable, connect timeout).
    Connect,
    /// No complete response within the request timeout.
    Timeout,
    /// The connection was reset or closed before the response.
    Reset,
    /// The response was not valid HTTP/1.1.
    Protocol,
    /// The response lacked what the scenario captures.
    Capture,
    /// A response with a status that does not count as success.
    Status(u16),
    /// A failure whose class needs its reason: a TLS error, a redirect not followed, an
    /// HTTP/2 error code.
    Reason(FailureClass, String),
    /// Failures of a class beyond the distinct reasons kept.
    Other(FailureClass),
}

impl ErrorKind {
    /// Every error in `c` with its count, in a stable order.
    pub fn counts(c: &Counters) -> Vec<(ErrorKind, u64)> {
        let connect = c.failures_of(FailureClass::Connect);
        let mut out = vec![
            (ErrorKind::Refused, c.refused),
            (ErrorKind::Connect, connect - c.refused.min(connect)),
            (ErrorKind::Timeout, c.failures_of(FailureClass::Timeout)),
            (ErrorKind::Reset, c.failures_of(FailureClass::Reset)),
        ];
        // A failure status may come with its reason (a header left out for want of a
        // variable): those rows are apart from the code's plain one.
        for (code, n) in &c.failed_statuses {
            let prefix = ErrorKind::Status(*code).text();
            let explained: u64 = c
                .reasons
                .iter()
                .filter(|((class, reason), _)| {
                    *class == FailureClass::Status && reason.starts_with(&prefix)
                })
                .map(|(_, n)| n)
                .sum();
            out.push((ErrorKind::Status(*code), n.saturating_sub(explained)));
        }
        out.extend(
            c.reasons
                .iter()
                .filter(|((class, _), _)| *class == FailureClass::Status)
                .map(|((class, reason), n)| (ErrorKind::Reason(*class, reason.clone()), *n)),
        );
        // Classes whose failures carry their reasons; the rest of each class has a row of its
        // own (a capture's generic one, for records from before reasons).
        for class in [
            FailureClass::Protocol,
            FailureClass::Capture,
            FailureClass::Check,
            FailureClass::Tls,
            FailureClass::Redirect,
            FailureClass::StreamReset,
            FailureClass::GoAway,
        ] {
            let mut explained = 0;
            for ((of, reason), n) in &c.reasons {
                if *of == class {
                    out.push((ErrorKind::Reason(class, reason.clone()), *n));
                    explained += n;
                }
            }
            let rest = c.failures_of(class).saturating_sub(explained);
            let kind = match class {
                FailureClass::Protocol => ErrorKind::Protocol,
                FailureClass::Capture => ErrorKind::Capture,
                other => ErrorKind::Other(other),
            };
            out.push((kind, rest));
        }
        out.retain(|(_, n)| *n > 0);
        out
    }

    /// The error as Locust words it, so greps for `ConnectionRefusedError` or a status code
    /// written for Locust's files work on blast's.
    pub fn text(&self) -> String {
        match self {
            ErrorKind::Refused => "ConnectionRefusedError(111, 'Connection refused')".into(),
            ErrorKind::Connect => "ConnectTimeoutError('could not connect')".into(),
            ErrorKind::Timeout => {
                "TimeoutError('no complete response within the request timeout')".into()
            }
            ErrorKind::Reset => "ConnectionResetError(104, 'Connection reset by peer')".into(),
            ErrorKind::Protocol => "BadStatusLine('response is not valid HTTP/1.1')".into(),
            ErrorKind::Capture => "CaptureError('the response lacked a captured value')".into(),
            ErrorKind::Status(code) => format!("HTTPError(code={code})"),
            ErrorKind::Reason(FailureClass::Tls, reason) => {
                format!("SSLError({:?})", redact::text(reason))
            }
            // HTTP/2 error codes, as Python's h2 names its exceptions.
            ErrorKind::Reason(FailureClass::StreamReset, code) => {
                format!("StreamResetError({code})")
            }
            ErrorKind::Reason(FailureClass::GoAway, code) => format!("GoAwayError({code})"),
            ErrorKind::Reason(FailureClass::Protocol, reason) => {
                format!("ProtocolError({reason:?})")
            }
            // A redirect's location or a check's words may carry a URL's credentials.
            ErrorKind::Reason(_, reason) => redact::text(reason),
            ErrorKind::Other(FailureClass::Tls) => "SSLError('other reasons')".into(),
            ErrorKind::Other(FailureClass::Check) => "CheckError('other checks')".into(),
            ErrorKind::Other(FailureClass::StreamReset) => "StreamResetError('other codes')".into(),
            ErrorKind::Other(FailureClass::GoAway) => "GoAwayError('other codes')".into(),
            ErrorKind::Other(_) => "RedirectError('other locations')".into(),
        }
    }

    /// The failure class the error belongs to.
    pub fn class(&self) -> FailureClass {
        match *self {
            ErrorKind::Refused | ErrorKind::Connect => FailureClass::Connect,
            ErrorKind::Timeout => FailureClass::Timeout,
            ErrorKind::Reset => FailureClass::Reset,
            ErrorKind::Protocol => FailureClass::Protocol,
            ErrorKind::Capture => FailureClass::Capture,
            ErrorKind::Status(_) => FailureClass::Status,
            ErrorKind::Reason(class, _) | ErrorKind::Other(class) => class,
        }
    }
}

/// One row of the failures table.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FailureRow {
    /// HTTP method.
    pub method: String,
    /// Stats name.
    pub name: String,
    /// The error as Locust words it.
    pub error: String,
    /// How many requests ended with it.
    pub occurrences: u64,
    /// First interval it was seen in, UTC `YYYY-MM-DDTHH:MM:SSZ`.
    pub first_seen: String,
    /// Last interval it was seen in.
    pub last_seen: String,
}

/// When each (name, error) was first and last seen, from the interval snapshots.
#[derive(Default)]
pub struct FailureLog {
    seen: BTreeMap<(usize, ErrorKind), (SystemTime, SystemTime)>,
}

impl FailureLog {
    /// Notes the errors of one interval, which ended at `at`.
    pub fn observe(&mut self, snapshot: &Snapshot<'_>, at: SystemTime) {
        for (i, stats) in snapshot.window.iter().enumerate() {
            for (kind, _) in ErrorKind::counts(&stats.counters) {
                self.seen
                    .entry((i, kind))
                    .and_modify(|(_, last)| *last = at)
                    .or_insert((at, at));
            }
        }
    }

    /// The rows for cumulative stats `names` (method, name, counters), sorted as Locust sorts
    /// them: by occurrences, most first.
    pub fn rows<'a>(
        &self,
        names: impl Iterator<Item = (&'a str, &'a str, &'a Counters)>,
        now: SystemTime,
    ) -> Vec<FailureRow> {
        let mut rows = Vec::new();
        for (i, (method, name, counters)) in names.enumerate() {
            for (kind, n) in ErrorKind::counts(counters) {
                let (first, last) = self
                    .seen
                    .get(&(i, kind.clone()))
                    .copied()
                    .unwrap_or((now, now));
                rows.push(FailureRow {
                    method: method.to_string(),
                    name: name.to_string(),
                    error: kind.text(),
                    occurrences: n,
                    first_seen: crate::time::utc_seconds(first),
                    last_seen: crate::time::utc_seconds(last),
                });
            }
        }
        rows.sort_by_key(|r| std::cmp::Reverse(r.occurrences));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_split_connect_refusals_and_statuses() {
        let mut c = Counters::default();
        c.fail(FailureClass::Connect);
        c.fail(FailureClass::Connect);
        c.refused = 1;
        c.fail(FailureClass::Status);
        c.failed_statuses.insert(409, 1);
        let kinds = ErrorKind::counts(&c);
        assert_eq!(
            kinds,
            [
                (ErrorKind::Refused, 1),
                (ErrorKind::Connect, 1),
                (ErrorKind::Status(409), 1)
            ]
        );
        assert!(ErrorKind::Refused.text().contains("ConnectionRefusedError"));
        assert!(ErrorKind::Status(409).text().contains("409"));
    }

    #[test]
    fn tls_and_redirect_failures_keep_their_reasons() {
        let mut c = Counters::default();
        c.fail_because(FailureClass::Tls, "the server's certificate is not trusted");
        c.fail_because(
            FailureClass::Redirect,
            "redirect to http://x/ leaves http://y",
        );
        c.fail_because(
            FailureClass::Redirect,
            "redirect to http://x/ leaves http://y",
        );
        let kinds = ErrorKind::counts(&c);
        assert_eq!(kinds.len(), 2, "{kinds:?}");
        assert_eq!(
            kinds[0].0.text(),
            "SSLError(\"the server's certificate is not trusted\")"
        );
        assert_eq!(kinds[1].0.text(), "redirect to http://x/ leaves http://y");
        assert_eq!(kinds[1].1, 2);
        // Reasons beyond the kept ones are still counted, in a row of their own.
        for i in 0..=blast_engine::MAX_REASONS {
            c.fail_because(FailureClass::Redirect, &format!("to /{i}"));
        }
        let rest = ErrorKind::counts(&c)
            .into_iter()
            .find(|(k, _)| *k == ErrorKind::Other(FailureClass::Redirect));
        assert_eq!(rest.map(|(_, n)| n), Some(3));
    }

    #[test]
    fn http2_failures_read_with_their_error_codes() {
        let mut c = Counters::default();
        c.fail_because(FailureClass::StreamReset, "INTERNAL_ERROR");
        c.fail_because(FailureClass::GoAway, "ENHANCE_YOUR_CALM");
        c.fail(FailureClass::Protocol);
        let texts: Vec<_> = ErrorKind::counts(&c)
            .iter()
            .map(|(k, n)| (k.text(), *n))
            .collect();
        assert_eq!(
            texts,
            [
                ("BadStatusLine('response is not valid HTTP/1.1')".into(), 1),
                ("StreamResetError(INTERNAL_ERROR)".into(), 1),
                ("GoAwayError(ENHANCE_YOUR_CALM)".into(), 1),
            ]
        );
    }

    #[test]
    fn a_status_with_a_reason_and_a_failed_check_have_rows_of_their_own() {
        let mut c = Counters::default();
        let why = "HTTPError(code=401): sent without its authorization header: {{token}} ...";
        for _ in 0..3 {
            c.fail(FailureClass::Status);
            *c.failed_statuses.entry(401).or_default() += 1;
        }
        c.fail_because(FailureClass::Status, why);
        *c.failed_statuses.entry(401).or_default() += 1;
        c.fail_because(
            FailureClass::Check,
            "CheckError(\"the body lacks \\\"ok\\\"\")",
        );
        let kinds = ErrorKind::counts(&c);
        assert_eq!(
            kinds,
            [
                (ErrorKind::Status(401), 3),
                (ErrorKind::Reason(FailureClass::Status, why.into()), 1),
                (
                    ErrorKind::Reason(
                        FailureClass::Check,
                        "CheckError(\"the body lacks \\\"ok\\\"\")".into()
                    ),
                    1
                ),
            ]
        );
        assert_eq!(kinds[1].0.text(), why);
    }
}
