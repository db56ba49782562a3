//! The AdamW state of a run (parameters, moments, which tensors decay) and its checkpoint
//! files: serialised in memory, written whole with a checksum beside it, the previous one
//! kept; found again by verifying each file against a meta file.

use crate::error::Result;
use crate::error::{folder_err, io};
use crate::model::decays;
use isoflop_core::record::{self, write_atomic, CheckpointMeta, CHECKPOINT_FILE};
use std::path::{Path, PathBuf};
use tch::{nn, Tensor};

/// AdamW's (beta1, beta2, eps), as PyTorch's defaults except beta2 = 0.95 (nanoGPT, GPT-3).
pub const ADAM_BETAS: (f64, f64) = (0.9, 0.95);
/// AdamW's epsilon.
pub const ADAM_EPS: f64 = 1e-8;
/// The checkpoints in `out` that verify against a meta file, newest first. Any file may
/// pair with any meta: a writer killed while it moved the latest checkpoint to
/// [`record::PREVIOUS_CHECKPOINT_FILE`] leaves them crossed.
pub(crate) fn verified_checkpoints(out: &Path) -> (Vec<(PathBuf, u64, Vec<u8>)>, Vec<String>) {
    let metas: Vec<CheckpointMeta> = [
        record::CHECKPOINT_META_FILE,
        record::PREVIOUS_CHECKPOINT_META_FILE,
    ]
    .iter()
    .filter_map(|m| record::read_json(&out.join(m)).ok())
    .collect();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for f in [CHECKPOINT_FILE, record::PREVIOUS_CHECKPOINT_FILE] {
        let p = out.join(f);
        let Ok(bytes) = std::fs::read(&p) else {
            continue;
        };
        match metas.iter().find(|m| m.verifies(&bytes)) {
            Some(m) => good.push((p, m.step, bytes)),
            None => bad.push(f.to_string()),
        }
    }
    good.sort_by(|a, b| b.1.cmp(&a.1));
    (good, bad)
}

/// Removes every checkpoint file of `out` (the run has ended).
pub(crate) fn remove_checkpoints(out: &Path) {
    for f in [
        CHECKPOINT_FILE,
        record::CHECKPOINT_META_FILE,
        record::PREVIOUS_CHECKPOINT_FILE,
        record::PREVIOUS_CHECKPOINT_META_FILE,
    ] {
        let _ = std::fs::remove_file(out.join(f));
    }
}

/// Writes `bytes` whole and synced beside `path` under a temporary name, returned for the
/// caller to rename into place; removed again when the write fails.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let tmp = path.with_extension("ot.tmp");
    let written = (|| -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    Ok(tmp)
}

pub(crate) struct State {
    vars: Vec<(String, Tensor)>,
    decay: Vec<bool>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

impl State {
    pub(crate) fn new(vs: &nn::VarStore) -> State {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let decay = vars.iter().map(|(n, _)| decays(n)).collect();
        let m = vars.iter().map(|(_, t)| t.zeros_like()).collect();
        let v = vars.iter().map(|(_, t)| t.zeros_like()).collect();
        State { vars, decay, m, v }
    }

