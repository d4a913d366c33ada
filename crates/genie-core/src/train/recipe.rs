//! A training recipe: every step that makes a checkpoint, in order, in one TOML file, so that one
//! command (`genie train --recipe FILE --run DIR`) makes it and the same command after a stop goes
//! on where it stopped.
//!
//! ```toml
//! from = "checkpoints"        # optional: start from a copy of this checkpoint's networks,
//!                             # or from them as a commit of this repository holds them:
//!                             # from = { commit = "103c6b7", path = "checkpoints" }
//! config = "my/genie.json"    # optional, for a new run: the networks' sizes
//!
//! [[step]]
//! do = "train tokenizer"      # train tokenizer|decoder|lam|dynamics, calibrate, eval
//! steps = 8000                # optimizer steps this step adds to the network
//! lr = 4e-4                   # any other key is that command's flag, without the dashes
//!
//! [[step]]
//! do = "train lam"
//! steps = 6000
//! init = "checkpoints"        # optional: the network starts from this checkpoint's weights
//!                             # (a folder or { commit, path } as for `from`); with `steps = 0`
//!                             # it is taken as it is, untrained
//!
//! [[step]]
//! do = "calibrate"
//!
//! [[step]]
//! do = "keys"                 # set the key map in genie.json: any of calibration,
//! blends = [{ 1 = 1.5, 3 = -0.5 }]   # press_calibration, facing_calibration,
//! calibration = { dash = 8 }  # facing_press_calibration, settled_calibration,
//!                             # settle_after, held_cycles, blends; each given replaces
//!                             # the run's
//! ```
//!
//! The run folder keeps `recipe.json` ([`Progress`]): the steps done, as their command lines, and
//! the one under way with the network's step count when it began. A step whose command line
//! differs from the one recorded for it stops the run with an error: a changed recipe needs a new
//! run folder. The machine's settings (`--device`, `--threads`) come from the command, not the
//! recipe, so one recipe runs on a CPU or a GPU.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::run::Stage;
use crate::model::ConfigError;
use crate::model::checkpoint::GenieConfig;

/// The progress file of a recipe in its run folder.
pub const PROGRESS_FILE: &str = "recipe.json";

/// Flags the runner sets itself, which a recipe step may not.
const RUNNER_FLAGS: [&str; 8] = [
    "run",
    "resume",
    "restart-schedule",
    "checkpoint",
    "device",
    "threads",
    "quiet",
    "recipe",
];

/// Most steps a recipe may have.
const MAX_STEPS: usize = 256;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// The checkpoint whose networks, genie.json and train_state.json the run starts from.
    #[serde(default)]
    pub from: Option<Origin>,
    /// A genie.json with the sizes of a new run's networks (not with `from`).
    #[serde(default)]
    pub config: Option<PathBuf>,
    #[serde(rename = "step")]
    pub steps: Vec<RecipeStep>,
}

/// The checkpoint a recipe starts from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// A checkpoint folder as it is now.
    Folder(PathBuf),
    /// A checkpoint folder as a commit of the repository the recipe file is in holds it: a
    /// recipe that refines a shipped checkpoint still makes the same model after the checkpoint
    /// it made is shipped in its place.
    Commit { commit: String, path: PathBuf },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Folder(dir) => write!(f, "{}", dir.display()),
            Origin::Commit { commit, path } => write!(f, "{commit}:{}", path.display()),
        }
    }
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct AtCommit {
            commit: String,
            path: PathBuf,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Folder(PathBuf),
            Commit(AtCommit),
        }
        let at = match Either::deserialize(d).map_err(|_| {
            D::Error::custom("a checkpoint is a folder or { commit = \"HASH\", path = \"FOLDER\" }")
        })? {
            Either::Folder(dir) => return Ok(Origin::Folder(dir)),
            Either::Commit(at) => at,
        };
        // A commit, not a branch or tag: what it names never changes.
        if !(7..=40).contains(&at.commit.len()) || !at.commit.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(D::Error::custom(format!(
                "`commit` {:?} is not a commit hash (7 to 40 hex digits)",
                at.commit
            )));
        }
        let inside = at
            .path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !inside || at.path.as_os_str().is_empty() {
            return Err(D::Error::custom(format!(
                "`path` {:?} is not a folder inside the repository (relative, no `..`)",
                at.path
            )));
        }
        Ok(Origin::Commit {
            commit: at.commit.to_ascii_lowercase(),
            path: at.path,
        })
    }
}

