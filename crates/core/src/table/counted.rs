//! What a table counts: the columns that gave N and C (the counting convention), the unit
//! of its losses, and the conventions it has columns for.

use super::columns::Columns;

/// The unit a loss column is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossUnit {
    /// Nats per token (cross-entropy with the natural log: PyTorch's, isoflop's).
    #[default]
    Nats,
    /// Bits per token (log base 2).
    Bits,
}

impl LossUnit {
    /// The unit's name in reports ("nats per token").
    pub fn name(self) -> &'static str {
        match self {
            LossUnit::Nats => "nats per token",
            LossUnit::Bits => "bits per token",
        }
    }
}

/// The unit of losses converted with bytes per token.
pub const BITS_PER_BYTE: &str = "bits per byte";

/// Which columns gave a table's N and C, the unit of its losses, and the counting
/// conventions it can be fitted under.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counted {
    /// The params column.
    pub params: String,
    /// The flops column, or `6ND (derived)`.
    pub flops: String,
    /// The losses' unit: `nats per token`, `bits per token` or `bits per byte`.
    pub loss_unit: String,
    /// The conventions whose two columns the table has ([`CONVENTIONS`]).
    #[serde(default)]
    pub conventions: Vec<Convention>,
}

impl Default for Counted {
    fn default() -> Counted {
        Counted {
            params: "params".into(),
            flops: "flops".into(),
            loss_unit: LossUnit::Nats.name().into(),
            conventions: Vec::new(),
        }
    }
}

/// A way of counting a run's size and compute: a parameter column and a FLOP column.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Convention {
    /// What it is, with its source.
    pub label: String,
    /// The params column.
    pub params: String,
    /// The flops column.
    pub flops: String,
}

/// The conventions `isoflop import --model-config` writes columns for (and any table with
/// both columns of one has): (label, params column, flops column).
pub const CONVENTIONS: [(&str, &str, &str); 6] = [
    (
        "all parameters, 6ND (Hoffmann et al. 2022)",
        "params",
        "flops",
    ),
    (
        "non-embedding, 6ND (Kaplan et al. 2020's C = 6ND)",
        "params_no_embed",
        "flops_no_embed",
    ),
    (
        "non-embedding (Kaplan et al. 2020, Table 1)",
        "params_no_embed",
        "flops_kaplan",
    ),
    (
        "active parameters of a mixture of experts, 6ND",
        "params_active",
        "flops_active",
    ),
    (
        "all parameters, Appendix F FLOPs (Hoffmann et al. 2022)",
        "params",
        "flops_chinchilla",
    ),
    (
        "non-embedding, M (DeepSeek-AI 2024)",
        "params_no_embed",
        "flops_deepseek",
    ),
];

impl Columns {
    /// The conventions whose columns `names` has.
    pub(super) fn conventions(&self) -> Vec<Convention> {
        let has = |c: &str| self.names.iter().any(|h| h == c);
        CONVENTIONS
            .iter()
            .filter(|(_, p, f)| has(p) && has(f))
            .map(|(label, p, f)| Convention {
                label: label.to_string(),
                params: p.to_string(),
                flops: f.to_string(),
            })
            .collect()
    }

    /// What the table counts (see [`Counted`]).
    pub(super) fn counted(&self) -> Counted {
        Counted {
            params: self.names[self.params].clone(),
            flops: match self.flops {
                Some(f) => self.names[f].clone(),
                None => "6ND (derived)".into(),
            },
            loss_unit: self.loss_unit.to_string(),
            conventions: self.conventions(),
        }
    }
}
