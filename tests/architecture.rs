//! ARCHITECTURE.md is the map a newcomer trusts, and it rots silently: it once named two of the
//! store's migrations, one of three probes and three of eight protos, said no scenario file
//! existed and called `tests/lib.rs` empty, long after all of that had changed. These tests hold
//! it to the code, so a rename or a new file that the map does not follow fails the suite.
//!
//! What is checked, in the inline code spans (`…`) outside fenced blocks:
//! - a **path** (a span of path characters that holds a `/` or ends in a source extension) must
//!   name a file or folder of the repository: exactly, or as the tail of one (the map says
//!   `aggregate.rs` inside the `crates/domain` section), with `*` matching within one segment;
//! - a **Rust path** (`store::events`, `rpc::access::Authenticated`, `Participant::sight`,
//!   `reading::log`) must resolve: its first segment names a workspace crate, a module file of
//!   one, or a type defined in one; then each following segment that is a module file descends
//!   into it, the first item must be defined in the module reached (or re-exported by the crate
//!   root), and the members after it must be defined in that crate;
//! - an **identifier** with an underscore or in CamelCase (`verdict_wait_ms`, `OrderWatermark`,
//!   `timeline_entries`) must occur in the repository's sources, migrations or scripts.
//!
//! And the lists the map claims to give in full must be complete: every migration, probe, proto
//! and test file is named.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Spans that look like paths but are not (each with why).
const NOT_PATHS: &[&str] = &[
    // The name from which `event_id_for` derives a UUID v5, not a file.
    "agency/person_id/participant_id/request_id",
];

/// Names the map gives of things the code deliberately does not use (each with why).
const NAMED_AS_NOT_USED: &[&str] = &[
    // cqrs-es's framework, which the ledger bypasses to get the committed event back.
    "CqrsFramework",
];

/// Paths outside the repository that the map points to on purpose.
const OUTSIDE_THE_REPOSITORY: &[&str] = &[
    // The shared design and domain documents live beside the checkout, not in it.
    "../shared/",
    "DESIGN.md",
    "DOMAIN.md",
];

/// File endings that make a span a path even without a `/`.
const PATH_ENDINGS: &[&str] = &[
    ".rs", ".proto", ".sql", ".sh", ".json", ".md", ".toml", ".conf",
];

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// Every file of the repository (relative, `/`-separated), build output and VCS data left out.
fn repository_files(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut files = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            let path = entry.path();
            let relative = path
                .strip_prefix(root)?
                .to_string_lossy()
                .replace('\\', "/");
            if ["target", ".git", "deploy/.local"].contains(&relative.as_str()) {
                continue;
            }
            if entry.file_type()?.is_dir() {
                folders.push(path);
            } else {
                files.push(relative);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The inline code spans of a Markdown text, outside fenced blocks, in order.
fn code_spans(markdown: &str) -> Vec<String> {
    let mut outside_fences = String::new();
    let mut in_fence = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence {
            outside_fences.push_str(line);
            outside_fences.push('\n');
        }
    }
    outside_fences
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|span| span.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn is_path(span: &str) -> bool {
    let path_characters = span
        .chars()
        .all(|character| character.is_ascii_alphanumeric() || "_-./*".contains(character));
    if !path_characters || span.is_empty() || NOT_PATHS.contains(&span) {
        return false;
    }
    let segments: Vec<&str> = span.trim_end_matches('/').split('/').collect();
    // A dotted name such as `ips.v1.TimelineService/GetTimeline` is a gRPC method, not a path.
    let folders_plain = segments[..segments.len() - 1]
        .iter()
        .all(|segment| !segment.trim_start_matches('.').contains('.'));
    folders_plain
        && (span.contains('/') || PATH_ENDINGS.iter().any(|ending| span.ends_with(ending)))
}

/// Whether `pattern` (segments, `*` within one) matches `path`'s segments exactly.
fn segments_match(pattern: &[&str], path: &[&str]) -> bool {
    pattern.len() == path.len()
        && pattern
            .iter()
            .zip(path)
            .all(|(pattern, segment)| glob_match(pattern, segment))
}

fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.starts_with(head)
                && (head.len()..=text.len())
                    .any(|split| text.is_char_boundary(split) && glob_match(tail, &text[split..]))
        }
    }
}

