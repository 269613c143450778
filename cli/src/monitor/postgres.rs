//! PostgreSQL read each interval (`--monitor-postgres URL`): client connections by state
//! against `max_connections`, and sessions waiting on locks: the plan's "verify database
//! connection limits not exceeded" without a hand-written psql loop.

use std::collections::BTreeMap;

/// The names of the values reported. `pg.connection_limit` is what ordinary roles may open:
/// `max_connections` less the slots reserved for superusers.
pub const KEYS: [&str; 7] = [
    "pg.connections",
    "pg.active",
    "pg.idle",
    "pg.idle_in_transaction",
    "pg.lock_waits",
    "pg.max_connections",
    "pg.connection_limit",
];

/// One query for every value; blast's own monitoring session is left out of the counts.
const QUERY: &str = "SELECT
    count(*) FILTER (WHERE backend_type = 'client backend'),
    count(*) FILTER (WHERE backend_type = 'client backend' AND state = 'active'),
    count(*) FILTER (WHERE backend_type = 'client backend' AND state = 'idle'),
    count(*) FILTER (WHERE backend_type = 'client backend' AND state LIKE 'idle in transaction%'),
    count(*) FILTER (WHERE wait_event_type = 'Lock'),
    current_setting('max_connections')::bigint,
    current_setting('max_connections')::bigint
      - current_setting('superuser_reserved_connections')::bigint
      - coalesce(current_setting('reserved_connections', true), '0')::bigint
  FROM pg_stat_activity WHERE pid <> pg_backend_pid()";

/// A monitoring session to one server.
pub struct Postgres {
    url: String,
    client: Option<postgres::Client>,
}

impl Postgres {
    /// Connects to `url` (`postgres://user:password@host:port/db`); an error says why not.
    pub fn open(url: &str) -> Result<Postgres, String> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(format!(
                "{:?} is not a PostgreSQL URL: expected postgres://USER:PASSWORD@HOST:PORT/DB",
                blast_engine::redact::text(url)
            ));
        }
        let mut pg = Postgres {
            url: url.to_string(),
            client: None,
        };
        pg.query()?;
        Ok(pg)
    }

    fn query(&mut self) -> Result<BTreeMap<String, f64>, String> {
        if self.client.is_none() {
            let client = postgres::Client::connect(&self.url, postgres::NoTls)
                .map_err(|e| format!("cannot connect to PostgreSQL: {}", reason(&e)))?;
            self.client = Some(client);
        }
        let client = self.client.as_mut().expect("connected above");
        let row = client.query_one(QUERY, &[]).map_err(|e| {
            // A broken session is opened again next time.
            self.client = None;
            reason(&e)
        })?;
        Ok(KEYS
            .iter()
            .enumerate()
            .map(|(i, k)| (k.to_string(), row.get::<_, i64>(i) as f64))
            .collect())
    }

    /// One sample; nothing when the server cannot be read this time.
    pub fn sample(&mut self) -> BTreeMap<String, f64> {
        self.query().unwrap_or_default()
    }
}

/// The error's own words, its source included ("password authentication failed ...").
fn reason(e: &postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(source) => source.to_string(),
        None => e.to_string(),
    }
}
