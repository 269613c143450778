//! Counters and histograms for one request name, and how they merge.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Highest latency recorded, in microseconds (one hour); larger values count as this.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Significant figures kept by every latency histogram.
const SIGNIFICANT_FIGURES: u8 = 3;

/// Why a request failed. Every failed request has exactly one class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureClass {
    /// The TCP connection could not be opened (refused, unreachable, connect timeout).
    Connect,
    /// The TLS handshake failed (e.g. an untrusted certificate); the reason is kept.
    Tls,
    /// No complete response within the request timeout.
    Timeout,
    /// The connection was reset or closed before the response was complete.
    Reset,
    /// A response arrived with a status that does not count as success (>= 400 by default).
    Status,
    /// The response could not be parsed as HTTP/1.1.
    Protocol,
    /// The response lacked what the script captures from it (e.g. a JSON field).
    Capture,
    /// A redirect that is not followed: to another origin, or past the hop limit.
    Redirect,
    /// The response failed a check of its body (Locust's `catch_response`); the reason is kept.
    Check,
    /// HTTP/2: the server reset the request's stream (RST_STREAM); its error code is the reason.
    StreamReset,
    /// HTTP/2: the server closed the connection with GOAWAY before answering the request (and
    /// the one retry, where allowed, failed too); its error code is the reason.
    GoAway,
}

/// How many failure classes there are.
pub const CLASSES: usize = FailureClass::ALL.len();

impl FailureClass {
    /// Every class, in the order used by [`Counters::failures`].
    pub const ALL: [FailureClass; 11] = [
        FailureClass::Connect,
        FailureClass::Tls,
        FailureClass::Timeout,
        FailureClass::Reset,
        FailureClass::Status,
        FailureClass::Protocol,
        FailureClass::Capture,
        FailureClass::Redirect,
        FailureClass::Check,
        FailureClass::StreamReset,
        FailureClass::GoAway,
    ];

    /// Short lowercase name used in summaries and JSON keys.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Connect => "connect",
            FailureClass::Tls => "tls",
            FailureClass::Timeout => "timeout",
            FailureClass::Reset => "reset",
            FailureClass::Status => "status",
            FailureClass::Protocol => "protocol",
            FailureClass::Capture => "capture",
            FailureClass::Redirect => "redirect",
            FailureClass::Check => "check",
            FailureClass::StreamReset => "stream_reset",
            FailureClass::GoAway => "goaway",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Plain event counts of one request name (or of a whole run).
///
/// Serialized (in shard records) with zero counts left out, failures keyed by class name and
/// reasons as `[class, reason, count]` triples.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    /// Requests answered with a success status.
    #[serde(skip_serializing_if = "is_zero")]
    pub ok: u64,
    /// Failed requests by [`FailureClass`], indexed in the order of [`FailureClass::ALL`].
    #[serde(with = "by_class", skip_serializing_if = "all_zero")]
    pub failures: [u64; CLASSES],
    /// Status failures by status code.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub failed_statuses: BTreeMap<u16, u64>,
    /// Tasks that could not run (e.g. their pool was empty): neither sent nor failed.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: u64,
    /// Connect failures that were refusals (nothing listening), a subset of `Connect`.
    #[serde(skip_serializing_if = "is_zero")]
    pub refused: u64,
    /// Response body bytes (without status lines and headers).
    #[serde(skip_serializing_if = "is_zero")]
    pub body_bytes: u64,
    /// Requests sent but cut off when the run stopped.
    #[serde(skip_serializing_if = "is_zero")]
    pub cancelled: u64,
    /// Bytes written to sockets, request lines and headers included.
    #[serde(skip_serializing_if = "is_zero")]
    pub bytes_sent: u64,
    /// Bytes read from sockets, status lines and headers included.
    #[serde(skip_serializing_if = "is_zero")]
    pub bytes_received: u64,
    /// TCP connections opened successfully.
    #[serde(skip_serializing_if = "is_zero")]
    pub connections: u64,
    /// Open model: sends that started later than [`crate::LATE_AFTER`] behind their schedule.
    #[serde(skip_serializing_if = "is_zero")]
    pub late_sends: u64,
    /// Connections opened in place of one the server closed or made unusable (idle close,
    /// `Connection: close`, its keep-alive timeout, unsolicited bytes). Not failures.
    #[serde(skip_serializing_if = "is_zero")]
    pub reconnects: u64,
    /// Requests sent again on a fresh connection after a reused one closed before answering.
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: u64,
    /// Redirects followed (each hop); the request counts once, under its first name.
    #[serde(skip_serializing_if = "is_zero")]
    pub redirects: u64,
    /// Total TCP connect time of the connections opened, in microseconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub connect_us: u64,
    /// TLS handshakes completed.
    #[serde(skip_serializing_if = "is_zero")]
    pub tls_handshakes: u64,
    /// TLS handshakes that resumed an earlier session.
    #[serde(skip_serializing_if = "is_zero")]
    pub tls_resumed: u64,
    /// Total TLS handshake time, in microseconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub tls_handshake_us: u64,
    /// HTTP/2: request bodies that had to wait for the server's flow-control window.
    #[serde(skip_serializing_if = "is_zero")]
    pub flow_control_stalls: u64,
    /// HTTP/2: total time request bodies waited for flow-control window, in microseconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub flow_control_stall_us: u64,
    /// Why failures happened where the class alone does not say (a TLS error, a redirect's
    /// location), with counts; at most [`MAX_REASONS`] distinct reasons are kept.
    #[serde(with = "triples", skip_serializing_if = "BTreeMap::is_empty")]
    pub reasons: BTreeMap<(FailureClass, String), u64>,
}

