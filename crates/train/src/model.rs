//! The GPT: a plain pre-LayerNorm decoder (nanoGPT's shape) on libtorch.
//!
//! ## Legend
//! B batch, T context, C = d_model, H heads, hs = C/H head size, V vocabulary.
//!
//! Token embedding, learned positions (or rotary embeddings on q and k), L blocks of
//! `x + attn(ln1(x))` then `x + mlp(ln2(x))` with causal multi-head attention and a 4x GELU
//! (tanh) MLP, a final LayerNorm and an untied LM head without bias. Linear weights and
//! embeddings start from N(0, 0.02), the two residual projections per block from
//! N(0, 0.02/sqrt(2L)) (GPT-2), biases at 0, LayerNorms at (1, 0). Its parameters are
//! counted by [`isoflop_core::shape::ModelShape::params`]; a test checks the two agree.

use isoflop_core::shape::ModelShape;
use isoflop_core::{Attention, Dtype};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

struct Block {
    ln1: nn::LayerNorm,
    qkv: nn::Linear,
    proj: nn::Linear,
    ln2: nn::LayerNorm,
    fc: nn::Linear,
    fc_proj: nn::Linear,
}

/// The model.
pub struct Gpt {
    shape: ModelShape,
    wte: nn::Embedding,
    wpe: Option<nn::Embedding>,
    blocks: Vec<Block>,
    lnf: nn::LayerNorm,
    head: nn::Linear,
    /// (T, T): 0 on and below the diagonal, -inf above.
    mask: Tensor,
    /// Rotary tables (cos, sin), each (T, hs/2).
    rope: Option<(Tensor, Tensor)>,
    /// The precision of the matrix products and attention.
    dtype: Dtype,
    /// How attention is computed.
    attention: Attention,
}

/// `x W^T + b` with `x`, `W` and `b` cast to `k` (the weights' fp32 masters keep their
/// gradients: the cast is part of the graph).
fn linear_in(x: &Tensor, l: &nn::Linear, k: Kind) -> Tensor {
    let w = l.ws.to_kind(k);
    let b = l.bs.as_ref().map(|b| b.to_kind(k));
    x.to_kind(k).linear(&w, b.as_ref())
}

fn linear(p: nn::Path, d_in: usize, d_out: usize, std: f64, bias: bool) -> nn::Linear {
    let cfg = nn::LinearConfig {
        ws_init: nn::Init::Randn {
            mean: 0.0,
            stdev: std,
        },
        bs_init: bias.then_some(nn::Init::Const(0.0)),
        bias,
    };
    nn::linear(p, d_in as i64, d_out as i64, cfg)
}

impl Gpt {
    /// Builds the model's variables under `p` (initialised from libtorch's generator: call
    /// `tch::manual_seed` first for a seeded model).
    pub fn new(p: &nn::Path, shape: ModelShape) -> Gpt {
        let (c, v, t, l) = (shape.d_model, shape.vocab, shape.context, shape.layers);
        let emb = nn::EmbeddingConfig {
            ws_init: nn::Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
            ..Default::default()
        };
        let wte = nn::embedding(p / "wte", v as i64, c as i64, emb);
        let wpe = (!shape.rotary).then(|| nn::embedding(p / "wpe", t as i64, c as i64, emb));
        let resid_std = 0.02 / (2.0 * l as f64).sqrt();
        let ln = |q: nn::Path| nn::layer_norm(q, vec![c as i64], Default::default());
        let blocks = (0..l)
            .map(|i| {
                let b = p / "blocks" / i;
                Block {
                    ln1: ln(&b / "ln1"),
                    qkv: linear(&b / "qkv", c, 3 * c, 0.02, true),
                    proj: linear(&b / "proj", c, c, resid_std, true),
                    ln2: ln(&b / "ln2"),
                    fc: linear(&b / "fc", c, shape.d_ff, 0.02, true),
                    fc_proj: linear(&b / "fc_proj", shape.d_ff, c, resid_std, true),
                }
            })
            .collect();
        let lnf = ln(p / "lnf");
        let head = linear(p / "head", c, v, 0.02, false);
        let device = p.device();
        let mask = Tensor::full(
            [t as i64, t as i64],
            f64::NEG_INFINITY,
            (Kind::Float, device),
        )
        .triu(1);
        let rope = shape
            .rotary
            .then(|| rope_tables(t, shape.head_size(), device));
        Gpt {
            shape,
            wte,
            wpe,
            blocks,
            lnf,
            head,
            mask,
            rope,
            dtype: Dtype::F32,
            attention: Attention::Math,
        }
    }

