//! The machinery with a toy schema: nothing here knows the server's keys.

use serde::{Deserialize, Deserializer};

use super::*;

const SCHEMA: Schema = Schema {
    defaults: "[app]\nname = \"toy\"\nport = \"1\"\ntags = []\n",
    env_prefix: "TOY__",
    list_keys: &["app.tags"],
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct App {
    #[serde(deserialize_with = "de::string")]
    name: String,
    #[serde(deserialize_with = "port")]
    port: u16,
    #[serde(deserialize_with = "de::list")]
    tags: Vec<String>,
}

fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    de::with(d, de::expecting("a port number"))
}

fn env(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn the_platform_layer_wins_over_prefixed_variables_over_defaults_and_sources_are_kept() {
    let env = env(&[
        ("TOY__APP__NAME", "from-env"),
        ("TOY__APP__PORT", "2"),
        ("TOY__APP__TAGS", "a, b,,c"),
        ("OTHER", "ignored"),
    ]);
    let platform = vec![("app.port", "PLATFORM_PORT", "8080".to_owned())];
    let layers = Layers::merge(&SCHEMA, None, &env, platform).expect("layers merge");
    let mut r = Reader::new(layers);
    let app: App = r.section("app").expect("valid section");
    assert_eq!(
        (app.name.as_str(), app.port, app.tags),
        ("from-env", 8080, vec!["a".into(), "b".into(), "c".into()])
    );
    assert!(r.problems().is_empty(), "{:?}", r.problems());
    let effective = r.effective(|key| (key == "app.name").then(|| "shown".to_owned()));
    assert_eq!(
        effective["app.name"],
        ("shown".to_owned(), Source::Env("TOY__APP__NAME".into()))
    );
    assert_eq!(
        effective["app.port"],
        ("8080".to_owned(), Source::Env("PLATFORM_PORT".into()))
    );
}

#[test]
fn an_unknown_key_and_every_bad_value_are_reported_with_their_source() {
    let env = env(&[
        ("TOY__APP__NOPE", "1"),
        ("TOY__APP__PORT", "high"),
        ("TOY__APP__NAME", "fine"),
    ]);
    let layers = Layers::merge(&SCHEMA, None, &env, Vec::new()).expect("layers merge");
    let mut r = Reader::new(layers);
    let app: Option<App> = r.section("app");
    assert_eq!(
        app.map(|a| (a.name, a.port)),
        Some(("fine".to_owned(), 1)),
        "a bad value is replaced by its default so the rest is still read"
    );
    let problems: Vec<String> = r.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        [
            "app.nope: unknown key (from env TOY__APP__NOPE); see docs/configuration.md for the keys that exist",
            "app.port: \"high\" is not valid; expected a port number (from env TOY__APP__PORT)",
        ]
    );
}