/// What one step of a recipe does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Train(Stage),
    Calibrate,
    Eval,
    /// The key map written into the run's genie.json ([`KeysStep`]).
    Keys,
}

/// A `keys` step: the parts of `genie.json`'s key map it gives, each replacing the run's whole
/// (the maps are [`GenieConfig`]'s fields of the same names; `blends` is `dynamics.blends`).
/// What a calibration cannot find, chosen by hand and measured (a blend for the dash, a settled
/// latent for a noop held long), so that a recipe makes the shipped key map too.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysStep {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blends: Option<Vec<BTreeMap<i64, f64>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<BTreeMap<String, i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub press_calibration: Option<BTreeMap<String, i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facing_calibration: Option<BTreeMap<String, BTreeMap<String, i64>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facing_press_calibration: Option<BTreeMap<String, BTreeMap<String, i64>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settled_calibration: Option<BTreeMap<String, i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settle_after: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_cycles: Option<BTreeMap<String, Vec<i64>>>,
}

impl KeysStep {
    /// `config` with the parts this step gives replaced; checked as a loaded genie.json is.
    pub fn apply(&self, config: &mut GenieConfig) -> Result<(), ConfigError> {
        fn given<T: Clone>(field: &mut Option<T>, value: &Option<T>) {
            if value.is_some() {
                field.clone_from(value);
            }
        }
        if let Some(blends) = &self.blends {
            config.dynamics.blends = blends.clone();
        }
        given(&mut config.calibration, &self.calibration);
        given(&mut config.press_calibration, &self.press_calibration);
        given(&mut config.facing_calibration, &self.facing_calibration);
        given(
            &mut config.facing_press_calibration,
            &self.facing_press_calibration,
        );
        given(&mut config.settled_calibration, &self.settled_calibration);
        given(&mut config.settle_after, &self.settle_after);
        given(&mut config.held_cycles, &self.held_cycles);
        config.validate()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecipeStep {
    pub action: Action,
    /// Optimizer steps a training step adds to its network.
    pub steps: Option<u64>,
    /// The command's other flags, without their dashes (`clip-len` or `clip_len`), in order.
    pub flags: Vec<(String, String)>,
    /// A training step's network starts from this checkpoint's weights (and fresh optimizer
    /// moments) instead of the run's own; the run must exist from an earlier step or `from`.
    /// With `steps` 0 the network is taken as it is.
    pub init: Option<Origin>,
    /// A dynamics step's `--codes-from`: the checkpoint whose tokenizer's codes the dynamics
    /// model learned on, a folder or a commit's, as for `from`.
    pub codes_from: Option<Origin>,
    /// A `keys` step's key map.
    pub keys: Option<KeysStep>,
}

/// What went wrong with a recipe file.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("{path}: {what}")]
    Invalid { path: PathBuf, what: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl<'de> Deserialize<'de> for RecipeStep {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let action = match table.remove("do") {
            Some(toml::Value::String(text)) => parse_action(&text).map_err(D::Error::custom)?,
            Some(_) => return Err(D::Error::custom("`do` must be a string")),
            None => return Err(D::Error::custom("a step needs `do`")),
        };
        if action == Action::Keys {
            // Read through JSON, as genie.json is: a blend's latents are keys there.
            let json = serde_json::to_value(&table).map_err(D::Error::custom)?;
            let keys: KeysStep = serde_json::from_value(json)
                .map_err(|e| D::Error::custom(format!("a `keys` step: {e}")))?;
            if keys == KeysStep::default() {
                return Err(D::Error::custom(
                    "a `keys` step sets nothing: give calibration, press_calibration, \
                     facing_calibration, facing_press_calibration, settled_calibration, \
                     settle_after, held_cycles or blends",
                ));
            }
            return Ok(RecipeStep {
                action,
                steps: None,
                flags: Vec::new(),
                init: None,
                codes_from: None,
                keys: Some(keys),
            });
        }
        let mut steps = None;
        let mut init = None;
        let mut codes_from = None;
        let mut flags = Vec::new();
        for (key, value) in table {
            let flag = key.replace('_', "-");
            match flag.as_str() {
                // A training step's steps are how many it adds; calibrate's and eval's
                // `steps` are their own flag (MaskGIT steps).
                "steps" if matches!(action, Action::Train(_)) => {
                    let n = value.as_integer().filter(|&n| n >= 0).ok_or_else(|| {
                        D::Error::custom("`steps` must be a positive integer (or 0 with `init`)")
                    })?;
                    steps = Some(n as u64);
                }
                "codes-from" if action == Action::Train(Stage::Dynamics) => {
                    codes_from = Some(
                        Origin::deserialize(value)
                            .map_err(|e| D::Error::custom(format!("`{key}`: {}", e.message())))?,
                    );
                }
                "init" if matches!(action, Action::Train(_)) => {
                    init = Some(
                        Origin::deserialize(value)
                            .map_err(|e| D::Error::custom(format!("`init`: {}", e.message())))?,
                    );
                }
                _ if RUNNER_FLAGS.contains(&flag.as_str()) => {
                    return Err(D::Error::custom(format!(
                        "`{key}` is set by `genie train --recipe` itself, not by a step"
                    )));
                }
                _ => match value {
                    toml::Value::Boolean(true) => flags.push((flag, String::new())),
                    toml::Value::Boolean(false) => {}
                    toml::Value::String(s) => flags.push((flag, s)),
                    toml::Value::Integer(i) => flags.push((flag, i.to_string())),
                    toml::Value::Float(x) => flags.push((flag, x.to_string())),
                    other => {
                        return Err(D::Error::custom(format!(
                            "`{key}`: a flag's value is a string, number or boolean, not {}",
                            other.type_str()
                        )));
                    }
                },
            }
        }
        if matches!(action, Action::Train(_)) && steps.is_none() {
            return Err(D::Error::custom("a training step needs `steps`"));
        }
        if steps == Some(0) && codes_from.is_some() {
            return Err(D::Error::custom(
                "`codes_from` carries the dynamics model as its training begins: `steps` must be \
                 positive",
            ));
        }
        if steps == Some(0) && init.is_none() {
            return Err(D::Error::custom(
                "`steps` must be a positive integer (or 0 with `init`: the network taken as it is)",
            ));
        }
        Ok(RecipeStep {
            action,
            steps,
            flags,
            init,
            codes_from,
            keys: None,
        })
    }
}

fn parse_action(text: &str) -> Result<Action, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    Ok(match words.as_slice() {
        ["train", network] => Action::Train(match *network {
            "tokenizer" => Stage::Tokenizer,
            "decoder" => Stage::Decoder,
            "lam" => Stage::Lam,
            "dynamics" => Stage::Dynamics,
            "camera" => Stage::Camera,
            other => {
                return Err(format!(
                    "`do = \"{text}\"`: no network {other:?} (tokenizer, decoder, lam, dynamics, \
                     camera)"
                ));
            }
        }),
        ["calibrate"] => Action::Calibrate,
        ["eval"] => Action::Eval,
        ["keys"] => Action::Keys,
        _ => {
            return Err(format!(
                "`do = \"{text}\"`: expected `train NETWORK`, `calibrate`, `eval` or `keys`"
            ));
        }
    })
}

impl Recipe {
    /// Reads and checks a recipe file.
    pub fn load(path: &Path) -> Result<Recipe, RecipeError> {
        let invalid = |what: String| RecipeError::Invalid {
            path: path.into(),
            what,
        };
        let text = std::fs::read_to_string(path).map_err(|source| RecipeError::Io {
            path: path.into(),
            source,
        })?;
        let recipe: Recipe = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if recipe.steps.is_empty() {
            return Err(invalid("no [[step]]: nothing to do".into()));
        }
        if recipe.steps.len() > MAX_STEPS {
            return Err(invalid(format!(
                "{} steps; at most {MAX_STEPS}",
                recipe.steps.len()
            )));
        }
        if recipe.from.is_some() && recipe.config.is_some() {
            return Err(invalid(
                "`from` and `config` both given: a run starts from a checkpoint or from sizes"
                    .into(),
            ));
        }
        if recipe.from.is_none() && recipe.steps[0].init.is_some() {
            return Err(invalid(
                "the first step's `init`: a network starts from another checkpoint's weights in a \
                 run an earlier step (or `from`) made"
                    .into(),
            ));
        }
        if recipe.from.is_none() {
            match recipe.steps[0].action {
                Action::Train(Stage::Tokenizer | Stage::Lam) => {}
                _ => {
                    return Err(invalid(
                        "a recipe without `from` starts new networks: its first step trains the \
                         tokenizer or the LAM"
                            .into(),
                    ));
                }
            }
        }
        Ok(recipe)
    }
}

impl RecipeStep {
    /// The step as a command line after `genie` (without the runner's own flags): what
    /// `recipe.json` records of it.
    pub fn describe(&self) -> String {
        let mut words = vec![match self.action {
            Action::Train(stage) => format!("train {}", stage.name()),
            Action::Calibrate => "calibrate".into(),
            Action::Eval => "eval".into(),
            Action::Keys => "keys".into(),
        }];
        if let Some(keys) = &self.keys {
            words.push(serde_json::to_string(keys).expect("a key map serialises"));
        }
        if let Some(n) = self.steps {
            words.push(format!("+{n} steps"));
        }
        if let Some(origin) = &self.init {
            words.push(format!("from {origin}"));
        }
        if let Some(origin) = &self.codes_from {
            words.push(format!("--codes-from {origin}"));
        }
        words.extend(self.flag_args());
        words.join(" ")
    }

