//! The tier rule of DESIGN.md: a module imports only from lower tiers, never from the same
//! tier or above. (`error` is the crate error that collects every module's error enum: it may
//! name them all.)

use crate::util::repo;

const TIERS: &[(&str, u32)] = &[
    ("model", 0),
    ("config", 0),
    ("classify", 1),
    ("template", 1),
    ("ingest", 1),
    ("store", 1),
    ("features", 2),
    ("rules", 3),
    ("retry", 3),
    ("cluster", 3),
    ("patterns", 3),
    ("ranking", 3),
    ("engine", 4),
    ("train", 4),
    ("analyze", 4),
    ("sim", 4),
    ("eval", 4),
    ("report", 5),
    ("api", 5),
];

/// Same-tier imports allowed by design, each with its reason: the simulator closes the loop
/// around the online manager (its `rules` and `learned` policies are the engine itself); the
/// off-policy evaluation of ranking judges the engine's rule choice with the engine's own
/// applicability test (`engine::mutate`).
const ALLOWED: &[(&str, &str)] = &[("sim", "engine"), ("eval", "engine")];

fn tier(m: &str) -> Option<u32> {
    TIERS.iter().find(|(n, _)| *n == m).map(|(_, t)| *t)
}

fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_module_imports_from_its_own_tier_or_above() {
    let src = repo().join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut violations = Vec::new();
    for f in all {
        let rel = f.strip_prefix(&src).unwrap();
        let module = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let Some(own) = tier(&module) else { continue };
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            // Doc links and comments are not imports.
            if line.trim_start().starts_with("//") {
                continue;
            }
            let mut rest = line;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + "crate::".len()..];
                let used: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if used == module {
                    continue;
                }
                if ALLOWED.contains(&(module.as_str(), used.as_str())) {
                    continue;
                }
                if let Some(t) = tier(&used) {
                    if t >= own {
                        violations.push(format!(
                            "{}:{}: {module} (tier {own}) uses {used} (tier {t})",
                            rel.display(),
                            n + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "tier violations:\n{}",
        violations.join("\n")
    );
}
