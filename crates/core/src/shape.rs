//! Model shapes: the one place a GPT's layers, width and heads are decided from a size. Its
//! parameters and FLOPs are counted by [`crate::arch`], as every architecture's are.
//!
//! ## Legend
//! L layers, d model width, h heads, k = d/h head size, f = 4d feed-forward width,
//! V vocabulary, T context length.
//!
//! ## The model counted here
//! A plain pre-LayerNorm GPT: token embedding (V d), learned positions (T d; none with
//! rotary), per block LayerNorm (2d), QKV (3d^2 + 3d), output projection (d^2 + d),
//! LayerNorm (2d), MLP (d f + f and f d + d), then a final LayerNorm (2d) and an untied LM
//! head without bias (d V). Per block that is 12 d^2 + 13 d.

/// The shape of a GPT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelShape {
    /// L.
    pub layers: usize,
    /// d.
    pub d_model: usize,
    /// h.
    pub heads: usize,
    /// f (4d).
    pub d_ff: usize,
    /// V.
    pub vocab: usize,
    /// T.
    pub context: usize,
    /// Rotary position embeddings instead of learned positions.
    pub rotary: bool,
}

/// Parameter counts by component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParamCount {
    /// Token embedding, V d.
    pub token_embedding: usize,
    /// Learned positions, T d (0 with rotary).
    pub position_embedding: usize,
    /// Attention (QKV and output projection, with biases) over all layers.
    pub attention: usize,
    /// MLPs over all layers.
    pub mlp: usize,
    /// Every LayerNorm, the final one included.
    pub layer_norm: usize,
    /// The LM head, d V.
    pub head: usize,
    /// Everything.
    pub total: usize,
    /// Total less the token and position embeddings and the LM head (the vocabulary and
    /// position matrices, as Kaplan et al. 2020 exclude them).
    pub non_embedding: usize,
    /// The parameters one token passes through: the total less the experts a mixture of
    /// experts does not route it to (the total for a dense model; configs written before
    /// it: 0).
    #[serde(default)]
    pub active: usize,
    /// [`ParamCount::active`] less the embeddings and the LM head.
    #[serde(default)]
    pub active_non_embedding: usize,
}

/// FLOPs per trained token, four ways (forward plus backward): see [`crate::arch`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FlopsPerToken {
    /// 6 N with N the total parameters (the active ones of a mixture of experts).
    pub six_n: f64,
    /// 6 N without the embeddings and the LM head (configs written before it: 0).
    #[serde(default)]
    pub six_n_no_embed: f64,
    /// Kaplan et al. 2020: 6 N_non-embedding + 6 L T d.
    pub kaplan: f64,
    /// Hoffmann et al. 2022, Appendix F, embeddings and logits included.
    pub chinchilla: f64,
    /// DeepSeek-AI 2024's M: non-embedding matrix products and attention (configs written
    /// before it: 0).
    #[serde(default)]
    pub deepseek: f64,
}

/// Which FLOP count a run records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlopCount {
    /// 6 N (total parameters): makes C = 6 N D exact, as the closed forms assume.
    #[default]
    SixN,
    /// Kaplan et al. 2020.
    Kaplan,
    /// Hoffmann et al. 2022, Appendix F.
    Chinchilla,
    /// DeepSeek-AI 2024's M.
    Deepseek,
}

impl FlopsPerToken {
    /// The count named by `which`.
    pub fn get(&self, which: FlopCount) -> f64 {
        match which {
            FlopCount::SixN => self.six_n,
            FlopCount::Kaplan => self.kaplan,
            FlopCount::Chinchilla => self.chinchilla,
            FlopCount::Deepseek => self.deepseek,
        }
    }
}

/// Why a shape cannot be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ShapeError {
    /// Heads must divide the width.
    #[error("{heads} heads do not divide d_model {d_model}")]
    HeadsDoNotDivide {
        /// h.
        heads: usize,
        /// d.
        d_model: usize,
    },
    /// A zero dimension.
    #[error("layers, d_model, heads, vocab and context must all be at least 1")]
    Zero,
    /// The target is below the smallest model.
    #[error("a target of {target} parameters is below the smallest one-layer model ({smallest} parameters with vocab {vocab}, context {context})")]
    TooSmall {
        /// The target.
        target: f64,
        /// The smallest model's size.
        smallest: usize,
        /// V.
        vocab: usize,
        /// T.
        context: usize,
    },
}

