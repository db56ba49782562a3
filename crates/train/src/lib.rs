//! # isoflop-train
//!
//! Trains the GPT language models whose curves the Chinchilla analysis is made of, on
//! libtorch through `tch` (the same kernels as PyTorch, on CPU and CUDA). The only crate of
//! isoflop that links libtorch.
//!
//! - [`data`]: byte-level text or u16 `.bin` corpora, held-out split, seeded batches.
//! - [`model`]: the GPT.
//! - [`schedule`]: warm-up, then cosine to 10% over exactly the horizon, WSD or constant.
//! - [`trainer`]: training a run or a cooldown branch into its folder (the entry points).
//! - [`event`]: what a run tells its caller (progress, notes) and how it ended.
//!
//! Inside, below the entry points: `branch` (a branch's config, started from its trunk),
//! `start` (what a folder holds, resume, restart), `steps` (the loop), `state` (AdamW and
//! checkpoints); nothing below calls back up.

pub mod branch;
pub mod config;
pub mod data;
pub mod error;
pub mod event;
pub mod model;
pub mod schedule;
mod start;
mod state;
mod steps;
pub mod trainer;

pub use error::{Result, TrainError};