    /// The step's flags as command-line arguments.
    pub fn flag_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (flag, value) in &self.flags {
            args.push(format!("--{flag}"));
            if !value.is_empty() {
                args.push(value.clone());
            }
        }
        args
    }
}

/// `recipe.json`: how far a recipe has come in its run folder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// The steps finished, as [`RecipeStep::describe`] gives them, in order.
    pub done: Vec<String>,
    /// Seconds each finished step took (stops and restarts left out).
    pub seconds: Vec<f64>,
    /// The step under way: its index and, for a training step, the network's step count when
    /// it began (it trains to that plus its `steps`).
    pub current: Option<Current>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Current {
    pub index: usize,
    pub from_step: u64,
    /// Seconds spent on it in earlier runs of the command.
    pub seconds: f64,
}

impl Progress {
    /// The progress in `run` (none yet: empty).
    pub fn load(run: &Path) -> Result<Progress, RecipeError> {
        let path = run.join(PROGRESS_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => crate::json::parse(&bytes).map_err(|what| RecipeError::Invalid {
                path: path.clone(),
                what,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Progress::default()),
            Err(source) => Err(RecipeError::Io { path, source }),
        }
    }

    /// Writes it beside its target and renames it over, so a kill mid-write keeps the last.
    pub fn save(&self, run: &Path) -> Result<(), RecipeError> {
        let path = run.join(PROGRESS_FILE);
        let tmp = run.join(".recipe.json.tmp");
        let io = |source| RecipeError::Io {
            path: path.clone(),
            source,
        };
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).expect("progress serialises"),
        )
        .map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    /// Checks that the steps done are the recipe's first ones, unchanged; the index of the next.
    pub fn check(&self, recipe: &Recipe, run: &Path) -> Result<usize, RecipeError> {
        let path = run.join(PROGRESS_FILE);
        if self.done.len() > recipe.steps.len() {
            return Err(RecipeError::Invalid {
                path,
                what: format!(
                    "{} steps done, but the recipe has {}: a changed recipe needs a new run folder",
                    self.done.len(),
                    recipe.steps.len()
                ),
            });
        }
        for (i, (done, step)) in self.done.iter().zip(&recipe.steps).enumerate() {
            let now = step.describe();
            if *done != now {
                return Err(RecipeError::Invalid {
                    path,
                    what: format!(
                        "step {} was done as `{done}`, the recipe now says `{now}`: a changed \
                         recipe needs a new run folder",
                        i + 1
                    ),
                });
            }
        }
        if let Some(c) = self.current
            && c.index != self.done.len()
        {
            return Err(RecipeError::Invalid {
                path,
                what: format!(
                    "step {} is under way but {} are done",
                    c.index + 1,
                    self.done.len()
                ),
            });
        }
        Ok(self.done.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Recipe, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.toml");
        std::fs::write(&path, text).unwrap();
        Recipe::load(&path).map_err(|e| e.to_string())
    }

    #[test]
    fn steps_read_as_command_lines() {
        let r = parse(
            r#"
            [[step]]
            do = "train tokenizer"
            steps = 8000
            lr = 4e-4
            clip_len = 4
            mirror = true
            off = false
            camera = "step"

            [[step]]
            do = "calibrate"
            by = "dreams"
            "#,
        )
        .unwrap();
        assert_eq!(r.steps[0].action, Action::Train(Stage::Tokenizer));
        assert_eq!(r.steps[0].steps, Some(8000));
        assert_eq!(
            r.steps[0].flag_args(),
            [
                "--camera",
                "step",
                "--clip-len",
                "4",
                "--lr",
                "0.0004",
                "--mirror"
            ]
        );
        assert_eq!(
            r.steps[0].describe(),
            "train tokenizer +8000 steps --camera step --clip-len 4 --lr 0.0004 --mirror"
        );
        assert_eq!(r.steps[1].describe(), "calibrate --by dreams");
        // Eval's `steps` is its own flag (MaskGIT steps), not optimizer steps.
        let r = parse("from = \"checkpoints\"\n[[step]]\ndo = \"eval\"\nsteps = 3").unwrap();
        assert_eq!(r.steps[0].describe(), "eval --steps 3");
        assert_eq!(r.from, Some(Origin::Folder("checkpoints".into())));
        let r = parse(
            "from = { commit = \"103C6B7\", path = \"checkpoints\" }\n[[step]]\ndo = \"eval\"",
        )
        .unwrap();
        let from = r.from.unwrap();
        assert_eq!(
            from,
            Origin::Commit {
                commit: "103c6b7".into(),
                path: "checkpoints".into()
            }
        );
        assert_eq!(from.to_string(), "103c6b7:checkpoints");
        // A network taken from a commit's checkpoint as it is, untrained.
        let r = parse(
            "config = \"g.json\"\n[[step]]\ndo = \"train tokenizer\"\nsteps = 5\n[[step]]\n\
             do = \"train lam\"\nsteps = 0\ninit = { commit = \"91025DF\", path = \"checkpoints\" }",
        )
        .unwrap();
        assert_eq!(r.steps[1].steps, Some(0));
        assert_eq!(
            r.steps[1].describe(),
            "train lam +0 steps from 91025df:checkpoints"
        );
        let r = parse(
            "from = \"c\"\n[[step]]\ndo = \"train dynamics\"\nsteps = 5\n\
             codes_from = { commit = \"91025df\", path = \"checkpoints\" }\nlr = 1e-4",
        )
        .unwrap();
        assert_eq!(
            r.steps[0].describe(),
            "train dynamics +5 steps --codes-from 91025df:checkpoints --lr 0.0001"
        );
    }

    #[test]
    fn bad_recipes_say_what_is_wrong() {
        for (text, want) in [
            ("", "missing field `step`"),
            ("step = []", "nothing to do"),
            ("[[step]]\nsteps = 3", "needs `do`"),
            (
                "[[step]]\ndo = \"train vae\"\nsteps = 3",
                "no network \"vae\"",
            ),
            ("[[step]]\ndo = \"train lam\"", "needs `steps`"),
            (
                "[[step]]\ndo = \"train lam\"\nsteps = -3",
                "positive integer",
            ),
            (
                "[[step]]\ndo = \"train lam\"\nsteps = 3\nrun = \"x\"",
                "set by `genie train",
            ),
            (
                "[[step]]\ndo = \"train lam\"\nsteps = 3\nodds = [1]",
                "not array",
            ),
            (
                "[[step]]\ndo = \"train dynamics\"\nsteps = 3",
                "first step trains",
            ),
            (
                "from = \"a\"\nconfig = \"b\"\n[[step]]\ndo = \"eval\"",
                "both given",
            ),
            ("wat = 1\n[[step]]\ndo = \"eval\"", "unknown field `wat`"),
            (
                "from = { commit = \"main\", path = \"c\" }\n[[step]]\ndo = \"eval\"",
                "not a commit hash",
            ),
            (
                "from = { commit = \"103c6b7\", path = \"../c\" }\n[[step]]\ndo = \"eval\"",
                "not a folder inside",
            ),
            (
                "from = { commit = \"103c6b7\" }\n[[step]]\ndo = \"eval\"",
                "is a folder or",
            ),
            (
                "from = \"c\"\n[[step]]\ndo = \"train lam\"\nsteps = 0",
                "or 0 with `init`",
            ),
            (
                "from = \"c\"\n[[step]]\ndo = \"train dynamics\"\nsteps = 0\ninit = \"c\"\n\
                 codes_from = \"c\"",
                "`steps` must be positive",
            ),
            (
                "from = \"c\"\n[[step]]\ndo = \"train lam\"\nsteps = 3\ninit = { commit = \"x\", path = \"c\" }",
                "`init`: `commit` \"x\" is not a commit hash",
            ),
            ("from = \"c\"\n[[step]]\ndo = \"keys\"", "sets nothing"),
            (
                "from = \"c\"\n[[step]]\ndo = \"keys\"\nsteps = 3",
                "a `keys` step: unknown field `steps`",
            ),
            (
                "from = \"c\"\n[[step]]\ndo = \"keys\"\nblends = [{ x = 1.0 }]",
                "a `keys` step",
            ),
            (
                "from = \"c\"\n[[step]]\ndo = \"keys\"\nsettle_after = -1",
                "a `keys` step",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_keys_step_sets_the_key_map_it_gives_and_checks_it() {
        let r = parse(
            "from = \"c\"\n[[step]]\ndo = \"keys\"\nblends = [{ 1 = 1.5, 3 = -0.5 }]\n\
             calibration = { dash = 8 }\nfacing_calibration = { left = { dash = 8 } }\n\
             settled_calibration = { noop = 8 }\nsettle_after = 8\nheld_cycles = { jump = [6, 3, 7] }",
        )
        .unwrap();
        let step = &r.steps[0];
        assert_eq!(step.action, Action::Keys);
        assert_eq!(
            step.describe(),
            r#"keys {"blends":[{"1":1.5,"3":-0.5}],"calibration":{"dash":8},"facing_calibration":{"left":{"dash":8}},"settled_calibration":{"noop":8},"settle_after":8,"held_cycles":{"jump":[6,3,7]}}"#
        );
        let keys = step.keys.as_ref().unwrap();
        let mut config = GenieConfig {
            calibration: Some(BTreeMap::from([
                ("dash".to_owned(), 1),
                ("noop".to_owned(), 3),
            ])),
            press_calibration: Some(BTreeMap::from([("jump".to_owned(), 6)])),
            ..Default::default()
        };
        keys.apply(&mut config).unwrap();
        // What it gives replaces the run's whole; what it does not give stays.
        assert_eq!(
            config.dynamics.blends,
            [BTreeMap::from([(1, 1.5), (3, -0.5)])]
        );
        assert_eq!(
            config.calibration,
            Some(BTreeMap::from([("dash".to_owned(), 8)]))
        );
        assert_eq!(
            config.press_calibration,
            Some(BTreeMap::from([("jump".to_owned(), 6)]))
        );
        assert_eq!(config.settle_after, Some(8));
        assert_eq!(
            config.held_cycles,
            Some(BTreeMap::from([("jump".to_owned(), vec![6, 3, 7])]))
        );
        // Checked as a loaded genie.json is: a latent the model does not have is refused.
        let mut bare = GenieConfig::default();
        let mut no_blend = keys.clone();
        no_blend.blends = None;
        let err = no_blend.apply(&mut bare).unwrap_err().to_string();
        assert!(err.contains("dash → latent 8"), "{err}");
    }

    #[test]
    fn progress_must_match_the_recipe_it_was_made_with() {
        let r =
            parse("[[step]]\ndo = \"train lam\"\nsteps = 3\n[[step]]\ndo = \"eval\"\nclips = 4")
                .unwrap();
        let run = tempfile::tempdir().unwrap();
        let mut p = Progress::load(run.path()).unwrap();
        assert_eq!(p.check(&r, run.path()).unwrap(), 0);
        p.done.push(r.steps[0].describe());
        p.seconds.push(1.0);
        p.save(run.path()).unwrap();
        let p = Progress::load(run.path()).unwrap();
        assert_eq!(p.check(&r, run.path()).unwrap(), 1);
        let changed = parse("[[step]]\ndo = \"train lam\"\nsteps = 4").unwrap();
        let err = p.check(&changed, run.path()).unwrap_err().to_string();
        assert!(
            err.contains("step 1 was done as `train lam +3 steps`"),
            "{err}"
        );
        std::fs::write(run.path().join(PROGRESS_FILE), "{\"done\": 3}").unwrap();
        let err = Progress::load(run.path()).unwrap_err().to_string();
        assert!(err.contains("recipe.json") && err.contains("done"), "{err}");
    }
}