/// Whether a path span names a repository file or folder, exactly or as the tail of one.
fn path_exists(span: &str, files: &[String]) -> bool {
    let wanted = span.trim_start_matches("./");
    let folder = wanted.ends_with('/');
    let pattern: Vec<&str> = wanted.trim_end_matches('/').split('/').collect();
    files.iter().any(|file| {
        let segments: Vec<&str> = file.split('/').collect();
        // A folder is matched by any file inside it; a file by itself.
        let candidates: Vec<&[&str]> = if folder {
            (1..segments.len()).map(|end| &segments[..end]).collect()
        } else {
            let mut candidates: Vec<&[&str]> =
                (1..segments.len()).map(|end| &segments[..end]).collect();
            candidates.push(&segments[..]);
            candidates
        };
        candidates.iter().any(|candidate| {
            (0..candidate.len()).any(|start| segments_match(&pattern, &candidate[start..]))
        })
    })
}

/// A workspace crate: its name and the files of its `src` folder.
struct Crate {
    name: String,
    source_folder: String,
}

fn workspace_crates(files: &[String]) -> Vec<Crate> {
    let mut names = BTreeSet::new();
    for file in files {
        let segments: Vec<&str> = file.split('/').collect();
        if let ["crates" | "services", name, "Cargo.toml"] = segments[..] {
            names.insert((segments[0], name));
        }
    }
    names
        .into_iter()
        .map(|(group, name)| Crate {
            name: name.to_owned(),
            source_folder: format!("{group}/{name}/src"),
        })
        .collect()
}

/// The external dependency names of the root manifest, as Rust spells them (`cqrs-es` →
/// `cqrs_es`).
fn external_crates(root: &Path) -> anyhow::Result<BTreeSet<String>> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml"))?;
    // The standard library and the primitive types (`i64::MAX`) are not ours either.
    let mut names: BTreeSet<String> = [
        "std", "core", "alloc", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32",
        "u64", "u128", "usize", "f32", "f64", "bool", "char", "str",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let mut in_dependencies = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_dependencies = line == "[workspace.dependencies]";
            continue;
        }
        if let (true, Some((name, source))) = (in_dependencies, line.split_once('=')) {
            // The workspace's own crates are declared here too, by path: they are not external.
            if !name.trim().starts_with('#') && !source.contains("path =") {
                names.insert(name.trim().replace('-', "_"));
            }
        }
    }
    Ok(names)
}

struct Sources<'a> {
    files: &'a [String],
    /// The text of every source, schema, script and configuration file, read once.
    texts: std::collections::HashMap<&'a str, String>,
    /// Every word of those texts, so most look-ups need no scan.
    words: std::collections::HashSet<String>,
    /// What each Rust file defines.
    definitions: std::collections::HashMap<&'a str, Definitions>,
    crates: Vec<Crate>,
    external: BTreeSet<String>,
}

/// The file endings whose text the checks read.
const SOURCE_ENDINGS: &[&str] = &[".rs", ".proto", ".sql", ".sh", ".conf", ".toml"];

impl<'a> Sources<'a> {
    fn new(root: &Path, files: &'a [String]) -> anyhow::Result<Self> {
        let mut texts = std::collections::HashMap::new();
        for file in files {
            if SOURCE_ENDINGS.iter().any(|ending| file.ends_with(ending)) {
                texts.insert(file.as_str(), std::fs::read_to_string(root.join(file))?);
            }
        }
        let words = texts
            .values()
            .flat_map(|text| words(text).map(str::to_owned))
            .collect();
        let definitions = texts
            .iter()
            .filter(|(file, _)| file.ends_with(".rs"))
            .map(|(file, text)| (*file, definitions(text)))
            .collect();
        Ok(Self {
            files,
            texts,
            words,
            definitions,
            crates: workspace_crates(files),
            external: external_crates(root)?,
        })
    }

    fn read(&self, file: &str) -> &str {
        self.texts.get(file).map_or("", String::as_str)
    }

