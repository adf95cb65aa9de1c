//! The README documents every setting: each environment variable of `config::KEYS` appears in
//! its configuration table with its default.

#[test]
fn readme_lists_every_setting_with_its_default() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for spec in trunx::config::KEYS {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` | `{}` |", spec.key, spec.env)))
            .unwrap_or_else(|| panic!("README has no row for {} / {}", spec.key, spec.env));
        match spec.default {
            Some(d) => assert!(row.contains(&format!("`{d}`")), "{row}"),
            None => assert!(row.contains("(unset)"), "{row}"),
        }
    }
}
