//! `from config import HOST, USERS` and `import config` of a module beside the locustfile:
//! its module-level constants (text, numbers, lists, dicts) become the locustfile's, as
//! Python would find them (the script's folder comes first on its path). Nothing of the
//! module runs; a name it does not give as a constant is reported at the import.

use rustpython_parser::ast::{self, Stmt};
use rustpython_parser::Parse;
use std::collections::HashMap;

use super::Lowering;
use crate::value::{literal, Literal};

impl Lowering<'_> {
    /// An import statement: constants of a local module, or nothing for a library.
    pub(super) fn import(&mut self, stmt: &Stmt) {
        match stmt {
            Stmt::ImportFrom(i) if i.level.map_or(0, |l| l.to_u32()) == 0 => {
                let Some(module) = i.module.as_deref() else {
                    return;
                };
                let Some(constants) = self.local_module(stmt, module) else {
                    return;
                };
                for alias in &i.names {
                    let name = alias.name.as_str();
                    let bound = alias.asname.as_deref().unwrap_or(name).to_string();
                    if name == "*" {
                        self.constants.extend(constants.clone());
                    } else if let Some(value) = constants.get(name) {
                        self.constants.insert(bound, value.clone());
                    } else {
                        self.found.unsupported(alias, format!("{name} is not a constant of {module}.py (text, numbers, lists or dicts) that blast can read"));
                    }
                }
            }
            Stmt::Import(i) => {
                for alias in &i.names {
                    let module = alias.name.as_str();
                    let Some(constants) = self.local_module(stmt, module) else {
                        continue;
                    };
                    let bound = alias.asname.as_deref().unwrap_or(module);
                    for (name, value) in constants {
                        self.constants.insert(format!("{bound}.{name}"), value);
                    }
                }
            }
            _ => {}
        }
    }

    /// The constants of `module` when it is a file beside the locustfile.
    fn local_module(&mut self, at: &Stmt, module: &str) -> Option<HashMap<String, Literal>> {
        let dir = self.dir.as_ref()?;
        let path = dir.join(format!("{}.py", module.replace('.', "/")));
        let source = std::fs::read_to_string(&path).ok()?;
        let suite = match ast::Suite::parse(&source, &path.to_string_lossy()) {
            Ok(suite) => suite,
            Err(e) => {
                self.found
                    .unsupported(at, format!("{module}.py does not parse: {}", e.error));
                return None;
            }
        };
        let mut constants = HashMap::new();
        for stmt in &suite {
            if let Stmt::Assign(a) = stmt {
                if let ([ast::Expr::Name(n)], Some(value)) =
                    (a.targets.as_slice(), literal(&a.value, &constants))
                {
                    constants.insert(n.id.to_string(), value);
                }
            }
        }
        Some(constants)
    }
}
