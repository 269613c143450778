//! Captures: values picked out of JSON responses with a small path language.
//!
//! `token`, `results[0].id`, `results[*].id`, `data.items[*]`: dotted keys, `[N]` for an array
//! element, `[*]` for every element.

use serde_json::Value as Json;

#[derive(Clone, Debug, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
    All,
}

/// A compiled JSON path.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct JsonPath {
    segments: Vec<Segment>,
    source: String,
}

impl JsonPath {
    /// Parses a path such as `results[*].id`.
    pub fn parse(source: &str) -> Result<JsonPath, String> {
        let bad = |why: &str| Err(format!("invalid JSON path {source:?}: {why}"));
        let mut segments = Vec::new();
        for part in source.split('.') {
            let (key, mut rest) = match part.find('[') {
                Some(at) => (&part[..at], &part[at..]),
                None => (part, ""),
            };
            if key.is_empty() && (segments.is_empty() || rest.is_empty()) && !part.is_empty() {
                // `[0].id` at the start indexes a top-level array: fine.
            } else if key.is_empty() {
                return bad("empty key (expected e.g. results[0].id)");
            }
            if !key.is_empty() {
                segments.push(Segment::Key(key.to_string()));
            }
            while !rest.is_empty() {
                let Some(close) = rest.find(']') else {
                    return bad("missing ]");
                };
                let inside = &rest[1..close];
                segments.push(match inside {
                    "*" => Segment::All,
                    n => match n.parse() {
                        Ok(i) => Segment::Index(i),
                        Err(_) => return bad("expected [N] or [*]"),
                    },
                });
                rest = &rest[close + 1..];
                if !rest.is_empty() && !rest.starts_with('[') {
                    return bad("expected . or [ after ]");
                }
            }
        }
        if segments.is_empty() {
            return bad("empty path");
        }
        Ok(JsonPath {
            segments,
            source: source.to_string(),
        })
    }

    /// Every value the path reaches in `root`, in document order.
    pub fn find<'a>(&self, root: &'a Json) -> Vec<&'a Json> {
        let mut current = vec![root];
        for segment in &self.segments {
            current = current
                .into_iter()
                .flat_map(|v| -> Vec<&Json> {
                    match (segment, v) {
                        (Segment::Key(k), Json::Object(map)) => map.get(k).into_iter().collect(),
                        (Segment::Index(i), Json::Array(items)) => {
                            items.get(*i).into_iter().collect()
                        }
                        (Segment::All, Json::Array(items)) => items.iter().collect(),
                        _ => Vec::new(),
                    }
                })
                .collect();
        }
        current
    }
}

impl std::fmt::Display for JsonPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_reach_keys_indexes_and_all_elements() {
        let doc =
            json!({"token": "t", "results": [{"id": 1}, {"id": 2}, {"x": 3}], "n": {"m": [7]}});
        let find = |p: &str| {
            JsonPath::parse(p)
                .unwrap()
                .find(&doc)
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(find("token"), [json!("t")]);
        assert_eq!(find("results[1].id"), [json!(2)]);
        assert_eq!(find("results[*].id"), [json!(1), json!(2)]);
        assert_eq!(find("n.m[0]"), [json!(7)]);
        assert!(find("results[9].id").is_empty());
        assert!(find("token.x").is_empty());
        assert_eq!(
            JsonPath::parse("[1]").unwrap().find(&json!([5, 6]))[0],
            &json!(6)
        );
    }

    #[test]
    fn malformed_paths_are_refused() {
        for bad in ["", "a..b", "a[", "a[x]", "a[0]b", "."] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
    }
}
