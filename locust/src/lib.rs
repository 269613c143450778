//! Locustfiles read as blast scenarios: parsed with a real Python parser (`rustpython-parser`),
//! translated construct by construct into blast's scenario TOML, never executed, so no Python
//! is needed at run time.
//!
//! - [`translate`] turns a locustfile's text into a [`Translation`]: the scenario as TOML, with
//!   a comment naming the source line of each class, task and request, and [`Note`]s on what
//!   was dropped (a `print`, say).
//! - What does not translate is a [`Diagnostic`] with its line and column; every one is
//!   reported at once, as a linter reports, and nothing runs.
//!
//! ```
//! let source = r#"
//! from locust import HttpUser, task, between
//!
//! class Visitor(HttpUser):
//!     wait_time = between(1, 2)
//!
//!     @task(3)
//!     def home(self):
//!         self.client.get("/")
//! "#;
//! let t = blast_locust::translate("locustfile.py", source).unwrap();
//! assert!(t.toml.contains("request = \"GET /\""));
//! ```
#![deny(missing_docs)]

mod emit;
mod lower;
mod model;
mod value;

use rustpython_parser::ast::{self, Expr, Fold};
use rustpython_parser::text_size::TextRange;
use rustpython_parser::Parse;

/// A locustfile as a scenario.
#[derive(Debug)]
pub struct Translation {
    /// The scenario file blast runs and `blast convert` prints.
    pub toml: String,
    /// What was dropped on the way (each once), for a warning line.
    pub notes: Vec<Note>,
}

/// Something the translation left out that does not change the load (a `print`, a log line).
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    /// 1-based line of the first place it was seen.
    pub line: usize,
    /// What was left out.
    pub message: String,
}

/// A place in the locustfile that does not translate, and what to write instead.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is not supported, and what to write instead.
    pub message: String,
}

/// Why a locustfile did not translate: every place at once, in source order.
#[derive(Debug)]
pub struct Failure {
    /// The file as named by the user.
    pub path: String,
    /// The places, each with its line and column.
    pub diagnostics: Vec<Diagnostic>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}:{}: {}", self.path, d.line, d.column, d.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// How to translate.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Leave out the tasks that do not translate (each named in a note) and keep the rest,
    /// instead of refusing the file (`--lenient`). Default: false.
    pub lenient: bool,
}

/// Translates the locustfile `source` (named `path` in messages) into a scenario.
pub fn translate(path: &str, source: &str) -> Result<Translation, Failure> {
    translate_with(path, source, Options::default())
}

/// [`translate`], with [`Options`].
pub fn translate_with(path: &str, source: &str, options: Options) -> Result<Translation, Failure> {
    let lines = Lines::new(source);
    let fail = |diagnostics| Failure {
        path: path.to_string(),
        diagnostics,
    };
    let suite = ast::Suite::parse(source, path).map_err(|e| {
        let (line, column) = lines.at(u32::from(e.offset) as usize);
        fail(vec![Diagnostic {
            line,
            column,
            message: format!("Python syntax error: {}", e.error),
        }])
    })?;
    let Ok(suite) = UserAttributes.fold(suite);
    // Python finds a module beside the script first: so does the translation.
    let dir = std::path::Path::new(path)
        .parent()
        .map(|d| match d.as_os_str().is_empty() {
            true => std::path::PathBuf::from("."),
            false => d.to_path_buf(),
        });
    let mut lowering = lower::Lowering::new(&lines, options.lenient, dir);
    let scenario = lowering.module(&suite, scenario_name(path));
    let (mut diagnostics, notes) = lowering.finish();
    if diagnostics.is_empty() {
        if let Some(scenario) = scenario {
            return Ok(Translation {
                toml: emit::toml(&scenario, file_name(path)),
                notes,
            });
        }
    }
    diagnostics.sort_by_key(|d| (d.line, d.column));
    Err(fail(diagnostics))
}

/// Rewrites `self.user.x` as `self.x`: a task set's methods reach their user's attributes
/// and client through `self.user`, and a blast user keeps one set of variables.
struct UserAttributes;

impl Fold<TextRange> for UserAttributes {
    type TargetU = TextRange;
    type Error = std::convert::Infallible;
    type UserContext = ();

    fn will_map_user(&mut self, _: &TextRange) {}

    fn map_user(&mut self, range: TextRange, _: ()) -> Result<TextRange, Self::Error> {
        Ok(range)
    }

    fn fold_expr_attribute(
        &mut self,
        node: ast::ExprAttribute,
    ) -> Result<ast::ExprAttribute, Self::Error> {
        let mut node = ast::fold::fold_expr_attribute(self, node)?;
        if let Expr::Attribute(inner) = node.value.as_ref() {
            let on_self = matches!(inner.value.as_ref(), Expr::Name(n) if n.id.as_str() == "self");
            if on_self && inner.attr.as_str() == "user" {
                node.value = inner.value.clone();
            }
        }
        Ok(node)
    }
}

/// The scenario's name: the file's stem (`locustfile` for `locustfile.py`).
fn scenario_name(path: &str) -> String {
    let name = file_name(path);
    name.strip_suffix(".py").unwrap_or(name).to_string()
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Byte offsets to 1-based lines and columns.
pub(crate) struct Lines<'a> {
    source: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(source: &'a str) -> Lines<'a> {
        let starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Lines { source, starts }
    }

    /// The line and column (in characters) of byte `offset`.
    pub(crate) fn at(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let column = self.source[start..offset].chars().count() + 1;
        (line, column)
    }
}
