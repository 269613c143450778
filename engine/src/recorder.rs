//! A worker's own stats: recorded per request with no sharing, shipped once per interval.

use std::time::Duration;

use crate::connection::{ConnectFailure, Opened};
use crate::stats::{FailureClass, Stats};

/// One worker's stats for the current interval, one [`Stats`] per request name.
pub(crate) struct Recorder {
    names: Vec<Stats>,
    /// Largest event-loop lag seen this interval.
    lag_max: Duration,
    in_flight: Vec<u64>,
    with_service: bool,
}

/// What a worker ships to the aggregator at the end of each interval; also what a
/// [`crate::Replay`] is fed with, one per shard and interval.
#[derive(Clone, Debug)]
pub struct Delta {
    /// Which worker (or shard) it comes from, from 0.
    pub worker: usize,
    /// The interval's number, from 0.
    pub tick: u64,
    /// The span the delta covers, from the start of the run: its real start and end, however
    /// late the worker's timer fired.
    pub span: (Duration, Duration),
    /// The interval's stats, one per request name.
    pub names: Vec<Stats>,
    /// Users (or open-model connections) running when the delta was taken.
    pub users: u64,
    /// Requests sent and not finished when the delta was taken.
    pub in_flight: u64,
    /// Open model: the worker's slots due so far, and those of them not sent yet (at the last
    /// delta: never sent, i.e. missed).
    pub slots: (u64, u64),
    /// Largest event-loop lag of the interval, in microseconds.
    pub lag_max_us: u64,
    /// This worker sends nothing after this delta.
    pub last: bool,
}

/// Everything in a [`Delta`] that the worker, not the recorder, knows.
pub(crate) struct DeltaShape {
    pub worker: usize,
    pub tick: u64,
    pub span: (Duration, Duration),
    pub users: u64,
    pub slots: (u64, u64),
    pub last: bool,
}

impl Recorder {
    pub fn new(names: usize, with_service: bool) -> Recorder {
        Recorder {
            names: (0..names).map(|_| Stats::new(with_service)).collect(),
            lag_max: Duration::ZERO,
            in_flight: vec![0; names],
            with_service,
        }
    }

    /// A connection opened for a request of `name`.
    pub fn connected(&mut self, name: usize, opened: &Opened) {
        let c = &mut self.names[name].counters;
        c.connections += 1;
        c.connect_us += opened.connect.as_micros() as u64;
        if let Some((handshake, resumed)) = opened.handshake {
            c.tls_handshakes += 1;
            c.tls_resumed += u64::from(resumed);
            c.tls_handshake_us += handshake.as_micros() as u64;
        }
    }

    /// The connection a request of `name` would have reused was not usable any more.
    pub fn reconnected(&mut self, name: usize) {
        self.names[name].counters.reconnects += 1;
    }

    /// A request of `name` is sent again on a fresh connection.
    pub fn retried(&mut self, name: usize) {
        self.names[name].counters.retries += 1;
    }

    /// A sent request of `name` was redirected and is followed: the next hop is its sequel.
    pub fn followed(&mut self, name: usize) {
        self.in_flight[name] -= 1;
        self.names[name].counters.redirects += 1;
    }

    /// A request of `name` went out; `late` when it started behind its schedule.
    pub fn sent(&mut self, name: usize, late: bool) {
        self.in_flight[name] += 1;
        self.names[name].counters.late_sends += u64::from(late);
    }

    /// A sent request got a complete response with `status`, judged by the script (with the
    /// reason of a failure, where the class alone does not say).
    pub fn answered(
        &mut self,
        name: usize,
        status: u16,
        verdict: Result<(), (FailureClass, Option<&str>)>,
        (latency, service): (Duration, Duration),
        bytes: (u64, u64),
        body_bytes: u64,
    ) {
        self.in_flight[name] -= 1;
        let stats = &mut self.names[name];
        match verdict {
            Ok(()) => stats.record(latency, service),
            Err(_) => stats.record_failed(latency, service),
        }
        let counters = &mut stats.counters;
        match verdict {
            Ok(()) => counters.ok += 1,
            Err((class, reason)) => {
                match reason {
                    Some(reason) => counters.fail_because(class, reason),
                    None => counters.fail(class),
                }
                if class == FailureClass::Status {
                    *counters.failed_statuses.entry(status).or_default() += 1;
                }
            }
        }
        stats.counters.body_bytes += body_bytes;
        stats.counters.bytes_sent += bytes.0;
        stats.counters.bytes_received += bytes.1;
    }

    /// A sent request failed without a usable response after `(latency, service)`, with
    /// `written` bytes of it sent.
    pub fn broke(
        &mut self,
        name: usize,
        (class, reason): (FailureClass, Option<&str>),
        (latency, service): (Duration, Duration),
        written: u64,
    ) {
        self.in_flight[name] -= 1;
        let stats = &mut self.names[name];
        stats.record_failed(latency, service);
        let c = &mut stats.counters;
        match reason {
            Some(reason) => c.fail_because(class, reason),
            None => c.fail(class),
        }
        c.bytes_sent += written;
    }

