//! Counting the parameters and FLOPs of real architectures: the one function that does it
//! ([`Arch::count`]), for isoflop's own GPTs ([`crate::shape::ModelShape::arch`]) and for the
//! models users train (a Hugging Face `config.json`: GPT-2, Llama, Mistral, Mixtral, Qwen2).
//!
//! ## What varies, and why it matters
//! Published scaling laws disagree largely in what they count. Kaplan et al. (2020) count N
//! without the embedding matrices; Hoffmann et al. (2022) count every parameter; a mixture of
//! experts has a total and a smaller number each token passes through (its active
//! parameters). FLOPs per token likewise: 6N; Kaplan et al. (2020, Table 1) 6 N_non-embedding +
//! 6 L T d_attn (forward 2N + 2 L T d_attn, the backward pass twice the forward);
//! Hoffmann et al. (2022, Appendix F) every matrix product, softmax and the logits;
//! DeepSeek-AI (2024, "DeepSeek LLM", eq. 2) M = 72 L d^2 + 12 L d T, non-embedding matrix
//! products and attention. [`ArchCount`] gives all of them; `isoflop count` prints them.
//!
//! ## Legend
//! L layers, d width, h query heads, g key/value heads (g = h without grouped-query
//! attention), k head size (d/h unless the config says), f feed-forward width, E experts
//! (1 for a dense model) of which e are active per token, V vocabulary, T context.
//!
//! ## Per block
//! - attention: Q d(hk), K and V d(gk) each, output (hk)d; biases hk + 2gk on Q, K, V where
//!   the model has them, d on the output;
//! - feed-forward, per expert: 2 d f (`Mlp`: up and down) or 3 d f (`Gated`: SwiGLU's gate,
//!   up and down), biases f + d where the model has them; a router d E for E > 1;
//! - two norms: 2d each (LayerNorm, weight and bias) or d (RMSNorm).
//!
//! Then a final norm, the token embedding V d, learned positions T d (none with rotary), and
//! an LM head d V unless it is tied to the embedding.
//!
//! ## FLOPs per token (training: forward and backward, 3x the forward)
//! - `six_n` = 6 N_active;
//! - `kaplan` = 6 N_active,non-embedding + 6 L T (hk);
//! - `chinchilla` = 3 x (2 V d embeddings + per layer [2 d (hk + 2gk) QKV + 2 T hk logits +
//!   3 h T softmax + 2 T hk reductions + 2 hk d output + e x 2 (2 or 3) d f feed-forward +
//!   2 d E router] + 2 d V logits);
//! - `deepseek` = 6 x (the non-embedding weight matrices a token passes through) + 12 L T
//!   (hk): on a standard block (g = h, hk = d, f = 4d, no gate) that is DeepSeek's
//!   72 L d^2 + 12 L d T exactly.

use crate::shape::{FlopsPerToken, ModelShape, ParamCount};
use serde_json::Value;
use std::path::Path;

/// The feed-forward block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ffn {
    /// Up and down projections (GPT-2, isoflop's GPTs).
    Mlp,
    /// Gate, up and down (SwiGLU: Llama, Mistral, Mixtral, Qwen2).
    Gated,
}

/// The normalisation layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    /// Weight and bias.
    LayerNorm,
    /// Weight only.
    RmsNorm,
}