/// Chinchilla Table A9 (Hoffmann et al. 2022): (parameters in millions, d_model, layers) of
/// the 50 models, transcribed from the paper.
pub const CHINCHILLA_A9: [(f64, usize, usize); 50] = [
    (44.0, 512, 8),
    (57.0, 576, 9),
    (74.0, 640, 10),
    (90.0, 640, 13),
    (106.0, 640, 16),
    (117.0, 768, 12),
    (140.0, 768, 15),
    (163.0, 768, 18),
    (175.0, 896, 14),
    (196.0, 896, 16),
    (217.0, 896, 18),
    (251.0, 1024, 16),
    (278.0, 1024, 18),
    (306.0, 1024, 20),
    (425.0, 1280, 18),
    (489.0, 1280, 21),
    (509.0, 1408, 18),
    (552.0, 1280, 24),
    (587.0, 1408, 21),
    (632.0, 1536, 19),
    (664.0, 1408, 24),
    (724.0, 1536, 22),
    (816.0, 1536, 25),
    (893.0, 1792, 20),
    (1018.0, 1792, 23),
    (1143.0, 1792, 26),
    (1266.0, 2048, 22),
    (1424.0, 2176, 22),
    (1429.0, 2048, 25),
    (1593.0, 2048, 28),
    (1609.0, 2176, 25),
    (1731.0, 2304, 24),
    (1794.0, 2176, 28),
    (2007.0, 2304, 28),
    (2283.0, 2304, 32),
    (2298.0, 2560, 26),
    (2639.0, 2560, 30),
    (2980.0, 2560, 34),
    (3530.0, 2688, 36),
    (3802.0, 2816, 36),
    (4084.0, 2944, 36),
    (4516.0, 3072, 36),
    (6796.0, 3584, 40),
    (9293.0, 4096, 42),
    (11452.0, 4352, 47),
    (12295.0, 4608, 44),
    (12569.0, 4608, 47),
    (13735.0, 4864, 47),
    (14940.0, 4992, 49),
    (16183.0, 5120, 47),
];

/// The aspect ratio d_model / layers that Table A9 uses near `params`: a least-squares line of
/// ln(d/L) on ln(params) through the table's 50 models, held at the table's smallest model's
/// value below 44M (Table A9 has no smaller model to follow).
pub fn aspect_ratio(params: f64) -> f64 {
    let xs: Vec<f64> = CHINCHILLA_A9.iter().map(|r| (r.0 * 1e6).ln()).collect();
    let ys: Vec<f64> = CHINCHILLA_A9
        .iter()
        .map(|r| (r.1 as f64 / r.2 as f64).ln())
        .collect();
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let slope = sxy / sxx;
    let x = params.max(44e6).ln();
    (my + slope * (x - mx)).exp()
}

impl ModelShape {
    /// A shape, checked.
    ///
    /// # Errors
    /// [`ShapeError`] when a dimension is zero or the heads do not divide d_model.
    pub fn new(
        layers: usize,
        d_model: usize,
        heads: usize,
        vocab: usize,
        context: usize,
        rotary: bool,
    ) -> Result<Self, ShapeError> {
        if layers == 0 || d_model == 0 || heads == 0 || vocab == 0 || context == 0 {
            return Err(ShapeError::Zero);
        }
        if !d_model.is_multiple_of(heads) {
            return Err(ShapeError::HeadsDoNotDivide { heads, d_model });
        }
        Ok(ModelShape {
            layers,
            d_model,
            heads,
            d_ff: 4 * d_model,
            vocab,
            context,
            rotary,
        })
    }

    /// The shape for a target of `params` total parameters, following Chinchilla Table A9:
    /// among layer counts L and widths d (multiples of the head size: 64, or 32 below
    /// d_model 256 where Table A9 has no models), the one that minimises
    /// `|ln(total / params)| + 0.25 |ln((d/L) / r)|`, with r the table's aspect ratio
    /// ([`aspect_ratio`]). The second term keeps the table's proportions; the first hits the
    /// size (small models cannot do both exactly).
    ///
    /// # Errors
    /// [`ShapeError::TooSmall`] when the nearest shape is more than 2x larger than the target
    /// (the target is below one layer of the smallest width).
    pub fn for_params(
        params: f64,
        vocab: usize,
        context: usize,
        rotary: bool,
    ) -> Result<Self, ShapeError> {
        let r = aspect_ratio(params);
        let mut best: Option<(f64, ModelShape)> = None;
        for layers in 1..=256usize {
            for head in [32usize, 64] {
                let lo = ((r * layers as f64 / 2.0 / head as f64).floor() as usize).max(1);
                let hi = ((r * layers as f64 * 2.0 / head as f64).ceil() as usize).max(1);
                for m in lo..=hi {
                    let d = m * head;
                    if (head == 32) != (d < 256) {
                        continue;
                    }
                    let shape = ModelShape::new(layers, d, m, vocab, context, rotary)?;
                    let size_err = (shape.params().total as f64 / params).ln().abs();
                    let aspect_err = ((d as f64 / layers as f64) / r).ln().abs();
                    let score = size_err + 0.25 * aspect_err;
                    if best.is_none_or(|(e, _)| score < e) {
                        best = Some((score, shape));
                    }
                }
            }
        }
        let (_, shape) = best.expect("at least one candidate");
        if shape.params().total as f64 > 2.0 * params {
            return Err(ShapeError::TooSmall {
                target: params,
                smallest: shape.params().total,
                vocab,
                context,
            });
        }
        Ok(shape)
    }

    /// Head size k = d / h.
    pub fn head_size(&self) -> usize {
        self.d_model / self.heads
    }