    fn defined_in(&self, file: &str) -> &Definitions {
        static NOTHING: std::sync::OnceLock<Definitions> = std::sync::OnceLock::new();
        self.definitions
            .get(file)
            .unwrap_or_else(|| NOTHING.get_or_init(Definitions::default))
    }

    fn crate_files(&self, krate: &Crate) -> Vec<&String> {
        self.files
            .iter()
            .filter(|file| {
                file.starts_with(&format!("{}/", krate.source_folder)) && file.ends_with(".rs")
            })
            .collect()
    }

    /// The module file for `name` inside the module whose file is `parent`, if it exists.
    fn child_module(&self, parent: &str, name: &str) -> Option<String> {
        let folder = match parent.rsplit_once('/') {
            Some((folder, "lib.rs" | "main.rs" | "mod.rs")) => folder.to_owned(),
            _ => parent.trim_end_matches(".rs").to_owned(),
        };
        [
            format!("{folder}/{name}.rs"),
            format!("{folder}/{name}/mod.rs"),
        ]
        .into_iter()
        .find(|candidate| self.files.contains(candidate))
    }

    fn crate_root(&self, krate: &Crate) -> String {
        let library = format!("{}/lib.rs", krate.source_folder);
        if self.files.contains(&library) {
            library
        } else {
            format!("{}/main.rs", krate.source_folder)
        }
    }

    /// Resolves a Rust path; `Err` says which segment does not exist.
    fn resolve(&self, path: &str) -> Result<(), String> {
        let segments: Vec<&str> = path.split("::").collect();
        let first = segments[0];
        if self.external.contains(first) {
            return Ok(());
        }
        // (crate, module file reached, segments still to resolve) for every reading of the head.
        let mut starts: Vec<(&Crate, String, &[&str])> = Vec::new();
        for krate in &self.crates {
            if krate.name == first {
                starts.push((krate, self.crate_root(krate), &segments[1..]));
            } else if let Some(module) = self.module_anywhere(krate, first) {
                starts.push((krate, module, &segments[1..]));
            } else if self
                .crate_files(krate)
                .iter()
                .any(|file| self.defined_in(file).types.contains(first))
            {
                starts.push((krate, self.crate_root(krate), &segments[..]));
            }
        }
        // A type from a dependency (`Utc::now`): ours only to the extent the code uses it.
        let foreign_type = first.starts_with(|character: char| character.is_ascii_uppercase())
            && self.mentioned(first);
        if starts.is_empty() && foreign_type {
            return Ok(());
        }
        if starts.is_empty() {
            return Err(format!(
                "`{first}` is no workspace crate, module file or type"
            ));
        }
        let mut reasons = Vec::new();
        for (krate, mut module, mut rest) in starts {
            while let Some((next, tail)) = rest.split_first() {
                match self.child_module(&module, next) {
                    Some(child) => {
                        module = child;
                        rest = tail;
                    }
                    None => break,
                }
            }
            let Some((item, members)) = rest.split_first() else {
                return Ok(());
            };
            let module_text = self.read(&module);
            let in_module = self.defined_in(&module).names.contains(*item)
                || (module == self.crate_root(krate) && re_exports(module_text, item))
                || (rest.len() == segments.len() && self.defined_in_crate(krate, item));
            if !in_module {
                reasons.push(format!("`{item}` is not defined in {module}"));
                continue;
            }
            match members
                .iter()
                .find(|member| !self.defined_in_crate(krate, member))
            {
                None => return Ok(()),
                Some(member) => reasons.push(format!(
                    "`{member}` is defined nowhere in {}",
                    krate.source_folder
                )),
            }
        }
        Err(reasons.join("; "))
    }

    fn module_anywhere(&self, krate: &Crate, name: &str) -> Option<String> {
        self.crate_files(krate)
            .into_iter()
            .find(|file| {
                file.ends_with(&format!("/{name}.rs")) || file.ends_with(&format!("/{name}/mod.rs"))
            })
            .cloned()
    }

    fn defined_in_crate(&self, krate: &Crate, name: &str) -> bool {
        self.crate_files(krate)
            .iter()
            .any(|file| self.defined_in(file).names.contains(name))
    }

