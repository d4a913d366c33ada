//! Training: one loop shared by the tokenizer, the latent action model and the dynamics model,
//! with its schedule and its metrics log.

pub mod adamw;
pub mod clips;
pub mod dist;
pub mod folder;
pub mod launch;
pub mod log;
pub mod loss;
pub mod recipe;
pub mod run;
pub mod schedule;
