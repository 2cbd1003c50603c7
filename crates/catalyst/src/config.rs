//! `catalyst serve --config FILE` (or `CATALYST_CONFIG`): a YAML file whose keys are the long
//! names of `serve`'s flags (`listen`, `data-dir`, `pool-domains`, `trusted-key`, …; `_` may
//! stand for `-`). Precedence, highest first: a flag on the command line, its `CATALYST_*`
//! variable, the file, the built-in default. The file is turned into the flags it stands for
//! before clap parses, so every value goes through the same parsers and checks as a flag; an
//! unknown key is an error naming it (a typo must not silently fall back to a default).
use std::ffi::OsString;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// `argv` with the settings of the config file that neither a flag nor a variable gives
/// appended as flags. Only `catalyst serve` (and `catalyst doctor`, which takes its flags) reads
/// a config file; other commands pass through.
/// `env` looks up a variable (the process environment in `main`).
pub fn expand(
    cmd: &clap::Command,
    argv: Vec<OsString>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Vec<OsString>> {
    // `doctor` takes `serve`'s flags, to check what `serve` with them would need.
    let Some(name) = argv
        .get(1)
        .and_then(|a| a.to_str())
        .filter(|a| matches!(*a, "serve" | "doctor"))
        .map(str::to_owned)
    else {
        return Ok(argv);
    };
    let given: Vec<String> = argv[2..]
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let from_flag = given.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix("--config=").map(str::to_string).or_else(|| {
            (a == "--config")
                .then(|| given.get(i + 1).cloned())
                .flatten()
        })
    });
    let path = match from_flag
        .map(OsString::from)
        .or_else(|| env("CATALYST_CONFIG"))
    {
        Some(p) if !p.is_empty() => p,
        _ => return Ok(argv),
    };
    let path = Path::new(&path);
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    let doc = catalyst_blueprint::yaml::parse_json(&text)
        .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?;
    let map = match doc {
        Value::Object(m) => m,
        Value::Null => return Ok(argv),
        _ => bail!(
            "config file {}: expected a mapping of flag names to values",
            path.display()
        ),
    };
    let Some(serve) = cmd.find_subcommand(&name) else {
        return Ok(argv);
    };
    let mut out = argv;
    for (key, value) in map {
        let long = key.replace('_', "-");
        let arg = serve
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()) && long != "config")
            .with_context(|| {
                format!(
                    "config file {}: unknown setting {key:?} (settings are the long flags of `catalyst serve`, e.g. listen, data-dir)",
                    path.display()
                )
            })?;
        let flag = format!("--{long}");
        let on_command_line = given
            .iter()
            .any(|a| *a == flag || a.starts_with(&format!("{flag}=")));
        let in_env = arg
            .get_env()
            .and_then(|v| v.to_str())
            .is_some_and(|v| env(v).is_some());
        if on_command_line || in_env {
            continue;
        }
        let takes_values = arg.get_action().takes_values();
        let scalars: Vec<String> = match value {
            Value::Null => continue,
            Value::Array(items) => items.iter().map(scalar).collect::<Option<_>>(),
            v => scalar(&v).map(|s| vec![s]),
        }
        .with_context(|| {
            format!(
                "config file {}: {key} must be a string, number, boolean or a list of them",
                path.display()
            )
        })?;
        if !takes_values {
            // A switch: `true` turns it on; `false` leaves the default (off).
            match scalars.as_slice() {
                [v] if v == "true" => out.push(flag.into()),
                [v] if v == "false" => {}
                _ => bail!(
                    "config file {}: {key} is a switch; use true or false",
                    path.display()
                ),
            }
            continue;
        }
        for v in scalars {
            // Checked here with the flag's own parser, so a mistake names the file and the key
            // rather than a flag the user never typed.
            if let Err(e) = check_value(arg, &v) {
                bail!(
                    "config file {}: {key}: {}",
                    path.display(),
                    invalid_value(&v, arg, &e)
                );
            }
            out.push(flag.clone().into());
            out.push(v.into());
        }
    }
    Ok(out)
}

/// Runs `value` through `arg`'s own parser (and possible values).
fn check_value(arg: &clap::Arg, value: &str) -> Result<(), clap::Error> {
    // Alone in a command of its own, without its relations to other flags (`requires`,
    // `conflicts_with`: they name flags this command lacks; the whole command line checks
    // them later).
    let flag = format!("--{}", arg.get_long().unwrap_or_default());
    let arg = arg
        .clone()
        .required(false)
        .global(false)
        .requires(clap::builder::Resettable::<clap::Id>::Reset)
        .conflicts_with(clap::builder::Resettable::<clap::Id>::Reset)
        .overrides_with(clap::builder::Resettable::<clap::Id>::Reset);
    clap::Command::new("config")
        .no_binary_name(true)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(arg)
        .try_get_matches_from([flag, value.to_owned()])
        .map(drop)
}