    /// Whether an identifier occurs in the repository's code, schema, scripts or configuration.
    fn mentioned(&self, identifier: &str) -> bool {
        self.words.contains(identifier) || self.texts.values().any(|text| text.contains(identifier))
    }
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|character: char| !(character.is_alphanumeric() || character == '_'))
        .filter(|word| !word.is_empty())
}

/// What a file defines: (items, methods, variants and fields; types alone).
#[derive(Default)]
struct Definitions {
    names: std::collections::HashSet<String>,
    types: std::collections::HashSet<String>,
}

/// Reads what `text` defines as an item, a method, an enum variant or a struct field.
fn definitions(text: &str) -> Definitions {
    const KEYWORDS: &[&str] = &[
        "fn", "struct", "enum", "trait", "type", "const", "static", "mod", "union",
    ];
    const TYPE_KEYWORDS: &[&str] = &["struct", "enum", "trait", "type"];
    let mut found = Definitions::default();
    for line in text.lines() {
        let line = line.trim_start();
        let mut previous = "";
        for word in words(line) {
            if KEYWORDS.contains(&previous) {
                found.names.insert(word.to_owned());
            }
            if TYPE_KEYWORDS.contains(&previous) {
                found.types.insert(word.to_owned());
            }
            previous = word;
        }
        // A variant (`Record {`, `Accepted,`, `Delivery(…)`) or a field (`running: bool`).
        let line = line.strip_prefix("pub ").unwrap_or(line);
        let line = line.strip_prefix("pub(crate) ").unwrap_or(line);
        let head_length = line
            .find(|character: char| !(character.is_alphanumeric() || character == '_'))
            .unwrap_or(line.len());
        let (head, rest) = line.split_at(head_length);
        let declares = rest.is_empty()
            || rest.starts_with([' ', '{', '(', ',', ':'])
                && !rest.starts_with("::")
                && !rest.trim_start().starts_with('=');
        if !head.is_empty() && declares {
            found.names.insert(head.to_owned());
        }
    }
    found
}

fn defines(text: &str, name: &str) -> bool {
    definitions(text).names.contains(name)
}

/// Whether a crate root re-exports `name` (`pub use module::{…, name, …}`).
fn re_exports(text: &str, name: &str) -> bool {
    let mut in_use = false;
    text.lines().any(|line| {
        if line.trim_start().starts_with("pub use") {
            in_use = true;
        }
        let found = in_use && words(line).any(|word| word == name);
        if line.contains(';') {
            in_use = false;
        }
        found
    })
}

/// The leading Rust path of a span (`Participant::sight`, `reading::log` in `reading::log()`).
fn rust_path(span: &str) -> Option<&str> {
    let end = span
        .find(|character: char| !(character.is_ascii_alphanumeric() || "_:".contains(character)))
        .unwrap_or(span.len());
    let path = &span[..end];
    let segments: Vec<&str> = path.split("::").collect();
    let well_formed = segments.len() >= 2
        && segments.iter().all(|segment| {
            segment
                .chars()
                .next()
                .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        });
    well_formed.then_some(path)
}

fn is_checked_identifier(span: &str) -> bool {
    let identifier = span
        .chars()
        .all(|character| character.is_ascii_alphanumeric() || character == '_')
        && span
            .chars()
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic());
    let camel_case = span.starts_with(|first: char| first.is_ascii_uppercase())
        && span.chars().any(|character| character.is_ascii_lowercase());
    let snake_case =
        span.contains('_') && span.chars().any(|character| character.is_ascii_lowercase());
    identifier && (camel_case || snake_case)
}

fn architecture() -> anyhow::Result<(PathBuf, String, Vec<String>)> {
    let root = repository_root();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md"))?;
    let files = repository_files(&root)?;
    Ok((root, text, files))
}

