//! Scripts: what each user sends, decided by the caller, driven by the engine.
//!
//! The engine knows sockets, schedules and stats; a [`Script`] knows requests. Each user is a
//! [`User`] created on the worker thread that runs it: it writes its next request as wire bytes,
//! judges the response, and says when to rest. [`Requests`] is the simplest script (fixed
//! requests in turn, as wrk); `blast-scenarios` implements Locust-style users.

use std::time::Instant;

use crate::redirect::Redirect;
use crate::request::RequestTemplate;
use crate::stats::FailureClass;

/// What results are grouped under: the method and the stats name (Locust's `name`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Name {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Stats name, e.g. `/api/v1/deployments/[id]/`.
    pub name: String,
}

/// Who a user is: unique across the whole run, all its shards included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserId {
    /// Global user index, from 0, unique across shards; the same index is reused after a
    /// user stops.
    pub index: u64,
    /// Worker thread running the user.
    pub worker: usize,
    /// Worker threads in this process.
    pub workers: usize,
    /// This process's shard, from 0 (`--shard 2/8` is shard 1 of 8).
    pub shard: usize,
    /// Shards of the run (1 without `--shard`).
    pub shards: usize,
}

/// The behaviour of every user of a run. Shared by all workers.
pub trait Script: Send + Sync + 'static {
    /// Stats names; [`Action::Send`] refers to them by index.
    fn names(&self) -> &[Name];
    /// A new user; called on the worker thread that will run it.
    fn user(&self, id: UserId) -> Box<dyn User>;
}

/// One user's state and logic. Lives on one worker thread.
pub trait User {
    /// Decides what to do next; for [`Action::Send`] the request is written into `request`
    /// (cleared by the caller) as complete HTTP/1.1 wire bytes.
    fn next(&mut self, request: &mut Vec<u8>) -> Action;
    /// Judges the response to the request just sent: `Ok` counts it as a success.
    fn response(&mut self, reply: &Reply<'_>) -> Result<(), FailureClass>;
    /// The request just sent failed without a usable response.
    fn failed(&mut self, class: FailureClass);
    /// Why the response just judged failed, where its class alone does not say (which
    /// variable a capture missed, say); shown in the failures table.
    fn failure_reason(&mut self) -> Option<String> {
        None
    }
    /// The request just sent (`previous`) was redirected, and the redirect is followed: write
    /// the next hop into `request` (empty). `reply` is the redirect response, for its cookies.
    /// By default the previous request is re-addressed ([`Redirect::rewrite`]).
    fn redirect(
        &mut self,
        reply: &Reply<'_>,
        to: &Redirect,
        previous: &[u8],
        request: &mut Vec<u8>,
    ) {
        let _ = reply;
        to.rewrite(previous, request);
    }
}

/// What a user does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send the request written by [`User::next`], counted under `names()[name]`.
    Send {
        /// Index into [`Script::names`].
        name: usize,
        /// Keep the response body for [`User::response`] (otherwise it is drained unread).
        keep_body: bool,
        /// Follow same-origin redirects; the final response is the one judged, and the time
        /// of every hop counts under this request's name.
        follow_redirects: bool,
        /// Time allowed for this request instead of the plan's timeout.
        timeout: Option<std::time::Duration>,
    },
    /// Pause inside the current task until `until` (Locust's `time.sleep` in a task), then ask
    /// again: the task goes on with its next request.
    Pause {
        /// When the task goes on.
        until: Instant,
    },
    /// The current task is over. Closed model: start the next one at `until` (`None`: at once).
    /// Open model: start the next one at the next arrival.
    Rest {
        /// When the next task may start.
        until: Option<Instant>,
        /// A task could not run (e.g. its pool was empty); counted under this name, not failed.
        skipped: Option<usize>,
    },
}

/// A response as a user sees it.
#[derive(Clone, Copy, Debug)]
pub struct Reply<'a> {
    /// Status code.
    pub status: u16,
    /// The body, when [`Action::Send::keep_body`] asked for it (at most [`MAX_KEPT_BODY`]).
    pub body: &'a [u8],
    /// Whether the body was longer than [`MAX_KEPT_BODY`] and was cut.
    pub truncated: bool,
    /// Values of the `Set-Cookie` headers.
    pub set_cookies: &'a [String],
}

/// Largest response body kept for a user; the rest is drained unread.
pub const MAX_KEPT_BODY: usize = 1 << 20;

/// Fixed requests sent in turn by every user, with no wait: wrk's model.
pub struct Requests {
    names: Vec<Name>,
    templates: Vec<RequestTemplate>,
    follow_redirects: bool,
}

impl Requests {
    /// A script of `templates`; each is its own stats name.
    pub fn new(templates: Vec<RequestTemplate>) -> Requests {
        let names = templates
            .iter()
            .map(|t| Name {
                method: t.method().to_string(),
                // A name is written to every output and served as a metrics label.
                name: crate::redact::text(&t.name),
            })
            .collect();
        Requests {
            names,
            templates,
            follow_redirects: false,
        }
    }

    /// Follows same-origin redirects (`--follow-redirects`). Default: not followed, as wrk.
    pub fn following_redirects(mut self, follow: bool) -> Requests {
        self.follow_redirects = follow;
        self
    }
}

impl Script for Requests {
    fn names(&self) -> &[Name] {
        &self.names
    }

    fn user(&self, id: UserId) -> Box<dyn User> {
        let encoded = self.templates.iter().map(|t| t.encoded().clone()).collect();
        Box::new(RequestsUser {
            encoded,
            turn: id.index as usize % self.templates.len().max(1),
            sent: false,
            follow_redirects: self.follow_redirects,
        })
    }
}

struct RequestsUser {
    encoded: Vec<bytes::Bytes>,
    turn: usize,
    /// Alternates sends and rests, so each request is one task (one arrival, open model).
    sent: bool,
    follow_redirects: bool,
}

impl User for RequestsUser {
    fn next(&mut self, request: &mut Vec<u8>) -> Action {
        self.sent = !self.sent;
        if !self.sent {
            return Action::Rest {
                until: None,
                skipped: None,
            };
        }
        let name = self.turn;
        self.turn = (self.turn + 1) % self.encoded.len();
        request.extend_from_slice(&self.encoded[name]);
        Action::Send {
            name,
            keep_body: false,
            follow_redirects: self.follow_redirects,
            timeout: None,
        }
    }

    fn response(&mut self, reply: &Reply<'_>) -> Result<(), FailureClass> {
        if reply.status < 400 {
            Ok(())
        } else {
            Err(FailureClass::Status)
        }
    }

    fn failed(&mut self, _class: FailureClass) {}
}