    /// The model computing in `dtype` with `attention` (`Dtype::F32` and `Attention::Math`
    /// at construction).
    pub fn with_precision(mut self, dtype: Dtype, attention: Attention) -> Gpt {
        self.dtype = dtype;
        self.attention = attention;
        self
    }

    /// The shape.
    pub fn shape(&self) -> &ModelShape {
        &self.shape
    }

    /// Logits (B, T, V) for token ids (B, T).
    // `x = x + y`, not `x += y`: tch's `+=` is an in-place add, which would overwrite a
    // tensor that autograd keeps for the backward pass.
    #[allow(clippy::assign_op_pattern)]
    pub fn forward(&self, idx: &Tensor) -> Tensor {
        if self.dtype == Dtype::F32 && self.attention == Attention::Math {
            return self.forward_f32(idx);
        }
        self.forward_mixed(idx)
    }

    /// Attention of (B, H, T, hs) heads in `k`: written out, or fused.
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, kind: Kind, t: i64) -> Tensor {
        let (q, k, v) = (q.to_kind(kind), k.to_kind(kind), v.to_kind(kind));
        match self.attention {
            Attention::Fused => Tensor::scaled_dot_product_attention(
                &q,
                &k,
                &v,
                None::<&Tensor>,
                0.0,
                true,
                None,
                false,
            ),
            Attention::Math => {
                let hs = q.size()[3];
                let mask = self.mask.narrow(0, 0, t).narrow(1, 0, t);
                let att = (q.matmul(&k.transpose(-2, -1)).to_kind(Kind::Float)
                    * (1.0 / (hs as f64).sqrt())
                    + &mask)
                    .softmax(-1, Kind::Float);
                att.to_kind(kind).matmul(&v)
            }
        }
    }

    /// The forward pass of `--dtype bf16` or `--attention fused`, autocast's way: matrix
    /// products and attention in the compute kind, LayerNorms, the residual stream and the
    /// logits in fp32.
    #[allow(clippy::assign_op_pattern)]
    fn forward_mixed(&self, idx: &Tensor) -> Tensor {
        let kind = match self.dtype {
            Dtype::F32 => Kind::Float,
            Dtype::Bf16 => Kind::BFloat16,
        };
        let (b, t) = idx.size2().expect("idx is (B, T)");
        let c = self.shape.d_model as i64;
        let h = self.shape.heads as i64;
        let hs = c / h;
        let mut x = self.wte.forward(idx);
        if let Some(wpe) = &self.wpe {
            let pos = Tensor::arange(t, (Kind::Int64, idx.device()));
            x = x + wpe.forward(&pos);
        }
        for blk in &self.blocks {
            let qkv = linear_in(&blk.ln1.forward(&x), &blk.qkv, kind);
            let parts = qkv.split(c, 2);
            let heads = |z: &Tensor| z.view([b, t, h, hs]).transpose(1, 2);
            let (mut q, mut k, v) = (heads(&parts[0]), heads(&parts[1]), heads(&parts[2]));
            if let Some((cos, sin)) = &self.rope {
                q = apply_rope(&q.to_kind(Kind::Float), cos, sin, t);
                k = apply_rope(&k.to_kind(Kind::Float), cos, sin, t);
            }
            let y = self
                .attend(&q, &k, &v, kind, t)
                .transpose(1, 2)
                .reshape([b, t, c]);
            x = x + linear_in(&y, &blk.proj, kind).to_kind(Kind::Float);
            let m = linear_in(&blk.ln2.forward(&x), &blk.fc, kind).gelu("tanh");
            x = x + linear_in(&m, &blk.fc_proj, kind).to_kind(Kind::Float);
        }
        linear_in(&self.lnf.forward(&x), &self.head, kind).to_kind(Kind::Float)
    }

    /// The fp32 forward pass with attention written out (the reference).
    #[allow(clippy::assign_op_pattern)]
    fn forward_f32(&self, idx: &Tensor) -> Tensor {
        let (b, t) = idx.size2().expect("idx is (B, T)");
        let c = self.shape.d_model as i64;
        let h = self.shape.heads as i64;
        let hs = c / h;
        let mut x = self.wte.forward(idx); // (B, T, C)
        if let Some(wpe) = &self.wpe {
            let pos = Tensor::arange(t, (Kind::Int64, idx.device()));
            x = x + wpe.forward(&pos); // (T, C) broadcast over B
        }
        let mask = self.mask.narrow(0, 0, t).narrow(1, 0, t);
        let scale = 1.0 / (hs as f64).sqrt();
        for blk in &self.blocks {
            let qkv = blk.ln1.forward(&x).apply(&blk.qkv); // (B, T, 3C)
            let parts = qkv.split(c, 2);
            let heads = |z: &Tensor| z.view([b, t, h, hs]).transpose(1, 2); // (B, H, T, hs)
            let (mut q, mut k, v) = (heads(&parts[0]), heads(&parts[1]), heads(&parts[2]));
            if let Some((cos, sin)) = &self.rope {
                q = apply_rope(&q, cos, sin, t);
                k = apply_rope(&k, cos, sin, t);
            }
            let att = (q.matmul(&k.transpose(-2, -1)) * scale + &mask).softmax(-1, Kind::Float); // (B, H, T, T)
            let y = att.matmul(&v).transpose(1, 2).reshape([b, t, c]); // (B, T, C)
            x = x + y.apply(&blk.proj);
            let m = blk
                .ln2
                .forward(&x)
                .apply(&blk.fc)
                .gelu("tanh")
                .apply(&blk.fc_proj); // (B, T, C)
            x = x + m;
        }
        self.lnf.forward(&x).apply(&self.head) // (B, T, V)
    }

    /// Mean next-token cross-entropy (nats) of inputs `x` against targets `y`, both (B, T).
    pub fn loss(&self, x: &Tensor, y: &Tensor) -> Tensor {
        let v = self.shape.vocab as i64;
        self.forward(x)
            .view([-1, v])
            .cross_entropy_for_logits(&y.view([-1]))
    }
}