    /// HTTP/2: a request body of `name` waited `wait` for the server's flow-control window.
    pub fn flow_stalled(&mut self, name: usize, wait: Duration) {
        let c = &mut self.names[name].counters;
        c.flow_control_stalls += 1;
        c.flow_control_stall_us += wait.as_micros() as u64;
    }

    /// The worker's event loop ran a timer `lag` late.
    pub fn loop_lag(&mut self, lag: Duration) {
        self.lag_max = self.lag_max.max(lag);
    }

    /// A task could not run; counted under `name`, neither sent nor failed.
    pub fn skipped(&mut self, name: usize) {
        self.names[name].counters.skipped += 1;
    }

    /// A request could not be sent because no connection could be opened.
    pub fn unconnected(&mut self, name: usize, failure: &ConnectFailure) {
        let c = &mut self.names[name].counters;
        // A TCP failure's class and refusal flag say it all; a TLS or HTTP/2 handshake
        // failure needs its reason.
        match failure.class {
            FailureClass::Connect => c.fail(FailureClass::Connect),
            class => c.fail_because(class, &failure.reason),
        }
        c.refused += u64::from(failure.refused);
    }

    /// A request of `name` was cut off by the stop between two of its hops: cancelled.
    pub fn abandoned(&mut self, name: usize) {
        self.names[name].counters.cancelled += 1;
    }

    /// The run is over: whatever is still in flight is counted as cancelled.
    pub fn cancel_in_flight(&mut self) {
        for (stats, n) in self.names.iter_mut().zip(&mut self.in_flight) {
            stats.counters.cancelled += std::mem::take(n);
        }
    }

    /// Hands over this interval's stats and starts a fresh interval in `spare` (the stats of an
    /// interval the aggregator has merged, emptied here and reused: no allocation per
    /// interval), or in new stats when there is none to reuse yet.
    pub fn take(&mut self, shape: DeltaShape, spare: Option<Vec<Stats>>) -> Delta {
        let fresh = match spare.filter(|s| s.len() == self.names.len()) {
            Some(mut spare) => {
                spare.iter_mut().for_each(Stats::reset);
                spare
            }
            None => (0..self.names.len())
                .map(|_| Stats::new(self.with_service))
                .collect(),
        };
        Delta {
            worker: shape.worker,
            tick: shape.tick,
            span: shape.span,
            names: std::mem::replace(&mut self.names, fresh),
            users: shape.users,
            in_flight: self.in_flight.iter().sum(),
            slots: shape.slots,
            lag_max_us: std::mem::take(&mut self.lag_max).as_micros() as u64,
            last: shape.last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sent_request_ends_in_exactly_one_bucket() {
        let mut r = Recorder::new(2, false);
        for _ in 0..4 {
            r.sent(0, false);
        }
        let times = (Duration::from_millis(1), Duration::ZERO);
        r.answered(0, 200, Ok(()), times, (10, 20), 2);
        r.answered(
            0,
            409,
            Err((FailureClass::Status, None)),
            times,
            (10, 20),
            2,
        );
        r.broke(0, (FailureClass::Timeout, None), times, 0);
        let refused = ConnectFailure {
            class: FailureClass::Connect,
            refused: true,
            reason: "refused".into(),
        };
        r.unconnected(1, &refused);
        r.skipped(1);
        r.cancel_in_flight();
        let shape = |tick, last| DeltaShape {
            worker: 3,
            tick,
            span: (Duration::ZERO, Duration::from_secs(1)),
            users: 0,
            slots: (0, 0),
            last,
        };
        let d = r.take(shape(7, true), None);
        let c = &d.names[0].counters;
        assert_eq!((c.ok, c.failed(), c.cancelled), (1, 2, 1));
        assert_eq!((c.bytes_sent, c.bytes_received), (20, 40));
        assert_eq!(c.failed_statuses.get(&409), Some(&1));
        assert_eq!(d.names[1].counters.failures_of(FailureClass::Connect), 1);
        assert_eq!(d.names[1].counters.skipped, 1);
        assert_eq!((d.worker, d.tick, d.last), (3, 7, true));
        // The merged stats come back to hold the next interval: emptied, nothing carried over.
        assert_eq!(
            r.take(shape(8, false), Some(d.names)).names[0]
                .counters
                .requests(),
            0
        );
        let reused = r.take(shape(9, false), None);
        assert_eq!(reused.names[0].counters, crate::stats::Counters::default());
        assert_eq!(reused.names[1].counters.skipped, 0);
        assert!(reused.names[0].latency_us.is_empty());
    }
}
