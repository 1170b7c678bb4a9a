//! The settings the documents name are the settings the binary has. README's configuration table
//! is what an operator reads and docs/DEPLOYMENT.md tells them which of those settings a deployment
//! relies on (issue 16: "names every setting it relies on, and each exists"): a setting renamed,
//! added or given another default in `src/config.rs` without the table following, or a variable
//! named in a document that nothing reads, fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use clap::CommandFactory;
use haven::config::Cli;

/// Variables read outside the settings, and why they are not flags.
const OUTSIDE_SETTINGS: [(&str, &str); 3] = [
    ("HAVEN_BOOTSTRAP_PASSWORD", "a password never goes on a command line, where the process list shows it"),
    ("HAVEN_BENCHMARK_TWIN", "the benchmark build's unauthenticated twin (D124), not a setting of the service"),
    ("HAVEN_FUZZ_EXAMPLES", "the API fuzz test's number of cases"),
];

/// A setting as the binary has it: its variable and default, if any.
#[derive(Debug, PartialEq)]
struct Setting {
    variable: String,
    default: Option<String>,
}

/// Every flag that has a variable, over every command.
fn settings() -> BTreeMap<String, Setting> {
    fn walk(command: &clap::Command, into: &mut BTreeMap<String, Setting>) {
        for arg in command.get_arguments() {
            let (Some(long), Some(variable)) = (arg.get_long(), arg.get_env()) else { continue };
            let default = arg.get_default_values().first().map(|v| v.to_string_lossy().into_owned());
            let setting = Setting { variable: variable.to_string_lossy().into_owned(), default };
            if let Some(other) = into.get(long) {
                assert_eq!(other, &setting, "--{long} is one setting, with one variable and default, in every command");
            }
            into.insert(long.to_owned(), setting);
        }
        command.get_subcommands().for_each(|sub| walk(sub, into));
    }
    let mut found = BTreeMap::new();
    walk(&Cli::command(), &mut found);
    found
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README's configuration table: flag (without its dashes) -> (variable, default cell).
fn table(readme: &str) -> BTreeMap<String, (String, String)> {
    let section = readme.split("\n## Configuration\n").nth(1).expect("README has a configuration section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let unquote = |cell: &str| cell.trim().trim_matches('`').to_owned();
    section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.strip_prefix("| `--")?.split(" | ").collect();
            let flag = cells[0].trim_end_matches('`').to_owned();
            Some((flag, (unquote(cells[1]), cells[2].trim().to_owned())))
        })
        .collect()
}

/// Every `HAVEN_*` variable a document names.
fn named(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices("HAVEN_") {
        let name: String =
            text[at..].chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_').collect();
        let name = name.trim_end_matches('_');
        if name != "HAVEN" {
            found.insert(name.to_owned());
        }
    }
    found
}

fn documents() -> Vec<(String, String)> {
    let mut paths = vec![root().join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|entry| entry.expect("a docs entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a readable document");
            (path.strip_prefix(root()).unwrap_or(&path).display().to_string(), text)
        })
        .collect()
}

#[test]
fn the_configuration_table_lists_every_setting_with_its_variable_and_default() {
    let settings = settings();
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let table = table(&readme);
    let mut wrong = Vec::new();
    for (flag, setting) in &settings {
        match table.get(flag) {
            None => wrong.push(format!("--{flag} ({}) is not in the table", setting.variable)),
            Some((variable, _)) if *variable != setting.variable => {
                wrong.push(format!("--{flag}: the table says {variable}, the binary reads {}", setting.variable))
            }
            // A default the binary has must be the table's, where the table gives a value
            // (`16`); a description ("one per core", "generated (local)") is the operator's.
            Some((_, cell)) => {
                if let (Some(default), Some(value)) =
                    (&setting.default, cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')))
                {
                    // Numbers compare as numbers: the table's `1e-7` is clap's 0.0000001.
                    let same = match (default.parse::<f64>(), value.parse::<f64>()) {
                        (Ok(a), Ok(b)) => a == b,
                        _ => default == value,
                    };
                    if !same {
                        wrong.push(format!("--{flag}: the table's default is {value}, the binary's {default}"));
                    }
                }
            }
        }
    }
    for flag in table.keys().filter(|flag| !settings.contains_key(*flag)) {
        wrong.push(format!("the table lists --{flag}, which no command has"));
    }
    assert!(wrong.is_empty(), "README's configuration table and src/config.rs disagree:\n{}", wrong.join("\n"));
    assert!(table.len() > 40, "the table was read ({} rows)", table.len());
}

#[test]
fn every_variable_a_document_names_is_read_by_the_binary() {
    let mut known: BTreeSet<String> = settings().into_values().map(|s| s.variable).collect();
    let sources = ["src", "tests"].map(|dir| source_text(&root().join(dir))).concat();
    for (variable, why) in OUTSIDE_SETTINGS {
        assert!(sources.contains(&format!("\"{variable}\"")), "{variable} ({why}) is read nowhere in src/ or tests/");
        known.insert(variable.to_owned());
    }
    let mut unknown = Vec::new();
    let mut deployment = BTreeSet::new();
    for (path, text) in documents() {
        let names = named(&text);
        if path.ends_with("DEPLOYMENT.md") {
            deployment.clone_from(&names);
        }
        unknown.extend(names.into_iter().filter(|name| !known.contains(name)).map(|name| format!("{path}: {name}")));
    }
    assert!(unknown.is_empty(), "documents name variables the binary does not read:\n{}", unknown.join("\n"));
    assert!(deployment.len() > 20, "docs/DEPLOYMENT.md was read ({} variables)", deployment.len());
}

/// The text of every Rust file under `dir`.
fn source_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("a source entry").path();
        if path.is_dir() {
            text += &source_text(&path);
        } else if path.extension().is_some_and(|e| e == "rs") {
            text += &std::fs::read_to_string(&path).expect("a readable source file");
        }
    }
    text
}
