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
    fn errors_name_the_key() {
        let err = parse::<Outer>(br#"{"inner": {"dim": "wide"}}"#).unwrap_err();
        assert!(err.starts_with("inner.dim: invalid type: string"), "{err}");
        let err = parse::<Outer>(br#"{"inner": {"dim": 1}} trailing"#).unwrap_err();
        assert!(err.contains("trailing characters"), "{err}");
    }
}
