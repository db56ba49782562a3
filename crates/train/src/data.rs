//! Training data: byte-level text (vocabulary 256) from a file or folder, or a nanoGPT-style
//! `.bin` of little-endian u16 token ids; a held-out split; seeded batches.
//!
//! The batch for step k is drawn from stream k of the run's seed, so it depends on nothing
//! but (seed, k): a resumed run sees exactly the batches the uninterrupted run would have.
//! The held-out batches are drawn from [`EVAL_SEED`], the same for every run whatever its
//! seed, so replicates at other seeds are scored on the same held-out text.

use crate::error::{Result, TrainError};
use isoflop_core::Rng;
use std::path::{Path, PathBuf};

/// A tokenised corpus split into training and held-out parts.
#[derive(Clone, Debug)]
pub struct Corpus {
    /// Training tokens.
    pub train: Vec<u16>,
    /// Held-out tokens (the corpus's last tenth).
    pub val: Vec<u16>,
    /// Vocabulary size.
    pub vocab: usize,
    /// Where it came from and how it was read.
    pub description: String,
}

/// More passes over a corpus than this warn ([`Corpus::repetition_warning`]): Muennighoff et
/// al. 2023 found up to about 4 epochs of repeated data nearly as good as fresh data.
pub const MAX_PASSES: f64 = 4.0;

/// Stream offset separating evaluation batches from training batches.
const EVAL_STREAM: u64 = 1 << 40;
/// The seed of every run's held-out batches: 0, the default training seed, so that runs at
/// seed 0 score on the batches they did when the held-out set followed the training seed.
pub const EVAL_SEED: u64 = 0;

fn data_err(path: &Path, problem: impl Into<String>) -> TrainError {
    TrainError::Data {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })
}

impl Corpus {
    /// Reads a corpus: a `.bin` file of u16 tokens (with `vocab`, or the largest id + 1), a
    /// text file, or a folder of text files (read in name order, joined), as bytes.
    ///
    /// # Errors
    /// [`TrainError::Data`] for a missing or empty corpus, a `.bin` of odd length, a token
    /// at or above `vocab`, or a corpus too short to hold one training and one held-out
    /// sequence of `context + 1` tokens.
    pub fn load(path: &Path, vocab: Option<usize>, context: usize) -> Result<Corpus> {
        if !path.exists() {
            return Err(data_err(path, "no such file or folder"));
        }
        let (tokens, vocab, how): (Vec<u16>, usize, String) =
            if path.extension().is_some_and(|e| e == "bin") {
                let bytes = read(path)?;
                if bytes.len() % 2 != 0 {
                    return Err(data_err(
                        path,
                        format!(
                            "a .bin of u16 tokens must have an even length, this one has {} bytes",
                            bytes.len()
                        ),
                    ));
                }
                let t: Vec<u16> = bytes
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect();
                let max = t.iter().copied().max().unwrap_or(0) as usize;
                let vocab = match vocab {
                    Some(v) => {
                        if let Some(pos) = t.iter().position(|&x| x as usize >= v) {
                            return Err(data_err(
                                path,
                                format!(
                                    "token {} at position {pos} is outside the vocabulary of {v}",
                                    t[pos]
                                ),
                            ));
                        }
                        v
                    }
                    None => max + 1,
                };
                (t, vocab, format!("u16 tokens, vocabulary {vocab}"))
            } else {
                let bytes = if path.is_dir() {
                    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                        .map_err(|source| TrainError::Io {
                            path: path.to_path_buf(),
                            source,
                        })?
                        .flatten()
                        .map(|e| e.path())
                        .filter(|p| p.is_file())
                        .collect();
                    files.sort();
                    let mut all = Vec::new();
                    for f in files {
                        all.extend(read(&f)?);
                    }
                    all
                } else {
                    read(path)?
                };
                if let Some(v) = vocab {
                    if v < 256 {
                        return Err(data_err(
                            path,
                            format!("byte-level text needs a vocabulary of 256, not {v}"),
                        ));
                    }
                }
                (
                    bytes.into_iter().map(u16::from).collect(),
                    vocab.unwrap_or(256),
                    "bytes, vocabulary 256".to_string(),
                )
            };
        if tokens.is_empty() {
            return Err(data_err(path, "the corpus is empty"));
        }
        let split = tokens.len() - tokens.len() / 10;
        let (train, val) = (tokens[..split].to_vec(), tokens[split..].to_vec());
        if train.len() <= context + 1 || val.len() <= context + 1 {
            return Err(data_err(
                path,
                format!("{} tokens are too few: the training part ({}) and the held-out tenth ({}) must each exceed one sequence of {} tokens", tokens.len(), train.len(), val.len(), context + 1),
            ));
        }
        Ok(Corpus {
            train,
            val,
            vocab,
            description: format!("{} ({how}, {} tokens)", path.display(), tokens.len()),
        })
    }

    /// A warning when a run of `tokens` training tokens in batches of `batch` x `context`
    /// sees this corpus's training part many times: more than [`MAX_PASSES`] passes, or a
    /// training part shorter than one batch (each batch then spans all of it). `None` when
    /// the corpus is long enough.
    pub fn repetition_warning(&self, tokens: u64, batch: usize, context: usize) -> Option<String> {
        let n = self.train.len() as f64;
        let passes = tokens as f64 / n;
        let per_batch = (batch * context) as f64;
        if n < per_batch {
            Some(format!(
                "the corpus's training part ({} tokens) is shorter than one batch ({} tokens): every batch repeats it, and the run passes over it {passes:.0} times",
                self.train.len(),
                batch * context
            ))
        } else if passes > MAX_PASSES {
            Some(format!(
                "the run's {tokens} tokens pass over the corpus's training part ({} tokens) {passes:.1} times; beyond about {MAX_PASSES} passes repeated tokens are worth less than fresh ones (Muennighoff et al. 2023), which bends a scaling law",
                self.train.len()
            ))
        } else {
            None
        }
    }