/// Distinct failure reasons kept per counters; more are counted in their class only, so a
/// target answering with endless distinct locations cannot grow memory.
pub const MAX_REASONS: usize = 32;

impl Counters {
    /// Requests that finished, failures included (cancelled ones excluded).
    pub fn requests(&self) -> u64 {
        self.ok + self.failed()
    }

    /// Requests that failed, all classes together.
    pub fn failed(&self) -> u64 {
        self.failures.iter().sum()
    }

    /// Failures of one class.
    pub fn failures_of(&self, class: FailureClass) -> u64 {
        self.failures[class.index()]
    }

    /// Counts one failure of `class`.
    pub fn fail(&mut self, class: FailureClass) {
        self.failures[class.index()] += 1;
    }

    /// Counts one failure of `class` and why it happened.
    pub fn fail_because(&mut self, class: FailureClass, reason: &str) {
        self.fail(class);
        self.add_reason(class, reason, 1);
    }

    fn add_reason(&mut self, class: FailureClass, reason: &str, n: u64) {
        let key = (class, reason.to_string());
        if let Some(count) = self.reasons.get_mut(&key) {
            *count += n;
        } else if self.reasons.len() < MAX_REASONS {
            self.reasons.insert(key, n);
        }
    }

    /// Mean TCP connect time of the connections opened.
    pub fn mean_connect(&self) -> Option<Duration> {
        (self.connections > 0).then(|| Duration::from_micros(self.connect_us / self.connections))
    }

    /// Mean TLS handshake time.
    pub fn mean_tls_handshake(&self) -> Option<Duration> {
        (self.tls_handshakes > 0)
            .then(|| Duration::from_micros(self.tls_handshake_us / self.tls_handshakes))
    }

    /// Adds every count of `other` to this one.
    pub fn add(&mut self, other: &Counters) {
        self.ok += other.ok;
        for (mine, theirs) in self.failures.iter_mut().zip(other.failures) {
            *mine += theirs;
        }
        for (status, n) in &other.failed_statuses {
            *self.failed_statuses.entry(*status).or_default() += n;
        }
        self.skipped += other.skipped;
        self.refused += other.refused;
        self.body_bytes += other.body_bytes;
        self.cancelled += other.cancelled;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.connections += other.connections;
        self.late_sends += other.late_sends;
        self.reconnects += other.reconnects;
        self.retries += other.retries;
        self.redirects += other.redirects;
        self.connect_us += other.connect_us;
        self.tls_handshakes += other.tls_handshakes;
        self.tls_resumed += other.tls_resumed;
        self.tls_handshake_us += other.tls_handshake_us;
        self.flow_control_stalls += other.flow_control_stalls;
        self.flow_control_stall_us += other.flow_control_stall_us;
        for ((class, reason), n) in &other.reasons {
            self.add_reason(*class, reason, *n);
        }
    }
}

/// Latency histograms and counters of one request name over some span of time.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Response time in microseconds, failed requests included (as Locust counts them; a
    /// timeout or reset counts the time until it happened). Open model: from the intended
    /// start; closed: from the send.
    pub latency_us: Histogram<u64>,
    /// The part of `latency_us` that failed requests make up; created at the first failure.
    pub failed_us: Option<Histogram<u64>>,
    /// Open model only: time from the actual send to the end of the response, in microseconds.
    pub service_us: Option<Histogram<u64>>,
    /// Event counts.
    pub counters: Counters,
}

impl Stats {
    /// Empty stats; `with_service` keeps a service-time histogram beside the latency one.
    pub fn new(with_service: bool) -> Stats {
        Stats {
            latency_us: new_histogram(),
            failed_us: None,
            service_us: with_service.then(new_histogram),
            counters: Counters::default(),
        }
    }

    /// Records one response: its latency and, in the open model, its service time.
    pub fn record(&mut self, latency: Duration, service: Duration) {
        record(&mut self.latency_us, latency);
        if let Some(h) = &mut self.service_us {
            record(h, service);
        }
    }

    /// Records one failed request that took `latency`: in the latency, and as failed.
    pub fn record_failed(&mut self, latency: Duration, service: Duration) {
        self.record(latency, service);
        record(self.failed_us.get_or_insert_with(new_histogram), latency);
    }

    /// The latency of successful requests only.
    pub fn ok_latency_us(&self) -> Histogram<u64> {
        let mut ok = self.latency_us.clone();
        if let Some(failed) = &self.failed_us {
            // Every failed value was recorded in both, so the subtraction cannot underflow.
            ok.subtract(failed)
                .expect("failed latencies are part of all latencies");
        }
        ok
    }