/// A decoder-only transformer, as far as its counts go.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Arch {
    /// What it is (`gpt2`, `llama`, `isoflop`, ...).
    pub family: String,
    /// L.
    pub layers: usize,
    /// d.
    pub d_model: usize,
    /// h, query heads.
    pub heads: usize,
    /// g, key/value heads.
    pub kv_heads: usize,
    /// k.
    pub head_dim: usize,
    /// f, per expert (the feed-forward width of a dense model).
    pub d_ff: usize,
    /// The feed-forward width of dense layers (f for a dense model; DeepSeek-MoE's first
    /// `first_k_dense_replace` layers are dense and wider).
    pub dense_d_ff: usize,
    /// Of a mixture of experts: the first layers that are dense.
    pub dense_layers: usize,
    /// The width of the shared experts every token passes through (0: none).
    pub shared_d_ff: usize,
    /// A gate (d weights) on the shared experts (Qwen2-MoE).
    pub shared_gate: bool,
    /// V.
    pub vocab: usize,
    /// T, the sequence length the FLOPs per token are counted at.
    pub context: usize,
    /// The feed-forward block.
    pub ffn: Ffn,
    /// E (1: dense).
    pub experts: usize,
    /// e, experts a token passes through.
    pub experts_per_token: usize,
    /// The LM head is the token embedding.
    pub tied: bool,
    /// Learned positions (T d); false for rotary.
    pub learned_positions: bool,
    /// The norms.
    pub norm: Norm,
    /// Biases on Q, K and V.
    pub qkv_bias: bool,
    /// A bias on the attention output.
    pub out_bias: bool,
    /// Biases in the feed-forward block.
    pub ffn_bias: bool,
}

/// Every count of one architecture.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ArchCount {
    /// Parameters by component (totals over all experts).
    pub params: ParamCount,
    /// FLOPs per trained token, four ways.
    pub flops_per_token: FlopsPerToken,
}

/// Why a config cannot be counted.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{path}: {problem}")]
pub struct ConfigError {
    /// The config file.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// The model types [`Arch::from_config`] reads.
pub const CONFIG_TYPES: &[&str] = &[
    "gpt2",
    "llama",
    "mistral",
    "mixtral",
    "qwen2",
    "qwen2_moe",
    "deepseek",
];

impl Arch {
    /// Every count ([`ArchCount`]): the one place isoflop counts parameters and FLOPs.
    ///
    /// # Example
    /// ```
    /// use isoflop_core::arch::Arch;
    /// // Llama-2-7B's config (Touvron et al. 2023): 6.74B parameters.
    /// let config = serde_json::json!({"model_type": "llama", "hidden_size": 4096,
    ///     "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
    ///     "num_key_value_heads": 32, "vocab_size": 32000, "max_position_embeddings": 4096});
    /// let count = Arch::from_config(&config, "config.json", None).unwrap().count();
    /// assert_eq!(count.params.total, 6_738_415_616);
    /// ```
    pub fn count(&self) -> ArchCount {
        let (l, d, h, g, k, f, v, t) = (
            self.layers,
            self.d_model,
            self.heads,
            self.kv_heads,
            self.head_dim,
            self.d_ff,
            self.vocab,
            self.context,
        );
        let (hk, gk) = (h * k, g * k);
        let attn_matrices = d * (hk + 2 * gk) + hk * d;
        let attn_biases =
            if self.qkv_bias { hk + 2 * gk } else { 0 } + if self.out_bias { d } else { 0 };
        let ffn_mats = match self.ffn {
            Ffn::Mlp => 2,
            Ffn::Gated => 3,
        };
        let bias = |width: usize| if self.ffn_bias { width + d } else { 0 };
        // Dense layers: one feed-forward block of `dense_d_ff`. Layers of experts: E experts
        // of f, a router, and shared experts of `shared_d_ff` (with a gate) every token uses.
        let moe_layers = if self.experts > 1 {
            l - self.dense_layers.min(l)
        } else {
            0
        };
        let dense_layers = l - moe_layers;
        let dense_matrices = ffn_mats * d * self.dense_d_ff;
        let dense = dense_matrices + bias(self.dense_d_ff);
        let expert_matrices = ffn_mats * d * f;
        let expert = expert_matrices + bias(f);
        let router = if self.experts > 1 {
            d * self.experts
        } else {
            0
        };
        let shared_matrices =
            ffn_mats * d * self.shared_d_ff + if self.shared_gate { d } else { 0 };
        let shared = if self.shared_d_ff > 0 {
            shared_matrices + bias(self.shared_d_ff)
        } else {
            0
        };
        let norm = match self.norm {
            Norm::LayerNorm => 2 * d,
            Norm::RmsNorm => d,
        };
        let token_embedding = v * d;
        let position_embedding = if self.learned_positions { t * d } else { 0 };
        let attention = l * (attn_matrices + attn_biases);
        let mlp = dense_layers * dense + moe_layers * (self.experts * expert + router + shared);
        let layer_norm = l * 2 * norm + norm;
        let head = if self.tied { 0 } else { d * v };
        let total = token_embedding + position_embedding + attention + mlp + layer_norm + head;
        let non_embedding = total - token_embedding - position_embedding - head;
        let inactive = moe_layers * (self.experts - self.experts_per_token) * expert;
        let params = ParamCount {
            token_embedding,
            position_embedding,
            attention,
            mlp,
            layer_norm,
            head,
            total,
            non_embedding,
            active: total - inactive,
            active_non_embedding: non_embedding - inactive,
        };
        let (lf, df, tf, hkf) = (l as f64, d as f64, t as f64, hk as f64);
        let e = self.experts_per_token as f64;
        // The feed-forward matrices a token passes through, over all layers.
        let ffn_per_token = dense_layers as f64 * dense_matrices as f64
            + moe_layers as f64
                * (e * expert_matrices as f64 + router as f64 + shared_matrices as f64);
        let attention_layer = 2.0 * df * (hk + 2 * gk) as f64
            + 2.0 * tf * hkf
            + 3.0 * h as f64 * tf
            + 2.0 * tf * hkf
            + 2.0 * hkf * df;
        let forward = 2.0 * (v * d) as f64
            + lf * attention_layer
            + 2.0 * ffn_per_token
            + 2.0 * (d * v) as f64;
        let matmul_per_token = lf * attn_matrices as f64 + ffn_per_token;
        let flops_per_token = FlopsPerToken {
            six_n: 6.0 * params.active as f64,
            six_n_no_embed: 6.0 * params.active_non_embedding as f64,
            kaplan: 6.0 * params.active_non_embedding as f64 + 6.0 * lf * tf * hkf,
            chinchilla: 3.0 * forward,
            deepseek: 6.0 * matmul_per_token + 12.0 * lf * tf * hkf,
        };
        ArchCount {
            params,
            flops_per_token,
        }
    }