/// cos and sin of position * theta_i, theta_i = 10000^(-2i/hs), each (T, hs/2).
fn rope_tables(t: usize, hs: usize, device: Device) -> (Tensor, Tensor) {
    let half = (hs / 2) as i64;
    let inv = Tensor::arange(half, (Kind::Float, device))
        .multiply_scalar(-2.0 * (10000f64).ln() / hs as f64)
        .exp(); // (hs/2)
    let pos = Tensor::arange(t as i64, (Kind::Float, device)); // (T)
    let ang = pos.unsqueeze(1) * inv.unsqueeze(0); // (T, hs/2)
    (ang.cos(), ang.sin())
}

/// Rotary embedding on (B, H, T, hs), rotating the two halves of each head.
fn apply_rope(x: &Tensor, cos: &Tensor, sin: &Tensor, t: i64) -> Tensor {
    let half = x.size()[3] / 2;
    let (cos, sin) = (cos.narrow(0, 0, t), sin.narrow(0, 0, t)); // (T, hs/2)
    let x1 = x.narrow(3, 0, half);
    let x2 = x.narrow(3, half, half);
    Tensor::cat(&[&x1 * &cos - &x2 * &sin, &x1 * &sin + &x2 * &cos], 3)
}

/// Whether AdamW's weight decay applies to a variable: matrices yes, biases and LayerNorm
/// parameters no (nanoGPT's grouping).
pub fn decays(name: &str) -> bool {
    !(name.ends_with(".bias") || name.contains(".ln") || name.starts_with("lnf"))
}