#[test]
fn every_path_module_and_name_in_the_architecture_map_exists() -> anyhow::Result<()> {
    let (root, text, files) = architecture()?;
    let sources = Sources::new(&root, &files)?;
    let mut stale = BTreeSet::new();
    for span in code_spans(&text) {
        if OUTSIDE_THE_REPOSITORY.contains(&span.as_str()) {
            continue;
        }
        if is_path(&span) {
            if !path_exists(&span, &files) {
                stale.insert(format!("path `{span}`: no such file or folder"));
            }
        } else if let Some(path) = rust_path(&span) {
            if let Err(reason) = sources.resolve(path) {
                stale.insert(format!("Rust path `{path}`: {reason}"));
            }
        } else if is_checked_identifier(&span)
            && !NAMED_AS_NOT_USED.contains(&span.as_str())
            && !sources.mentioned(&span)
        {
            stale.insert(format!(
                "name `{span}`: occurs nowhere in the code, migrations or scripts"
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "ARCHITECTURE.md names {} thing(s) the repository does not have:\n{}",
        stale.len(),
        stale.into_iter().collect::<Vec<_>>().join("\n")
    );
    Ok(())
}

#[test]
fn the_architecture_map_names_every_migration_probe_proto_and_test_file() -> anyhow::Result<()> {
    let (_, text, files) = architecture()?;
    let spans: Vec<String> = code_spans(&text);
    // By path, file name or (for a binary such as `throughput_probe`) file stem.
    let named = |file: &str| {
        let name = file.rsplit('/').next().unwrap_or(file);
        let stem = name.split('.').next().unwrap_or(name);
        spans.iter().any(|span| {
            span == name || span == stem || span == file || span.ends_with(&format!("/{name}"))
        })
    };
    let listed = |file: &&String| {
        let in_folder = |folder: &str, ending: &str| {
            file.strip_prefix(folder)
                .is_some_and(|rest| !rest.contains('/') && rest.ends_with(ending))
        };
        in_folder("crates/store/migrations/", ".sql")
            || in_folder("crates/bench/src/bin/", ".rs")
            || in_folder("proto/ips/v1/", ".proto")
            || in_folder("tests/", ".rs")
            || in_folder("tests/scenarios/", ".json")
            || ["crates/", "services/"].iter().any(|group| {
                file.strip_prefix(group).is_some_and(|rest| {
                    let segments: Vec<&str> = rest.split('/').collect();
                    segments.len() == 3 && segments[1] == "tests" && segments[2].ends_with(".rs")
                })
            })
    };
    let missing: Vec<&String> = files
        .iter()
        .filter(listed)
        .filter(|file| !named(file))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md does not name {} file(s) it should list:\n{}",
        missing.len(),
        missing
            .iter()
            .map(|file| file.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    Ok(())
}

#[test]
fn the_checks_themselves_tell_paths_rust_paths_and_names_apart() {
    assert!(is_path("crates/store/migrations/"));
    assert!(is_path("aggregate.rs"));
    assert!(is_path("scenarios/*.json"));
    assert!(!is_path("ips.v1.TimelineService/GetTimeline"));
    assert!(!is_path("GET /metrics"));
    assert!(!is_path("<prefix>.verdict.<agency>.<event_id>"));
    assert_eq!(rust_path("reading::log"), Some("reading::log"));
    assert_eq!(
        rust_path("ParticipantCommand::Record { submission, recorded_at }"),
        Some("ParticipantCommand::Record")
    );
    assert_eq!(rust_path("store::events"), Some("store::events"));
    assert_eq!(rust_path("IPS_LOG_FORMAT=json"), None);
    assert!(glob_match("*.json", "anna.json"));
    assert!(!glob_match("*.json", "anna.rs"));
    let files = vec!["crates/domain/src/aggregate.rs".to_owned()];
    assert!(path_exists("aggregate.rs", &files));
    assert!(path_exists("crates/domain/", &files));
    assert!(path_exists("src/*.rs", &files));
    assert!(!path_exists("crates/domain/fields.rs", &files));
    assert!(!path_exists("gregate.rs", &files));
    assert!(defines("pub fn sight(&self) {", "sight"));
    assert!(defines("    Record {", "Record"));
    assert!(defines("    pub running: bool,", "running"));
    assert!(!defines("let sight = 1;", "sight"));
    assert!(!defines("    Record::new()", "Record"));
    assert!(is_checked_identifier("verdict_wait_ms"));
    assert!(is_checked_identifier("OrderWatermark"));
    assert!(!is_checked_identifier("GREEN"));
    assert!(!is_checked_identifier("handle"));
}