    /// The architecture of a model config: a Hugging Face `config.json` (its `model_type` one
    /// of [`CONFIG_TYPES`]), or an isoflop run's `config.json` (its `shape`). `context`, where
    /// given, is the sequence length the FLOPs are counted at (default: the config's
    /// `n_positions` or `max_position_embeddings`). `path` names the file in errors.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the missing or impossible field, or the unknown
    /// `model_type` with the ones read.
    pub fn from_config(
        config: &Value,
        path: &str,
        context: Option<usize>,
    ) -> Result<Arch, ConfigError> {
        let ty = config
            .get("model_type")
            .and_then(Value::as_str)
            .unwrap_or("");
        let f = Config { config, path, ty };
        let mut a = if let Some(shape) = config.get("shape") {
            let shape: ModelShape = serde_json::from_value(shape.clone())
                .map_err(|e| f.err(format!("its `shape` is not an isoflop model shape: {e}")))?;
            shape.arch()
        } else {
            match ty {
                "gpt2" => gpt2(&f)?,
                "llama" | "mistral" | "mixtral" | "qwen2" | "qwen2_moe" | "deepseek" => {
                    llama_family(&f)?
                }
                other => {
                    return Err(f.err(format!(
                        "{}; isoflop counts these: {} (and isoflop's own run configs)",
                        if other.is_empty() {
                            "no `model_type`".to_string()
                        } else {
                            format!(
                                "model_type '{}' is not one isoflop counts",
                                crate::error::clip(other)
                            )
                        },
                        CONFIG_TYPES.join(", ")
                    )))
                }
            }
        };
        if let Some(t) = context {
            a.context = t;
        }
        f.complete(a)
    }