/// The device named by `name`: "cpu", "cuda" or "cuda:N".
///
/// # Errors
/// [`crate::TrainError::Setting`] for another name, or CUDA asked for where it is not available.
pub fn device(name: &str) -> crate::Result<tch::Device> {
    match name {
        "cpu" => Ok(tch::Device::Cpu),
        _ if name == "cuda" || name.starts_with("cuda:") => {
            if !tch::Cuda::is_available() {
                return Err(crate::TrainError::Setting(format!(
                    "--device {name}: CUDA is not available to libtorch on this machine"
                )));
            }
            let idx = name
                .strip_prefix("cuda:")
                .map(|i| i.parse::<usize>())
                .transpose()
                .map_err(|_| crate::TrainError::Setting(format!("bad device '{name}'")))?;
            Ok(tch::Device::Cuda(idx.unwrap_or(0)))
        }
        _ => Err(crate::TrainError::Setting(format!(
            "unknown device '{name}'; use cpu or cuda"
        ))),
    }
}

/// Builds the run's model with its seeded initialisation.
pub fn init_model(
    config: &isoflop_core::record::RunConfig,
    device: tch::Device,
) -> (tch::nn::VarStore, Gpt) {
    tch::manual_seed(config.seed as i64);
    let vs = tch::nn::VarStore::new(device);
    let model = Gpt::new(&vs.root(), config.shape).with_precision(config.dtype, config.attention);
    (vs, model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_count_equals_the_built_models_scalars() {
        for (l, d, h, rotary) in [(2, 64, 2, false), (4, 128, 4, false), (3, 96, 3, true)] {
            let shape = ModelShape::new(l, d, h, 256, 32, rotary).unwrap();
            let vs = nn::VarStore::new(Device::Cpu);
            let _m = Gpt::new(&vs.root(), shape);
            let vars = vs.variables();
            let count = |f: &dyn Fn(&str) -> bool| -> usize {
                vars.iter()
                    .filter(|(k, _)| f(k))
                    .map(|(_, t)| t.numel())
                    .sum()
            };
            let p = shape.params();
            assert_eq!(count(&|_| true), p.total, "{shape:?}");
            assert_eq!(count(&|k| k.starts_with("wte")), p.token_embedding);
            assert_eq!(count(&|k| k.starts_with("wpe")), p.position_embedding);
            assert_eq!(
                count(&|k| k.contains(".qkv.") || k.contains(".proj.")),
                p.attention
            );
            assert_eq!(
                count(&|k| k.contains(".fc.") || k.contains(".fc_proj.")),
                p.mlp
            );
            assert_eq!(count(&|k| k.contains("ln")), p.layer_norm);
            assert_eq!(count(&|k| k.starts_with("head")), p.head);
        }
    }

    #[test]
    fn forward_shapes_and_causality() {
        for rotary in [false, true] {
            causal(rotary);
        }
    }

    fn causal(rotary: bool) {
        tch::manual_seed(0);
        let shape = ModelShape::new(2, 64, 2, 256, 16, rotary).unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let m = Gpt::new(&vs.root(), shape);
        let x = Tensor::randint(256, [2, 16], (Kind::Int64, Device::Cpu));
        let y = m.forward(&x);
        assert_eq!(y.size(), vec![2, 16, 256]);
        // Changing the last token must not change the logits of earlier positions.
        let x2 = x.copy();
        let _ = x2.narrow(1, 15, 1).fill_(7);
        let y2 = m.forward(&x2);
        let diff = (y.narrow(1, 0, 15) - y2.narrow(1, 0, 15))
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff < 1e-6, "{diff}");
        // At initialisation the loss is near ln V.
        let l = m.loss(&x, &x).double_value(&[]);
        assert!((l - (256f64).ln()).abs() < 0.3, "{l}");
    }
}
