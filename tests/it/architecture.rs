//! The layering of `src/`: every top-level module sits in one layer, and production code may name
//! (`crate::x`) only modules of lower layers, so no import cycle can form between modules. The
//! README's architecture diagram is drawn from the same table, and this test keeps the two alike.

use std::collections::BTreeMap;
use std::path::Path;

/// Top-level modules by layer, lowest first. A module may use those of any lower layer.
const LAYERS: [(&str, &[&str]); 13] = [
    (
        "leaves",
        &["circuit", "clock", "config", "input", "logging", "secret"],
    ),
    ("primitives", &["sealing", "serve", "username", "web"]),
    ("storage", &["store"]),
    ("outbox delivery", &["events"]),
    ("infrastructure", &["keys", "mail", "metrics", "throttle"]),
    ("errors", &["error"]),
    ("accounts", &["account"]),
    ("tokens", &["tokens"]),
    ("wiring", &["state"]),
    ("shared protocol", &["ui"]),
    ("protocols", &["oauth", "scim"]),
    ("surfaces", &["api", "oidc", "pages", "seed", "tasks"]),
    ("composition", &["fuzzing", "routes"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

#[test]
fn imports_point_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut upward = Vec::new();
    for (module, edges) in import_graph(&src) {
        let from = layer_of(&module)
            .unwrap_or_else(|| panic!("src/{module}: place the module in a layer of LAYERS"));
        for (to, site) in edges {
            let to_layer = layer_of(&to)
                .unwrap_or_else(|| panic!("{site}: crate::{to} is in no layer of LAYERS"));
            if to_layer >= from {
                upward.push(format!("{site}: {module} -> {to}"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that do not point down the layers:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_readme_draws_the_layers() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let diagram = layer_diagram();
    assert!(
        readme.contains(&diagram),
        "README.md's architecture section should hold:\n{diagram}"
    );
}

/// The layers as a mermaid flowchart, top layer first.
fn layer_diagram() -> String {
    let mut lines = vec!["```mermaid".to_string(), "flowchart TD".to_string()];
    for (index, (name, modules)) in LAYERS.iter().enumerate().rev() {
        let node = format!("    L{index}[\"{name}: {}\"]", modules.join(", "));
        lines.push(match index {
            0 => node,
            _ => format!("{node} --> L{}", index - 1),
        });
    }
    lines.push("```".to_string());
    lines.join("\n")
}

/// Each top-level module's uses of other top-level modules, with the file and line of each.
/// Test code (`tests.rs` files and `#[cfg(test)] mod tests { … }`) and comments do not count.
fn import_graph(src: &Path) -> BTreeMap<String, Vec<(String, String)>> {
    let mut graph: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for file in rust_files(src) {
        let relative = file.strip_prefix(src).expect("under src").to_path_buf();
        let first = relative.components().next().expect("a path");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if matches!(module.as_str(), "lib" | "main") || relative.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("a source file");
        for (line, used) in crate_uses(&production_code(&text)) {
            if used != module {
                let site = format!("src/{}:{line}", relative.display());
                graph.entry(module.clone()).or_default().push((used, site));
            }
        }
        graph.entry(module).or_default();
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// `text` without comments and without its `#[cfg(test)] mod tests` block, lines kept in place.
fn production_code(text: &str) -> String {
    let mut kept = Vec::new();
    let mut skipping_tests = false;
    let mut depth = 0i32;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let code = if line.trim_start().starts_with("//") {
            ""
        } else {
            line.find(" // ").map_or(line, |at| &line[..at])
        };
        if !skipping_tests
            && code.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod tests {"))
        {
            skipping_tests = true;
            depth = 0;
        }
        if skipping_tests {
            depth += code.matches('{').count() as i32 - code.matches('}').count() as i32;
            if depth == 0 && code.contains('}') {
                skipping_tests = false;
            }
            kept.push(String::new());
        } else {
            kept.push(code.to_string());
        }
    }
    kept.join("\n")
}

/// The top-level modules named after `crate::`, with their 1-based line: `crate::x::…` and each
/// item of `crate::{x, y::z}`.
fn crate_uses(code: &str) -> Vec<(usize, String)> {
    let mut uses = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let line = code[..at].matches('\n').count() + 1;
        let preceding = code[..at].chars().next_back();
        if preceding.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `tessera_crate::`, not ours
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            for item in top_level_items(group) {
                uses.push((line, item));
            }
        } else {
            uses.push((line, identifier(rest)));
        }
    }
    uses.retain(|(_, name)| !name.is_empty() && name != "self");
    uses
}

/// The first identifier of each comma-separated item of a `{…}` group, up to its closing brace.
fn top_level_items(group: &str) -> Vec<String> {
    let mut items = vec![String::new()];
    let mut depth = 0;
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => items.push(String::new()),
            _ => {}
        }
        if depth == 0 && c != ',' {
            items.last_mut().expect("an item").push(c);
        }
    }
    items
        .iter()
        .map(|item| identifier(item.trim_start()))
        .collect()
}

fn identifier(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn the_parser_reads_groups_comments_and_test_blocks() {
    let code = "use crate::{a::X, b, c::{d, e}};\n\
                // crate::commented\n\
                let x = crate::f::g(); // crate::trailing\n\
                #[cfg(test)]\n\
                mod tests {\n    use crate::tested;\n}\n\
                use crate::after;\n";
    let names: Vec<String> = crate_uses(&production_code(code))
        .into_iter()
        .map(|(_, name)| name)
        .collect();
    assert_eq!(names, ["a", "b", "c", "f", "after"]);
}

/// Discovery is drawn from the registries: the grants the token endpoint dispatches, the scopes
/// that have a meaning here and the claims those scopes release.
#[tokio::test]
async fn discovery_lists_what_the_registries_hold() {
    use tessera::oauth::grants;
    use tessera::tokens::scope::SCOPES;

    let server = crate::harness::TestServer::start().await;
    let discovery =
        crate::harness::get_json(&server.url("/.well-known/openid-configuration")).await;
    let listed = |member: &str| -> Vec<String> {
        serde_json::from_value(discovery[member].clone()).expect(member)
    };
    assert_eq!(
        listed("grant_types_supported"),
        grants::names().collect::<Vec<_>>()
    );
    let advertised: Vec<&str> = SCOPES
        .iter()
        .filter(|s| s.advertised)
        .map(|s| s.name)
        .collect();
    assert_eq!(listed("scopes_supported"), advertised);
    let claims = listed("claims_supported");
    for scope in &SCOPES {
        for claim in scope.claims {
            assert!(
                claims.iter().any(|c| c == claim),
                "{claim} of {}",
                scope.name
            );
        }
    }
}

/// RFC 8414 metadata is the discovery document itself (§5: OIDC's metadata extends it), names
/// this issuer (§3.3), and every endpoint it lists answers (not a 404).
#[tokio::test]
async fn authorization_server_metadata_is_discovery_and_lists_real_endpoints() {
    let server = crate::harness::TestServer::start().await;
    let url = |path: &str| server.url(path);
    let discovery = crate::harness::get_json(&url("/.well-known/openid-configuration")).await;
    let metadata = crate::harness::get_json(&url("/.well-known/oauth-authorization-server")).await;
    assert_eq!(metadata, discovery);
    assert_eq!(metadata["issuer"], server.state.config.issuer.as_str());
    let endpoints = metadata
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.ends_with("_endpoint") || name.as_str() == "jwks_uri");
    let client = crate::harness::http_client();
    let mut checked = 0;
    for (name, endpoint) in endpoints {
        let answer = client.get(endpoint.as_str().unwrap()).send().await.unwrap();
        assert_ne!(answer.status(), reqwest::StatusCode::NOT_FOUND, "{name}");
        checked += 1;
    }
    assert!(
        checked >= 7,
        "authorization, token, jwks, userinfo, revocation, introspection, end session"
    );
}