    /// Reads a config file and its architecture ([`Arch::from_config`]).
    ///
    /// # Errors
    /// [`ConfigError`] for an unreadable file, JSON that is not an object, or as
    /// [`Arch::from_config`].
    pub fn read(path: &Path, context: Option<usize>) -> Result<Arch, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: name.clone(),
            problem: e.to_string(),
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| ConfigError {
            path: format!("{name}:{}:{}", e.line(), e.column()),
            problem: format!("not JSON: {e}"),
        })?;
        if !value.is_object() {
            return Err(ConfigError {
                path: name,
                problem: "not a JSON object".into(),
            });
        }
        Arch::from_config(&value, &name, context)
    }
}

/// A config's fields, read with the file named in errors.
struct Config<'a> {
    config: &'a Value,
    path: &'a str,
    ty: &'a str,
}

impl Config<'_> {
    fn err(&self, problem: String) -> ConfigError {
        ConfigError {
            path: self.path.to_string(),
            problem,
        }
    }

    /// The first of `keys` present, a positive whole number.
    fn get(&self, keys: &[&str]) -> Result<Option<usize>, ConfigError> {
        for key in keys {
            match self.config.get(*key) {
                None | Some(Value::Null) => continue,
                Some(v) => {
                    return match v.as_u64() {
                        Some(n) if n > 0 => Ok(Some(n as usize)),
                        _ => Err(self.err(format!("`{key}` is {v}, not a positive whole number"))),
                    }
                }
            }
        }
        Ok(None)
    }

    fn need(&self, keys: &[&str]) -> Result<usize, ConfigError> {
        self.get(keys)?
            .ok_or_else(|| self.err(format!("no `{}` (a {} config has it)", keys[0], self.ty)))
    }

    fn flag(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.config.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.err(format!("`{key}` is {v}, not true or false"))),
        }
    }

    /// `a` with the defaults that follow from other fields, checked.
    fn complete(&self, mut a: Arch) -> Result<Arch, ConfigError> {
        if a.kv_heads == 0 {
            a.kv_heads = a.heads;
        }
        if a.dense_d_ff == 0 {
            a.dense_d_ff = a.d_ff;
        }
        if a.head_dim == 0 {
            if !a.d_model.is_multiple_of(a.heads) {
                return Err(self.err(format!(
                    "{} heads do not divide the width {}",
                    a.heads, a.d_model
                )));
            }
            a.head_dim = a.d_model / a.heads;
        }
        if !a.heads.is_multiple_of(a.kv_heads) {
            return Err(self.err(format!(
                "{} key/value heads do not divide the {} query heads",
                a.kv_heads, a.heads
            )));
        }
        if a.experts_per_token > a.experts {
            return Err(self.err(format!(
                "{} experts per token of {} experts",
                a.experts_per_token, a.experts
            )));
        }
        Ok(a)
    }
}

fn gpt2(f: &Config) -> Result<Arch, ConfigError> {
    let d = f.need(&["n_embd"])?;
    Ok(Arch {
        family: f.ty.into(),
        layers: f.need(&["n_layer"])?,
        d_model: d,
        heads: f.need(&["n_head"])?,
        kv_heads: 0,
        head_dim: 0,
        d_ff: f.get(&["n_inner"])?.unwrap_or(4 * d),
        dense_d_ff: 0,
        dense_layers: 0,
        shared_d_ff: 0,
        shared_gate: false,
        vocab: f.need(&["vocab_size"])?,
        context: f.need(&["n_positions", "n_ctx"])?,
        ffn: Ffn::Mlp,
        experts: 1,
        experts_per_token: 1,
        tied: f.flag("tie_word_embeddings", true)?,
        learned_positions: true,
        norm: Norm::LayerNorm,
        qkv_bias: true,
        out_bias: true,
        ffn_bias: true,
    })
}