    pub(crate) fn zero_grad(&self) {
        for (_, p) in &self.vars {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    }

    /// torch.nn.utils.clip_grad_norm_: scale all gradients by max/(norm + 1e-6) when the
    /// global norm exceeds max. Returns the norm before clipping (0 when clipping is off).
    pub(crate) fn clip(&self, max: f64) -> f64 {
        if max <= 0.0 {
            return 0.0;
        }
        tch::no_grad(|| {
            let norms: Vec<Tensor> = self
                .vars
                .iter()
                .map(|(_, p)| p.grad())
                .filter(|g| g.defined())
                .map(|g| g.norm())
                .collect();
            let total = Tensor::stack(&norms, 0).norm().double_value(&[]);
            let coef = max / (total + 1e-6);
            if coef < 1.0 {
                for (_, p) in &self.vars {
                    let mut g = p.grad();
                    if g.defined() {
                        let _ = g.g_mul_scalar_(coef);
                    }
                }
            }
            total
        })
    }

    /// One AdamW step (PyTorch's torch.optim.AdamW, decoupled weight decay), step t >= 1.
    pub(crate) fn adamw(&mut self, t: u64, lr: f64, wd: f64) {
        let (b1, b2) = ADAM_BETAS;
        let bc1 = 1.0 - b1.powi(t as i32);
        let bc2 = 1.0 - b2.powi(t as i32);
        tch::no_grad(|| {
            for i in 0..self.vars.len() {
                let mut p = self.vars[i].1.shallow_clone();
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                if self.decay[i] && wd > 0.0 {
                    let _ = p.g_mul_scalar_(1.0 - lr * wd);
                }
                let _ = self.m[i].g_mul_scalar_(b1);
                let _ = self.m[i].g_add_(&(&g * (1.0 - b1)));
                let _ = self.v[i].g_mul_scalar_(b2);
                let _ = self.v[i].addcmul_(&(&g * (1.0 - b2)), &g);
                let denom = self.v[i].sqrt() / bc2.sqrt() + ADAM_EPS;
                let _ = p.g_sub_(&(&self.m[i] / denom * (lr / bc1)));
            }
        })
    }

    /// Writes a checkpoint into `out`: the file whole under a temporary name, its checksum
    /// ([`CheckpointMeta`]), then the previous checkpoint moved aside (kept until this one
    /// is in place) and this one renamed in, its meta last.
    pub(crate) fn save(&self, out: &Path, step: u64, secs: f64) -> Result<()> {
        let path = out.join(CHECKPOINT_FILE);
        let (bytes, meta) = self.serialise(step, secs)?;
        let tmp = write_whole(&path, &bytes)?;
        let meta_path = out.join(record::CHECKPOINT_META_FILE);
        if path.exists() {
            let prev = out.join(record::PREVIOUS_CHECKPOINT_FILE);
            std::fs::rename(&path, &prev).map_err(io(&prev))?;
            let prev_meta = out.join(record::PREVIOUS_CHECKPOINT_META_FILE);
            if meta_path.exists() {
                std::fs::rename(&meta_path, &prev_meta).map_err(io(&prev_meta))?;
            }
        }
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        write_atomic(
            &meta_path,
            &serde_json::to_vec_pretty(&meta).expect("meta serialises"),
        )
        .map_err(io(&meta_path))?;
        Ok(())
    }

    /// Writes the checkpoint a trunk keeps at `step` for its branches
    /// ([`record::branch_checkpoint_files`]): the file whole, renamed into place, its meta
    /// last. It is never rotated or removed by the trunk.
    pub(crate) fn save_branch_point(&self, out: &Path, step: u64, secs: f64) -> Result<()> {
        let (file, meta_file) = record::branch_checkpoint_files(step);
        let (path, meta_path) = (out.join(file), out.join(meta_file));
        let (bytes, meta) = self.serialise(step, secs)?;
        let tmp = write_whole(&path, &bytes)?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        write_atomic(
            &meta_path,
            &serde_json::to_vec_pretty(&meta).expect("meta serialises"),
        )
        .map_err(io(&meta_path))
    }

    /// Loads the checkpoint the trunk in `trunk` kept at `step`, verified against its meta.
    ///
    /// # Errors
    /// [`crate::error::TrainError::Folder`] naming the trunk when the checkpoint is missing
    /// or does not match its checksum.
    pub(crate) fn load_branch_point(&mut self, trunk: &Path, step: u64) -> Result<(u64, f64)> {
        let (file, meta_file) = record::branch_checkpoint_files(step);
        let path = trunk.join(&file);
        let meta: CheckpointMeta = record::read_json(&trunk.join(&meta_file)).map_err(|e| {
            folder_err(
                trunk,
                format!("has no usable checkpoint at step {step} ({meta_file}: {e})"),
            )
        })?;
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        if meta.step != step || !meta.verifies(&bytes) {
            return Err(folder_err(
                trunk,
                format!("{file} does not match its checksum; train the trunk again to rewrite it"),
            ));
        }
        self.load(&path, bytes)
    }

    /// The state as checkpoint bytes, with their meta.
    fn serialise(&self, step: u64, secs: f64) -> Result<(Vec<u8>, CheckpointMeta)> {
        let mut named: Vec<(String, Tensor)> = Vec::with_capacity(3 * self.vars.len() + 2);
        for (i, (n, p)) in self.vars.iter().enumerate() {
            named.push((format!("param.{n}"), p.shallow_clone()));
            named.push((format!("adam_m.{n}"), self.m[i].shallow_clone()));
            named.push((format!("adam_v.{n}"), self.v[i].shallow_clone()));
        }
        named.push(("meta.step".into(), Tensor::from_slice(&[step as i64])));
        named.push(("meta.secs".into(), Tensor::from_slice(&[secs])));
        // Serialised in memory, then written by us: a full disk or an unwritable folder is
        // an I/O error naming the file, not an abort inside libtorch's writer.
        let mut bytes: Vec<u8> = Vec::new();
        Tensor::save_multi_to_stream(&named, &mut bytes)?;
        let meta = CheckpointMeta::of(&bytes, step);
        Ok((bytes, meta))
    }

    /// Loads the checkpoint `bytes` (read from `path`, named in errors).
    pub(crate) fn load(&mut self, path: &Path, bytes: Vec<u8>) -> Result<(u64, f64)> {
        let saved: std::collections::HashMap<String, Tensor> =
            Tensor::load_multi_from_stream(std::io::Cursor::new(bytes))?
                .into_iter()
                .collect();
        let get = |k: &str| {
            saved
                .get(k)
                .ok_or_else(|| folder_err(path, format!("checkpoint lacks '{k}'")))
        };
        tch::no_grad(|| -> Result<()> {
            for i in 0..self.vars.len() {
                let n = self.vars[i].0.clone();
                let dev = self.vars[i].1.device();
                self.vars[i]
                    .1
                    .shallow_clone()
                    .copy_(&get(&format!("param.{n}"))?.to_device(dev));
                self.m[i].copy_(&get(&format!("adam_m.{n}"))?.to_device(dev));
                self.v[i].copy_(&get(&format!("adam_v.{n}"))?.to_device(dev));
            }
            Ok(())
        })?;
        Ok((
            get("meta.step")?.int64_value(&[0]) as u64,
            get("meta.secs")?.double_value(&[0]),
        ))
    }
}
