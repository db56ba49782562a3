//! # isoflop-train
//!
//! Trains the GPT language models whose curves the Chinchilla analysis is made of, on
//! libtorch through `tch` (the same kernels as PyTorch, on CPU and CUDA). The only crate of
//! isoflop that links libtorch.
//!
//! - [`data`]: byte-level text or u16 `.bin` corpora, held-out split, seeded batches.
//! - [`model`]: the GPT.
//! - [`schedule`]: warm-up, then cosine to 10% over exactly the horizon, WSD or constant.
//! - [`trainer`]: the loop, AdamW, clipping, curve and summary files, checkpoints, resume.

pub mod branch;
pub mod config;
pub mod data;
pub mod error;
pub mod model;
pub mod schedule;
mod state;
pub mod trainer;

pub use error::{Result, TrainError};