/// Llama and the models built like it (RMSNorm, rotary, SwiGLU, grouped-query attention).
/// Experts: Mixtral's num_local_experts of intermediate_size; Qwen2-MoE's num_experts and
/// DeepSeek-MoE's n_routed_experts of moe_intermediate_size, with shared experts
/// (DeepSeek-MoE: n_shared_experts of that width; Qwen2-MoE: one of
/// shared_expert_intermediate_size, gated) and, for DeepSeek-MoE, its first
/// first_k_dense_replace layers dense of intermediate_size.
fn llama_family(f: &Config) -> Result<Arch, ConfigError> {
    let ty = f.ty;
    let experts = match ty {
        "mixtral" => f.need(&["num_local_experts"])?,
        "qwen2_moe" => f.need(&["num_experts"])?,
        "deepseek" => f.need(&["n_routed_experts"])?,
        _ => 1,
    };
    let moe = matches!(ty, "mixtral" | "qwen2_moe" | "deepseek");
    let per_token = if moe {
        f.need(&["num_experts_per_tok"])?
    } else {
        1
    };
    let dense_d_ff = f.need(&["intermediate_size"])?;
    let d_ff = match ty {
        "qwen2_moe" | "deepseek" => f.need(&["moe_intermediate_size"])?,
        _ => dense_d_ff,
    };
    let shared_d_ff = match ty {
        "qwen2_moe" => f.get(&["shared_expert_intermediate_size"])?.unwrap_or(0),
        "deepseek" => f.get(&["n_shared_experts"])?.unwrap_or(0) * d_ff,
        _ => 0,
    };
    let only_some = [
        (
            "moe_layer_freq",
            ty == "deepseek" && f.get(&["moe_layer_freq"])?.unwrap_or(1) != 1,
        ),
        (
            "decoder_sparse_step",
            ty == "qwen2_moe" && f.get(&["decoder_sparse_step"])?.unwrap_or(1) != 1,
        ),
        (
            "mlp_only_layers",
            ty == "qwen2_moe"
                && f.config
                    .get("mlp_only_layers")
                    .and_then(Value::as_array)
                    .is_some_and(|v| !v.is_empty()),
        ),
    ];
    if let Some((key, _)) = only_some.iter().find(|(_, bad)| *bad) {
        return Err(f.err(format!("`{key}` makes only some layers experts; isoflop counts models whose every layer after the first dense ones has experts")));
    }
    let qwen = ty.starts_with("qwen2");
    Ok(Arch {
        family: ty.into(),
        layers: f.need(&["num_hidden_layers"])?,
        d_model: f.need(&["hidden_size"])?,
        heads: f.need(&["num_attention_heads"])?,
        kv_heads: f.get(&["num_key_value_heads"])?.unwrap_or(0),
        head_dim: f.get(&["head_dim"])?.unwrap_or(0),
        d_ff,
        dense_d_ff,
        dense_layers: if ty == "deepseek" {
            f.get(&["first_k_dense_replace"])?.unwrap_or(0)
        } else {
            0
        },
        shared_d_ff,
        shared_gate: ty == "qwen2_moe" && shared_d_ff > 0,
        vocab: f.need(&["vocab_size"])?,
        context: f.need(&["max_position_embeddings"])?,
        ffn: Ffn::Gated,
        experts,
        experts_per_token: per_token,
        tied: f.flag("tie_word_embeddings", false)?,
        learned_positions: false,
        norm: Norm::RmsNorm,
        qkv_bias: qwen || f.flag("attention_bias", false)?,
        out_bias: !qwen && f.flag("attention_bias", false)?,
        ffn_bias: f.flag("mlp_bias", false)?,
    })
}

impl ModelShape {
    /// This shape as an [`Arch`]: a pre-LayerNorm GPT with biases, an MLP of 4d and an
    /// untied LM head (see [`crate::shape`]).
    pub fn arch(&self) -> Arch {
        Arch {
            family: "isoflop".into(),
            layers: self.layers,
            d_model: self.d_model,
            heads: self.heads,
            kv_heads: self.heads,
            head_dim: self.head_size(),
            d_ff: self.d_ff,
            dense_d_ff: self.d_ff,
            dense_layers: 0,
            shared_d_ff: 0,
            shared_gate: false,
            vocab: self.vocab,
            context: self.context,
            ffn: Ffn::Mlp,
            experts: 1,
            experts_per_token: 1,
            tied: false,
            learned_positions: !self.rotary,
            norm: Norm::LayerNorm,
            qkv_bias: true,
            out_bias: true,
            ffn_bias: true,
        }
    }
}

#[cfg(test)]
mod tests;