    /// Bytes of memory training this model at `batch` sequences per step needs on CPU in
    /// fp32, estimated before anything is allocated: 16 bytes a parameter (weights, their
    /// gradients, AdamW's two moments), and the activations the backward pass keeps, about
    /// 2 x (34 + 5 h T / d) T d bytes a sequence per layer (Korthikanti et al. 2022, eq. 2,
    /// which counts 16-bit activations; ours are 32-bit, hence the 2), plus the logits and
    /// their gradient, 3 x 4 T V bytes a sequence. An estimate to refuse the impossible
    /// (`--params 1e12` on a laptop), not a budget: libtorch's allocator adds its own.
    ///
    /// # Example
    /// ```
    /// let s = isoflop_core::shape::ModelShape::new(2, 64, 2, 256, 64, false).unwrap();
    /// let bytes = s.training_memory(16);
    /// assert!(bytes > 16.0 * s.params().total as f64);
    /// ```
    pub fn training_memory(&self, batch: usize) -> f64 {
        let (t, d, h, v, l, b) = (
            self.context as f64,
            self.d_model as f64,
            self.heads as f64,
            self.vocab as f64,
            self.layers as f64,
            batch as f64,
        );
        let weights = 16.0 * self.params().total as f64;
        let per_layer = 2.0 * (34.0 + 5.0 * h * t / d) * t * d;
        let logits = 3.0 * 4.0 * t * v;
        weights + b * (l * per_layer + logits)
    }

    /// Parameter counts by component ([`crate::arch::Arch::count`] of [`ModelShape::arch`]).
    pub fn params(&self) -> ParamCount {
        self.arch().count().params
    }

    /// FLOPs per trained token, four ways ([`crate::arch::Arch::count`]).
    pub fn flops_per_token(&self) -> FlopsPerToken {
        self.arch().count().flops_per_token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_sum_to_the_total_and_match_a_hand_count() {
        // The benchmark model: 4 layers, d 128, 4 heads, context 128, vocab 256.
        // By hand: 256*128 + 128*128 + 4*(12*128^2 + 13*128) + 2*128 + 128*256 = 875,264
        // (the parameter count ../shared/bench/torch_gpt_bench.py prints for it).
        let s = ModelShape::new(4, 128, 4, 256, 128, false).unwrap();
        let p = s.params();
        assert_eq!(p.total, 875_264);
        assert_eq!(
            p.token_embedding + p.position_embedding + p.attention + p.mlp + p.layer_norm + p.head,
            p.total
        );
        assert_eq!(p.non_embedding, 4 * (12 * 128 * 128 + 13 * 128) + 2 * 128);
    }

    #[test]
    fn reproduces_chinchilla_table_a4_ratios() {
        // Table A4: FLOPs (Appendix F, seq 2048, vocab 32,000) over 6ND, printed to two
        // decimals. The table evidently leaves the embeddings and logits out, and its N is
        // the model's size in Table A9 (the row with the same layers and width).
        let rows = [
            (10, 640, 10, 64, 1.03),
            (20, 1024, 16, 64, 1.10),
            (24, 1280, 10, 128, 1.08),
            (26, 1792, 14, 128, 1.04),
            (28, 2048, 16, 128, 1.03),
            (40, 3584, 28, 128, 0.99),
        ];
        for (l, d, h, k, ratio) in rows {
            let n = CHINCHILLA_A9
                .iter()
                .find(|r| r.1 == d && r.2 == l)
                .expect("in Table A9")
                .0
                * 1e6;
            let s = ModelShape::new(l, d, h, 32_000, 2048, false).unwrap();
            assert_eq!(s.head_size(), k);
            // Appendix F without the embeddings (2Vd) and logits (2dV) of the forward pass.
            let v = 32_000.0 * d as f64;
            let forward = s.flops_per_token().chinchilla / 3.0 - 4.0 * v;
            let r = 3.0 * forward / (6.0 * n);
            assert!(
                (r - ratio).abs() <= 0.01,
                "{l} layers, d {d}: {r:.4} vs table {ratio}"
            );
        }
    }

    #[test]
    fn shapes_follow_table_a9_and_hit_the_target() {
        for target in [2e5, 1e6, 5e6, 2e7, 1e8, 1e9] {
            let s = ModelShape::for_params(target, 256, 128, false).unwrap();
            let got = s.params().total as f64;
            assert!(
                (got / target).ln().abs() < 0.25,
                "{target:e}: {s:?} has {got:e}"
            );
            assert_eq!(s.d_model % s.heads, 0);
        }
        // At Table A9's scale the aspect ratio is the table's own: a 1B model near d/L ~ 80.
        let s = ModelShape::for_params(1e9, 32_000, 2048, false).unwrap();
        let r = s.d_model as f64 / s.layers as f64;
        assert!((55.0..110.0).contains(&r), "{s:?}");
    }

    #[test]
    fn impossible_shapes_are_refused() {
        assert_eq!(
            ModelShape::new(2, 100, 3, 256, 64, false),
            Err(ShapeError::HeadsDoNotDivide {
                heads: 3,
                d_model: 100
            })
        );
        assert!(matches!(
            ModelShape::for_params(1000.0, 256, 128, false),
            Err(ShapeError::TooSmall { .. })
        ));
    }
}