    /// Adds `other` into this one exactly (histograms bucket by bucket).
    pub fn add(&mut self, other: &Stats) {
        // Both sides are built by `new_histogram` (or read back as it builds them): same
        // layout, and this side grows to the other's range, so `add` cannot fail.
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms share bounds");
        if let (Some(mine), Some(theirs)) = (&mut self.service_us, &other.service_us) {
            mine.add(theirs).expect("histograms share bounds");
        }
        if let Some(theirs) = &other.failed_us {
            self.failed_us
                .get_or_insert_with(new_histogram)
                .add(theirs)
                .expect("histograms share bounds");
        }
        self.counters.add(&other.counters);
    }

    /// Empties the stats in place, keeping the histograms' memory.
    pub fn reset(&mut self) {
        self.latency_us.reset();
        self.failed_us = None;
        if let Some(h) = &mut self.service_us {
            h.reset();
        }
        self.counters = Counters::default();
    }
}

/// A histogram for latencies in microseconds: from 1 µs, three significant figures. Its counts
/// grow with the largest value recorded (up to one hour): a run of millisecond requests keeps
/// a third of the memory of a histogram sized for an hour (64 KB, not 192 KB), and a worker
/// holds several of them per request name.
pub fn new_histogram() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 2, SIGNIFICANT_FIGURES)
        .expect("static histogram bounds are valid");
    h.auto(true);
    h
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn all_zero(counts: &[u64; CLASSES]) -> bool {
    counts.iter().all(|n| *n == 0)
}

/// `failures` as a map from class name to count, so the format does not depend on the order
/// of [`FailureClass::ALL`].
mod by_class {
    use super::FailureClass;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(
        counts: &[u64; super::CLASSES],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(
            FailureClass::ALL
                .iter()
                .zip(counts)
                .filter(|(_, n)| **n > 0),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u64; super::CLASSES], D::Error> {
        let map = BTreeMap::<FailureClass, u64>::deserialize(d)?;
        let mut counts = [0; super::CLASSES];
        for (class, n) in map {
            counts[class.index()] = n;
        }
        Ok(counts)
    }
}

/// `reasons` as a list of `[class, reason, count]`: JSON map keys cannot be pairs.
mod triples {
    use super::FailureClass;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;

    type Reasons = BTreeMap<(FailureClass, String), u64>;

    pub fn serialize<S: Serializer>(reasons: &Reasons, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(reasons.iter().map(|((class, why), n)| (class, why, n)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Reasons, D::Error> {
        let list = Vec::<(FailureClass, String, u64)>::deserialize(d)?;
        Ok(list.into_iter().map(|(c, w, n)| ((c, w), n)).collect())
    }
}

/// Records `d` in microseconds. Zero is below the histogram's lowest trackable value:
/// sub-microsecond responses count as 1; above an hour, as an hour. (Not `saturating_record`:
/// it clamps to the histogram's current range instead of growing it.)
fn record(h: &mut Histogram<u64>, d: Duration) {
    let micros = (d.as_micros() as u64).clamp(1, MAX_LATENCY_US);
    h.record(micros)
        .expect("a histogram made by new_histogram grows to any value up to an hour");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_include_failures_but_not_cancellations() {
        let mut c = Counters {
            ok: 5,
            cancelled: 7,
            ..Counters::default()
        };
        c.fail(FailureClass::Status);
        c.fail(FailureClass::Connect);
        assert_eq!(c.requests(), 7);
        assert_eq!(c.failed(), 2);
        assert_eq!(c.failures_of(FailureClass::Connect), 1);
    }

    #[test]
    fn add_merges_histograms_exactly() {
        let mut a = Stats::new(true);
        let mut b = Stats::new(true);
        a.record(Duration::from_millis(1), Duration::from_micros(500));
        b.record(Duration::from_millis(3), Duration::from_micros(700));
        b.counters.ok = 1;
        a.add(&b);
        assert_eq!(a.latency_us.len(), 2);
        assert_eq!(a.service_us.as_ref().unwrap().len(), 2);
        assert_eq!(a.counters.ok, 1);
        assert!(a.latency_us.max() >= 3000 && a.latency_us.max() < 3010);
        a.reset();
        assert_eq!(a.latency_us.len(), 0);
    }

    #[test]
    fn failed_requests_count_in_the_latency_and_can_be_taken_out() {
        let mut a = Stats::new(false);
        a.record(Duration::from_millis(2), Duration::ZERO);
        let mut b = Stats::new(false);
        b.record_failed(Duration::from_secs(60), Duration::ZERO);
        a.add(&b);
        assert_eq!(a.latency_us.len(), 2);
        assert!(a.latency_us.max() >= 60_000_000);
        let ok = a.ok_latency_us();
        assert_eq!(ok.len(), 1);
        assert!(ok.max() < 3_000);
    }

    #[test]
    fn zero_and_huge_latencies_are_clamped_not_dropped() {
        let mut s = Stats::new(false);
        s.record(Duration::ZERO, Duration::ZERO);
        s.record(Duration::from_secs(10_000), Duration::ZERO);
        assert_eq!(s.latency_us.len(), 2);
    }
}