/// Why `value` is not a valid value for `arg`, in words that do not name the flag.
fn invalid_value(value: &str, arg: &clap::Arg, e: &clap::Error) -> String {
    if let Some(cause) = std::error::Error::source(e) {
        return format!("invalid value {value:?}: {cause}");
    }
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|p| !p.is_hide_set())
        .map(|p| p.get_name().to_string())
        .collect();
    if possible.is_empty() {
        format!("invalid value {value:?}")
    } else {
        format!(
            "invalid value {value:?} (possible values: {})",
            possible.join(", ")
        )
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Command};
    use clap::{CommandFactory, Parser};

    fn serve(file: &str, flags: &[&str], env: &[(&str, &str)]) -> Result<crate::ServeArgs> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalyst.yaml");
        std::fs::write(&path, file).unwrap();
        let mut argv: Vec<OsString> = vec!["catalyst".into(), "serve".into()];
        argv.extend(flags.iter().map(OsString::from));
        argv.push("--config".into());
        argv.push(path.into_os_string());
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let argv = expand(&Cli::command(), argv, |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.into())
        })?;
        match Cli::try_parse_from(argv)?.command {
            Command::Serve(a) => Ok(*a),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn settings_come_from_the_file_under_flags_and_variables() {
        let file = "listen: 0.0.0.0:9090\ndata_dir: /srv/catalyst\npool-domains: [a.example, b.example]\nregistry-plain-http: true\nprovision-timeout: 45m\nprovisioner: dry-run\n";
        let a = serve(file, &[], &[]).unwrap();
        assert_eq!(a.listen.to_string(), "0.0.0.0:9090");
        assert_eq!(a.data_dir, Path::new("/srv/catalyst"));
        assert_eq!(a.pool_domains, ["a.example", "b.example"]);
        assert!(a.registry_plain_http);
        assert_eq!(a.provision_timeout, std::time::Duration::from_secs(45 * 60));
        // A flag beats the file; so does the flag's variable.
        let a = serve(
            file,
            &["--listen", "127.0.0.1:1"],
            &[("CATALYST_DATA_DIR", "/elsewhere")],
        )
        .unwrap();
        assert_eq!(a.listen.to_string(), "127.0.0.1:1");
        // (the variable itself is read by clap from the real environment; here it only has to
        // keep the file's value out)
        assert_eq!(a.data_dir, Path::new("./catalyst-data"));
        // `false` leaves a switch off; an empty file changes nothing.
        assert!(
            !serve("registry-plain-http: false\n", &[], &[])
                .unwrap()
                .registry_plain_http
        );
        assert_eq!(
            serve("", &[], &[]).unwrap().listen.to_string(),
            "127.0.0.1:8080"
        );
    }

    #[test]
    fn mistakes_in_the_file_are_named() {
        for (file, needle) in [
            ("lisen: 0.0.0.0:1\n", "unknown setting \"lisen\""),
            ("config: other.yaml\n", "unknown setting \"config\""),
            ("registry-plain-http: maybe\n", "switch"),
            ("listen: {host: x}\n", "listen must be"),
            ("- listen\n", "mapping"),
        ] {
            let err = serve(file, &[], &[]).unwrap_err().to_string();
            assert!(err.contains(needle), "{file}: {err}");
        }
        // Values go through the flags' own parsers, and a bad one names the file and the key,
        // not a flag that was never typed.
        for (file, needle) in [
            (
                "listen: notaport\n",
                "catalyst.yaml: listen: invalid value \"notaport\": ",
            ),
            (
                "provisioner: magic\n",
                "provisioner: invalid value \"magic\" (possible values: ",
            ),
            (
                "provision-timeout: soon\n",
                "provision-timeout: invalid value \"soon\": ",
            ),
        ] {
            let err = serve(file, &[], &[]).unwrap_err().to_string();
            assert!(err.starts_with("config file "), "{err}");
            assert!(err.contains(needle), "{file}: {err}");
            assert!(
                !err.contains("--"),
                "names no flag that was never typed: {err}"
            );
        }
    }

    #[test]
    fn flags_that_require_others_can_be_set_in_the_file() {
        // oidc-audience requires oidc-issuer: checking one value must not trip over that.
        let file = "oidc-issuer: https://id.example\noidc-audience: catalyst\npublic-url: https://catalyst.example\n";
        let a = serve(file, &[], &[]).unwrap();
        assert_eq!(a.oidc_audience.as_deref(), Some("catalyst"));
        assert_eq!(a.public_url, "https://catalyst.example");
        let e = serve("public-url: ftp://x\n", &[], &[]).unwrap_err();
        assert!(
            e.to_string().contains("public-url") && e.to_string().contains("not an http"),
            "{e}"
        );
    }

    #[test]
    fn other_commands_and_no_file_pass_through() {
        let argv: Vec<OsString> = ["catalyst", "token", "create", "--config", "x"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(
            expand(&Cli::command(), argv.clone(), |_| None).unwrap(),
            argv
        );
        let argv: Vec<OsString> = ["catalyst", "serve"].iter().map(OsString::from).collect();
        assert_eq!(
            expand(&Cli::command(), argv.clone(), |_| None).unwrap(),
            argv
        );
    }
}
