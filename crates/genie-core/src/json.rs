//! Reading JSON a user or a stranger may have written (genie.json, manifests, recordings,
//! bindings): an error names the key it is about (`dynamics.st.dim: invalid type: string "x",
//! expected i64 at line 5 column 14`), not only a line and column.

use serde::de::DeserializeOwned;

/// Parses `bytes` as a `T`; the error names the path to the value that did not fit.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| describe(&e))?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// A setting genie once had and no longer has: the JSON pointer to it (`/sampler/action_guidance`)
/// and the JSON text of the value that meant "off" (`"0"`, `"false"`).
pub struct Retired {
    pub pointer: &'static str,
    pub off: &'static str,
}

/// Refuses a file that turns on a retired setting: loading it without the setting would quietly
/// compute something else than what the file was made with. A file that is not JSON passes (the
/// typed parse that follows says what is wrong with it).
pub fn refuse_retired(bytes: &[u8], retired: &[Retired]) -> Result<(), String> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(());
    };
    for r in retired {
        let off: serde_json::Value = serde_json::from_str(r.off).expect("a retired setting's off");
        match value.pointer(r.pointer) {
            Some(v) if !same(v, &off) => {
                let key = r.pointer.trim_start_matches('/').replace('/', ".");
                return Err(format!(
                    "{key} is {v}, but genie no longer has this setting (it was removed because \
                     it did not improve play); remove the key or set it to {off}"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Equal as JSON values, numbers compared as numbers (`0` and `0.0` are both off).
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn describe(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    if path == "." {
        e.inner().to_string()
    } else {
        format!("{path}: {}", e.inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Outer {
        #[allow(dead_code)]
        inner: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Inner {
        #[allow(dead_code)]
        dim: i64,
    }

    #[test]
    fn a_retired_setting_turned_on_is_refused_and_off_or_absent_passes() {
        let retired = [Retired {
            pointer: "/sampler/action_guidance",
            off: "0",
        }];
        for ok in [
            &br#"{"sampler": {"action_guidance": 0}}"#[..],
            br#"{"sampler": {"action_guidance": 0.0}}"#,
            br#"{"sampler": {}}"#,
            br#"not json"#,
        ] {
            assert!(refuse_retired(ok, &retired).is_ok());
        }
        let err =
            refuse_retired(br#"{"sampler": {"action_guidance": 2.0}}"#, &retired).unwrap_err();
        assert!(err.starts_with("sampler.action_guidance is 2.0"), "{err}");
    }

    #[test]
    fn errors_name_the_key() {
        let err = parse::<Outer>(br#"{"inner": {"dim": "wide"}}"#).unwrap_err();
        assert!(err.starts_with("inner.dim: invalid type: string"), "{err}");
        let err = parse::<Outer>(br#"{"inner": {"dim": 1}} trailing"#).unwrap_err();
        assert!(err.contains("trailing characters"), "{err}");
    }
}