    /// `batch` sequences of `context` inputs and their next-token targets for training step
    /// `step`, as flat row-major vectors.
    pub fn train_batch(
        &self,
        seed: u64,
        step: u64,
        batch: usize,
        context: usize,
    ) -> (Vec<i64>, Vec<i64>) {
        sample(&self.train, Rng::stream(seed, step), batch, context)
    }

    /// Held-out batch `k`: the same for every evaluation of every run.
    pub fn eval_batch(&self, k: u64, batch: usize, context: usize) -> (Vec<i64>, Vec<i64>) {
        sample(
            &self.val,
            Rng::stream(EVAL_SEED, EVAL_STREAM + k),
            batch,
            context,
        )
    }
}

fn sample(tokens: &[u16], mut rng: Rng, batch: usize, context: usize) -> (Vec<i64>, Vec<i64>) {
    let mut x = Vec::with_capacity(batch * context);
    let mut y = Vec::with_capacity(batch * context);
    for _ in 0..batch {
        let start = rng.below(tokens.len() - context);
        x.extend(tokens[start..start + context].iter().map(|&t| t as i64));
        y.extend(
            tokens[start + 1..start + context + 1]
                .iter()
                .map(|&t| t as i64),
        );
    }
    (x, y)
}

pub use isoflop_core::corpus::default_corpus;

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("isoflop-data-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn text_bin_and_folder_corpora() {
        let d = tmp("ok");
        let text: String = (0..200)
            .map(|i| format!("line {i} of a small corpus.\n"))
            .collect();
        std::fs::write(d.join("a.txt"), &text).unwrap();
        let c = Corpus::load(&d.join("a.txt"), None, 16).unwrap();
        assert_eq!(c.vocab, 256);
        assert_eq!(c.train.len() + c.val.len(), text.len());
        let bin: Vec<u8> = (0..1000u16).flat_map(|t| (t % 300).to_le_bytes()).collect();
        std::fs::write(d.join("t.bin"), &bin).unwrap();
        let c = Corpus::load(&d.join("t.bin"), Some(300), 16).unwrap();
        assert_eq!(c.train[299], 299);
        let sub = d.join("folder");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("1.txt"), &text).unwrap();
        std::fs::write(sub.join("2.txt"), &text).unwrap();
        assert_eq!(
            Corpus::load(&sub, None, 16).unwrap().train.len()
                + Corpus::load(&sub, None, 16).unwrap().val.len(),
            2 * text.len()
        );
    }

    #[test]
    fn bad_corpora_are_named() {
        let d = tmp("bad");
        let e = Corpus::load(&d.join("missing.txt"), None, 16)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.txt") && e.contains("no such"), "{e}");
        std::fs::write(d.join("empty.txt"), "").unwrap();
        assert!(Corpus::load(&d.join("empty.txt"), None, 16)
            .unwrap_err()
            .to_string()
            .contains("empty"));
        std::fs::write(d.join("short.txt"), "tiny corpus").unwrap();
        assert!(Corpus::load(&d.join("short.txt"), None, 16)
            .unwrap_err()
            .to_string()
            .contains("too few"));
        std::fs::write(d.join("odd.bin"), [1u8, 0, 2]).unwrap();
        assert!(Corpus::load(&d.join("odd.bin"), None, 16)
            .unwrap_err()
            .to_string()
            .contains("even length"));
        let bin: Vec<u8> = (0..1000u16).flat_map(|t| t.to_le_bytes()).collect();
        std::fs::write(d.join("big.bin"), &bin).unwrap();
        let e = Corpus::load(&d.join("big.bin"), Some(512), 16)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("token 512 at position 512") && e.contains("vocabulary of 512"),
            "{e}"
        );
    }

    #[test]
    fn batches_depend_only_on_seed_and_step() {
        let d = tmp("batch");
        let text: String = (0..500).map(|i| format!("{i} ")).collect();
        std::fs::write(d.join("c.txt"), &text).unwrap();
        let c = Corpus::load(&d.join("c.txt"), None, 8).unwrap();
        let a = c.train_batch(1, 5, 4, 8);
        assert_eq!(a, c.train_batch(1, 5, 4, 8));
        assert_ne!(a, c.train_batch(1, 6, 4, 8));
        // Targets are inputs shifted by one.
        assert_eq!(a.0[1..8], a.1[0..7]);
        // Held-out batches: from the held-out part, stream k of seed 0 past the training
        // streams, whatever the run's seed.
        let e = c.eval_batch(2, 4, 8);
        assert_eq!(e, sample(&c.val, Rng::stream(0, (1 << 40) + 2), 4, 8));
        assert_ne!(e, c.eval_batch(3, 4, 8));
        assert_ne!(e, sample(&c.val, Rng::stream(1, (1 << 40) + 2), 4, 8));
    }

    #[test]
    fn a_short_corpus_warns_with_the_number_of_passes() {
        let c = Corpus {
            train: vec![1; 10_000],
            val: vec![1; 1_000],
            vocab: 256,
            description: String::new(),
        };
        assert!(c.repetition_warning(40_000, 16, 64).is_none());
        let w = c.repetition_warning(100_000, 16, 64).unwrap();
        assert!(w.contains("10.0 times"), "{w}");
        let w = c.repetition_warning(100_000, 16, 1024).unwrap();
        assert!(
            w.contains("shorter than one batch (16384 tokens)") && w.contains("10 times"),
            "{w}"
        );
    }
}
