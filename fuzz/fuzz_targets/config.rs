//! The configuration: the input is a TOML file, then `KEY=value` lines read as the environment.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trunx::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (toml, env) = text.split_once("\n---\n").unwrap_or((text, ""));
    let env: Vec<(String, String)> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if let Ok(c) = Config::from_toml_str(toml, "fuzz.toml", lookup) {
        let _ = c.render();
    }
});
